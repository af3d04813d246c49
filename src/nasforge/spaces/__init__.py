"""Search spaces: pure Python + numpy values describing what can be searched.

``get_space("nb201")`` builds a registered space; every space implements
:class:`SearchSpace` (and, where the arch is one option per position,
:class:`CategoricalSpace`). Adding a space: one module registering it in ``SPACES`` + one
line in ``_SPACE_MODULES``.
"""

from __future__ import annotations

import importlib

from nasforge.spaces.base import (
    ENCODINGS,
    CategoricalBase,
    CategoricalSpace,
    Choice,
    SearchSpace,
    require_categorical,
)
from nasforge.spaces.nb201 import Arch, all_archs, unique_archs
from nasforge.spaces.registry import DEFAULT_SPACE, SPACES, get_space

_SPACE_MODULES: list[str] = [
    "nasforge.spaces.nb201",
    "nasforge.spaces.width",
    "nasforge.spaces.darts",
    "nasforge.spaces.nats_sss",
    "nasforge.spaces.local_stages",
    "nasforge.spaces.pvnas",
    "nasforge.spaces.rev_transformer",
    "nasforge.spaces.hinas",
    "nasforge.spaces.trilevel",
    "nasforge.spaces.restoration_baseline",
    "nasforge.spaces.smnas",
]

for _name in _SPACE_MODULES:
    importlib.import_module(_name)

__all__ = [
    "DEFAULT_SPACE",
    "ENCODINGS",
    "SPACES",
    "Arch",
    "CategoricalBase",
    "CategoricalSpace",
    "Choice",
    "SearchSpace",
    "all_archs",
    "get_space",
    "require_categorical",
    "unique_archs",
]
