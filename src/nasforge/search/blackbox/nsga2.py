"""NSGA-II (Deb, Pratap, Agarwal, Meyarivan, IEEE TEC 6(2) 2002) on the ask/tell protocol.

As in the paper (Sec. III-C, "main loop") and pymoo's ``NSGA2``, the reference
implementation whose code we read against ours (anyoptimization/pymoo,
``pymoo/algorithms/moo/nsga2.py`` at 2d75cef: ``binary_tournament`` l. 22, ``NSGA2.__init__``
with ``SBX(prob=0.9)``; ``pymoo/operators/survival/rank_and_crowding/classes.py``
``RankAndCrowding._do``); it is not installed here, so runs were not compared number for
number:

* generation 0 is ``population_size`` archs drawn uniformly from the space;
* each generation breeds ``population_size`` children. A parent is the winner of a binary
  tournament under the crowded-comparison operator (lower non-dominated rank wins, then the
  larger crowding distance, then a coin flip; Sec. III-B). Two parents give one child by
  uniform crossover of their choices with probability ``crossover_prob`` (0.9, the paper's
  Sec. V setting), else a copy of the first; the child then gets the space's mutation,
  which changes one choice (REA's mutation; the paper's per-variable rate 1/n changes one
  variable on average);
* a child equal to a member of the population or to an earlier child of the generation is
  bred again (up to ``max_tries`` times), as pymoo's ``eliminate_duplicates=True`` does, so
  the budget is not spent twice on one arch within a generation;
* survival: parents and children together are sorted into non-dominated fronts, which fill
  the next population in order; the front that does not fit whole is cut by descending
  crowding distance (ties in random order, pymoo's ``randomized_argsort``). The rank and
  crowding distance each survivor got here are what the next tournaments compare.

Where we differ, and why: pymoo's default tournament (``comp_by_dom_and_crowding``) compares
the two competitors by dominance rather than by rank; we use the paper's rank comparison. A
mating gives one child (pymoo's SBX gives two per pair of parents), so each child has its own
two tournaments.
Continuous crossover / mutation operators (SBX, polynomial mutation) do not apply to
categorical archs, so crossover is uniform over choices (spaces with no choices, e.g. none
today, breed by mutation alone). ``population_size`` defaults to 20, not the paper's 100
(set for its test functions' 25,000 evaluations): NAS budgets buy 100-200 evaluations, and a
population of 100 would leave less than one generation. With a parallel loop, asks beyond a
generation's size are bred from the current population and their outcomes join the next
generation's children (steady-state at the boundary); sequentially it is the generational
algorithm.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.search.base import Ask, SearchContext, Searcher, Told, require_float, require_int
from nasforge.search.pareto import (
    crowding_distance,
    nondominated_fronts,
    objective_row,
    require_objectives,
)
from nasforge.search.registry import BLACKBOX
from nasforge.spaces.base import CategoricalSpace


@BLACKBOX.register("nsga2")
class NSGA2(Searcher):
    """Generational NSGA-II: crowded binary tournaments, uniform crossover + mutation,
    rank-and-crowding survival."""

    name = "nsga2"
    #: needs an evaluator with objectives (checked by the CLI before any work)
    multi_objective = True

    def __init__(
        self,
        *,
        seed: int = 0,
        population_size: int = 20,
        crossover_prob: float = 0.9,
        max_tries: int = 100,
    ) -> None:
        super().__init__(seed=seed)
        self.population_size = require_int("nsga2", "population_size", population_size, minimum=2)
        self.crossover_prob = require_float(
            "nsga2", "crossover_prob", crossover_prob, low=0.0, high=1.0
        )
        self.max_tries = require_int("nsga2", "max_tries", max_tries, minimum=1)
        self._reset_state()

    def _reset_state(self) -> None:
        #: survivors: archs, minimisation rows, rank and crowding distance of each
        self.population: list[Hashable] = []
        self.F = np.zeros((0, 0))
        self.rank = np.zeros(0, dtype=np.int64)
        self.crowding = np.zeros(0)
        #: the children told in the current generation (archs and rows)
        self.children: list[Hashable] = []
        self.children_F: list[np.ndarray] = []
        self._asked: set[Hashable] = set()  # archs bred (or drawn) this generation
        self.generation = 0
        self._initialised = False

    def _start(self, context: SearchContext) -> None:
        self.maximise = require_objectives(context.objectives, self.name)
        self._reset_state()
        self.F = np.zeros((0, len(self.maximise)))

    # -- asking -----------------------------------------------------------------------------
    def _ask(self) -> Ask:
        if not self._initialised:  # generation 0 (and, in parallel, asks made before it ends)
            return Ask(self._fresh(lambda: self.space.sample(self.rng)))
        return Ask(self._fresh(self._breed))

    def _fresh(self, make: Any) -> Hashable:
        """An arch from ``make()`` that is neither in the population nor asked before in
        this generation, if one turns up in ``max_tries`` draws (else the last one)."""
        taken = self._asked | set(self.population)
        arch = make()
        for _ in range(self.max_tries - 1):
            if arch not in taken:
                break
            arch = make()
        self._asked.add(arch)
        return arch

    def _tournament(self) -> int:
        """Binary tournament under the crowded-comparison operator (index of the winner)."""
        a, b = (int(i) for i in self.rng.integers(len(self.population), size=2))
        if self.rank[a] != self.rank[b]:
            return a if self.rank[a] < self.rank[b] else b
        if self.crowding[a] != self.crowding[b]:
            return a if self.crowding[a] > self.crowding[b] else b
        return a if self.rng.random() < 0.5 else b

    def _breed(self) -> Hashable:
        p1 = self.population[self._tournament()]
        p2 = self.population[self._tournament()]
        child = p1
        space = self.space
        if isinstance(space, CategoricalSpace) and self.rng.random() < self.crossover_prob:
            c1, c2 = space.to_choices(p1), space.to_choices(p2)
            take = self.rng.random(len(c1)) < 0.5
            picks = [int(y) if t else int(x) for x, y, t in zip(c1, c2, take, strict=True)]
            try:
                child = space.from_choices(picks)
            except ArchError:
                child = p1  # the crossed choices form no valid arch: mutate the first parent
        return space.mutate(child, self.rng)

    # -- telling ----------------------------------------------------------------------------
    def _tell(self, told: Told) -> None:
        row = objective_row(told.objectives, told.ok, self.maximise)
        if not self._initialised:
            self.population.append(told.arch)
            self.F = np.vstack([self.F, row])
            if len(self.population) >= self.population_size:
                self._survive(self.population, self.F)  # ranks and crowding of generation 0
                self._initialised = True
                self._asked.clear()
            return
        self.children.append(told.arch)
        self.children_F.append(row)
        if len(self.children) >= self.population_size:
            self._survive(self.population + self.children, np.vstack([self.F, *self.children_F]))
            self.children, self.children_F = [], []
            self._asked.clear()
            self.generation += 1

    def _survive(self, archs: list[Hashable], F: np.ndarray) -> None:
        """Rank-and-crowding survival of ``population_size`` of ``archs`` (rows of ``F``)."""
        keep: list[int] = []
        ranks: list[int] = []
        crowd: list[float] = []
        for r, front in enumerate(nondominated_fronts(F)):
            d = crowding_distance(F[front])
            room = self.population_size - len(keep)
            if len(front) > room:
                # descending crowding distance, ties in random order
                order = np.lexsort((self.rng.random(len(front)), -d))[:room]
                front, d = front[order], d[order]
            keep += front.tolist()
            ranks += [r] * len(front)
            crowd += d.tolist()
            if len(keep) >= self.population_size:
                break
        self.population = [archs[i] for i in keep]
        self.F = F[keep]
        self.rank = np.asarray(ranks, dtype=np.int64)
        self.crowding = np.asarray(crowd, dtype=np.float64)

    def config(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "crossover_prob": self.crossover_prob,
            "max_tries": self.max_tries,
        }
