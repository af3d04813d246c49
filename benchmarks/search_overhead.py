"""Search overhead: 100 REA runs of 12,000 simulated seconds on a full-size synthetic table.

The NAS-Bench-201 protocol (Dong & Yang, ICLR 2020) reports each algorithm over hundreds of
runs; with a tabular benchmark the runs must cost nothing but bookkeeping. Target: the 100
runs in < 10 s of wall time in total.

Two paths run the *same* 100 searches (same seeds, same seed draws from the table):

- ``fast``: :class:`nasforge.evaluate.TabularEvaluator`, one numpy lookup per evaluation in
  the table's bulk arrays (``Benchmark.table``);
- ``reference``: an evaluator written against the per-call query API only
  (``bench.simulate`` for the run, ``bench.query`` for the validation-pass time and for the
  report), as a user without the bulk arrays would write it.

Both must give identical trajectories; the figure is the ratio of their wall times.

    .venv/bin/python benchmarks/search_overhead.py [--runs 100] [--budget 12000s]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from nasforge.bench import Benchmark, make_synthetic_table
from nasforge.evaluate import Evaluator, Observation, Reported, TabularEvaluator
from nasforge.search.protocol import run_protocol, summarize
from nasforge.spaces.nb201 import Arch


class PerCallEvaluator(Evaluator):
    """The reference: the same semantics as TabularEvaluator, through per-call queries."""

    clock = "simulated"

    def __init__(self, bench: Benchmark, dataset: str, hp: str = "12", report_hp: str = "200"):
        self.bench, self.dataset, self.hp, self.report_hp = bench, dataset, hp, report_hp
        self.rng = np.random.default_rng(0)
        self.epochs = bench.num_epochs(dataset, hp)

    @property
    def fidelities(self):
        return tuple(range(1, self.epochs + 1))

    @property
    def default_fidelity(self):
        return self.epochs

    def reset(self, seed: int) -> None:
        # the same stream TabularEvaluator uses, so both pick the same seed per evaluation
        self.rng = np.random.default_rng([int(seed), 0x7AB1E])

    def evaluate(self, arch, fidelity=None, *, resume_key=None):
        sim = self.bench.simulate(arch, self.dataset, epoch=fidelity, hp=self.hp, rng=self.rng)
        rec = self.bench.query(arch, self.dataset, hp=self.hp, seed=sim.seed)
        # the official charge: the mean validation pass time over epochs 1..e
        # (nas_201_api get_more_info's valid-per-time)
        vt = float(np.nanmean(rec.curves["valid_time"][: sim.epoch]))
        cost = sim.train_time + (vt if math.isfinite(vt) else 0.0)
        return Observation(
            arch, sim.valid_acc, sim.epoch, cost, sim.test_acc, "ok", {"seed": sim.seed}
        )

    def report(self, arch, observation):
        rec = self.bench.query(arch, self.dataset, hp=self.report_hp)
        return Reported(rec.final["valid_acc"], rec.final["test_acc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--budget", default="12000s")
    ap.add_argument("--dataset", default="cifar10-valid")
    ap.add_argument("--algo", default="rea")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = make_synthetic_table(Path(tmp) / "synthetic")  # 15,625 archs x 3 ds x {12,200}
        make_s = time.perf_counter() - t0
        bench = Benchmark.open(path)

        # one warm-up evaluation + report each (first-touch of memory maps, lazy arrays)
        a0 = Arch.from_index(0)
        fast_ev = TabularEvaluator(bench, args.dataset)
        fast_ev.report(a0, fast_ev.evaluate(a0))
        t0 = time.perf_counter()
        fast = run_protocol(args.algo, fast_ev, args.budget, runs=args.runs, seed=0)
        fast_s = time.perf_counter() - t0

        ref_ev = PerCallEvaluator(bench, args.dataset)
        ref_ev.report(a0, ref_ev.evaluate(a0))
        t0 = time.perf_counter()
        ref = run_protocol(args.algo, ref_ev, args.budget, runs=args.runs, seed=0)
        ref_s = time.perf_counter() - t0

    identical = all(
        a.history["arch_index"] == b.history["arch_index"]
        and np.allclose(a.times, b.times)
        and np.allclose(a.test, b.test)
        for a, b in zip(fast, ref, strict=True)
    )
    evals = sum(r.num_evals for r in fast)
    s = summarize(fast)
    out = {
        "benchmark": "search_overhead",
        "algo": args.algo,
        "runs": args.runs,
        "budget": args.budget,
        "dataset": args.dataset,
        "table": "synthetic, 15625 archs x 3 datasets x hp {12, 200} x 3 seeds",
        "make_table_s": round(make_s, 2),
        "evaluations_total": evals,
        "fast": {
            "wall_s": round(fast_s, 3),
            "us_per_evaluation": round(1e6 * fast_s / evals, 2),
        },
        "reference_per_call_api": {
            "wall_s": round(ref_s, 3),
            "us_per_evaluation": round(1e6 * ref_s / evals, 2),
        },
        "speedup_vs_reference": round(ref_s / fast_s, 2),
        "identical_results": identical,
        "target_wall_s": 10.0,
        "meets_target": fast_s < 10.0,
        "result": {"test": s["test"], "evals_per_run": s["evals_mean"]},
        "machine": platform.platform(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
