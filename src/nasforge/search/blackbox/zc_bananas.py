"""BANANAS warm-started from zero-cost ranks: ``zc-bananas``.

The initial design of :class:`~nasforge.search.blackbox.bananas.Bananas` is the
``num_init`` archs with the highest proxy score among ``zc_pool`` random distinct archs
(the zero-cost warmup of Abdelfattah et al., ICLR 2021; see
:mod:`nasforge.search.blackbox.zc_warm` for how proxies are asked and charged); the rest is
BANANAS unchanged. Without a proxy-answering evaluator it is plain BANANAS.
"""

from __future__ import annotations

from typing import Any

from nasforge.search.base import Ask, Told
from nasforge.search.blackbox.bananas import Bananas
from nasforge.search.blackbox.zc_warm import ZeroCostPool
from nasforge.search.registry import BLACKBOX

__all__ = ["ZeroCostBananas"]


@BLACKBOX.register("zc-bananas")
class ZeroCostBananas(ZeroCostPool, Bananas):
    """BANANAS whose initial design is the top of a proxy-ranked random pool."""

    name = "zc-bananas"

    def __init__(self, *, seed: int = 0, zc_pool: int = 1000, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._init_pool(zc_pool)

    def _ask(self) -> Ask:
        return self._pool_ask() or super()._ask()

    def _tell(self, told: Told) -> None:
        if not self._pool_tell(told):
            super()._tell(told)

    def _initial_arch(self) -> Any | None:
        if not self.warm_start:
            return super()._initial_arch()
        if len(self.data) + len(self.pending) >= self.num_init:
            return None
        arch = self.next_ranked(self.data.keys() | self.pending)
        return arch if arch is not None else super()._initial_arch()

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self._pool_config()}
