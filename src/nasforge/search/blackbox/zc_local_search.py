"""Local search warm-started from zero-cost ranks: ``zc-local-search``.

:class:`~nasforge.search.blackbox.local_search.LocalSearch` (best-improvement hill climbing,
White et al., UAI 2021) whose start and every restart is the best proxy-ranked arch of a
random pool not evaluated yet, instead of a uniformly random arch (the zero-cost warmup of
Abdelfattah et al., ICLR 2021; see :mod:`nasforge.search.blackbox.zc_warm` for how proxies
are asked and charged). Without a proxy-answering evaluator it is plain local search.
"""

from __future__ import annotations

from typing import Any

from nasforge.search.base import Ask, Told
from nasforge.search.blackbox.local_search import LocalSearch
from nasforge.search.blackbox.zc_warm import ZeroCostPool
from nasforge.search.registry import BLACKBOX

__all__ = ["ZeroCostLocalSearch"]


@BLACKBOX.register("zc-local-search")
class ZeroCostLocalSearch(ZeroCostPool, LocalSearch):
    """Hill climbing whose (re)starts are the proxy's best unevaluated pool archs."""

    name = "zc-local-search"

    def __init__(self, *, seed: int = 0, zc_pool: int = 1000) -> None:
        super().__init__(seed=seed)
        self._init_pool(zc_pool)

    def _ask(self) -> Ask:
        ask = self._pool_ask()
        if ask is not None:
            return ask
        if self.warm_start and self.current is None:
            arch = self.next_ranked(self.cache)
            if arch is not None:
                return Ask(arch)  # told back, it becomes the climb's current arch
        return super()._ask()

    def _tell(self, told: Told) -> None:
        if not self._pool_tell(told):
            super()._tell(told)

    def config(self) -> dict[str, Any]:
        restart = "best proxy-ranked pool arch" if self.warm_start else "uniform random"
        return {**super().config(), "restart": restart, **self._pool_config()}
