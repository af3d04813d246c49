"""Costs of NB201 architectures in the benchmark's own convention."""

from __future__ import annotations

from functools import lru_cache

from nasforge.cost.counter import DATASET_SHAPES, Cost, module_cost
from nasforge.cost.registry import ARCH_COSTS, SHAPE_COSTS
from nasforge.errors import NasforgeError
from nasforge.spaces.nb201 import NUM_EDGES, OPS, Arch


def dataset_shape(dataset: str) -> tuple[int, int]:
    """(input resolution, number of classes) of an NB201 dataset name."""
    try:
        return DATASET_SHAPES[dataset]
    except KeyError:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for NB201 costs; expected one of {sorted(DATASET_SHAPES)}"
        ) from None


def network_cost(arch: Arch, dataset: str, C: int = 16, N: int = 5) -> Cost:
    """Cost counted on the built network (the slow, direct way)."""
    from nasforge.nn.nb201 import NB201Network  # keep torch off the import path of spaces

    res, classes = dataset_shape(dataset)
    net = NB201Network(arch, C=C, N=N, num_classes=classes)
    return module_cost(net, (1, 3, res, res))


@lru_cache(maxsize=64)
def _op_table(dataset: str, C: int, N: int) -> tuple[Cost, dict[str, Cost]]:
    """Skeleton cost (all edges ``none``) and the cost each op adds on one edge position.

    Every normal-cell edge sees the same shapes, so an arch's cost is the skeleton plus one
    op term per edge: six network builds per dataset give every arch's cost exactly.
    """
    base = network_cost(Arch(("none",) * NUM_EDGES), dataset, C, N)
    per_op = {"none": Cost(0.0, 0.0)}
    for op in OPS[1:]:
        full = network_cost(Arch((op,) * NUM_EDGES), dataset, C, N)
        per_op[op] = Cost(
            (full.params_m - base.params_m) / NUM_EDGES,
            (full.flops_m - base.flops_m) / NUM_EDGES,
        )
    return base, per_op


def _shape_network_counts(
    arch: Arch, resolution: int, classes: int, C: int, N: int
) -> tuple[int, int]:
    """Integer parameter and FLOP counts of the built network (one sample)."""
    from nasforge.nn.nb201 import NB201Network

    cost = module_cost(
        NB201Network(arch, C=C, N=N, num_classes=classes), (1, 3, resolution, resolution)
    )
    # count_params / count_flops are integer counts divided by 1e6: recover them exactly.
    return round(cost.params_m * 1e6), round(cost.flops_m * 1e6)


@lru_cache(maxsize=64)
def _shape_op_counts(
    resolution: int, classes: int, C: int, N: int
) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
    """Integer counts of the skeleton and what each op adds on one edge (see _op_table)."""
    base = _shape_network_counts(Arch(("none",) * NUM_EDGES), resolution, classes, C, N)
    per_op = {"none": (0, 0)}
    for op in OPS[1:]:
        full = _shape_network_counts(Arch((op,) * NUM_EDGES), resolution, classes, C, N)
        per_op[op] = ((full[0] - base[0]) // NUM_EDGES, (full[1] - base[1]) // NUM_EDGES)
    return base, per_op


@SHAPE_COSTS.register("nb201")
def shape_cost(
    arch: Arch | str | int, resolution: int, num_classes: int, *, C: int = 16, N: int = 5
) -> Cost:
    """Params and FLOPs (millions) of the NB201 network of ``arch`` for square inputs of
    ``resolution`` pixels and ``num_classes`` classes, equal to the float that
    :func:`~nasforge.cost.count_params` / :func:`~nasforge.cost.count_flops` return for the
    built network (the same integer count divided by 1e6; tests/test_zero_cost.py checks
    it), from six network counts per shape instead of one build per arch."""
    arch = Arch.parse(arch)
    base, per_op = _shape_op_counts(int(resolution), int(num_classes), int(C), int(N))
    params = base[0] + sum(per_op[o][0] for o in arch.ops)
    flops = base[1] + sum(per_op[o][1] for o in arch.ops)
    return Cost(params / 1e6, flops / 1e6)


@ARCH_COSTS.register("nb201")
def arch_cost(arch: Arch | str | int, dataset: str = "cifar10", C: int = 16, N: int = 5) -> Cost:
    """Params and FLOPs (millions) of an NB201 arch for a dataset's input size and classes.

    Matches the official benchmark's ``params`` / ``flops`` fields (C=16, N=5; input
    1x3x32x32 for the CIFARs, 1x3x16x16 for ImageNet16-120). After a one-off table of six
    network counts per (dataset, C, N), each call is a sum of six terms.
    """
    arch = Arch.parse(arch)
    base, per_op = _op_table(dataset, C, N)
    params = base.params_m + sum(per_op[o].params_m for o in arch.ops)
    flops = base.flops_m + sum(per_op[o].flops_m for o in arch.ops)
    # Round away float noise of the sum: true values are multiples of 1e-6 M.
    return Cost(round(params, 6), round(flops, 6))
