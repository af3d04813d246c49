"""Fronts and hypervolume of multi-objective runs: summaries, curves, plots, files.

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
  (1.96 standard errors), as :func:`nasforge.search.protocol.plot_curves` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.io import atomic_save_figure, atomic_write_json, atomic_write_text
from nasforge.search.base import RunResult
from nasforge.search.pareto import hypervolume, nondominated_mask, normalise, to_minimisation

__all__ = [
    "HypervolumeBox",
    "hv_on_grid",
    "hv_trajectory",
    "make_box",
    "mo_markdown",
    "plot_fronts",
    "plot_hypervolume",
    "report_box",
    "reported_front",
    "reported_fronts",
    "run_front",
    "run_values",
    "save_mo",
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


def mo_markdown(summaries: Sequence[dict[str, Any]], box: HypervolumeBox) -> str:
    """One row per algorithm: final hypervolume mean ± 95% CI, std, front size."""
    rows = [
        f"objectives: {', '.join(box.names)}; hypervolume of the normalised front, reference "
        f"{box.ref} per objective (max {box.max_hypervolume:.4g})",
        "",
        "| algorithm | runs | budget | evaluations (mean) | hypervolume (mean ± 95% CI) | "
        "std | front size (mean) | reported hypervolume (mean ± 95% CI) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        rep = (
            f"{s['report_hv_mean']:.4f} ± {s['report_hv_ci95']:.4f}"
            if "report_hv_mean" in s
            else "n/a"
        )
        rows.append(
            f"| {s['algo']} | {s['runs']} | {s['budget']} | {s['evals_mean']:.1f} | "
            f"{s['hv_mean']:.4f} ± {s['hv_ci95']:.4f} | {s['hv_std']:.4f} | "
            f"{s['front_size_mean']:.1f} | {rep} |"
        )
    return "\n".join(rows) + "\n"


def plot_hypervolume(
    results: dict[str, Sequence[RunResult]],
    box: HypervolumeBox,
    path: str | Path,
    *,
    title: str = "",
    points: int = 200,
) -> Path:
    """Mean hypervolume vs the clock, one line per algorithm, with the 95% CI band of the
    mean over runs. Written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nasforge.search.protocol import _x_axis, mean_band

    all_runs = [r for rs in results.values() for r in rs]
    x_kind, x_label = _x_axis(all_runs)
    if x_kind == "time":
        x_max = max((float(r.times[-1]) for r in all_runs if r.num_evals), default=1.0)
    else:
        x_max = float(max((r.num_evals for r in all_runs), default=1))
    grid = np.linspace(0.0, max(x_max, 1e-9), points)
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    late = grid >= 0.1 * grid[-1]
    lo, hi = [], []
    for algo, runs in results.items():
        mean, half, _ = mean_band(hv_on_grid(runs, grid, box, x=x_kind))
        line = ax.plot(grid, mean, label=f"{algo} ({len(runs)} runs)", linewidth=1.6)[0]
        ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        lo.append(np.nanmin((mean - half)[late]))
        hi.append(np.nanmax((mean + half)[late]))
    if lo:
        pad = max(0.08 * (max(hi) - min(lo)), 1e-3)
        ax.set_ylim(min(lo) - pad, max(hi) + pad)
    ax.set_xlim(0.0, grid[-1])
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"hypervolume ({', '.join(box.names)}; normalised)")
    ax.set_title(title or "mean hypervolume of the evaluated archs (band: 95% CI of the mean)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path)


def _attainment_50(fronts: list[np.ndarray], maximise: Sequence[bool]) -> np.ndarray | None:
    """The 50%-attainment surface of 2-D fronts (raw values; moocore.eaf), or None."""
    from nasforge.search.pareto import load_moocore

    moocore = load_moocore()
    sets = [f for f in fronts if len(f)]
    if len(sets) < 1:
        return None
    sign = np.where(np.asarray(maximise), -1.0, 1.0)
    pts = np.vstack([f * sign for f in sets])
    ids = np.concatenate([np.full(len(f), i + 1) for i, f in enumerate(sets)])
    eaf = np.asarray(moocore.eaf(pts, ids, percentiles=[50]))
    if eaf.size == 0:
        return None
    surf = eaf[:, :2] * sign
    return surf[np.argsort(surf[:, 1], kind="stable")]


def plot_fronts(
    results: dict[str, Sequence[RunResult]],
    box: HypervolumeBox,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """The fronts: one panel per objective after the first (first objective on y). With two
    objectives, each algorithm's run fronts are drawn faintly and its 50%-attainment surface
    over runs (the front half the runs reach or beat; moocore.eaf) as a line. With more, a
    front is a surface: each panel projects the front of the algorithm's median-hypervolume
    run (one marker per algorithm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = len(box.names)
    panels = max(m - 1, 1)
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.8), dpi=120, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "os^Dv<>p*h"
    for a_i, (algo, runs) in enumerate(results.items()):
        color = colors[a_i % len(colors)]
        fronts = []
        for r in runs:
            vals = run_values(r)
            v = vals[np.isfinite(vals).all(axis=1)] if len(vals) else np.zeros((0, m))
            fronts.append(v[nondominated_mask(to_minimisation(v, box.maximise))] if len(v) else v)
        if m == 2:
            ax = axes[0, 0]
            allpts = np.vstack([f for f in fronts if len(f)] or [np.zeros((0, m))])
            ax.scatter(allpts[:, 1], allpts[:, 0], s=6, alpha=0.15, color=color)
            surf = _attainment_50(fronts, box.maximise)
            if surf is not None:
                # a point attains every x it beats: to its right for a minimised x
                where = "pre" if box.maximise[1] else "post"
                ax.step(
                    surf[:, 1],
                    surf[:, 0],
                    where=where,
                    color=color,
                    linewidth=1.6,
                    label=f"{algo}: 50%-attainment ({len(runs)} runs)",
                )
            continue
        finals = [box.hypervolume(f) if len(f) else 0.0 for f in fronts]
        if not finals:
            continue
        median = int(np.argsort(finals, kind="stable")[(len(finals) - 1) // 2])
        front = fronts[median]
        for p in range(panels):
            axes[0, p].scatter(
                front[:, p + 1],
                front[:, 0],
                s=22,
                alpha=0.75,
                color=color,
                marker=markers[a_i % len(markers)],
                label=f"{algo}: median-hypervolume run (seed {runs[median].seed})",
            )
    for p in range(panels):
        ax = axes[0, p]
        j = min(p + 1, m - 1)
        ax.set_xlabel(f"{box.names[j]} ({'max' if box.maximise[j] else 'min'})")
        ax.set_ylabel(f"{box.names[0]} ({'max' if box.maximise[0] else 'min'})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title or "fronts of the evaluated archs", fontsize=10)
    fig.tight_layout()
    return atomic_save_figure(fig, path)


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


def save_mo(
    out_dir: str | Path,
    results: dict[str, Sequence[RunResult]],
    box: HypervolumeBox,
    *,
    meta: dict[str, Any] | None = None,
    title: str = "",
    evaluator: Any = None,
) -> dict[str, Path]:
    """Write ``pareto.json`` (box, per-algorithm hypervolume summary, every run's front),
    ``pareto.md``, ``hypervolume.png`` and ``fronts.png`` into ``out_dir``. With an
    ``evaluator`` that reports test accuracies and ``valid_acc`` among the objectives, the
    front members carry their reported ``test_acc`` and the summaries the reported
    hypervolume (:func:`reported_front`)."""
    out = Path(out_dir)
    rep = reported_fronts(results, box, evaluator)
    rbox = None if rep is None else rep[1]
    summaries = [
        summarize_mo(runs, box, reported=None if rep is None else rep[0][a], rbox=rbox)
        for a, runs in results.items()
    ]
    fronts: dict[str, list[dict[str, Any]]] = {}
    for algo, runs in results.items():
        fronts[algo] = []
        for i, r in enumerate(runs):
            members = run_front(r)
            if rep is not None:
                j = box.names.index("valid_acc")
                for m, row in zip(members, rep[0][algo][i], strict=True):
                    m["test_acc"] = float(row[j])
            fronts[algo].append({"seed": r.seed, "front": members})
    doc = {
        "box": box.to_dict(),
        **({"report_box": rbox.to_dict()} if rbox is not None else {}),
        "summaries": summaries,
        "fronts": fronts,
        **({"meta": meta} if meta else {}),
    }
    js = atomic_write_json(out / "pareto.json", doc)
    md = atomic_write_text(out / "pareto.md", mo_markdown(summaries, box))
    hv = plot_hypervolume(results, box, out / "hypervolume.png", title=title)
    fr = plot_fronts(results, box, out / "fronts.png", title=title)
    return {"json": js, "markdown": md, "hypervolume": hv, "fronts": fr}
