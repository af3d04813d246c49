"""Fronts and hypervolume of multi-objective runs: fronts, boxes, hypervolumes, summaries.

Works on any :class:`~nasforge.search.base.RunResult` of an evaluator with objectives
(``history["objectives"]``: the values of every evaluation), whatever the algorithm: a
random or single-objective search is measured the same way as a Pareto searcher.

* The **front** of a run is the non-dominated subset of everything it evaluated (successful
  evaluations only), in the search's own objectives (e.g. the 12-epoch validation accuracy a
  table answers, as the searcher saw it).
* Its **hypervolume** is computed on normalised objectives: each objective is rescaled to
  [0, 1], 0 the best value and 1 the worst of its range, and the reference point is
  ``ref`` (default 1.1) in every coordinate, so the extremes of the range still add volume
  and the best possible value is ``ref ** m`` (1.21 for two objectives). The range of an
  objective is the whole space's where the evaluator knows it (a table: every arch and seed,
  ``TabularEvaluator.objective_range``), else the smallest and largest values seen in all
  the runs being compared (then hypervolumes are comparable within one comparison only).
  The box is recorded in every output.
* The **reported** hypervolume re-scores a run's front the way NAS-Bench-201 reports a
  returned arch: its ``valid_acc`` (the search signal) replaced by the accuracy the
  evaluator reports for it (a table: the seed-averaged test accuracy after the report
  recipe, e.g. 200 epochs), which the search never saw; the accuracy range is then the
  reported test accuracies of the whole space (``objective_range("test_acc")``) where known.
* The hypervolume **over the budget** is the run's hypervolume after each evaluation, on its
  clock; curves give the mean over runs and the 95% normal confidence interval of the mean
  (1.96 standard errors), as :func:`nasforge.report.search.plot_curves` does.

The plots and files (``pareto.json``, ``fronts.png``, ...) are written by
:mod:`nasforge.report.fronts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.base import RunResult
from nasforge.search.pareto import hypervolume, nondominated_mask, normalise, to_minimisation

__all__ = [
    "HypervolumeBox",
    "hv_on_grid",
    "hv_trajectory",
    "make_box",
    "report_box",
    "reported_front",
    "reported_fronts",
    "run_front",
    "run_values",
    "summarize_mo",
]

DEFAULT_REF = 1.1


@dataclass(frozen=True)
class HypervolumeBox:
    """Names, directions and ranges of the objectives, and the normalised reference point."""

    names: tuple[str, ...]
    maximise: tuple[bool, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    range_source: tuple[str, ...]
    ref: float = DEFAULT_REF

    def normalised(self, values: np.ndarray) -> np.ndarray:
        """Objective values ``[n, m]`` as normalised minimisation points (0 best, 1 worst
        of the range; failed rows +inf)."""
        F = to_minimisation(values, self.maximise)
        sign = np.where(np.asarray(self.maximise), -1.0, 1.0)
        ends = np.stack([np.asarray(self.low) * sign, np.asarray(self.high) * sign])
        return normalise(F, ends.min(axis=0), ends.max(axis=0))

    def hypervolume(self, values: np.ndarray) -> float:
        """Hypervolume of ``values`` (raw objective values) in the normalised box."""
        return hypervolume(self.normalised(values), [self.ref] * len(self.names))

    @property
    def max_hypervolume(self) -> float:
        return float(self.ref ** len(self.names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": [
                {
                    "name": n,
                    "direction": "max" if mx else "min",
                    "range": [lo, hi],
                    "range_source": src,
                }
                for n, mx, lo, hi, src in zip(
                    self.names, self.maximise, self.low, self.high, self.range_source, strict=True
                )
            ],
            "reference_point": [self.ref] * len(self.names),
            "max_hypervolume": self.max_hypervolume,
        }


def run_values(run: RunResult) -> np.ndarray:
    """``[evaluations, objectives]`` values of a run (NaN rows: failed evaluations)."""
    rows = run.history.get("objectives")
    if rows is None:
        raise SearchError(
            f"run of {run.algo!r} (seed {run.seed}) has no objective values: it was not run "
            "with objectives (--objectives)"
        )
    ok = run.history.get("ok", [True] * len(rows))
    vals = np.asarray(
        [[math.nan if v is None else float(v) for v in r] for r in rows], dtype=np.float64
    )
    if len(vals) == 0:
        return vals.reshape(0, 0)
    vals[~np.asarray(ok, dtype=bool)] = np.nan
    return vals


def make_box(
    objectives: Sequence[Any],
    evaluator: Any = None,
    results: dict[str, Sequence[RunResult]] | None = None,
    *,
    ref: float = DEFAULT_REF,
) -> HypervolumeBox:
    """The hypervolume box of ``objectives`` (``Objective`` values): each range from
    ``evaluator.objective_range(name)`` where it knows one, else observed in ``results``."""
    if not (isinstance(ref, (int, float)) and math.isfinite(ref) and ref >= 1.0):
        raise SearchError(f"hypervolume reference {ref!r} must be a number >= 1")
    names = tuple(o.name for o in objectives)
    observed = None
    lows, highs, srcs = [], [], []
    for j, name in enumerate(names):
        known = None
        fn = getattr(evaluator, "objective_range", None)
        if callable(fn):
            known = fn(name)
        if known is not None:
            lo, hi = known
            srcs.append("space (every arch the evaluator holds)")
        else:
            if observed is None:
                runs = [r for rs in (results or {}).values() for r in rs]
                mats = [run_values(r) for r in runs]
                observed = np.vstack([m for m in mats if m.size] or [np.full((0, len(names)), 0.0)])
            col = observed[:, j] if observed.size else np.zeros(0)
            col = col[np.isfinite(col)]
            if col.size == 0:
                raise SearchError(f"no value of objective {name!r} to set its hypervolume range")
            lo, hi = float(col.min()), float(col.max())
            srcs.append("observed in these runs")
        lows.append(float(lo))
        highs.append(float(hi))
    return HypervolumeBox(
        names,
        tuple(bool(o.maximise) for o in objectives),
        tuple(lows),
        tuple(highs),
        tuple(srcs),
        float(ref),
    )


def report_box(
    box: HypervolumeBox, evaluator: Any, reported: Sequence[np.ndarray]
) -> HypervolumeBox:
    """``box`` with the accuracy range of reported values: the evaluator's range of the
    reported test accuracy (``objective_range("test_acc")``) where it knows it, else the
    smallest and largest of ``reported`` (rows of :func:`reported_front`)."""
    if "valid_acc" not in box.names:
        raise SearchError("a reported front re-scores valid_acc, which is not an objective")
    j = box.names.index("valid_acc")
    fn = getattr(evaluator, "objective_range", None)
    known = fn("test_acc") if callable(fn) else None
    if known is not None:
        lo, hi, src = float(known[0]), float(known[1]), "space (reported test accuracy)"
    else:
        col = np.concatenate([r[:, j] for r in reported if len(r)] or [np.zeros(0)])
        col = col[np.isfinite(col)]
        if col.size == 0:
            raise SearchError("the evaluator reports no test accuracy for any front member")
        lo, hi, src = float(col.min()), float(col.max()), "observed (reported test accuracy)"
    low, high, srcs = list(box.low), list(box.high), list(box.range_source)
    low[j], high[j], srcs[j] = lo, hi, src
    return HypervolumeBox(box.names, box.maximise, tuple(low), tuple(high), tuple(srcs), box.ref)


def reported_front(run: RunResult, evaluator: Any) -> np.ndarray:
    """The run's front (:func:`run_front`) with ``valid_acc`` replaced by the test accuracy
    ``evaluator.report`` gives each member (rows in front order; NaN where none)."""
    from nasforge.evaluate.base import Observation

    names = [o["name"] for o in run.config.get("evaluator", {}).get("objectives", [])]
    space = evaluator.space
    rows = []
    for m in run_front(run):
        arch = space.from_string(m["arch"])
        rep = evaluator.report(arch, Observation(arch, m.get("valid_acc", math.nan), 0, 0.0))
        rows.append([rep.test_acc if n == "valid_acc" else m[n] for n in names])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))


def hv_trajectory(run: RunResult, box: HypervolumeBox) -> np.ndarray:
    """The run's hypervolume after each of its evaluations (recomputed only when an
    evaluation enters the front)."""
    P = box.normalised(run_values(run)) if run.num_evals else np.zeros((0, len(box.names)))
    ref = np.full(len(box.names), box.ref)
    out = np.zeros(len(P))
    front = np.zeros((0, len(box.names)))
    hv = 0.0
    for k, p in enumerate(P):
        if np.isfinite(p).all() and (p < ref).all():
            dominated = bool(front.size) and bool(((front <= p).all(axis=1)).any())
            if not dominated:
                front = np.vstack([front[~(p <= front).all(axis=1)], p])
                hv = hypervolume(front, ref)
        out[k] = hv
    return out


def hv_on_grid(
    runs: Sequence[RunResult], grid: np.ndarray, box: HypervolumeBox, *, x: str = "time"
) -> np.ndarray:
    """Hypervolume of each run (rows) at each grid point (columns); 0 before its first
    evaluation. ``x`` is "time" (the run's clock) or "evals"."""
    out = np.zeros((len(runs), len(grid)))
    for i, r in enumerate(runs):
        if r.num_evals == 0:
            continue
        xs = r.times if x == "time" else np.arange(1, r.num_evals + 1, dtype=np.float64)
        hv = hv_trajectory(r, box)
        pos = np.searchsorted(xs, grid, side="right") - 1
        has = pos >= 0
        out[i, has] = hv[pos[has]]
    return out


def run_front(run: RunResult) -> list[dict[str, Any]]:
    """The non-dominated archs a run evaluated (each once), with their objective values,
    in evaluation order."""
    names = [o["name"] for o in run.config.get("evaluator", {}).get("objectives", [])]
    vals = run_values(run)
    if not len(vals):
        return []
    maximise = [o["direction"] == "max" for o in run.config["evaluator"]["objectives"]]
    F = to_minimisation(vals, maximise)
    finite = np.isfinite(F).all(axis=1)
    mask = np.zeros(len(F), dtype=bool)
    idx = np.flatnonzero(finite)
    if idx.size:
        mask[idx[nondominated_mask(F[idx])]] = True
    out, seen = [], set()
    for k in np.flatnonzero(mask):
        arch = run.history["arch"][k]
        if arch in seen:
            continue
        seen.add(arch)
        out.append(
            {
                "arch": arch,
                "index": int(run.history["arch_index"][k]),
                "evaluation": int(k),
                **{n: float(v) for n, v in zip(names, vals[k], strict=True)},
            }
        )
    return out


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, sample std and 95% normal CI half-width of the mean."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std, 1.96 * std / math.sqrt(v.size)


def summarize_mo(
    runs: Sequence[RunResult],
    box: HypervolumeBox,
    *,
    reported: Sequence[np.ndarray] | None = None,
    rbox: HypervolumeBox | None = None,
) -> dict[str, Any]:
    """Final hypervolume over runs (mean, sample std, 95% CI half-width), front sizes and
    evaluations, of one algorithm's runs; with ``reported`` (:func:`reported_front` of each
    run) and its box ``rbox``, the reported hypervolume too (``report_hv_*``)."""
    if not runs:
        raise SearchError("cannot summarize zero runs")
    finals = np.asarray(
        [hv_trajectory(r, box)[-1] if r.num_evals else 0.0 for r in runs], dtype=np.float64
    )
    mean, std, half = _ci(finals)
    sizes = np.asarray([len(run_front(r)) for r in runs], dtype=np.float64)
    extra: dict[str, Any] = {}
    if reported is not None and rbox is not None:
        rep = np.asarray([rbox.hypervolume(v) if len(v) else 0.0 for v in reported])
        r_mean, r_std, r_half = _ci(rep)
        extra = {
            "report_hv_mean": r_mean,
            "report_hv_std": r_std,
            "report_hv_ci95": r_half,
            "report_hv_per_run": rep.tolist(),
        }
    return {
        "algo": runs[0].algo,
        "runs": len(runs),
        "budget": runs[0].budget,
        "hv_mean": mean,
        "hv_std": std,
        "hv_ci95": half,
        "hv_min": float(finals.min()),
        "hv_max": float(finals.max()),
        "hv_per_run": finals.tolist(),
        "front_size_mean": float(sizes.mean()),
        "evals_mean": float(np.mean([r.num_evals for r in runs])),
        **extra,
    }


def reported_fronts(
    results: dict[str, Sequence[RunResult]], box: HypervolumeBox, evaluator: Any
) -> tuple[dict[str, list[np.ndarray]], HypervolumeBox] | None:
    """Every run's :func:`reported_front` and their common :func:`report_box`, or None when
    there is nothing to report (no evaluator, no ``valid_acc`` objective, no test accuracy
    reported for any member)."""
    if evaluator is None or "valid_acc" not in box.names:
        return None
    fronts = {a: [reported_front(r, evaluator) for r in runs] for a, runs in results.items()}
    j = box.names.index("valid_acc")
    if not any(np.isfinite(f[:, j]).any() for fs in fronts.values() for f in fs if len(f)):
        return None
    return fronts, report_box(box, evaluator, [f for fs in fronts.values() for f in fs])
