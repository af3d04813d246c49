"""Best-improvement local search with random restarts.

White, Nolen, Savani, "Exploring the loss landscape in neural architecture search" (UAI
2021) show this simple method is competitive on NAS-Bench-201. From a uniformly random
arch, evaluate all its neighbours (``space.neighbors``: for NB201 the 24 one-edge changes,
in a random order), move to
the best of them if it beats the current arch, else restart from a new random arch. An arch
already evaluated in this run is not evaluated again: its first validation accuracy is
reused, so the budget is spent only on new archs.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from nasforge.search.base import Ask, SearchContext, Searcher, Told
from nasforge.search.registry import BLACKBOX

# After this many consecutive proposals that were all answered from the cache, evaluate a
# random arch anyway, so a tiny or fully explored space cannot stall the loop.
_MAX_CACHED_STEPS = 10_000


@BLACKBOX.register("local-search")
class LocalSearch(Searcher):
    """Hill climbing over ``neighbors()`` with random restarts."""

    name = "local-search"
    #: the next ask depends on the last outcome (a rung to promote to / a climbing step)
    max_pending = 1

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.cache: dict[Hashable, float] = {}
        self.current: tuple[Hashable, float] | None = None
        self.best_neighbor: tuple[Hashable, float] | None = None
        self.queue: list[Hashable] = []
        self.restarts = 0
        self.moves = 0

    def _start(self, context: SearchContext) -> None:
        self.cache.clear()
        self.current = None
        self.best_neighbor = None
        self.queue = []
        self.restarts = 0
        self.moves = 0

    def _set_current(self, arch: Hashable, value: float) -> None:
        self.current = (arch, value)
        self.best_neighbor = None
        neigh = self.space.neighbors(arch)
        order = self.rng.permutation(len(neigh))
        # popped from the end: reversed so the permutation's first is evaluated first
        self.queue = [neigh[int(i)] for i in order[::-1]]

    def _consider(self, arch: Hashable, value: float) -> None:
        if self.best_neighbor is None or value > self.best_neighbor[1]:
            self.best_neighbor = (arch, value)

    def _ask(self) -> Ask:
        size = self.space.size()
        if size is not None and len(self.cache) >= size:
            # every arch of a (small) space is known: nothing new to climb to
            return Ask(self.space.sample(self.rng))
        for _ in range(_MAX_CACHED_STEPS):
            if self.current is None:
                arch = self.space.sample(self.rng)
                if arch not in self.cache:
                    return Ask(arch)
                self._set_current(arch, self.cache[arch])
                continue
            while self.queue:
                arch = self.queue.pop()
                if arch not in self.cache:
                    return Ask(arch)
                self._consider(arch, self.cache[arch])
            # every neighbour is known: climb, or restart at a local optimum
            if self.best_neighbor is not None and self.best_neighbor[1] > self.current[1]:
                self.moves += 1
                self._set_current(*self.best_neighbor)
            else:
                self.restarts += 1
                self.current = None
        return Ask(self.space.sample(self.rng))

    def _tell(self, told: Told) -> None:
        self.cache.setdefault(told.arch, told.valid_acc)
        if self.current is None:
            self._set_current(told.arch, told.valid_acc)
        else:
            self._consider(told.arch, told.valid_acc)

    def config(self) -> dict[str, Any]:
        return {
            "neighbourhood": "one position changed (space.neighbors)",
            "restart": "uniform random",
        }
