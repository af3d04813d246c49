"""Pareto arithmetic of the multi-objective searchers: non-dominated sorting, crowding
distance, hypervolume, normalisation.

Everything here works on *minimisation* matrices ``F[n, m]`` (row = point, column =
objective, smaller is better); :func:`to_minimisation` turns objective values with their
directions into one, a non-finite row (a failed evaluation) becoming ``+inf`` everywhere, so
that it is dominated by every finite point.

* :func:`nondominated_fronts`: the fronts F_0, F_1, ... of Deb et al.'s fast non-dominated
  sort (NSGA-II, IEEE TEC 6(2) 2002, Sec. III-A), computed by ``moocore.pareto_rank``
  (Jensen's O(n log n) algorithm in 2-D, front peeling above), which yields the same
  partition: rank 0 = not dominated by any point, rank r = not dominated once the fronts
  below r are removed; equal points share a rank.
* :func:`crowding_distance`: Deb et al. 2002, Sec. III-B ("crowding-distance-assignment"):
  per objective, the points of one front sorted by that objective; the two boundary points
  get infinity, every other point adds ``(f[i+1] - f[i-1]) / (f_max - f_min)``. An objective
  on which the whole front is equal adds nothing (pymoo's ``calc_crowding_distance`` divides
  by 1 there instead of 0, which also adds 0 to interior points). Fronts of at most two points
  are all boundary points (infinite distance).
* :func:`hypervolume`: the Lebesgue measure of the region dominated by the points and
  bounded by the reference point, from ``moocore.hypervolume`` (exact; points that do not
  strictly dominate the reference point add nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "crowding_distance",
    "hypervolume",
    "nondominated_fronts",
    "nondominated_mask",
    "normalise",
    "pareto_ranks",
    "to_minimisation",
]


def load_moocore() -> Any:
    """The moocore module, or a one-line error saying how to install it."""
    try:
        import moocore
    except ImportError:  # pragma: no cover - moocore is in the test extra
        from nasforge.errors import NasforgeError

        raise NasforgeError(
            "multi-objective search needs moocore; install it with: "
            "pip install 'nasforge[multiobjective]'"
        ) from None
    return moocore


def to_minimisation(
    values: np.ndarray | Sequence[Sequence[float]], maximise: Sequence[bool]
) -> np.ndarray:
    """``values[n, m]`` as a minimisation matrix: maximised columns negated, and every row
    with a non-finite value set to ``+inf`` (dominated by every finite row)."""
    F = np.array(values, dtype=np.float64, ndmin=2)
    if F.size == 0:
        return F.reshape(0, len(maximise))
    if F.shape[1] != len(maximise):
        raise ValueError(f"values have {F.shape[1]} objectives, directions {len(maximise)}")
    sign = np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)
    F = F * sign
    F[~np.isfinite(F).all(axis=1)] = np.inf
    return F


def pareto_ranks(F: np.ndarray) -> np.ndarray:
    """Front index of each row of the minimisation matrix ``F`` (0 = non-dominated)."""
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(load_moocore().pareto_rank(F), dtype=np.int64)


def nondominated_fronts(F: np.ndarray) -> list[np.ndarray]:
    """The fronts of ``F`` (indices of its rows, ascending), best first."""
    ranks = pareto_ranks(F)
    return [np.flatnonzero(ranks == r) for r in range(int(ranks.max()) + 1)] if len(ranks) else []


def nondominated_mask(F: np.ndarray) -> np.ndarray:
    """bool per row: not dominated by any other row (the first front)."""
    return pareto_ranks(F) == 0 if len(F) else np.zeros(0, dtype=bool)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """Crowding distance of each row of one front ``F[n, m]`` (Deb et al. 2002, Sec. III-B;
    see the module docstring). Ties in an objective keep their row order (stable sort)."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    dist = np.zeros(n, dtype=np.float64)
    if n <= 2:
        dist[:] = np.inf
        return dist
    for j in range(F.shape[1]):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        dist[order[0]] = dist[order[-1]] = np.inf
        span = col[-1] - col[0]
        if not np.isfinite(span) or span <= 0:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def hypervolume(F: np.ndarray, ref: Sequence[float]) -> float:
    """Hypervolume of the minimisation points ``F`` w.r.t. the reference point ``ref``
    (0.0 for no point that strictly dominates it)."""
    pts = np.asarray(F, dtype=np.float64).reshape(-1, len(ref))
    pts = pts[np.isfinite(pts).all(axis=1)]
    ref_arr = np.asarray(ref, dtype=np.float64)
    pts = pts[(pts < ref_arr).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(load_moocore().hypervolume(pts, ref=ref_arr))


def normalise(F: np.ndarray, ideal: Sequence[float], nadir: Sequence[float]) -> np.ndarray:
    """Minimisation points rescaled so that ``ideal`` maps to 0 and ``nadir`` to 1 in every
    objective (an objective with ``ideal == nadir`` is only shifted)."""
    lo = np.asarray(ideal, dtype=np.float64)
    span = np.asarray(nadir, dtype=np.float64) - lo
    span = np.where(span > 0, span, 1.0)
    return (np.asarray(F, dtype=np.float64) - lo) / span


def require_objectives(objectives: Sequence[Any], who: str) -> tuple[bool, ...]:
    """The directions (maximise flags) of a run's objectives, or a :class:`SearchError`
    when the evaluator carries none: a multi-objective searcher needs them."""
    from nasforge.errors import SearchError

    if not objectives:
        raise SearchError(
            f"{who} is a multi-objective searcher: give the evaluator objectives "
            "(nasforge search --objectives valid_acc,params_m; "
            "nasforge.evaluate.objectives.ObjectiveEvaluator)"
        )
    return tuple(bool(o.maximise) for o in objectives)


def objective_row(values: Sequence[float], ok: bool, maximise: Sequence[bool]) -> np.ndarray:
    """One told outcome as a minimisation row; a failed evaluation is ``+inf`` everywhere
    (whatever costs it had: it produced no usable network)."""
    if not ok or len(values) != len(maximise):
        return np.full(len(maximise), np.inf)
    return to_minimisation([values], maximise)[0]
