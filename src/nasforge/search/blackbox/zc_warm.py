"""Zero-cost warm start for any searcher: score a random pool with a proxy, rank it.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021, Sec. 5, "zero-cost
warmup"): score a pool of random archs with a proxy and start the search from the best
ones. The proxy is asked through the ordinary ask/tell protocol, as fidelity 0 (zero epochs
trained: the network at initialisation), so every score is charged to the run's clock like
any evaluation. That needs an evaluator answering fidelity 0 with a proxy
(:class:`nasforge.evaluate.zero_cost.WithZeroCost`); with any other evaluator there is no
proxy to ask, the pool stays empty and the searcher behaves exactly as its base class
(``config()["warm_start"]`` records which). The pool size is our choice: the paper's warmup
scores thousands of archs; 1,000 cost, e.g., seconds of ``params`` on the clock.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from nasforge.search.base import Ask, SearchContext, Told, require_int

__all__ = ["ZeroCostPool"]


class ZeroCostPool:
    """Mixin placed before a :class:`Searcher` subclass: asks ``zc_pool`` distinct random
    archs at fidelity 0 first, then lets the base searcher run, offering it
    :meth:`next_ranked` (the best-scored pool arch not yet taken)."""

    name: str

    def _init_pool(self, zc_pool: int) -> None:
        self.zc_pool = require_int(self.name, "zc_pool", zc_pool, minimum=1)
        self.warm_start = False
        self._reset_pool()

    def _reset_pool(self) -> None:
        self.proxy_scores: dict[Hashable, float] = {}
        self.proxy_pending: set[Hashable] = set()
        self._ranked: list[Hashable] | None = None

    def _start(self, context: SearchContext) -> None:
        super()._start(context)  # type: ignore[misc]
        self._reset_pool()
        # fidelity 0 is a proxy only next to a real default fidelity (a final-metrics table
        # also calls its one fidelity 0)
        self.warm_start = 0 in context.fidelities and context.default_fidelity not in (0, None)

    def _pool_ask(self) -> Ask | None:
        """The next proxy query, or None once the pool is asked (or there is no proxy)."""
        if not self.warm_start or len(self.proxy_scores) + len(self.proxy_pending) >= self.zc_pool:
            return None
        known = self.proxy_scores.keys() | self.proxy_pending
        space, rng = self.space, self.rng  # type: ignore[attr-defined]
        arch = space.sample(rng)
        for _ in range(1000):
            if arch not in known:
                break
            arch = space.sample(rng)
        self.proxy_pending.add(arch)
        return Ask(arch, 0)

    def _pool_tell(self, told: Told) -> bool:
        """Take a proxy answer (True), or leave a real one to the base searcher (False)."""
        if not (self.warm_start and told.fidelity == 0):
            return False
        self.proxy_pending.discard(told.arch)
        if told.ok:
            self.proxy_scores[told.arch] = told.valid_acc
        return True

    def next_ranked(self, taken: Any) -> Hashable | None:
        """The pool arch with the highest proxy score not in ``taken`` (ties: pool order),
        removed from the ranking; None when the pool is used up."""
        if self._ranked is None:
            self._ranked = sorted(self.proxy_scores, key=lambda a: -self.proxy_scores[a])
        while self._ranked:
            arch = self._ranked.pop(0)
            if arch not in taken:
                return arch
        return None

    def _pool_config(self) -> dict[str, Any]:
        return {"zc_pool": self.zc_pool, "warm_start": self.warm_start}
