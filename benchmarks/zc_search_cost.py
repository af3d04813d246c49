"""CPU time of zero-cost-guided searches before / after analytic cost proxies (issue #33).

Runs ``zc-local-search`` and ``zc-bananas`` on the real NB201 CIFAR-100 table (imported from
``../shared/nb201/real_cifar100_imagenet16.csv``) with the data-free ``params`` proxy, the way
``nasforge search --zc-proxy params --zc-charge S`` does (one ZeroCostEvaluator per command,
its per-process cache on, a fixed charge per query so the clocks are reproducible):

- ``built``: every new arch's ``params`` counted on its built NB201 network (the path every
  proxy took before; ``analytic=False``);
- ``analytic``: read from the cost counters (``nasforge.cost.SHAPE_COSTS``).

Both modes run the same seeds in one process; the script checks that every run's trajectory
(archs, fidelities, costs, returned arch) is identical and prints the CPU seconds of each.

    python benchmarks/zc_search_cost.py --runs 10 --out benchmarks/results/zc_search_cost.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from nasforge.bench.importers import import_table
from nasforge.evaluate import EVALUATORS
from nasforge.evaluate.zero_cost import ProxyBatch, WithZeroCost, ZeroCostEvaluator
from nasforge.io import atomic_write_json
from nasforge.search.protocol import run_protocol

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "nb201" / "real_cifar100_imagenet16.csv"
BUDGET_S = 40_000.0  # the NB201 CIFAR-100 budget
CHARGE_S = 0.1  # seconds charged per proxy query in both modes (--zc-charge 0.1)


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def trajectory(run: Any) -> tuple[Any, ...]:
    h = run.history
    return (tuple(h["arch"]), tuple(h["fidelity"]), tuple(h["cost"]), run.final_arch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--algos", default="zc-local-search,zc-bananas")
    ap.add_argument("--bench", default=None, help="a table imported from the CSV already")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            if not CSV.exists():
                sys.exit(f"needs {CSV}")
            bench = import_table(CSV, Path(tmp) / "real.table")
        table = EVALUATORS.create("tabular", bench, "cifar100", hp="12", seed_policy="random")
        # CIFAR-100's input shape and classes: the params proxy is data-free, the batch only
        # gives the network its shape.
        batch = ProxyBatch(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.int64), 100)
        report: dict[str, Any] = {
            "benchmark": "zc_search_cost",
            "table": "cifar100 (real NB201 export), hp 12, seed_policy random",
            "proxy": "params",
            "charge_s_per_query": CHARGE_S,
            "budget_s": BUDGET_S,
            "runs": args.runs,
            "threads": args.threads,
            "results": {},
        }
        for algo in args.algos.split(","):
            by_mode: dict[str, Any] = {}
            trajectories = {}
            for mode in ("built", "analytic"):
                proxy = ZeroCostEvaluator(
                    "params", batch, charge=CHARGE_S, analytic=(mode == "analytic")
                )
                c0 = cpu_seconds()
                runs = run_protocol(
                    algo, WithZeroCost(table, proxy), f"{BUDGET_S:g}s", runs=args.runs, seed=0
                )
                cpu = cpu_seconds() - c0
                trajectories[mode] = [trajectory(r) for r in runs]
                by_mode[mode] = {
                    "cpu_s": round(cpu, 2),
                    "cpu_s_per_run": round(cpu / args.runs, 3),
                    "test_mean": round(sum(r.final_test for r in runs) / len(runs), 3),
                }
                print(f"{algo} {mode} {by_mode[mode]}", file=sys.stderr)
            same = trajectories["built"] == trajectories["analytic"]
            by_mode["identical_trajectories"] = same
            by_mode["speedup"] = round(by_mode["built"]["cpu_s"] / by_mode["analytic"]["cpu_s"], 1)
            report["results"][algo] = by_mode
            if not same:
                print(f"{algo}: trajectories differ between the modes", file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        atomic_write_json(args.out, report)
    if not all(r["identical_trajectories"] for r in report["results"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
