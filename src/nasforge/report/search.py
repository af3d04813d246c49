"""Plots and result files of black-box searches (the NAS-Bench-201 protocol of
:mod:`nasforge.search.protocol`): the best-so-far curves with their confidence bands, and
per search run ``trajectories.jsonl`` / ``summary.json`` / ``curve.png``, per comparison
``comparison.json`` / ``comparison.md`` / ``comparison.png``.

The numbers come from :mod:`nasforge.search.protocol` (:func:`summarize`,
:func:`curve_on_grid`, :func:`mean_band`); this module only draws and writes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.io import atomic_save_figure, atomic_write_json, atomic_write_text, to_jsonable
from nasforge.search.base import RunResult
from nasforge.search.protocol import curve_on_grid, format_pm, mean_band, summarize

if TYPE_CHECKING:
    from nasforge.evaluate.base import Evaluator

__all__ = [
    "comparison_markdown",
    "load_runs",
    "plot_curves",
    "plot_facts",
    "save_comparison",
    "save_search",
    "x_axis",
]


def x_axis(runs: Sequence[RunResult]) -> tuple[str, str]:
    """What the x-axis of ``runs`` counts (``"time"`` or ``"evals"``, as the budget is) and
    its label."""
    if runs and runs[0].budget.endswith("evals"):
        return "evals", "number of evaluations"
    clock = runs[0].clock if runs else "simulated"
    return "time", f"{clock} time (seconds)"


def _zoomed_ylim(
    lows: list[np.ndarray], highs: list[np.ndarray], optimum: float | None
) -> tuple[float, float] | None:
    """A y-range around where the curves differ: the bands after the first tenth of the
    x-axis (the initial climb from the first random arch would flatten everything else),
    and the optimum line; 8% padding."""
    lo = [float(np.nanmin(v)) for v in lows if np.isfinite(v).any()]
    hi = [float(np.nanmax(v)) for v in highs if np.isfinite(v).any()]
    if not lo or not hi:
        return None
    bottom, top = min(lo), max(hi)
    if optimum is not None and math.isfinite(optimum):
        top = max(top, optimum)
    pad = max(0.08 * (top - bottom), 0.05)
    return bottom - pad, top + pad


def plot_curves(
    results: dict[str, Sequence[RunResult]],
    path: str | Path,
    *,
    title: str = "",
    metric: str = "test",
    points: int = 200,
    optimum: float | None = None,
    synthetic: bool = False,
    quantity: dict[str, str] | None = None,
) -> Path:
    """Mean best-so-far ``metric`` vs the clock, one line per algorithm, each with the 95%
    confidence band of its mean over the runs. ``quantity`` names what the values are when
    they are not accuracies in percent (``{"task": ..., "name": "psnr", "unit": "dB"}``,
    from :func:`plot_facts`: an evaluator that trains another task).

    The y-axis is zoomed to where the algorithms differ (after the first tenth of the run);
    ``optimum`` (the table's best ``metric``) is drawn as a dashed line; ``synthetic`` puts
    "synthetic table" in the title. A counted x-axis (evaluations) has integer ticks.
    Written atomically as a PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    all_runs = [r for rs in results.values() for r in rs]
    x_kind, x_label = x_axis(all_runs)
    if x_kind == "time":
        x_max = max((float(r.times[-1]) for r in all_runs if r.num_evals), default=1.0)
    else:
        x_max = float(max((r.num_evals for r in all_runs), default=1))
    grid = np.linspace(0.0, max(x_max, 1e-9), points)
    late = grid >= 0.1 * grid[-1]
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    lows, highs, counts = [], [], []
    for algo, runs in results.items():
        mean, half, _ = mean_band(curve_on_grid(runs, grid, metric=metric, x=x_kind))
        line = ax.plot(grid, mean, label=f"{algo}", linewidth=1.6)[0]
        ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        lows.append((mean - half)[late])
        highs.append((mean + half)[late])
        counts.append(len(runs))
    handles, labels = ax.get_legend_handles_labels()
    if optimum is not None and math.isfinite(optimum):
        handles.append(ax.axhline(optimum, color="black", linestyle="--", linewidth=1.0))
        labels.append(f"table optimum {optimum:.2f}%")
    if counts:
        n_txt = str(counts[0]) if len(set(counts)) == 1 else f"{min(counts)}-{max(counts)}"
        handles.append(Patch(color="grey", alpha=0.3))
        labels.append(f"band: 95% CI of the mean, {n_txt} runs")
    ylim = _zoomed_ylim(lows, highs, optimum)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlim(0.0, grid[-1])
    if x_kind == "evals":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x_label)
    if quantity is None:
        ax.set_ylabel(f"{metric} accuracy of the best-so-far arch (%)")
        head = title or f"mean best-so-far {metric} accuracy"
    else:
        unit = f" ({quantity['unit']})" if quantity.get("unit") else ""
        ax.set_ylabel(f"{metric} {quantity['name']} of the best-so-far arch{unit}")
        head = title or f"mean best-so-far {metric} {quantity['name']}"
        head += f", task {quantity['task']}"
    ax.set_title(f"{head} (synthetic table)" if synthetic else head)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path)


def plot_facts(evaluator: Evaluator) -> dict[str, Any]:
    """What a plot of searches against ``evaluator`` shows besides the curves: the table's
    optimum (best reported test accuracy of any arch; None off a table) and whether the
    table is synthetic. Keyword arguments for :func:`save_search` / :func:`save_comparison`."""
    optimum = getattr(evaluator, "optimum", None)
    bench = getattr(evaluator, "bench", None)
    meta = getattr(bench, "meta", None) or {}
    facts: dict[str, Any] = {
        "optimum": optimum() if callable(optimum) else None,
        "synthetic": meta.get("source") == "synthetic",
    }
    task = evaluator.describe().get("task", "classification")
    if task != "classification":
        # the values are the task's primary metric, not accuracies in percent
        from nasforge.tasks import get_task

        primary = get_task(task).primary_metric
        facts["quantity"] = {"task": task, "name": primary.name, "unit": primary.unit}
    return facts


def save_search(
    out_dir: str | Path,
    runs: Sequence[RunResult],
    *,
    meta: dict[str, Any] | None = None,
    title: str = "",
    optimum: float | None = None,
    synthetic: bool = False,
    quantity: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``trajectories.jsonl`` (one run per line), ``summary.json`` and ``curve.png``
    (``optimum`` / ``synthetic`` / ``quantity`` as for :func:`plot_curves`; a
    ``quantity`` is recorded in the summary as ``metric``)."""
    out = Path(out_dir)
    lines = [json.dumps(to_jsonable(r.to_dict()), allow_nan=False) for r in runs]
    traj = out / "trajectories.jsonl"
    atomic_write_text(traj, "\n".join(lines) + "\n")
    summary = {
        **summarize(runs),
        **({"metric": quantity} if quantity else {}),
        **({"meta": meta} if meta else {}),
    }
    summ = out / "summary.json"
    atomic_write_json(summ, summary)
    algo = runs[0].algo
    png = plot_curves(
        {algo: runs},
        out / "curve.png",
        title=title or f"{algo}",
        optimum=optimum,
        synthetic=synthetic,
        quantity=quantity,
    )
    return {"trajectories": traj, "summary": summ, "plot": png}


def load_runs(path: str | Path) -> list[RunResult]:
    """Read a ``trajectories.jsonl`` written by :func:`save_search`."""
    text = Path(path).read_text(encoding="utf-8")
    return [RunResult.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


def comparison_markdown(
    summaries: Sequence[dict[str, Any]], quantity: dict[str, str] | None = None
) -> str:
    """The NAS-Bench-201-style table: one row per algorithm (values in percent, or in the
    ``quantity`` of another task)."""
    unit = "%" if quantity is None else f"{quantity['name']}, {quantity.get('unit') or '-'}"
    rows = [
        f"| algorithm | runs | budget | evaluations (mean) | search valid ({unit}) | "
        f"reported valid ({unit}) | test ({unit}) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for s in summaries:
        rows.append(
            f"| {s['algo']} | {s['runs']} | {s['budget']} | {s['evals_mean']:.1f} | "
            f"{format_pm(s['search_valid_mean'], s['search_valid_std'])} | "
            f"{format_pm(s['report_valid_mean'], s['report_valid_std'])} | "
            f"{format_pm(s['test_mean'], s['test_std'])} |"
        )
    return "\n".join(rows) + "\n"


def save_comparison(
    out_dir: str | Path,
    results: dict[str, Sequence[RunResult]],
    *,
    meta: dict[str, Any] | None = None,
    title: str = "",
    optimum: float | None = None,
    synthetic: bool = False,
    quantity: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Per algorithm a :func:`save_search` sub-directory, plus ``comparison.json``,
    ``comparison.md`` and ``comparison.png`` (all algorithms in one figure; ``optimum`` /
    ``synthetic`` as for :func:`plot_curves`)."""
    out = Path(out_dir)
    summaries = []
    for algo, runs in results.items():
        save_search(
            out / algo, runs, meta=meta, optimum=optimum, synthetic=synthetic, quantity=quantity
        )
        summaries.append(summarize(runs))
    js = out / "comparison.json"
    doc = {
        "summaries": summaries,
        **({"metric": quantity} if quantity else {}),
        **({"meta": meta} if meta else {}),
    }
    atomic_write_json(js, doc)
    md = out / "comparison.md"
    atomic_write_text(md, comparison_markdown(summaries, quantity))
    png = plot_curves(
        results,
        out / "comparison.png",
        title=title,
        optimum=optimum,
        synthetic=synthetic,
        quantity=quantity,
    )
    return {"json": js, "markdown": md, "plot": png}
