"""Costs: parameters, FLOPs (NAS-Bench-201 convention) and measured latency."""

from nasforge.cost import nats_sss as _nats_sss  # noqa: F401  (registers "nats-sss")
from nasforge.cost import pvnas as _pvnas  # noqa: F401  (registers "pvnas")
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
