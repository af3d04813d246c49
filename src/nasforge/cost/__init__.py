"""Costs: parameters, FLOPs (NAS-Bench-201 convention) and measured latency.

The cost functions of the spaces register on import without importing torch (a lookup
such as ``nasforge arch info`` answers in well under a second); the network counter loads
on first use of its names (``count_flops``, ``count_params``, ``module_cost``, with the
MAC rules of ``nasforge.cost.blocks``, which also registers ``local-stages``' cost);
``nasforge.cost.latency`` imports torch inside the timer. (A name bound lazily must not be
a submodule's name: importing the submodule would rebind it to the module.)
"""

from importlib import import_module
from typing import Any

from nasforge.cost import nats_sss as _nats_sss  # noqa: F401  (registers "nats-sss")
from nasforge.cost import pvnas as _pvnas  # noqa: F401  (registers "pvnas")
from nasforge.cost.darts import darts_cost
from nasforge.cost.latency import latency
from nasforge.cost.nb201 import arch_cost, dataset_shape
from nasforge.cost.registry import ARCH_COSTS, load_torch_costs, space_cost
from nasforge.cost.types import DATASET_SHAPES, Cost

#: Names whose modules import torch: loaded when first read (PEP 562).
_LAZY = {
    "count_flops": "nasforge.cost.counter",
    "count_params": "nasforge.cost.counter",
    "module_cost": "nasforge.cost.counter",
    "MAC_RULES": "nasforge.cost.counter",
    "register_macs": "nasforge.cost.counter",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        load_torch_costs()  # the MAC rules of the atom / local-block modules come with it
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasforge.cost' has no attribute {name!r}")


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
