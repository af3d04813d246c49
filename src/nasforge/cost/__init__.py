"""Costs: parameters, FLOPs (NAS-Bench-201 convention) and measured latency."""

from nasforge.cost import blocks as _blocks  # noqa: F401  (atom / local-block MAC rules)
from nasforge.cost import nats_sss as _nats_sss  # noqa: F401  (registers "nats-sss")
from nasforge.cost import pvnas as _pvnas  # noqa: F401  (registers "pvnas")
from nasforge.cost.counter import (
    DATASET_SHAPES,
    MAC_RULES,
    Cost,
    count_flops,
    count_params,
    module_cost,
    register_macs,
)
from nasforge.cost.darts import darts_cost
from nasforge.cost.latency import latency
from nasforge.cost.nb201 import arch_cost, dataset_shape
from nasforge.cost.registry import ARCH_COSTS, space_cost

__all__ = [
    "ARCH_COSTS",
    "DATASET_SHAPES",
    "MAC_RULES",
    "Cost",
    "arch_cost",
    "count_flops",
    "count_params",
    "darts_cost",
    "dataset_shape",
    "latency",
    "module_cost",
    "register_macs",
    "space_cost",
]
