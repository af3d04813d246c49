"""Multi-objective regularized (aging) evolution: REA with a Pareto-rank tournament.

The loop is REA's (Real et al., AAAI 2019; settings of NATS-Bench's
``exps/NATS-algos/regularized_ea.py``: population 10, tournament of 3 drawn uniformly with
replacement, one-choice mutation of the winner, the oldest member aged out), see
:mod:`nasforge.search.blackbox.rea`. Only the tournament differs: instead of the highest
validation accuracy, the winner is the member of lowest Pareto rank among the *current
population* (non-dominated sorting of its objective vectors, Deb et al. 2002), ties broken by
the larger crowding distance within its front (Deb et al.'s crowded-comparison operator), then
by draw order, as REA's ``max`` keeps the first of equals. There is no official code of a
multi-objective REA; this is the construction the two papers' rules give. A failed evaluation
ranks behind every successful one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import numpy as np

from nasforge.search.base import SearchContext, Told
from nasforge.search.blackbox.rea import RegularizedEvolution
from nasforge.search.pareto import (
    crowding_distance,
    objective_row,
    pareto_ranks,
    require_objectives,
)
from nasforge.search.registry import BLACKBOX


@BLACKBOX.register("mo-rea")
class MultiObjectiveREA(RegularizedEvolution):
    """Aging evolution whose tournament compares Pareto rank, then crowding distance."""

    name = "mo-rea"
    #: needs an evaluator with objectives (checked by the CLI before any work)
    multi_objective = True

    def _start(self, context: SearchContext) -> None:
        self.maximise = require_objectives(context.objectives, self.name)
        super()._start(context)

    def _member(self, told: Told) -> Any:
        return (told.arch, objective_row(told.objectives, told.ok, self.maximise))

    def _select(self, members: deque[Any], picks: list[int]) -> Hashable:
        F = np.stack([m[1] for m in members])
        ranks = pareto_ranks(F)
        crowd = np.zeros(len(members))
        for r in {int(ranks[i]) for i in picks}:
            front = np.flatnonzero(ranks == r)
            crowd[front] = crowding_distance(F[front])
        # min() keeps the first of equal keys (draw order), like REA's max()
        best = min(picks, key=lambda i: (int(ranks[i]), -float(crowd[i])))
        return members[best][0]
