"""The network of an arch, by space: one builder per registered search space.

``spaces/`` is pure numpy and cannot build torch modules, so the mapping from a space to the
fixed network of one of its archs lives here. A builder is registered under the space's
name (``@NETWORKS.register("nb201")``) and called as
``builder(arch, *, num_classes=..., **options)``; its keyword options (NB201: ``C``, ``N``)
are what a training evaluator may set.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from nasforge.errors import ArchError
from nasforge.registry import Registry

NETWORKS: Registry[nn.Module] = Registry("network builder (by search space)")


def network_options(space: str) -> dict[str, Any]:
    """The keyword options of the builder of ``space``, with their defaults (``None`` for
    an option without one). The task's keywords (``num_classes``, and what a task's
    :meth:`~nasforge.tasks.Task.network_io` adds) are not options."""
    params = inspect.signature(NETWORKS.get(space)).parameters
    return {
        n: (None if p.default is inspect.Parameter.empty else p.default)
        for n, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in _TASK_KEYWORDS
    }


#: Keywords a task passes to every builder of its networks (not user options).
_TASK_KEYWORDS = frozenset(
    {"num_classes", "in_channels", "out_channels", "scale", "frames", "vocab_size"}
)


def build_network(
    space: str,
    arch: Any,
    *,
    num_classes: int | None = None,
    io: Mapping[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """The network of ``arch`` (a value of space ``space``) for a task's data.

    ``io`` holds what the task says about its data (:meth:`Task.network_io`; classification:
    ``{"num_classes": K}``, which ``num_classes=K`` also gives). A builder that takes none of
    a task's keywords cannot serve that task (:class:`ArchError` naming it); unknown options
    raise :class:`ArchError` listing the builder's options.
    """
    task_io = dict(io or {})
    if num_classes is not None:
        task_io["num_classes"] = num_classes
    check_network(space, task_io, options)
    return NETWORKS.create(space, arch, **task_io, **options)


def check_network(space: str, io: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """What :func:`build_network` checks before it calls the builder: the builder takes the
    task's keywords ``io`` and knows every option (:class:`ArchError` otherwise, naming
    them). An :class:`ArchError` of the builder itself is about one arch (a network of the
    space that cannot serve the task); one of this check is about the whole setting."""
    task_io = dict(io)
    params = inspect.signature(NETWORKS.get(space)).parameters
    missing = sorted(k for k in task_io if k not in params)
    if missing:
        raise ArchError(
            f"the {space} network cannot be built for this task: its builder takes no "
            f"{', '.join(map(repr, missing))} (a network of another task)"
        )
    accepted = network_options(space)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ArchError(
            f"the {space} network has no option {', '.join(map(repr, unknown))}; "
            f"expected some of {sorted(accepted)}"
        )
