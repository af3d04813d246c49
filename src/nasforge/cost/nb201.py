"""Costs of NB201 architectures in the benchmark's own convention."""

from __future__ import annotations

from functools import lru_cache

from nasforge.cost.registry import ARCH_COSTS, SHAPE_COSTS
from nasforge.cost.types import DATASET_SHAPES, Cost
from nasforge.errors import NasforgeError
from nasforge.spaces.nb201 import NUM_EDGES, OPS, Arch, stage_layout


def dataset_shape(dataset: str) -> tuple[int, int]:
    """(input resolution, number of classes) of an NB201 dataset name."""
    try:
        return DATASET_SHAPES[dataset]
    except KeyError:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for NB201 costs; expected one of {sorted(DATASET_SHAPES)}"
        ) from None


def network_cost(arch: Arch, dataset: str, C: int = 16, N: int = 5) -> Cost:
    """Cost counted on the built network (the slow, direct way; imports torch)."""
    from nasforge.cost.counter import module_cost
    from nasforge.nn.nb201 import NB201Network  # keep torch off the import path of spaces

    res, classes = dataset_shape(dataset)
    net = NB201Network(arch, C=C, N=N, num_classes=classes)
    return module_cost(net, (1, 3, res, res))


def _conv(c_in: int, c_out: int, k: int, r_out: int, bn: bool = True) -> tuple[int, int]:
    """(params, multiply-adds) of a bias-free k x k convolution (+ its BN's affine pair)."""
    return k * k * c_in * c_out + (2 * c_out if bn else 0), k * k * c_in * c_out * r_out * r_out


#: (params, multiply-adds) of one cell edge with ``c`` channels in and out at ``r`` x ``r``:
#: ReLU-conv-BN for the convolutions; pooling (no 1x1 preprocess when C is unchanged),
#: identity and zero are free.
_EDGE_COUNTS = {
    "nor_conv_3x3": lambda c, r: _conv(c, c, 3, r),
    "nor_conv_1x1": lambda c, r: _conv(c, c, 1, r),
    "avg_pool_3x3": lambda c, r: (0, 0),
    "skip_connect": lambda c, r: (0, 0),
    "none": lambda c, r: (0, 0),
}


def counted_cost(op: str, dataset: str, C: int = 16, N: int = 5) -> Cost:
    """The cost of the NB201 network whose six edges all hold ``op``, counted without
    building it: the layers of :class:`nasforge.nn.nb201.NB201Network` (3x3 stem conv + BN;
    N cells per stage at C, 2C, 4C; stride-2 residual blocks of two 3x3 ReLU-conv-BN and an
    avg-pool + 1x1 conv shortcut; final BN; linear classifier) in the counter's convention
    (:mod:`nasforge.cost.counter`: conv and linear multiply-adds, BN affine parameters).
    Equal to :func:`network_cost` on that network, integer for integer
    (``tests/test_rough_edges.py`` checks every op, dataset and a few C, N), so a lookup
    answers without importing torch."""
    res, classes = dataset_shape(dataset)
    edge = _EDGE_COUNTS[op]
    params, flops = _conv(3, C, 3, res)  # stem (padding 1, stride 1)
    r, c_prev = res, C
    for c, reduction in stage_layout(C, N):
        if reduction:
            r_out = (r + 2 - 3) // 2 + 1  # 3x3, stride 2, padding 1
            for p, f in (
                _conv(c_prev, c, 3, r_out),  # conv_a
                _conv(c, c, 3, r_out),  # conv_b
                _conv(c_prev, c, 1, r // 2, bn=False),  # shortcut: avg-pool 2, 1x1 conv
            ):
                params, flops = params + p, flops + f
            r = r_out
        else:
            p, f = edge(c, r)
            params, flops = params + NUM_EDGES * p, flops + NUM_EDGES * f
        c_prev = c
    params += 2 * c_prev  # lastact BN
    params, flops = params + c_prev * classes + classes, flops + c_prev * classes + classes
    return Cost(params / 1e6, flops / 1e6)


@lru_cache(maxsize=64)
def _op_table(dataset: str, C: int, N: int) -> tuple[Cost, dict[str, Cost]]:
    """Skeleton cost (all edges ``none``) and the cost each op adds on one edge position.

    Every normal-cell edge sees the same shapes, so an arch's cost is the skeleton plus one
    op term per edge: five counts per dataset give every arch's cost exactly.
    """
    base = counted_cost("none", dataset, C, N)
    per_op = {"none": Cost(0.0, 0.0)}
    for op in OPS[1:]:
        full = counted_cost(op, dataset, C, N)
        per_op[op] = Cost(
            (full.params_m - base.params_m) / NUM_EDGES,
            (full.flops_m - base.flops_m) / NUM_EDGES,
        )
    return base, per_op


def _shape_network_counts(
    arch: Arch, resolution: int, classes: int, C: int, N: int
) -> tuple[int, int]:
    """Integer parameter and FLOP counts of the built network (one sample)."""
    from nasforge.cost.counter import module_cost
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
