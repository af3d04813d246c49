"""Predictor-guided search (BANANAS, zero-cost warm-started BANANAS) vs REA on real NB201.

The NAS-Bench-201 protocol on the real CIFAR-100 and ImageNet16-120 results of all 15,625
archs (``../shared/nb201/real_cifar100_imagenet16.csv``): the search sees the 12-epoch
validation accuracy (seed mean, ``*_valid12``) and is charged 12/200 of the recorded
200-epoch training time per evaluation (the CSV's README: "the 12-epoch charge of the
protocol is 12/200 of it"); the returned arch (best validation accuracy seen) is reported
with its 200-epoch x-test accuracy (``*_test200``), which no searcher sees. Budgets: 40,000 s
(CIFAR-100) and 120,000 s (ImageNet16-120), as NB201; 100 runs per algorithm, seeds 0..99.

The table goes through nasforge's own path: the CSV is imported by
:func:`nasforge.bench.importers.import_table` (its NB201-export layout is recognised by the
header; what ``nasforge bench import`` runs) and searched through the registered ``tabular``
evaluator with ``seed_policy="random"`` (a recorded seed drawn per query, as the official
``simulate_train_eval``; the export holds seed means, so the table has one pseudo-seed and
every query of an arch answers its seed mean) -- the evaluator ``nasforge compare --bench``
builds, so REA / local search here reproduce ``real_protocol_*.json`` run for run.

Zero-cost warm start, charged honestly: the CSV has no proxy scores, and there are no
CIFAR-100 / ImageNet16-120 images here to run data-dependent proxies on, so ``zc-bananas``
uses the data-free ``params`` proxy (parameters of the network built for the dataset's
class count). Its value is taken from :func:`nasforge.cost.arch_cost` (equal to the
``params`` proxy, tested), and every proxy query is charged the mean wall time of the real
``params`` proxy (build the network, count) measured in this script on this machine, with
the pool of 1,000 archs scored at the start of each run. Prints JSON.

    PYTHONPATH=src python benchmarks/predictor_search.py --runs 100 \
        --algos rea,local-search,zc-local-search,bananas --runs-for bananas=N \
        --out benchmarks/results/predictor_search.json --plot docs/img/predictor_search.png

An entry ``ALGO@VARIANT`` of ``--algos`` runs ALGO with ``variant=VARIANT`` (e.g.
``bananas@nasforge-v1``, BANANAS with the settings nasforge used before it followed naszilla).

``--runs-for ALGO=N`` runs ALGO on seeds 0..N-1 only (BANANAS refits its ensemble ~15 times
per run: seconds of CPU each, where REA's 100 runs take a second); every algorithm's entry
records its run count, wall and CPU seconds (the machine is shared: timing claims rest on
the CPU time, the accuracies do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.bench.importers import import_table
from nasforge.cost import arch_cost
from nasforge.evaluate import EVALUATORS
from nasforge.evaluate.zero_cost import ProxyBatch, WithZeroCost, ZeroCostEvaluator, compute_proxies
from nasforge.io import atomic_save_figure, atomic_write_json
from nasforge.search.protocol import curve_on_grid, run_protocol
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "nb201" / "real_cifar100_imagenet16.csv"
#: dataset -> (budget in seconds, input resolution, classes)
DATASETS = {
    "cifar100": (40_000.0, 32, 100),
    "ImageNet16-120": (120_000.0, 16, 120),
}


def cpu_seconds() -> float:
    """CPU time of this process and its children (user + system)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def params_proxy(dataset: str, res: int, classes: int, samples: int = 20) -> ZeroCostEvaluator:
    """The ``params`` proxy of every arch, charged its measured mean compute time."""
    batch = ProxyBatch(torch.zeros(2, 3, res, res), torch.zeros(2, dtype=torch.int64), classes)
    rng = np.random.default_rng(0)
    secs = []
    for i in rng.permutation(NUM_ARCHS)[:samples]:
        arch = Arch.from_index(int(i))
        scores, seconds = compute_proxies(arch, ["params"], batch)
        assert math.isclose(scores["params"], arch_cost(arch, dataset).params_m, rel_tol=1e-9)
        secs.append(seconds["params"])
    charge = float(np.mean(secs))
    known = {}
    for i in range(NUM_ARCHS):
        arch = Arch.from_index(i)
        known[arch.to_string()] = (arch_cost(arch, dataset).params_m, charge)
    return ZeroCostEvaluator("params", batch, scores=known)


def _stats(runs: Sequence[Any]) -> dict[str, Any]:
    tests = np.asarray([r.final_test for r in runs])
    return {
        "runs": len(runs),
        "test_mean": round(float(tests.mean()), 3),
        "test_std": round(float(tests.std()), 3),
        "test_se": round(float(tests.std(ddof=1) / math.sqrt(len(tests))), 3),
        "evals_mean": round(float(np.mean([r.num_evals for r in runs])), 1),
        "proxy_evals_mean": round(
            float(np.mean([sum(f == 0 for f in r.history["fidelity"]) for r in runs])), 1
        ),
        "clock_mean": round(float(np.mean([r.total_cost for r in runs])), 1),
    }


def _runs_for(specs: list[str], algos: list[str], runs: int) -> dict[str, int]:
    out = dict.fromkeys(algos, runs)
    for spec in specs:
        algo, sep, n = spec.partition("=")
        if not sep or algo not in out or not n.isdigit() or int(n) < 2:
            sys.exit(f"--runs-for {spec!r}: expected ALGO=N with ALGO in --algos and N >= 2")
        out[algo] = int(n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--algos", default="rea,local-search,zc-local-search")
    ap.add_argument("--runs-for", action="append", default=[], help="ALGO=N: fewer runs")
    ap.add_argument("--datasets", default="cifar100,ImageNet16-120")
    ap.add_argument("--bench", default=None, help="a table imported from the CSV already")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--plot", default=None, help="PNG of mean test accuracy vs clock")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--merge", nargs="+", default=None, help="JSON reports to merge (no runs)")
    ap.add_argument(
        "--add-partial",
        nargs="+",
        default=[],
        help="with --merge: OUT.partial.json files of runs stopped early",
    )
    ap.add_argument(
        "--cpu-per-run",
        action="append",
        default=[],
        help="with --add-partial: ALGO=SECONDS, the measured CPU seconds of one run",
    )
    args = ap.parse_args()
    if args.merge:
        report = merge(args.merge)
        per_run = {k: float(v) for k, _, v in (c.partition("=") for c in args.cpu_per_run)}
        for partial in args.add_partial:
            add_partial(report, partial, per_run)
        if args.out:
            atomic_write_json(args.out, report)
        if args.plot:
            _plot(report, args.plot)
        return
    torch.set_num_threads(args.threads)
    algos = args.algos.split(",")
    runs_for = _runs_for(args.runs_for, algos, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            if not CSV.exists():
                sys.exit(f"needs {CSV}")
            bench = import_table(CSV, Path(tmp) / "real.table")
        report = _run(bench, algos, runs_for, args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        atomic_write_json(args.out, report)
    if args.plot:
        _plot(report, args.plot)


def _run(bench: Any, algos: list[str], runs_for: dict[str, int], args: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "predictor_search",
        "table": f"{CSV.name} imported with nasforge.bench.importers.import_table (nb201-export)",
        "evaluator": None,
        "charge": "12/200 of the 200-epoch training time per evaluation; proxy: measured",
        "machine": "shared 2-core machine: wall times vary with load, CPU times are the claim",
        "results": {},
    }
    curves: dict[str, dict[str, Any]] = {}
    partial: dict[str, Any] = {}
    for name in args.datasets.split(","):
        budget, res, classes = DATASETS[name]
        table = EVALUATORS.create("tabular", bench, name, hp="12", seed_policy="random")
        report["evaluator"] = {k: v for k, v in table.describe().items() if k != "bench"}
        t, c = time.perf_counter(), cpu_seconds()
        proxy = params_proxy(name, res, classes)
        both = WithZeroCost(table, proxy)
        oracle = table.best_possible()
        per_algo: dict[str, Any] = {
            "budget_s": budget,
            "optimum_test": round(table.optimum(), 3),
            "best_validated_test": round(oracle.test_acc, 3),
            "proxy": {"name": "params", "charged_s_per_arch": proxy.score(Arch.from_index(0))[1]},
        }
        grid = np.linspace(0, budget, 101)
        curves[name] = {"grid": grid}
        by_algo: dict[str, list[Any]] = {}
        for algo in algos:
            t0, c0 = time.perf_counter(), cpu_seconds()
            done: list[float] = []

            def keep(
                i: int, r: Any, algo: str = algo, done: list[float] = done, name: str = name
            ) -> None:
                # per-run results as they come (seeds in order), for a run stopped early
                done.append(r.final_test)
                if args.out:
                    partial[f"{name}/{algo}"] = {"seeds": f"0..{len(done) - 1}", "test": done}
                    atomic_write_json(f"{args.out}.partial.json", partial)

            base, _, variant = algo.partition("@")
            runs = run_protocol(
                base,
                both,
                f"{budget:g}s",
                runs=runs_for[algo],
                seed=0,
                algo_kwargs={"variant": variant} if variant else None,
                progress=keep,
            )
            by_algo[algo] = runs
            per_algo[algo] = {
                **_stats(runs),
                "wall_s": round(time.perf_counter() - t0, 1),
                "cpu_s": round(cpu_seconds() - c0, 1),
            }
            curves[name][algo] = np.nanmean(curve_on_grid(runs, grid), axis=0)
            print(f"{name} {algo} {per_algo[algo]}", file=sys.stderr)
        if "rea" in algos:
            rea = by_algo["rea"]
            best = max((a for a in algos if a != "rea"), key=lambda a: per_algo[a]["test_mean"])
            gap = per_algo[best]["test_mean"] - per_algo["rea"]["test_mean"]
            se = max(per_algo[best]["test_se"], per_algo["rea"]["test_se"])
            per_algo["best_vs_rea"] = {
                "best": best,
                "gap": round(gap, 3),
                "larger_se": se,
                "beats_rea_by_more_than_se": bool(gap > se),
            }
            for algo in algos:
                n = runs_for[algo]
                if algo != "rea" and n < len(rea):
                    # an algorithm run on fewer seeds is compared with REA on the same seeds
                    per_algo[algo]["rea_same_seeds"] = _stats(rea[:n])
        per_algo["wall_s"] = round(time.perf_counter() - t, 1)
        per_algo["cpu_s"] = round(cpu_seconds() - c, 1)
        per_algo["runs_per_algo"] = {a: runs_for[a] for a in algos}
        per_algo["curve"] = {  # mean over runs on the grid; null before any run has a result
            a: [round(float(v), 3) if np.isfinite(v) else None for v in curves[name][a]]
            for a in algos
        }
        report["results"][name] = per_algo
    return report


def merge(paths: list[str]) -> dict[str, Any]:
    """One report from several (e.g. one process per dataset): their results side by side."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    out = {k: v for k, v in reports[0].items() if k != "results"}
    out["results"] = {k: v for r in reports for k, v in r["results"].items()}
    return out


def add_partial(report: dict[str, Any], partial: str, cpu_s_per_run: dict[str, float]) -> None:
    """Add the runs of an algorithm stopped before its run count (``OUT.partial.json``: the
    final x-test accuracy of seeds 0..k-1) to ``report``, next to REA on the same seeds."""
    runs = json.loads(Path(partial).read_text())
    for key, entry in runs.items():
        name, algo = key.split("/", 1)
        res = report["results"].get(name)
        if res is None or algo in res:
            continue
        tests = np.asarray(entry["test"], float)
        n = len(tests)
        stats = {
            "runs": n,
            "seeds": entry["seeds"],
            "test_mean": round(float(tests.mean()), 3),
            "test_std": round(float(tests.std()), 3),
            "test_se": round(float(tests.std(ddof=1) / math.sqrt(n)), 3),
            "note": "stopped early (CPU budget): runs of seeds 0..k-1 from the partial file",
        }
        if algo in cpu_s_per_run:
            stats["cpu_s_per_run"] = cpu_s_per_run[algo]
        rea = runs.get(f"{name}/rea")
        if rea is not None:
            same = np.asarray(rea["test"][:n], float)
            stats["rea_same_seeds"] = {
                "runs": n,
                "test_mean": round(float(same.mean()), 3),
                "test_se": round(float(same.std(ddof=1) / math.sqrt(n)), 3),
            }
        res[algo] = stats


def _plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4))
    for ax, (name, res) in zip(np.atleast_1d(axes), results.items(), strict=True):
        grid = np.linspace(0, res["budget_s"], len(next(iter(res["curve"].values()))))
        for algo, raw in res["curve"].items():
            curve = np.asarray([np.nan if v is None else v for v in raw], float)
            ax.plot(grid, curve, label=f"{algo} ({res['runs_per_algo'][algo]} runs)")
        ax.set_title(name)
        ax.set_xlabel("simulated seconds")
        ax.set_ylabel("mean x-test accuracy of the returned arch (%)")
        lo = min(min(v for v in c[len(c) // 5 :] if v is not None) for c in res["curve"].values())
        ax.set_ylim(lo - 0.5, None)
        ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    main()
