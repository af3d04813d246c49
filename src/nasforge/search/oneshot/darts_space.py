"""The one-shot methods in the DARTS cell space: PC-DARTS, DARTS-V1/V2, GDAS and DDPNAS.

Each method is its NB201 class (:mod:`~nasforge.search.oneshot.pcdarts`, ``darts``,
``gdas``) with :class:`DartsCellMethod` in front: the mixin swaps the supernet for
:class:`~nasforge.nn.darts_supernet.DartsSupernet`, the alpha matrix for the 28 x 8 one of
the two cell types (rows 0..13 normal, 14..27 reduction), the derivation for DARTS's
``genotype()`` and the published NB201 settings for the DARTS-space ones. The search loop,
records, checkpoints, resume and plots are :func:`~nasforge.search.oneshot.run_search`'s.
The methods register in :data:`DARTS_ALGORITHMS` under their NB201 names;
:func:`oneshot_registry` maps a space name to its registry.

Official settings (cited per config class below):

* DARTS (quark0/darts ``cnn/train_search.py:23-43``): batch 64, SGD lr 0.025 cosine to
  ``learning_rate_min`` 0.001, momentum 0.9 (no Nesterov), weight decay 3e-4, 50 epochs,
  C=16, 8 layers, grad clip 5 over ``model.parameters()`` (the alphas are plain tensors
  outside them, ``model_search.py:131-136``), arch Adam lr 3e-4, betas (0.5, 0.999)
  (``architect.py:17-18``), weight decay 1e-3, seed 2, train_portion 0.5 as
  ``indices[:split]`` / ``indices[split:num_train]`` (``:90-100``) with a fresh
  ``next(iter(valid_queue))`` batch per step (``:143``). The arch step comes before the
  weight step in every iteration (``train_search.py:147-155``); V2 is ``--unrolled``.
  ``scheduler.step()`` opens each epoch (``:108-110``), on PyTorch 0.3.x: no shift (see
  ``scheduler_first`` in :class:`_DartsSpaceFields`).
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.io import atomic_save_figure, atomic_write_json, atomic_write_text
from nasforge.nn.darts_supernet import NUM_ARCH_ROWS, NUM_CELL_EDGES, NUM_DARTS_OPS, DartsSupernet
from nasforge.registry import Registry
from nasforge.search.oneshot.base import (
    Batch,
    OneShotConfig,
    OneShotSearch,
    StepStats,
    check_bool,
    cosine_lr,
)
from nasforge.search.oneshot.darts import DartsV1, DartsV2, DartsV2Config
from nasforge.search.oneshot.ddpnas import DDPNAS, DDPNASConfig, schedule_epochs
from nasforge.search.oneshot.gdas import GDAS, GDASConfig
from nasforge.search.oneshot.loop import ARCH_BATCH_RULES, SPLIT_RULES
from nasforge.search.oneshot.pcdarts import PCDarts, PCDartsConfig
from nasforge.search.registry import ALGORITHMS
from nasforge.spaces.darts import DARTS_CONCAT, PRIMITIVES, STEPS, Genotype, Pair

#: The one-shot methods of the DARTS space (same names as their NB201 versions).
DARTS_ALGORITHMS: Registry[OneShotSearch] = Registry("DARTS-space one-shot method")

GENOTYPE_JSON = "genotype.json"
GENOTYPE_REPR = "genotype.txt"
_NONE_ID = PRIMITIVES.index("none")
_SKIP_ID = PRIMITIVES.index("skip_connect")


# -- derivation ------------------------------------------------------------------------------


def node_edges(steps: int = STEPS) -> list[range]:
    """The rows of one cell's arch tensors that feed each intermediate node."""
    out, start = [], 0
    for i in range(steps):
        out.append(range(start, start + 2 + i))
        start += 2 + i
    return out


def normalise_cell_edges(betas: torch.Tensor) -> torch.Tensor:
    """PC-DARTS edge normalisation of the 28 betas: per cell and node, the softmax of its
    input edges' betas (``model_search.py:141-158``)."""
    parts = []
    for cell in range(2):
        for rows in node_edges():
            idx = [cell * NUM_CELL_EDGES + r for r in rows]
            parts.append(torch.softmax(betas[idx], dim=0))
    return torch.cat(parts)


def parse_cell(weights: np.ndarray, edge_weights: np.ndarray | None = None) -> list[Pair]:
    """DARTS / PC-DARTS ``genotype()._parse`` (PC-DARTS ``model_search.py:188-210``) of one
    cell: each edge's op weights times its edge weight (PC-DARTS) or as they are (DARTS);
    per node the 2 incoming edges whose strongest non-``none`` op is strongest (ties: the
    earlier input, as Python's stable sort), each with that op (ties: the first op)."""
    w = np.asarray(weights, dtype=np.float64)
    if edge_weights is not None:
        w = w * np.asarray(edge_weights, dtype=np.float64)[:, None]
    w = w.copy()
    w[:, _NONE_ID] = -np.inf
    gene: list[Pair] = []
    for rows in node_edges():
        block = w[list(rows)]
        strongest = sorted(range(len(rows)), key=lambda j: -block[j].max())[:2]
        gene += [(PRIMITIVES[int(np.argmax(block[j]))], j) for j in strongest]
    return gene


def gdas_parse_cell(weights: np.ndarray) -> list[Pair]:
    """xautodl's GDAS (NASNet space) ``genotype()._parse`` (``search_model_gdas_nasnet.py:
    129-143``): per node the 2 strongest (op, input) pairs over all its non-``none`` op
    weights (stable order on ties)."""
    w = np.asarray(weights, dtype=np.float64)
    gene: list[Pair] = []
    for rows in node_edges():
        cands = [
            (PRIMITIVES[k], j, w[r, k])
            for j, r in enumerate(rows)
            for k in range(NUM_DARTS_OPS)
            if k != _NONE_ID
        ]
        gene += [(op, j) for op, j, _ in sorted(cands, key=lambda c: -c[2])[:2]]
    return gene


def derive_genotype(
    probs: np.ndarray, edge_weights: np.ndarray | None = None, rule: Any = None
) -> Genotype:
    """The genotype of the 28 x 8 op weights (normal rows then reduction rows) and the
    optional 28 edge weights, by ``rule`` (default :func:`parse_cell`; or
    :func:`gdas_parse_cell`, which ignores edge weights)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (NUM_ARCH_ROWS, NUM_DARTS_OPS):
        raise SearchError(f"op weights have shape {p.shape}; expected (28, 8)")
    cells = []
    for c in range(2):
        rows = slice(c * NUM_CELL_EDGES, (c + 1) * NUM_CELL_EDGES)
        if rule is None:
            ew = None if edge_weights is None else np.asarray(edge_weights)[rows]
            cells.append(parse_cell(p[rows], ew))
        else:
            cells.append(rule(p[rows]))
    return Genotype(cells[0], DARTS_CONCAT, cells[1], DARTS_CONCAT)


def normal_skip_share(g: Genotype) -> float:
    """The share of ``skip_connect`` among the normal cell's pairs (DARTS' collapse sign)."""
    return sum(op == "skip_connect" for op, _ in g.normal) / len(g.normal)


# -- configs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DartsSpaceFields:
    """Fields every DARTS-space config shares. ``N`` is the total number of cells (the
    official ``--layers``; ``nasforge train --space darts --N`` means the same).

    ``scheduler_first`` (default ``False``): whether epoch ``e`` trains at ``cosine(e + 1)``
    instead of ``cosine(e)``. The official DARTS and PC-DARTS searches call
    ``scheduler.step()`` at the start of each epoch (quark0/darts ``cnn/train_search.py``
    ``for epoch in range(args.epochs): scheduler.step()``; PC-DARTS ``train_search.py`` the
    same) and ran on PyTorch 0.3.1 (PC-DARTS README). That version's
    ``_LRScheduler.__init__`` (``torch/optim/lr_scheduler.py``) calls
    ``self.step(last_epoch + 1)`` and then sets ``self.last_epoch = last_epoch`` (-1) again,
    so the first ``step()`` goes to epoch 0 = the base lr: no shift, and the last epoch runs
    at ``cosine(E - 1)`` > ``eta_min``. ``True`` is what the same loop gives on PyTorch
    >= 1.1, whose ``__init__`` leaves ``last_epoch`` at 0 (the first ``step()`` moves to 1;
    PC-DARTS then ends at lr 0). Compared: the 0.3.x ``_LRScheduler`` source as quoted in a
    public copy (the pytorch repository itself was too large to fetch here), not a run of
    PyTorch 0.3.1.

    ``split`` / ``arch_batches`` (defaults ``prefix`` / ``fresh``, DARTS's and PC-DARTS's):
    how a dataset without a ``valid`` split is halved and how each step's arch batch is
    drawn (see :mod:`~nasforge.search.oneshot.loop`); ``random`` / ``cycle`` are the NB201
    methods' rules (GDAS and DDPNAS here, whose official loaders pair or split otherwise).
    """

    C: int = 16
    N: int = 8
    nesterov: bool = False
    pool_bn: bool = True
    scheduler_first: bool = False
    split: str = "prefix"
    arch_batches: str = "fresh"

    def _check_space_fields(self) -> None:
        check_bool(self, "pool_bn")
        check_bool(self, "scheduler_first")
        if self.split not in SPLIT_RULES:
            raise SearchError(
                f"config field split={self.split!r} invalid; expected one of {SPLIT_RULES}"
            )
        if self.arch_batches not in ARCH_BATCH_RULES:
            raise SearchError(
                f"config field arch_batches={self.arch_batches!r} invalid; expected one of "
                f"{ARCH_BATCH_RULES}"
            )


@dataclass(frozen=True)
class DartsSpaceConfig(_DartsSpaceFields, OneShotConfig):
    """DARTS-V1 in the DARTS space (quark0/darts ``cnn/train_search.py:23-43``)."""

    weight_decay: float = 3e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_space_fields()


@dataclass(frozen=True)
class DartsSpaceV2Config(_DartsSpaceFields, DartsV2Config):
    """DARTS-V2 (``--unrolled``) in the DARTS space: V1's settings plus ``unroll_r`` 0.01
    (``architect.py:_hessian_vector_product``)."""

    weight_decay: float = 3e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_space_fields()


@dataclass(frozen=True)
class DartsSpacePCConfig(_DartsSpaceFields, PCDartsConfig):
    """PC-DARTS in the DARTS space (``train_search.py:24-44``; K=4 ``model_search.py:31``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_space_fields()


@dataclass(frozen=True)
class DartsSpaceGDASConfig(_DartsSpaceFields, GDASConfig):
    """GDAS in the DARTS space (``GDAS-NASNet-CIFAR.config`` opts / archs, see the module
    docstring): 250 epochs, batch 256, Nesterov lr 0.025 -> 0.001, wd 5e-4, 6 cells."""

    N: int = 6
    batch_size: int = 256
    nesterov: bool = True
    weight_decay: float = 5e-4
    pool_bn: bool = False
    split: str = "random"
    arch_batches: str = "cycle"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_space_fields()


#: XNAS' two op groups (``xnas/spaces/DARTS/ops.py`` ``NON_PARAMETER_OP`` / ``PARAMETER_OP``)
#: as ids of :data:`PRIMITIVES`: DDPNAS never prunes the last survivor of either.
DDPNAS_PRUNE_GROUPS: tuple[tuple[int, ...], ...] = (
    tuple(PRIMITIVES.index(op) for op in ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect")),
    tuple(
        PRIMITIVES.index(op)
        for op in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    ),
)


@dataclass(frozen=True)
class DartsSpaceDDPNASConfig(_DartsSpaceFields, DDPNASConfig):
    """DDPNAS in the DARTS space (XNAS ``DDPNAS_darts_cifar10.yaml``; see the module
    docstring): 99 epochs (until 2 ops per edge survive), batch 256, lr 0.025 cosine."""

    epochs: int = schedule_epochs(NUM_DARTS_OPS, 3, last=len(DDPNAS_PRUNE_GROUPS))
    bigmodel_sample_prob: float = 0.5
    split: str = "random"
    arch_batches: str = "cycle"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_space_fields()


# -- methods ------------------------------------------------------------------------------------


class DartsCellMethod:
    """What turns an NB201 alpha method into its DARTS-space version (put it first in the
    bases): the supernet, the 28 x 8 alphas, the schedule shift, genotype derivation,
    record fields, plot and output files."""

    space_name = "darts"
    config: Any
    alphas: nn.Parameter

    def build_supernet(self, num_classes: int) -> nn.Module:
        cfg = self.config
        return DartsSupernet(
            cfg.C,
            cfg.N,
            num_classes,
            partial_k=self.partial_k(),  # type: ignore[attr-defined]
            pool_bn=cfg.pool_bn,
        )

    def new_alphas(self, rows: int = NUM_ARCH_ROWS, cols: int = NUM_DARTS_OPS) -> nn.Parameter:
        return super().new_alphas(rows, cols)  # type: ignore[misc]

    def epoch_lr(self, epoch: int) -> float:
        return cosine_lr(self.config, epoch + 1 if self.config.scheduler_first else epoch)

    def split_rule(self) -> str:
        return self.config.split

    def arch_batch_rule(self) -> str:
        return self.config.arch_batches

    def derive_edge_weights(self) -> np.ndarray | None:
        """The edge weights the derivation multiplies in (PC-DARTS' normalised betas)."""
        return None

    def derive(self, ctx: Any) -> Genotype:
        return derive_genotype(self.probabilities(), self.derive_edge_weights())  # type: ignore[attr-defined]

    def arch_fields(self, arch: Genotype) -> dict[str, Any]:
        return {"arch": arch.to_string(), "arch_index": None, "skip_share": normal_skip_share(arch)}

    def plot(self, records: list[dict[str, Any]], path: Any, title: str = "", **_: Any) -> Path:
        """The DARTS-space figure (warm-up and retrained accuracy are not drawn in it)."""
        return plot_darts_search(records, path, title=title)

    def write_arch(self, arch: Genotype, out_dir: Path) -> dict[str, str]:
        """``genotype.json`` (what ``nasforge train --space darts --arch`` reads) and
        ``genotype.txt`` (DARTS's repr) in ``out_dir``."""
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / GENOTYPE_JSON, arch.to_dict())
        atomic_write_text(out_dir / GENOTYPE_REPR, arch.to_string() + "\n")
        return {"genotype": str(out_dir / GENOTYPE_JSON), "repr": str(out_dir / GENOTYPE_REPR)}


@DARTS_ALGORITHMS.register("darts-v1")
class DartsSpaceV1(DartsCellMethod, DartsV1):
    """First-order DARTS in the DARTS space: arch step then weight step
    (``train_search.py:147-155``), clipping only the weights."""

    config_class = DartsSpaceConfig

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        net = self.supernet
        assert net is not None and arch is not None
        self.arch_step(lambda x: net(x, weights=self.mix_weights()), arch)
        return self.mixed_weight_step(base)

    def mixed_weight_step(self, base: Batch) -> StepStats:
        net = self.supernet
        assert net is not None
        return self.weight_step(lambda x: net(x, weights=self.mix_weights(detach=True)), base)


@DARTS_ALGORITHMS.register("darts-v2")
class DartsSpaceV2(DartsCellMethod, DartsV2):
    """Second-order DARTS in the DARTS space (the NB201 unrolled step, then
    :meth:`DartsSpaceV1.mixed_weight_step`)."""

    config_class = DartsSpaceV2Config
    mixed_weight_step = DartsSpaceV1.mixed_weight_step


@DARTS_ALGORITHMS.register("pc-darts")
class DartsSpacePCDarts(DartsCellMethod, PCDarts):
    """PC-DARTS in the DARTS space: partial channels, 28 betas normalised per node."""

    config_class = DartsSpacePCConfig

    normalise_betas = staticmethod(normalise_cell_edges)

    def derive_edge_weights(self) -> np.ndarray | None:
        ew = self.edge_weights(detach=True)
        return None if ew is None else ew.cpu().double().numpy()


@DARTS_ALGORITHMS.register("gdas")
class DartsSpaceGDAS(DartsCellMethod, GDAS):
    """GDAS in the DARTS space, deriving as xautodl's NASNet-space GDAS model."""

    config_class = DartsSpaceGDASConfig

    def derive(self, ctx: Any) -> Genotype:
        return derive_genotype(self.probabilities(), rule=gdas_parse_cell)


@DARTS_ALGORITHMS.register("ddpnas")
class DartsSpaceDDPNAS(DartsCellMethod, DDPNAS):
    """DDPNAS in the DARTS space: 28 x 8 distribution, XNAS' two-group pruning constraint,
    DARTS's derivation; once finished, the derived genotype's path trains."""

    config_class = DartsSpaceDDPNASConfig
    arch_shape = (NUM_ARCH_ROWS, NUM_DARTS_OPS)
    prune_groups = DDPNAS_PRUNE_GROUPS
    bigmodel_rule = (DDPNAS_PRUNE_GROUPS[0], _NONE_ID, NUM_CELL_EDGES)

    def final_path(self) -> list[int]:
        return genotype_path(self.derive(None))

    def path_arch(self, path: list[int]) -> Any:
        return list(path)  # DartsSupernet.forward_arch takes the 28 op ids

    def describe_path(self, path: list[int]) -> str:
        return " ".join(PRIMITIVES[k] for k in path)


def genotype_path(g: Genotype) -> list[int]:
    """The 28 op ids of ``g``'s single path: each named (op, input) on its edge, ``none``
    on the edges ``g`` leaves out (two pairs on one edge keep the first)."""
    path = [_NONE_ID] * NUM_ARCH_ROWS
    for c, reduction in enumerate((False, True)):
        pairs = g.cell(reduction)[0]
        for node, rows in enumerate(node_edges()):
            for op, j in pairs[2 * node : 2 * node + 2]:
                row = c * NUM_CELL_EDGES + rows[j]
                if path[row] == _NONE_ID:
                    path[row] = PRIMITIVES.index(op)
    return path


def oneshot_registry(space: str) -> Any:
    """The registry of the one-shot methods that search ``space`` (NB201's live in
    :data:`~nasforge.search.ALGORITHMS`)."""
    registries: dict[str, Any] = {"nb201": ALGORITHMS, "darts": DARTS_ALGORITHMS}
    if space not in registries:
        raise SearchError(
            f"no one-shot supernet for space {space!r}; expected one of {sorted(registries)}"
        )
    return registries[space]


# -- plot ---------------------------------------------------------------------------------------


def plot_darts_search(records: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Per cell type, each op's probability averaged over the 14 edges per epoch and the last
    epoch's per-edge probabilities; the derived genotype's one-shot accuracy and the
    collapse indicators (normal-cell skip share, mean entropy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in records]
    probs = np.asarray([r["probs"] for r in records], dtype=np.float64).reshape(
        len(records), 2, NUM_CELL_EDGES, NUM_DARTS_OPS
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for c, cell in enumerate(("normal", "reduce")):
        ax = axes[c, 0]
        for k, op in enumerate(PRIMITIVES):
            if records:
                ax.plot(epochs, probs[:, c, :, k].mean(axis=1), label=op, marker=".")
        ax.set_title(f"{cell} cell: op probability (mean over edges)")
        ax.set_xlabel("epoch")
        if c == 0:
            ax.legend(fontsize=7)
        ax = axes[c, 1]
        if records:
            im = ax.imshow(probs[-1, c], aspect="auto", cmap="viridis")
            fig.colorbar(im, ax=ax)
        ax.set_xticks(range(NUM_DARTS_OPS), PRIMITIVES, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("edge")
        ax.set_title(f"{cell} cell: last epoch's probabilities")
    ax = axes[0, 2]
    if records:
        ax.plot(epochs, [r["derived_valid_acc"] for r in records], marker=".", label="derived")
        ax.plot(epochs, [r["valid_acc"] for r in records], marker=".", ls="--", label="supernet")
    ax.set_xlabel("epoch")
    ax.set_ylabel("one-shot valid accuracy (%)")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    if records:
        ax.plot(epochs, [r["skip_share"] for r in records], marker=".", label="normal skip share")
        ent = [float(np.mean(r["entropy"])) / np.log(NUM_DARTS_OPS) for r in records]
        ax.plot(epochs, ent, marker=".", label="mean entropy / log 8")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=80)
