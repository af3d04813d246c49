"""The published settings of every one-shot method in every space, and the quick profiles.

One table keyed by (method, space):

* :data:`~nasforge.search.registry.ONESHOT_CONFIGS` ``"<method>/<space>"`` -> the config
  class whose defaults are the method's published settings in that space. In NB201 that is
  the method's own config class (its defaults cite xautodl's NB201 scripts, or the paper's
  code where the method is not in xautodl; see each method's module); the DARTS-space
  classes are below. A config class may also fix the official *procedure* where it differs
  between the official code bases: ``arch_step_first`` / ``clip_alphas``
  (:class:`~nasforge.search.oneshot.config.OneShotConfig`), which are class attributes, not
  fields, so they are not overridable and not recorded. A method runs in a space whose
  adapter has config fields only with an entry here; in a space without (a new one) it runs
  with its own config class.
* :data:`QUICK_COMMON` / :data:`QUICK` -- the scaled-down settings of the embedded-data
  runs of ``nasforge search`` (:func:`quick_profile`).

DARTS-space settings (cited per config class below):

* DARTS (quark0/darts ``cnn/train_search.py:23-43``): batch 64, SGD lr 0.025 cosine to
  ``learning_rate_min`` 0.001, momentum 0.9 (no Nesterov), weight decay 3e-4, 50 epochs,
  C=16, 8 layers, grad clip 5 over ``model.parameters()`` (the alphas are plain tensors
  outside them, ``model_search.py:131-136``), arch Adam lr 3e-4, betas (0.5, 0.999)
  (``architect.py:17-18``), weight decay 1e-3, seed 2, train_portion 0.5 as
  ``indices[:split]`` / ``indices[split:num_train]`` (``:90-100``) with a fresh
  ``next(iter(valid_queue))`` batch per step (``:143``). The arch step comes before the
  weight step in every iteration (``train_search.py:147-155``); V2 is ``--unrolled``.
  ``scheduler.step()`` opens each epoch (``:108-110``), on PyTorch 0.3.x: no shift (see
  ``scheduler_first`` in
  :class:`~nasforge.search.oneshot.spaces.darts.DartsSpaceFields`).
* PC-DARTS (yuhuixu1993/PC-DARTS ``train_search.py:24-44``): batch 256, lr 0.1 cosine to
  ``learning_rate_min`` 0.0, momentum 0.9, weight decay 3e-4, 50 epochs, C=16, 8 layers,
  arch lr 6e-4, arch weight decay 1e-3, seed 2, grad clip 5, arch updates only
  ``if epoch>=15`` (``:156-157``), K=4 (``model_search.py:31``); the same halves and fresh
  arch batch as DARTS (``:94-104``, ``:147``), on "pytorch(3.0.1)" (README:76, i.e. 0.3.1)
  with ``scheduler.step()`` opening each epoch (``:112-114``).
* GDAS (D-X-Y/AutoDL-Projects ``scripts-search/NASNet-space-search-by-GDAS.sh:30-38`` with
  ``configs/search-opts/GDAS-NASNet-CIFAR.config`` and
  ``configs/search-archs/GDAS-NASNet-CIFAR.config``): 250 epochs, batch 256, SGD lr 0.025
  Nesterov cosine to 0.001, weight decay 5e-4, tau 10 -> 0.1, arch Adam 3e-4 / wd 1e-3,
  C=16 and N=2 cells per stage, i.e. 3N = 6 cells with reductions at 2 and 4 -- what
  ``layers // 3`` and ``2 * layers // 3`` give for 6 layers, so ``N`` = 6 here. Its
  search model (``search_model_gdas_nasnet.py``) has no BN after the pooling ops
  (``pool_bn=False`` here) and derives each node's two (op, input) pairs as the strongest
  of all its non-``none`` (op, input) weights (``:128-143``; two pairs may share an input).
  Not reproduced: that model's final BN + ReLU before the pooling (``:77``).
* DDPNAS (MAC-AutoML/XNAS ``xnas/algorithms/SNG/DDPNAS.py``, ``CategoricalDDPNAS``, and
  ``configs/search/SNG/DDPNAS_darts_cifar10.yaml``): the NB201 method
  (:mod:`~nasforge.search.oneshot.ddpnas`) on the 28 x 8 distribution, with XNAS'
  DARTS-space pruning constraint as ``CategoricalDDPNAS.update`` had it at commits 808e5a8
  and 72df3f8 (May 2022; commented out from 85dec6e "fix bug for DDPNAS" on, head
  ea8f8ab included, where nothing sets ``training_finish`` and, by reading, pruning would
  go on past the last survivor within ``MAX_EPOCH`` 200, so we keep the older rule): an edge never
  loses its last parameter-free op (``none``, pooling, skip) nor its last parametric one
  (the four convolutions) -- XNAS counts at most 3 prunings per group of 4
  (``non_param_index_count[index] == 3``) and ends the search when 3 + 3 are done
  (``training_finish``), so two ops per edge survive, one of each group: 3 rounds at each
  survivor count 8..3, ``3 * (8 + 7 + 6 + 5 + 4 + 3) = 99`` epochs. The groups are the
  ones of XNAS' ``NON_PARAMETER_OP`` / ``PARAMETER_OP`` (``xnas/spaces/DARTS/ops.py``), by
  name; ``DDPNAS.py`` hard-codes the indices ``[0, 1, 2, 7]``, which name these four ops in
  an op order with ``none`` last (``cnn.py``: ``none_idx = 7``) -- not verified against
  the op list of the published run. Derivation: DARTS's rule
  (:func:`parse_cell`) on the survivors' renormalised ``theta`` -- per node the 2 incoming
  edges whose best non-``none`` survivor is strongest, with that op (ties, as before the
  first update: the earlier edge and op). From the yaml: batch 256, SGD lr 0.025 cosine,
  ``PRUNING_STEP: 3``, ``GAMMA: 0.9``; C=16 and 8 layers are XNAS' config defaults
  (``_C.SPACE.CHANNEL``, ``_C.SPACE.LAYERS``); ``RANDOM_SAMPLE: True`` with
  ``BIGMODEL_SAMPLE_PROB: 0.5`` and ``BIGMODEL_NON_PARA: 2`` (each epoch trains a random
  path, half the time one whose normal cell has no ``none`` and at most 2 parameter-free
  ops, and credits its result to the distribution's draw, see the NB201 module); XNAS'
  defaults lr floor 1e-3 (``_C.OPTIM.MIN_LR``), weight decay 5e-4, Nesterov off
  (``_C.OPTIM.NESTEROV``). Not verified for the DARTS-space run, kept from the NB201
  DDPNAS: clip 5, the unshifted cosine (``scheduler_first=False``, as every DARTS-space
  config here) and the BN after pooling (``pool_bn``); the yaml's 0.8 / 0.2 train/valid
  split is the data split's business (``nasforge search`` options), not the config's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nasforge.search.oneshot.bnnas import BNNASConfig
from nasforge.search.oneshot.config import OneShotConfig
from nasforge.search.oneshot.danas import DANASConfig
from nasforge.search.oneshot.darts import DartsV2Config
from nasforge.search.oneshot.ddpnas import DDPNASConfig, schedule_epochs
from nasforge.search.oneshot.enas import ENASConfig
from nasforge.search.oneshot.fpnas import FPNASConfig
from nasforge.search.oneshot.gdas import GDASConfig
from nasforge.search.oneshot.pcdarts import PCDartsConfig
from nasforge.search.oneshot.rsps import RSPSConfig
from nasforge.search.oneshot.setn import SETNConfig
from nasforge.search.oneshot.spaces.darts import DDPNAS_PRUNE_GROUPS, DartsSpaceFields
from nasforge.search.registry import ONESHOT_CONFIGS
from nasforge.spaces.darts import PRIMITIVES

# -- NB201: each method's own config class ---------------------------------------------------

#: The NB201 settings of each method: its own config class, whose defaults cite the
#: official NB201 scripts (xautodl) or the method's paper / code (see each module).
NB201_CONFIGS: dict[str, type[OneShotConfig]] = {
    "darts-v1": OneShotConfig,
    "darts-v2": DartsV2Config,
    "gdas": GDASConfig,
    "setn": SETNConfig,
    "enas": ENASConfig,
    "rsps": RSPSConfig,
    "pc-darts": PCDartsConfig,
    "single-darts": OneShotConfig,
    "ddpnas": DDPNASConfig,
    "fp-nas": FPNASConfig,
    "bn-nas": BNNASConfig,
    "da-nas": DANASConfig,
}
for _method, _config in NB201_CONFIGS.items():
    ONESHOT_CONFIGS.register(f"{_method}/nb201")(_config)

# -- the DARTS cell space ---------------------------------------------------------------------


@ONESHOT_CONFIGS.register("darts-v1/darts")
@dataclass(frozen=True)
class DartsSpaceConfig(DartsSpaceFields, OneShotConfig):
    """DARTS-V1 in the DARTS space (quark0/darts ``cnn/train_search.py:23-43``): the arch
    step before the weight step, clipping only the weights (``train_search.py:147-155``)."""

    arch_step_first: ClassVar[bool] = True
    clip_alphas: ClassVar[bool] = False

    weight_decay: float = 3e-4


@ONESHOT_CONFIGS.register("darts-v2/darts")
@dataclass(frozen=True)
class DartsSpaceV2Config(DartsSpaceFields, DartsV2Config):
    """DARTS-V2 (``--unrolled``) in the DARTS space: V1's settings plus ``unroll_r`` 0.01
    (``architect.py:_hessian_vector_product``); the weight step clips only the weights."""

    clip_alphas: ClassVar[bool] = False

    weight_decay: float = 3e-4


@ONESHOT_CONFIGS.register("pc-darts/darts")
@dataclass(frozen=True)
class DartsSpacePCConfig(DartsSpaceFields, PCDartsConfig):
    """PC-DARTS in the DARTS space (``train_search.py:24-44``; K=4 ``model_search.py:31``)."""


@ONESHOT_CONFIGS.register("gdas/darts")
@dataclass(frozen=True)
class DartsSpaceGDASConfig(DartsSpaceFields, GDASConfig):
    """GDAS in the DARTS space (``GDAS-NASNet-CIFAR.config`` opts / archs, see the module
    docstring; derived by the ``pairs`` rule): 250 epochs, batch 256, Nesterov lr 0.025 -> 0.001, wd 5e-4, 6 cells."""

    N: int = 6
    batch_size: int = 256
    nesterov: bool = True
    weight_decay: float = 5e-4
    pool_bn: bool = False
    split: str = "random"
    arch_batches: str = "cycle"


@ONESHOT_CONFIGS.register("ddpnas/darts")
@dataclass(frozen=True)
class DartsSpaceDDPNASConfig(DartsSpaceFields, DDPNASConfig):
    """DDPNAS in the DARTS space (XNAS ``DDPNAS_darts_cifar10.yaml``; see the module
    docstring): 99 epochs (until 2 ops per edge survive), batch 256, lr 0.025 cosine."""

    epochs: int = schedule_epochs(len(PRIMITIVES), 3, last=len(DDPNAS_PRUNE_GROUPS))
    bigmodel_sample_prob: float = 0.5
    split: str = "random"
    arch_batches: str = "cycle"


# -- the quick profiles (embedded datasets) ---------------------------------------------------

#: Per space, the skeleton of the scaled-down embedded-data runs (16x16 digits: ~1k training
#: images). NB201: N=2 cells per stage instead of 5; DARTS space: C=8, 5 cells.
QUICK_COMMON: dict[str, dict[str, Any]] = {
    "nb201": {"C": 16, "N": 2, "batch_size": 64, "eval_batch_size": 512},
    "darts": {"C": 8, "N": 5, "batch_size": 64, "eval_batch_size": 512},
}
#: Per (method, space) -- space ``*``: every space -- what else shrinks on embedded data.
#: Published settings are kept where they do not drive the cost (optimizers, arch lr,
#: K=4); what shrinks is the number of epochs and the per-method selection / controller
#: budgets. For pc-darts on digits the whole job (search + training the derived arch) takes
#: about 1.5 CPU-minutes on an AVX2 EPYC (``benchmarks/demo_timing.py``; README "Quick
#: start").
QUICK: dict[tuple[str, str], dict[str, Any]] = {
    # ~30% warm-up as in the paper (15 of 50 epochs). PC-DARTS' lr 0.1 is for batch 256, so
    # at batch 64 DARTS' 0.025 is the matching one (linear scaling). The paper's search takes
    # ~3.4k architecture steps (35 epochs x 98 batches); this one 112 (7 epochs x 16), so
    # the arch lr is 10x the published 6e-4 for alpha to travel a larger distance.
    # 10 epochs (3 warm-up) halve the demo's search (benchmarks/demo_timing.py);
    # `--epochs 20` is the earlier profile (6 warm-up, 224 arch steps).
    ("pc-darts", "*"): {"epochs": 10, "warmup_epochs": 3, "lr": 0.025, "arch_lr": 6e-3},
    ("darts-v1", "*"): {"epochs": 10},
    ("darts-v2", "*"): {"epochs": 6},
    ("single-darts", "*"): {"epochs": 10},
    ("gdas", "*"): {"epochs": 10},
    ("setn", "*"): {"epochs": 10, "select_num": 20},
    ("rsps", "*"): {"epochs": 10, "select_num": 20},
    # DDPNAS' full schedule with one round per pruning: 5 + 4 + 3 + 2 = 14 epochs.
    ("ddpnas", "*"): {"epochs": 14, "steps": 1},
    ("fp-nas", "*"): {"epochs": 10},
    ("bn-nas", "*"): {"epochs": 5},
    ("da-nas", "*"): {"epochs": 10, "warmup_epochs": 2, "eval_paths": 10},
    ("enas", "*"): {
        "epochs": 10,
        "controller_train_steps": 10,
        "controller_num_aggregate": 5,
        "controller_num_samples": 20,
    },
}


def quick_profile(method: str, space: str) -> dict[str, Any]:
    """The embedded-data overrides of ``method`` in ``space``: the space's skeleton, then
    the method's entry for that space (else its ``*`` entry)."""
    per_method = QUICK.get((method, space), QUICK.get((method, "*"), {}))
    return {**QUICK_COMMON.get(space, {}), **per_method}
