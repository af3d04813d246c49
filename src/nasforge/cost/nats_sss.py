"""Params and FLOPs of NATS-Bench size-space archs (the benchmark's counting convention,
as for NB201: counted on the built network for one input of the dataset's shape)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from nasforge.cost.registry import ARCH_COSTS
from nasforge.cost.types import DATASET_SHAPES, Cost
from nasforge.errors import NasforgeError


@lru_cache(maxsize=4096)
def _cost(channels: tuple[int, ...], dataset: str) -> Cost:
    from nasforge.nn.nats_sss import NATSSizeNetwork  # keep torch off the import path

    if dataset not in DATASET_SHAPES:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for nats-sss costs; expected one of "
            f"{sorted(DATASET_SHAPES)}"
        )
    res, classes = DATASET_SHAPES[dataset]
    from nasforge.cost.counter import module_cost  # torch: only when building

    return module_cost(NATSSizeNetwork(channels, num_classes=classes), (1, 3, res, res))


@ARCH_COSTS.register("nats-sss")
def nats_sss_cost(arch: Sequence[int] | str, dataset: str = "cifar10") -> Cost:
    """Params and FLOPs (millions) of a nats-sss arch (tuple or ``"8:16:32:64:64"``)."""
    from nasforge.spaces.nats_sss import NATSSizeSpace

    space = NATSSizeSpace()
    a = space.from_string(arch) if isinstance(arch, str) else tuple(int(c) for c in arch)
    space.to_string(a)  # validates
    return _cost(a, dataset)
