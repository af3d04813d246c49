"""The search-algorithm registries: one per kind of algorithm, plus the one-shot spaces.

* :data:`BLACKBOX` -- ask/tell searchers driven by :func:`nasforge.search.base.run_search`
  against an Evaluator (``nasforge search`` / ``compare``);
* :data:`ONESHOT` -- weight-sharing methods that own a supernet
  (:mod:`nasforge.search.oneshot`, ``nasforge search``);
* :data:`WIDTH` -- width searches over a slimmable supernet (``nasforge width``);
* :data:`ONESHOT_SPACES` -- the per-space supernet adapters the one-shot methods search
  through (:class:`nasforge.search.oneshot.spaces.SupernetAdapter`), by space name;
* :data:`ONESHOT_CONFIGS` -- the published config class of a one-shot method in a space,
  under ``"<method>/<space>"`` (filled by :mod:`nasforge.search.oneshot.settings`).

An algorithm registers itself in its own file with ``@BLACKBOX.register("name")`` (or
``ONESHOT`` / ``WIDTH``); its module is listed once in
``nasforge.search._ALGORITHM_MODULES`` so that importing ``nasforge.search`` registers
everything. What kind an algorithm is, is which registry holds it (:func:`algorithm_kind`).
"""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry

BLACKBOX: Registry[Any] = Registry("black-box search algorithm")
ONESHOT: Registry[Any] = Registry("one-shot search method")
WIDTH: Registry[Any] = Registry("width search method")
ONESHOT_SPACES: Registry[Any] = Registry("one-shot search space (supernet adapter)")
ONESHOT_CONFIGS: Registry[Any] = Registry("published one-shot config (method/space)")

#: The algorithm registries by kind (the order in which a name is looked up).
KINDS: dict[str, Registry[Any]] = {"blackbox": BLACKBOX, "oneshot": ONESHOT, "width": WIDTH}


def algorithm_kind(name: str) -> str | None:
    """The kind (``blackbox``, ``oneshot`` or ``width``) of the registry that holds
    ``name``, or None when no algorithm registry does."""
    return next((kind for kind, reg in KINDS.items() if name in reg), None)


def algorithm_names(*kinds: str) -> list[str]:
    """The registered names of the given kinds (all kinds when none is given), sorted."""
    return sorted(n for kind in kinds or tuple(KINDS) for n in KINDS[kind].names())
