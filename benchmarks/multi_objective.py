"""Multi-objective search on the real NB201 tables: hypervolume of the Pareto searchers
(NSGA-II, MO-REA) vs random search and vs scalarised REA, at equal budget.

The NAS-Bench-201 protocol on the real CIFAR-100 and ImageNet16-120 results of all 15,625
archs (``../shared/nb201/real_cifar100_imagenet16.csv``), through nasforge's own path: the CSV
is imported by :func:`nasforge.bench.importers.import_table` (what ``nasforge bench import``
runs), searched through the registered ``tabular`` evaluator (12-epoch validation accuracy,
charged 12/200 of the 200-epoch training time per evaluation) wrapped in an
:class:`~nasforge.evaluate.objectives.ObjectiveEvaluator` -- what ``nasforge compare --bench
... --objectives ...`` builds. Budgets are NB201's per dataset (40,000 s / 120,000 s), seeds
0..runs-1 for every algorithm.

Objectives: the table has no latency column (the export holds accuracies and training times
only), so the costs are the ones nasforge knows for every arch: FLOPs (multiply-adds, NB201's
own counting convention, equal to the published ``flops`` field; ``nasforge.cost``) and, for
the 3-objective case, the seconds each evaluation charges (``train_time_s``).

Two hypervolumes per run: of its front in the objectives the search saw (12-epoch
validation accuracy), and *reported*: the same front re-scored with the 200-epoch x-test
accuracy the table reports for each member (never seen by a searcher), as NB201 reports a
returned arch. The reference measured in the same run: the hypervolume of the table's true
fronts (every arch of the space, with the same values), the most any search could reach.
Hypervolumes are on objectives normalised by the table's ranges (reference point 1.1, see
:mod:`nasforge.search.fronts`). Differences between algorithms come with a 95% normal CI of
the difference of means (independent runs) and a two-sided Mann-Whitney U p-value (scipy).
Prints JSON.

    PYTHONPATH=src python benchmarks/multi_objective.py --runs 100 \
        --out benchmarks/results/multi_objective.json --plots docs/img
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench import Benchmark
from nasforge.bench.importers import import_table
from nasforge.evaluate import EVALUATORS
from nasforge.evaluate.objectives import ObjectiveEvaluator
from nasforge.io import atomic_write_json
from nasforge.report.fronts import plot_fronts, plot_hypervolume
from nasforge.search.fronts import make_box, reported_fronts, summarize_mo
from nasforge.search.pareto import nondominated_mask
from nasforge.search.protocol import DEFAULT_BUDGETS, compare

CSV = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "nb201" / "real_cifar100_imagenet16.csv"
)
PARETO = ("nsga2", "mo-rea")
BASELINES = ("random", "rea-scalar")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def table_front_hv(ev: ObjectiveEvaluator, box: Any, rbox: Any) -> dict[str, Any]:
    """Hypervolume of the true fronts of the table: every arch evaluated once (the table
    answers each arch's seed mean; a pure lookup, no clock), in the search's objectives and
    with the reported test accuracy in place of valid_acc."""
    space = ev.space
    ev.reset(0)
    j = box.names.index("valid_acc")
    vals, rep = [], []
    for arch in space.enumerate():
        obs = ev.evaluate(arch)
        row = list(obs.objectives) if obs.ok else [math.nan] * len(box.names)
        vals.append(row)
        rep.append([*row[:j], ev.report(arch, obs).test_acc, *row[j + 1 :]])
    V = np.asarray(vals, dtype=np.float64)
    F = box.normalised(V)
    finite = np.isfinite(F).all(axis=1)
    return {
        "hv": box.hypervolume(V),
        "front_size": int(nondominated_mask(F[finite]).sum()),
        "archs": int(finite.sum()),
        "report_hv": rbox.hypervolume(np.asarray(rep, dtype=np.float64)),
    }


def diff(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of a minus mean of b, its 95% normal CI half-width (independent samples), and
    the two-sided Mann-Whitney U p-value."""
    from scipy.stats import mannwhitneyu

    x, y = np.asarray(a), np.asarray(b)
    d = float(x.mean() - y.mean())
    se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)) if len(x) > 1 else math.nan
    p = float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return {"diff": d, "ci95": 1.96 * se, "mann_whitney_p": p}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--algos", default="nsga2,mo-rea,random,rea-scalar")
    ap.add_argument("--datasets", default="cifar100,ImageNet16-120")
    ap.add_argument(
        "--objectives",
        action="append",
        default=None,
        help="objective spec (repeatable); default valid_acc,flops_m and "
        "valid_acc,flops_m,train_time_s",
    )
    ap.add_argument("--bench", default=None, help="a table imported from the CSV already")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--plots", default=None, help="directory for the PNGs")
    args = ap.parse_args()
    specs = args.objectives or ["valid_acc,flops_m", "valid_acc,flops_m,train_time_s"]
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.bench
        if path is None:
            path = Path(tmp) / "real.table"
            import_table(CSV, path)
        bench = Benchmark.open(path)
        report: dict[str, Any] = {
            "source": str(CSV.name),
            "runs": args.runs,
            "seeds": f"0..{args.runs - 1}",
            "algorithms": algos,
            "results": [],
        }
        for ds in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            budget = DEFAULT_BUDGETS[ds]
            for spec in specs:
                t0, c0 = time.perf_counter(), cpu_seconds()
                ev = ObjectiveEvaluator(EVALUATORS.create("tabular", bench, ds), spec)
                results = compare(algos, ev, budget, runs=args.runs, seed=0)
                box = make_box(ev.objectives, ev, results)
                got = reported_fronts(results, box, ev)
                if got is None:
                    raise SystemExit(f"{ds}: the table reports no test accuracy")
                rep, rbox = got
                summaries = {
                    a: summarize_mo(rs, box, reported=rep[a], rbox=rbox)
                    for a, rs in results.items()
                }
                comparisons = {
                    f"{p} - {b}": {
                        "search": diff(summaries[p]["hv_per_run"], summaries[b]["hv_per_run"]),
                        "reported": diff(
                            summaries[p]["report_hv_per_run"], summaries[b]["report_hv_per_run"]
                        ),
                    }
                    for p in PARETO
                    for b in BASELINES
                    if p in summaries and b in summaries
                }
                entry = {
                    "dataset": ds,
                    "budget": budget,
                    "objectives": ev.describe()["objectives"],
                    "box": box.to_dict(),
                    "report_box": rbox.to_dict(),
                    "table_front": table_front_hv(ev, box, rbox),
                    "summaries": [
                        {k: v for k, v in s.items() if not k.endswith("per_run")}
                        for s in summaries.values()
                    ],
                    "differences": comparisons,
                    "wall_s": time.perf_counter() - t0,
                    "cpu_s": cpu_seconds() - c0,
                }
                if args.plots:
                    tag = f"mo_{ds.lower().replace('-', '')}_{spec.replace(',', '_')}"
                    title = f"{ds} ({budget}), {args.runs} runs: {spec}"
                    out = Path(args.plots)
                    entry["plots"] = [
                        str(plot_hypervolume(results, box, out / f"{tag}_hv.png", title=title)),
                        str(plot_fronts(results, box, out / f"{tag}_fronts.png", title=title)),
                    ]
                report["results"].append(entry)
                print(f"{ds} {spec}: done in {entry['cpu_s']:.0f} CPU-s", file=sys.stderr)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        atomic_write_json(args.out, report)


if __name__ == "__main__":
    main()
