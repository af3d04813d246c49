"""One-shot (weight-sharing) search in any space with a supernet adapter.

Methods (registered in :data:`nasforge.search.registry.ONESHOT`): ``darts-v1``,
``darts-v2``, ``gdas``, ``setn``, ``enas``, ``rsps``, ``pc-darts``, ``single-darts``,
``ddpnas``, ``fp-nas``, ``bn-nas``, ``da-nas``. Spaces (adapters registered in
:data:`nasforge.search.registry.ONESHOT_SPACES`, :mod:`nasforge.search.oneshot.spaces`):
``nb201`` and ``darts``. Build a method with ``ONESHOT.create(name, space="nb201",
**overrides)`` (its published settings in that space, :mod:`.settings`) and run it with
:func:`run_search`.

Adding a space: one adapter module in ``spaces/`` registered with
``@ONESHOT_SPACES.register("name")`` plus its line in :data:`_SPACE_MODULES`; adding a
method: one module registered with ``@ONESHOT.register("name")`` plus its line in
``nasforge.search._ALGORITHM_MODULES`` (and its published settings in :mod:`.settings`).
"""

import importlib

from nasforge.search.oneshot.base import (
    AlphaSearch,
    OneShotSearch,
    SearchContext,
    entropy,
)
from nasforge.search.oneshot.config import OneShotConfig, cosine_lr
from nasforge.search.oneshot.loop import (
    CHECKPOINT_NAME,
    PLOT_NAME,
    RESULT_NAME,
    SearchResult,
    resolve_table,
    run_search,
    search_splits,
    table_lookup,
)
from nasforge.search.oneshot.spaces import SupernetAdapter, get_adapter

#: The supernet adapter modules (each registers its space in ``ONESHOT_SPACES``).
_SPACE_MODULES: list[str] = [
    "nasforge.search.oneshot.spaces.nb201",
    "nasforge.search.oneshot.spaces.darts",
]
for _name in _SPACE_MODULES:
    importlib.import_module(_name)
# The (method, space) settings table registers the published config classes.
importlib.import_module("nasforge.search.oneshot.settings")

__all__ = [
    "CHECKPOINT_NAME",
    "PLOT_NAME",
    "RESULT_NAME",
    "AlphaSearch",
    "OneShotConfig",
    "OneShotSearch",
    "SearchContext",
    "SearchResult",
    "SupernetAdapter",
    "cosine_lr",
    "entropy",
    "get_adapter",
    "resolve_table",
    "run_search",
    "search_splits",
    "table_lookup",
]
