"""One-shot (weight-sharing) search on the NAS-Bench-201 space and, through the same loop,
the DARTS cell space (:mod:`nasforge.search.oneshot.darts_space`).

Methods (registered in :data:`nasforge.search.registry.ALGORITHMS`, ``kind = "oneshot"``):
``darts-v1``, ``darts-v2``, ``gdas``, ``setn``, ``enas``, ``rsps``, ``pc-darts``,
``single-darts``. Build one with ``ALGORITHMS.create(name, **overrides)`` and run it with
:func:`run_search`.
"""

from nasforge.search.oneshot.base import (
    AlphaSearch,
    OneShotConfig,
    OneShotSearch,
    SearchContext,
    cosine_lr,
    entropy,
    skip_share,
)
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

__all__ = [
    "CHECKPOINT_NAME",
    "PLOT_NAME",
    "RESULT_NAME",
    "AlphaSearch",
    "OneShotConfig",
    "OneShotSearch",
    "SearchContext",
    "SearchResult",
    "cosine_lr",
    "entropy",
    "resolve_table",
    "run_search",
    "search_splits",
    "skip_share",
    "table_lookup",
]
