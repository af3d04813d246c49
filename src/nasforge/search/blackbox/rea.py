"""Regularized (aging) evolution, Real et al. AAAI 2019, as run with NAS-Bench-201.

Settings of the official scripts (``exps/NATS-algos/regularized_ea.py`` and
``exps/algos/R_EA.py`` of D-X-Y/AutoDL-Projects, run with ``--ea_population 10
--ea_sample_size 3``): a population of 10 random archs; each cycle draws a tournament of 3
members uniformly *with replacement* (``random.choice`` three times), mutates the best of
them (``space.mutate``: for NB201, one uniformly chosen edge switched to a different op), evaluates the child, appends
it and removes the oldest member. The search ends on the time budget only (``ea_cycles`` is
unused once a time budget is given). The returned arch is the best validation accuracy in
the whole history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import numpy as np

from nasforge.search.base import Ask, SearchContext, Searcher, Told, require_int
from nasforge.search.registry import BLACKBOX


def _accuracy(member: tuple[Hashable, float]) -> float:
    return member[1]


@BLACKBOX.register("rea")
class RegularizedEvolution(Searcher):
    """Aging evolution with tournament selection and one-edge mutation."""

    name = "rea"

    def __init__(self, *, seed: int = 0, population_size: int = 10, sample_size: int = 3) -> None:
        super().__init__(seed=seed)
        self.population_size = require_int("rea", "population_size", population_size, minimum=1)
        self.sample_size = require_int("rea", "sample_size", sample_size, minimum=1)
        self.population: deque[Any] = deque()
        #: the tournament winner the last child was mutated from (``None``: random init)
        self.last_parent: Hashable | None = None

    def _start(self, context: SearchContext) -> None:
        self.population.clear()
        self.last_parent = None

    def _ask(self) -> Ask:
        if len(self.population) < self.population_size:
            return Ask(self.space.sample(self.rng))
        members = self.population
        # uniform picks with replacement; floor(u * n) is one vectorised draw, several
        # times cheaper than Generator.integers(n, size=k) in this hot loop
        picks = (self.rng.random(self.sample_size) * len(members)).astype(np.int64).tolist()
        parent = self._select(members, picks)
        self.last_parent = parent
        return Ask(self.space.mutate(parent, self.rng))

    def _select(self, members: deque[Any], picks: list[int]) -> Hashable:
        """The arch of the tournament winner among ``members[i] for i in picks``."""
        # max() keeps the first of equal values, like the official max(sample, key=accuracy)
        return max((members[i] for i in picks), key=_accuracy)[0]

    def _member(self, told: Told) -> Any:
        """What the population keeps of a told outcome (``member[0]`` is the arch)."""
        return (told.arch, told.valid_acc)

    def _tell(self, told: Told) -> None:
        self.population.append(self._member(told))
        if len(self.population) > self.population_size:
            self.population.popleft()  # age out the oldest, not the worst

    def config(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}
