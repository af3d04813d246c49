"""Plots and result files of multi-objective searches: the hypervolume over the budget,
the fronts, and ``pareto.json`` / ``pareto.md`` / ``hypervolume.png`` / ``fronts.png``.

The measures (fronts, boxes, hypervolumes, summaries) come from
:mod:`nasforge.search.fronts`; this module only draws and writes them. Curves give the mean
over runs and the 95% normal confidence interval of the mean (1.96 standard errors), as
:func:`nasforge.report.search.plot_curves` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.io import atomic_save_figure, atomic_write_json, atomic_write_text
from nasforge.report.search import x_axis
from nasforge.search.base import RunResult
from nasforge.search.fronts import (
    HypervolumeBox,
    hv_on_grid,
    reported_fronts,
    run_front,
    run_values,
    summarize_mo,
)
from nasforge.search.pareto import nondominated_mask, to_minimisation
from nasforge.search.protocol import mean_band

__all__ = ["mo_markdown", "plot_fronts", "plot_hypervolume", "save_mo"]


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

    all_runs = [r for rs in results.values() for r in rs]
    x_kind, x_label = x_axis(all_runs)
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
