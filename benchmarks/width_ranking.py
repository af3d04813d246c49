"""Benchmark: how well does a width supernet rank widths? Fixed sharing vs CafeNet.

    .venv/bin/python benchmarks/width_ranking.py [--out benchmarks/results/width_ranking.json]

On the embedded ``digits`` data (real 8x8 digits at 16x16, 1078 train / 359 valid images)
and ResNet-20 with FLOPs-sensitive bins:

1. trains a fixed-sharing (AutoSlim-style) and a CafeNet (locally free, min-min) supernet
   with the same recipe, seed and sandwich sampling;
2. draws a sample of width configurations spread over the FLOPs range (stratified by
   FLOPs quantile) and scores each with both supernets (validation accuracy after BN
   recalibration; CafeNet with its best free-channel placement);
3. trains every configuration stand-alone from scratch with a short recipe and takes its
   validation accuracy;
4. reports Kendall's tau between each supernet's scores and the stand-alone accuracies,
   next to the references measured in the same run: ranking by FLOPs alone, and (for
   the noise floor) tau between two stand-alone trainings with different seeds of a subset.

It also measures the analytic FLOPs throughput (configurations per second) against the
module counter ``nasforge.cost.count_flops`` on the same configurations.

Work runs on ``--workers`` local processes (``nasforge.run``), one torch thread each, to fit
a 2-core machine in about ten minutes; the figures are one seed and a dozen configurations, so the tau's
standard error is large (~0.2) -- see ``tau_se``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from nasforge.cost import count_flops
from nasforge.io import atomic_write_json
from nasforge.nn.backbones import build_from_spec
from nasforge.run import create_executor
from nasforge.search.width import CafeNetSearch, FixedWidthSearch, SupernetSettings
from nasforge.search.width.protocol import load_data, retrain_widths, space_for
from nasforge.train import get_recipe


def stratified_configs(space, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` configurations at evenly spaced FLOPs quantiles (5%..95%) of random samples."""
    pool = space.sample(rng, 20000)
    order = np.argsort(space.flops(pool))
    picks = np.round(np.linspace(0.05, 0.95, n) * (len(pool) - 1)).astype(int)
    return pool[order[picks]]


def tau(a: list[float], b: list[float]) -> float:
    t = kendalltau(a, b).statistic
    return float(t) if np.isfinite(t) else float("nan")


def flops_throughput(space, rng: np.random.Generator) -> dict:
    batch = space.sample(rng, 100_000)
    t = time.perf_counter()
    space.flops(batch)
    vec = time.perf_counter() - t
    few = batch[:20]
    t = time.perf_counter()
    counted = [
        count_flops(build_from_spec(space.spec, list(w)), (1, 3, space.spec.resolution,
                    space.spec.resolution))
        for w in few
    ]  # fmt: skip
    mod = (time.perf_counter() - t) / len(few)
    exact = bool(np.allclose(counted, space.flops(few), rtol=1e-12))
    return {
        "configs_per_s_analytic": len(batch) / vec,
        "configs_per_s_module_counter": 1.0 / mod,
        "speedup": (len(batch) / vec) * mod,
        "analytic_equals_counter": exact,
    }


def _setup(args: argparse.Namespace):
    data = load_data(args.dataset, seed=args.seed)
    space = space_for(args.backbone, data)
    sup = get_recipe("nb201-200e", epochs=args.supernet_epochs, batch_size=args.batch_size)
    sa = get_recipe("nb201-200e", epochs=args.standalone_epochs, batch_size=args.batch_size)
    return data, space, sup, sa


def _task(task: tuple) -> dict:
    """One unit of work (runs in a worker process): a supernet or a stand-alone training."""
    torch.set_num_threads(1)
    kind, args, payload = task
    data, space, sup_recipe, sa_recipe = _setup(args)
    t = time.perf_counter()
    if kind == "supernet":
        cls, configs = payload
        search = cls(space, recipe=sup_recipe, seed=args.seed,
                     supernet=SupernetSettings(num_random=2, num_placements=3))  # fmt: skip
        log = search.fit(data)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        scores = [search.score(tuple(int(v) for v in w)) for w in configs]
        last = log.epochs[-1]
        return {
            "name": search.name,
            "scores": scores,
            "train_s": train_s,
            "scoring_s": time.perf_counter() - t,
            "info": {
                "final_train_acc_largest": last["acc_largest"],
                "final_train_acc_smallest": last["acc_smallest"],
                "free_win_rate": log.to_dict()["free_win_rate"],
                **search.sharing.describe(),
            },
        }
    widths, seed = payload
    tr = retrain_widths(space, [int(v) for v in widths], data, sa_recipe, seed=seed)
    return {"valid": tr.final("valid"), "test": tr.final("test"), "s": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet20")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--configs", type=int, default=12)
    ap.add_argument("--supernet-epochs", type=int, default=12)
    ap.add_argument("--standalone-epochs", type=int, default=10)
    ap.add_argument(
        "--noise-configs",
        type=int,
        default=6,
        help="configs retrained with a second seed (noise floor)",
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    data, space, sup_recipe, sa_recipe = _setup(args)
    configs = stratified_configs(space, args.configs, rng)
    flops = space.flops(configs).tolist()
    sub = np.round(np.linspace(0, len(configs) - 1, args.noise_configs)).astype(int).tolist()
    out: dict = {
        "benchmark": "width_ranking",
        "backbone": args.backbone,
        "dataset": args.dataset,
        "data": data.summary(),
        "space": {k: v for k, v in space.describe().items() if k != "groups"},
        "supernet_recipe": sup_recipe.to_dict(),
        "standalone_recipe": sa_recipe.to_dict(),
        "seed": args.seed,
        "workers": args.workers,
        "threads_per_worker": 1,
        "flops_throughput": flops_throughput(space, rng),
        "configs": [
            {"widths": [int(v) for v in w], "flops_m": f}
            for w, f in zip(configs, flops, strict=False)
        ],
    }
    # Longest tasks first so the two supernets run side by side on the two workers.
    tasks = [("supernet", args, (cls, configs)) for cls in (FixedWidthSearch, CafeNetSearch)]
    tasks += [("standalone", args, (configs[i], args.seed)) for i in range(len(configs))]
    tasks += [("standalone", args, (configs[i], args.seed + 1)) for i in sub]
    results: list = [None] * len(tasks)
    with create_executor("local", workers=args.workers, threads_per_worker=1) as ex:
        for o in ex.map(_task, tasks):
            if not o.ok:
                raise RuntimeError(f"task {o.index} failed:\n{o.error}")
            results[o.index] = o.value
            print(f"done {o.index + 1}/{len(tasks)} ({o.run_time:.0f} s)", file=sys.stderr)
    sup_results = {r["name"]: r for r in results[:2]}
    scores = {k: r["scores"] for k, r in sup_results.items()}
    standalone = results[2 : 2 + len(configs)]
    second = [r["valid"] for r in results[2 + len(configs) :]]
    sa_valid = [s["valid"] for s in standalone]
    sa_test = [s["test"] for s in standalone]
    n = len(configs)
    for c, s, sv, st in zip(
        out["configs"], zip(*scores.values(), strict=False), sa_valid, sa_test, strict=False
    ):
        c["supernet_acc"] = dict(zip(scores, s, strict=False))
        c["standalone_valid_acc"] = sv
        c["standalone_test_acc"] = st
    out["supernets"] = {k: r["info"] for k, r in sup_results.items()}
    out["kendall_tau"] = {
        **{f"{k}_vs_standalone_valid": tau(v, sa_valid) for k, v in scores.items()},
        **{f"{k}_vs_standalone_test": tau(v, sa_test) for k, v in scores.items()},
        "flops_vs_standalone_valid (reference)": tau(flops, sa_valid),
        "fixed_vs_cafenet_scores": tau(scores["fixed-width"], scores["cafenet"]),
        "standalone_seed0_vs_seed1 (noise floor, subset)": tau([sa_valid[i] for i in sub], second),
    }
    # Standard error of tau under independence: sqrt(2(2n+5) / (9n(n-1))).
    out["tau_se"] = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
    out["noise_floor_subset"] = sub
    d = out["kendall_tau"]
    diff = d["cafenet_vs_standalone_valid"] - d["fixed-width_vs_standalone_valid"]
    out["verdict"] = (
        "cafenet ranks better than fixed sharing"
        if diff > 0
        else "cafenet does not rank better than fixed sharing"
    ) + (" (difference within one standard error)" if abs(diff) < out["tau_se"] else "")
    out["timings"] = {
        **{f"{k}_supernet_train_s": r["train_s"] for k, r in sup_results.items()},
        **{f"{k}_scoring_s": r["scoring_s"] for k, r in sup_results.items()},
        "standalone_train_s_total": sum(r["s"] for r in results[2:]),
        "wall_s": time.perf_counter() - t_start,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_json(args.out, out)


if __name__ == "__main__":
    main()
