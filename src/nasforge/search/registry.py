"""The one registry of search algorithms (black-box, one-shot and width alike).

An algorithm registers itself in its own file with ``@ALGORITHMS.register("name")``; its
module is listed once in ``nasforge.search._ALGORITHM_MODULES`` so that importing
``nasforge.search`` registers everything.
"""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry

ALGORITHMS: Registry[Any] = Registry("search algorithm")
