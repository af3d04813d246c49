"""The one registry of search spaces, and its factory :func:`get_space`.

A space registers itself in its own module with ``@SPACES.register("name")``; the module is
listed once in ``nasforge.spaces._SPACE_MODULES`` so that importing ``nasforge.spaces``
registers every space.
"""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace

SPACES: Registry[SearchSpace[Any]] = Registry("search space")

#: The space every command and evaluator uses when none is named.
DEFAULT_SPACE = "nb201"

# Spaces are stateless: one shared instance per name built without settings.
_DEFAULT_INSTANCES: dict[str, SearchSpace[Any]] = {}


def get_space(name: str | SearchSpace[Any] = DEFAULT_SPACE, **kwargs: Any) -> SearchSpace[Any]:
    """The registered space ``name`` (settings in ``kwargs``, e.g. a width chain's
    ``bins``); a space object is returned as it is. Unknown names raise
    :class:`nasforge.errors.RegistryError` listing the registered ones."""
    if not isinstance(name, str):
        if not isinstance(name, SearchSpace):
            raise TypeError(f"expected a space name or a SearchSpace, got {name!r}")
        return name
    if kwargs:
        return SPACES.create(name, **kwargs)
    factory = SPACES.get(name)
    space = _DEFAULT_INSTANCES.get(name)
    # a name registered again with another factory (a test's toy space) is rebuilt
    if space is None or type(space) is not factory:
        space = _DEFAULT_INSTANCES[name] = factory()
    return space
