"""Scalarised REA: regularized evolution on a weighted sum of the normalised objectives.

The baseline a multi-objective searcher is compared against: REA (Real et al., AAAI 2019;
NATS-Bench settings, population 10, tournament 3; :mod:`nasforge.search.blackbox.rea`) whose
tournament maximises one number, ``sum_j w_j * (1 - z_j)`` with ``z_j`` objective ``j``
rescaled to [0, 1] (0 = best) by the smallest and largest values told so far in the run (no
knowledge of the space's ranges is needed, so it runs against any evaluator) and ``w`` the
``weights`` (default: equal). A failed evaluation scores below everything. Weighted sums can
only reach the convex part of a front: that is the point of the comparison.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.base import SearchContext, Told
from nasforge.search.blackbox.rea import RegularizedEvolution
from nasforge.search.pareto import objective_row, require_objectives
from nasforge.search.registry import BLACKBOX


@BLACKBOX.register("rea-scalar")
class ScalarisedREA(RegularizedEvolution):
    """Aging evolution on a weighted sum of the run-normalised objectives."""

    name = "rea-scalar"
    #: needs an evaluator with objectives (checked by the CLI before any work)
    multi_objective = True

    def __init__(
        self,
        *,
        seed: int = 0,
        population_size: int = 10,
        sample_size: int = 3,
        weights: list[float] | None = None,
    ) -> None:
        super().__init__(seed=seed, population_size=population_size, sample_size=sample_size)
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64) if isinstance(weights, list) else None
            if (
                w is None
                or w.ndim != 1
                or not np.isfinite(w).all()
                or (w < 0).any()
                or w.sum() <= 0
            ):
                raise SearchError(
                    f"rea-scalar weights {weights!r} must be a list of non-negative numbers, "
                    "one per objective, not all zero"
                )
        self.weights = weights

    def _start(self, context: SearchContext) -> None:
        self.maximise = require_objectives(context.objectives, self.name)
        m = len(self.maximise)
        if self.weights is not None and len(self.weights) != m:
            raise SearchError(
                f"rea-scalar weights {self.weights!r} must have one entry per objective ({m})"
            )
        w = np.ones(m) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        self._w = w / w.sum()
        self._lo = np.full(m, np.inf)
        self._hi = np.full(m, -np.inf)
        super()._start(context)

    def _member(self, told: Told) -> Any:
        row = objective_row(told.objectives, told.ok, self.maximise)
        if np.isfinite(row).all():
            self._lo = np.minimum(self._lo, row)
            self._hi = np.maximum(self._hi, row)
        return (told.arch, row)

    def score(self, row: np.ndarray) -> float:
        """The scalarised fitness of a minimisation row under the run's current bounds."""
        if not np.isfinite(row).all():
            return -np.inf
        span = np.where(self._hi > self._lo, self._hi - self._lo, 1.0)
        z = (row - self._lo) / span
        return float(self._w @ (1.0 - z))

    def _select(self, members: deque[Any], picks: list[int]) -> Hashable:
        return max((members[i] for i in picks), key=lambda m: self.score(m[1]))[0]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "weights": self.weights}
