"""Params and FLOPs of an arch, by space: one cost function per registered search space.

Each space counts in its own published convention (NB201: the benchmark's ``params`` /
``flops`` fields); a cost function is registered under the space's name
(``@ARCH_COSTS.register("nb201")``) and called as ``fn(arch, dataset)``.
"""

from __future__ import annotations

from typing import Any

from nasforge.cost.types import Cost
from nasforge.registry import Registry

ARCH_COSTS: Registry[Cost] = Registry("arch cost (by search space)")

#: Exact params/FLOPs of the network a space's builder makes for an input resolution and a
#: class count, without building it: ``fn(arch, resolution, num_classes, **network_options)``
#: (the zero-cost proxies ``params`` / ``flops`` read it instead of counting a network).
SHAPE_COSTS: Registry[Cost] = Registry("arch cost by input shape (by search space)")


def space_cost(space: str, arch: Any, dataset: str) -> Cost | None:
    """Params and FLOPs (millions) of ``arch`` of space ``space`` on ``dataset``, or
    ``None`` when the space registered no cost function."""
    if space not in ARCH_COSTS:
        load_torch_costs()  # a space whose cost module needs torch registers on first use
    if space not in ARCH_COSTS:
        return None
    return ARCH_COSTS.create(space, arch, dataset)


def load_torch_costs() -> None:
    """Import the cost modules that need torch at import time (the atom / local-block MAC
    rules and the ``local-stages`` cost): ``nasforge.cost`` leaves them out so that a lookup
    in a torch-free space (``nasforge arch info``) does not pay for torch."""
    from nasforge.cost import blocks  # noqa: F401
