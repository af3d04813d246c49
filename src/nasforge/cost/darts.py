"""Costs of DARTS genotypes: parameters and multiply-adds of their evaluation networks.

Parameters follow DARTS's ``utils.count_parameters_in_MB`` (every parameter except the
auxiliary head), which :func:`nasforge.cost.counter.count_params` implements, and equal the
official networks' counts exactly (tests/test_nn_darts.py). Multiply-adds are our
counter's (:mod:`nasforge.cost.counter`): convolutions and linear layers of one eval-mode
forward pass of a single image, nothing for BN, ReLU, pooling or additions, and no
auxiliary head (it only runs in training). The papers' "multi-adds" come from counters
they did not publish: DARTS quotes 574M for DARTS_V2 on ImageNet, PC-DARTS 597M for
PC_DARTS_image; ours gives 529.9M and 581.6M. Counting BN, ReLU and pooling outputs too
adds only ~11M to either, so no per-layer convention we tried reproduces both published
figures from the released model.py; they are quoted, not matched.
"""

from __future__ import annotations

from functools import lru_cache

from nasforge.cost.registry import ARCH_COSTS
from nasforge.cost.types import Cost
from nasforge.errors import NasforgeError
from nasforge.spaces.darts import Genotype

#: dataset -> (input resolution, classes, network, default C, default cells): the
#: published evaluation settings (DARTS / PC-DARTS train.py and train_imagenet.py).
DARTS_SETTINGS: dict[str, tuple[int, int, str, int, int]] = {
    "cifar10": (32, 10, "cifar", 36, 20),
    "cifar100": (32, 100, "cifar", 36, 20),
    "imagenet": (224, 1000, "imagenet", 48, 14),
}


def darts_setting(dataset: str) -> tuple[int, int, str, int, int]:
    """``(resolution, classes, network kind, C, cells)`` of a dataset for DARTS costs."""
    try:
        return DARTS_SETTINGS[dataset]
    except KeyError:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for DARTS costs; expected one of {sorted(DARTS_SETTINGS)}"
        ) from None


@lru_cache(maxsize=64)
def _cost(genotype: Genotype, dataset: str, C: int, layers: int) -> Cost:
    from nasforge.nn.darts import darts_network  # torch off the spaces path

    res, classes, kind, _, _ = darts_setting(dataset)
    net = darts_network(
        genotype,
        num_classes=classes,
        C=C,
        layers=layers,
        auxiliary=False,
        imagenet=kind == "imagenet",
    )
    from nasforge.cost.counter import module_cost  # torch: only when building

    cost = module_cost(net, (1, 3, res, res))
    # True values are whole numbers of parameters / multiply-adds: round away float noise.
    return Cost(round(cost.params_m, 6), round(cost.flops_m, 6))


@ARCH_COSTS.register("darts")
def darts_cost(
    genotype: Genotype | str,
    dataset: str = "cifar10",
    C: int | None = None,
    layers: int | None = None,
) -> Cost:
    """Params and multiply-adds (millions) of a genotype's evaluation network.

    ``dataset`` picks the published setting: ``cifar10`` / ``cifar100`` (NetworkCIFAR,
    C=36, 20 cells, 32x32 input) or ``imagenet`` (NetworkImageNet mobile, C=48, 14 cells,
    224x224); ``C`` and ``layers`` override the width and depth. ``genotype`` may be a
    :class:`Genotype`, a published name, a repr or JSON.
    """
    g = Genotype.parse(genotype)
    _, _, _, c0, l0 = darts_setting(dataset)
    return _cost(g, dataset, C or c0, layers or l0)
