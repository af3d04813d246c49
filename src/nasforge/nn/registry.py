"""The network of an arch, by space: one builder per registered search space.

``spaces/`` is pure numpy and cannot build torch modules, so the mapping from a space to the
fixed network of one of its archs lives here. A builder is registered under the space's
name (``@NETWORKS.register("nb201")``) and called as
``builder(arch, *, num_classes=..., **options)``; its keyword options (NB201: ``C``, ``N``)
are what a training evaluator may set.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from nasforge.errors import ArchError
from nasforge.registry import Registry

NETWORKS: Registry[nn.Module] = Registry("network builder (by search space)")


def network_options(space: str) -> dict[str, Any]:
    """The keyword options of the builder of ``space``, with their defaults (``None`` for
    an option without one)."""
    params = inspect.signature(NETWORKS.get(space)).parameters
    return {
        n: (None if p.default is inspect.Parameter.empty else p.default)
        for n, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "num_classes"
    }


def build_network(space: str, arch: Any, *, num_classes: int, **options: Any) -> nn.Module:
    """The network of ``arch`` (a value of space ``space``) for ``num_classes`` classes.

    Unknown options raise :class:`ArchError` listing the builder's options.
    """
    accepted = network_options(space)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ArchError(
            f"the {space} network has no option {', '.join(map(repr, unknown))}; "
            f"expected some of {sorted(accepted)}"
        )
    return NETWORKS.create(space, arch, num_classes=num_classes, **options)
