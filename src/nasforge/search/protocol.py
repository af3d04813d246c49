"""The NAS-Bench-201 evaluation protocol: N independent runs per algorithm, summaries, curves.

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

The plots and result files of these runs are written by :mod:`nasforge.report.search`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import SearchError
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
    "run_protocol",
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


def mean_band(ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (rows) at each grid point, the half-width of its 95% normal confidence
    interval (1.96 standard errors, sample std), and the number of runs with a value."""
    finite = np.isfinite(ys)
    n = finite.sum(axis=0)
    mean = np.where(n > 0, np.where(finite, ys, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    sq = np.where(finite, (ys - mean) ** 2, 0.0).sum(axis=0)
    half = 1.96 * np.sqrt(sq / np.maximum(n - 1, 1)) / np.sqrt(np.maximum(n, 1))
    return mean, half, n
