"""The NAS-Bench-201 evaluation protocol: N independent runs per algorithm, summaries, plots.

Each run is :func:`nasforge.search.base.run_search` with its own seed (``seed + i`` for run
``i``, used by the searcher and, decorrelated, by the evaluator's choice of training seeds).
The reported figure of a run is the test accuracy of the arch the algorithm returns; the
summary gives its mean ± std over runs, like Table 5 of NAS-Bench-201 (Dong & Yang, ICLR
2020), and the curve is the mean best-so-far test accuracy vs the run's clock, with a 95%
confidence band of the mean.

Default budgets (simulated seconds of the 12-epoch proxy training, per dataset) are explicit
in :data:`DEFAULT_BUDGETS`: 12,000 s for CIFAR-10 as in the NAS-Bench-201 scripts
(``scripts-search/algos/*.sh``: ``--time_budget 12000``), and the NATS-Bench settings for
the others (``exps/NATS-algos/run-all.sh``: 40,000 s for CIFAR-100 and 120,000 s for
ImageNet16-120; NATS-Bench itself used 20,000 s for CIFAR-10).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.io import atomic_save_figure, atomic_write_json, atomic_write_text, to_jsonable
from nasforge.search.base import Budget, RunResult, Searcher, check_max_evals, run_search
from nasforge.search.registry import BLACKBOX, ONESHOT, WIDTH, algorithm_kind, algorithm_names

if TYPE_CHECKING:
    from nasforge.evaluate.base import Evaluator
    from nasforge.run.base import Executor

__all__ = [
    "DEFAULT_BUDGETS",
    "build_searcher",
    "check_algos",
    "compare",
    "curve_on_grid",
    "default_budget",
    "format_pm",
    "mean_band",
    "plot_curves",
    "plot_facts",
    "run_protocol",
    "save_comparison",
    "save_search",
    "summarize",
]

#: Default search budget per dataset, in simulated seconds (see the module docstring).
DEFAULT_BUDGETS: dict[str, str] = {
    "cifar10-valid": "12000s",  # NAS-Bench-201 scripts
    "cifar10": "12000s",  # NAS-Bench-201 scripts (NATS-Bench: 20000s)
    "cifar100": "40000s",  # NATS-Bench run-all.sh
    "ImageNet16-120": "120000s",  # NATS-Bench run-all.sh
}


def default_budget(dataset: str, *, has_time: bool = True, clock: str = "simulated") -> Budget:
    """The documented default budget for ``dataset``.

    A table without training times cannot charge seconds, so there is no default then, and
    neither for datasets outside NAS-Bench-201 nor for real training (``clock="wall"``: the
    defaults are simulated seconds of the table's 12-epoch proxy): the caller must give one.
    """
    if clock == "wall":
        raise SearchError(
            "the default budgets are simulated seconds of a table; real training needs an "
            "explicit --budget, e.g. 20evals or 1h"
        )
    if not has_time:
        raise SearchError(
            f"the table records no training times for {dataset!r}, so budgets are in "
            "evaluations: pass e.g. --budget 100evals"
        )
    if dataset not in DEFAULT_BUDGETS:
        raise SearchError(
            f"no default budget for dataset {dataset!r} (defaults exist for "
            f"{sorted(DEFAULT_BUDGETS)}); pass --budget, e.g. '12000s' or '20evals'"
        )
    return Budget.parse(DEFAULT_BUDGETS[dataset])


#: Kinds of algorithm ``nasforge search`` runs; width searches have their own command.
SEARCH_KINDS = ("blackbox", "oneshot")


def search_algorithm(algo: str) -> Any:
    """The registered factory of ``algo`` if ``nasforge search`` runs it (a black-box or
    one-shot method). A width method is refused with the command that runs it, and an
    unknown name lists only the names ``search`` accepts."""
    if algo in WIDTH:
        raise SearchError(
            f"{algo!r} is a width search; run it with `nasforge width search --method {algo}`"
        )
    if algo in BLACKBOX:
        return BLACKBOX.get(algo)
    if algo in ONESHOT:
        return ONESHOT.get(algo)
    names = algorithm_names(*SEARCH_KINDS)
    raise SearchError(f"unknown search algorithm {algo!r}; expected one of: {', '.join(names)}")


def build_searcher(algo: str, seed: int, **kwargs: Any) -> Searcher:
    """A fresh black-box searcher of the registered algorithm ``algo``."""
    kind = algorithm_kind(algo)
    if kind not in (None, "blackbox"):
        raise SearchError(
            f"algorithm {algo!r} is {kind!r}, not a black-box searcher; it does not speak "
            "ask/tell to an evaluator"
        )
    factory = BLACKBOX.get(algo)  # an unknown name: a RegistryError listing the known ones
    _check_kwargs(algo, factory, kwargs)
    return factory(seed=seed, **kwargs)


def _check_kwargs(algo: str, factory: Any, kwargs: dict[str, Any]) -> None:
    """Unknown setting names are a :class:`SearchError` listing the accepted ones (values
    are checked by the algorithm's constructor)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(
        n
        for n, p in params.items()
        if n != "seed" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    unknown = sorted(set(kwargs) - set(accepted))
    if "seed" in kwargs:
        unknown.append("seed")
    if unknown:
        raise SearchError(
            f"algorithm {algo!r} has no setting {', '.join(map(repr, unknown))}; it accepts "
            f"{accepted or 'no settings'} (the seed is given by --seed)"
        )


def run_protocol(
    algo: str,
    evaluator: Evaluator,
    budget: Budget | str,
    *,
    runs: int = 1,
    seed: int = 0,
    algo_kwargs: dict[str, Any] | None = None,
    max_evals: int | None = None,
    progress: Callable[[int, RunResult], None] | None = None,
    parallel: int = 1,
    executor: Executor | None = None,
) -> list[RunResult]:
    """``runs`` independent runs of ``algo`` (run ``i`` seeded ``seed + i``); ``parallel`` and
    ``executor`` evaluate up to that many asks of a run at once (see :func:`run_search`)."""
    if runs < 1:
        raise SearchError(f"runs {runs!r} must be >= 1")
    check_max_evals(max_evals)  # before the first run, not after it
    budget = Budget.parse(budget)
    out = []
    for i in range(runs):
        searcher = build_searcher(algo, seed + i, **(algo_kwargs or {}))
        result = run_search(
            searcher,
            evaluator,
            budget,
            seed=seed + i,
            max_evals=max_evals,
            parallel=parallel,
            executor=executor,
        )
        result.algo = algo
        out.append(result)
        if progress is not None:
            progress(i, result)
    return out


def check_algos(algos: Sequence[str]) -> list[str]:
    """The algorithm names of a comparison: at least one, each once (results are keyed by
    name, so a repeated one would silently replace its first runs)."""
    names = list(algos)
    if not names:
        raise SearchError("a comparison needs at least one algorithm")
    repeated = sorted({a for a in names if names.count(a) > 1})
    if repeated:
        raise SearchError(
            f"algorithms {', '.join(map(repr, repeated))} named more than once in "
            f"{','.join(names)}; name each once"
        )
    return names


def compare(
    algos: Sequence[str],
    evaluator: Evaluator,
    budget: Budget | str,
    *,
    runs: int = 1,
    seed: int = 0,
    max_evals: int | None = None,
    progress: Callable[[str, int, RunResult], None] | None = None,
) -> dict[str, list[RunResult]]:
    """The protocol for each algorithm in turn, with the same seeds for each."""
    check_algos(algos)
    results: dict[str, list[RunResult]] = {}
    for algo in algos:
        cb = None if progress is None else (lambda i, r, a=algo: progress(a, i, r))
        results[algo] = run_protocol(
            algo, evaluator, budget, runs=runs, seed=seed, max_evals=max_evals, progress=cb
        )
    return results


# ----------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------
def _mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan, 0
    return float(arr.mean()), float(arr.std()), int(arr.size)


def summarize(runs: Sequence[RunResult]) -> dict[str, Any]:
    """Mean ± std over runs of the returned arch's test (and valid) accuracy, and costs.

    ``std`` is the population standard deviation, as NAS-Bench-201 reports it
    (``np.std``).
    """
    if not runs:
        raise SearchError("cannot summarize zero runs")
    test_m, test_s, n_ok = _mean_std(r.final_test for r in runs)
    valid_m, valid_s, _ = _mean_std(r.final_valid for r in runs)
    rvalid_m, rvalid_s, _ = _mean_std(
        float(r.report_valid[-1]) if r.num_evals else math.nan for r in runs
    )
    evals = np.asarray([r.num_evals for r in runs], dtype=np.float64)
    return {
        "algo": runs[0].algo,
        "runs": len(runs),
        "runs_with_result": n_ok,
        "budget": runs[0].budget,
        "clock": runs[0].clock,
        "test_mean": test_m,
        "test_std": test_s,
        "test": format_pm(test_m, test_s),
        "report_valid_mean": rvalid_m,
        "report_valid_std": rvalid_s,
        "search_valid_mean": valid_m,
        "search_valid_std": valid_s,
        "evals_mean": float(evals.mean()),
        "evals_min": int(evals.min()),
        "evals_max": int(evals.max()),
        "cost_mean": float(np.mean([r.total_cost for r in runs])),
        "wall_seconds_total": float(sum(r.wall_seconds for r in runs)),
    }


def format_pm(mean: float, std: float) -> str:
    """``"mean ± std"`` with two decimals, or ``"n/a"`` when there is no value."""
    return "n/a" if not math.isfinite(mean) else f"{mean:.2f} ± {std:.2f}"


def curve_on_grid(
    runs: Sequence[RunResult], grid: np.ndarray, *, metric: str = "test", x: str = "time"
) -> np.ndarray:
    """Best-so-far ``metric`` of each run (rows) at each grid point (columns).

    ``x`` is "time" (the run's clock) or "evals" (number of evaluations). Before a run's
    first evaluation the value is NaN.
    """
    out = np.full((len(runs), len(grid)), np.nan)
    for i, r in enumerate(runs):
        if r.num_evals == 0:
            continue
        xs = r.times if x == "time" else np.arange(1, r.num_evals + 1, dtype=np.float64)
        ys = getattr(r, metric)
        pos = np.searchsorted(xs, grid, side="right") - 1
        has = pos >= 0
        out[i, has] = ys[pos[has]]
    return out


def _x_axis(runs: Sequence[RunResult]) -> tuple[str, str]:
    if runs and runs[0].budget.endswith("evals"):
        return "evals", "number of evaluations"
    clock = runs[0].clock if runs else "simulated"
    return "time", f"{clock} time (seconds)"


def mean_band(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (rows) at each grid point, the half-width of its 95% normal confidence
    interval (1.96 standard errors, sample std), and the number of runs with a value."""
    finite = np.isfinite(ys)
    n = finite.sum(axis=0)
    mean = np.where(n > 0, np.where(finite, ys, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    sq = np.where(finite, (ys - mean) ** 2, 0.0).sum(axis=0)
    half = 1.96 * np.sqrt(sq / np.maximum(n - 1, 1)) / np.sqrt(np.maximum(n, 1))
    return mean, half, n


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
) -> Path:
    """Mean best-so-far ``metric`` vs the clock, one line per algorithm, each with the 95%
    confidence band of its mean over the runs.

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
    x_kind, x_label = _x_axis(all_runs)
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
    ax.set_ylabel(f"{metric} accuracy of the best-so-far arch (%)")
    head = title or f"mean best-so-far {metric} accuracy"
    ax.set_title(f"{head} (synthetic table)" if synthetic else head)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path)


# ----------------------------------------------------------------------------------------
# writing results
# ----------------------------------------------------------------------------------------
def plot_facts(evaluator: Evaluator) -> dict[str, Any]:
    """What a plot of searches against ``evaluator`` shows besides the curves: the table's
    optimum (best reported test accuracy of any arch; None off a table) and whether the
    table is synthetic. Keyword arguments for :func:`save_search` / :func:`save_comparison`."""
    optimum = getattr(evaluator, "optimum", None)
    bench = getattr(evaluator, "bench", None)
    meta = getattr(bench, "meta", None) or {}
    return {
        "optimum": optimum() if callable(optimum) else None,
        "synthetic": meta.get("source") == "synthetic",
    }


def save_search(
    out_dir: str | Path,
    runs: Sequence[RunResult],
    *,
    meta: dict[str, Any] | None = None,
    title: str = "",
    optimum: float | None = None,
    synthetic: bool = False,
) -> dict[str, Path]:
    """Write ``trajectories.jsonl`` (one run per line), ``summary.json`` and ``curve.png``
    (``optimum`` / ``synthetic`` as for :func:`plot_curves`)."""
    out = Path(out_dir)
    lines = [json.dumps(to_jsonable(r.to_dict()), allow_nan=False) for r in runs]
    traj = out / "trajectories.jsonl"
    atomic_write_text(traj, "\n".join(lines) + "\n")
    summary = {**summarize(runs), **({"meta": meta} if meta else {})}
    summ = out / "summary.json"
    atomic_write_json(summ, summary)
    algo = runs[0].algo
    png = plot_curves(
        {algo: runs},
        out / "curve.png",
        title=title or f"{algo}",
        optimum=optimum,
        synthetic=synthetic,
    )
    return {"trajectories": traj, "summary": summ, "plot": png}


def load_runs(path: str | Path) -> list[RunResult]:
    """Read a ``trajectories.jsonl`` written by :func:`save_search`."""
    text = Path(path).read_text(encoding="utf-8")
    return [RunResult.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


def comparison_markdown(summaries: Sequence[dict[str, Any]]) -> str:
    """The NAS-Bench-201-style table: one row per algorithm."""
    rows = [
        "| algorithm | runs | budget | evaluations (mean) | search valid (%) | "
        "reported valid (%) | test (%) |",
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
) -> dict[str, Path]:
    """Per algorithm a :func:`save_search` sub-directory, plus ``comparison.json``,
    ``comparison.md`` and ``comparison.png`` (all algorithms in one figure; ``optimum`` /
    ``synthetic`` as for :func:`plot_curves`)."""
    out = Path(out_dir)
    summaries = []
    for algo, runs in results.items():
        save_search(out / algo, runs, meta=meta, optimum=optimum, synthetic=synthetic)
        summaries.append(summarize(runs))
    js = out / "comparison.json"
    atomic_write_json(js, {"summaries": summaries, **({"meta": meta} if meta else {})})
    md = out / "comparison.md"
    atomic_write_text(md, comparison_markdown(summaries))
    png = plot_curves(
        results, out / "comparison.png", title=title, optimum=optimum, synthetic=synthetic
    )
    return {"json": js, "markdown": md, "plot": png}
