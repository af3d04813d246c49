"""Costs: parameters, FLOPs (NAS-Bench-201 convention) and measured latency."""

from nasforge.cost.counter import DATASET_SHAPES, Cost, count_flops, count_params, module_cost
from nasforge.cost.darts import darts_cost
from nasforge.cost.latency import latency
from nasforge.cost.nb201 import arch_cost, dataset_shape
from nasforge.cost.registry import ARCH_COSTS, space_cost

__all__ = [
    "ARCH_COSTS",
    "DATASET_SHAPES",
    "Cost",
    "arch_cost",
    "count_flops",
    "count_params",
    "darts_cost",
    "dataset_shape",
    "latency",
    "module_cost",
    "space_cost",
]
