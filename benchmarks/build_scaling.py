"""Builder scaling: archs trained per minute with 1 vs 2 local workers and with Ray, and
Ray's per-task overhead against the local executor, measured in the same run.

Three measurements, each with the local executor as the reference:

1. ``build``: the same fixed small build (``--archs`` archs x 1 seed on the embedded
   synthetic data) through ``nasforge.bench.build.build`` with
   - ``local-1``: a pool of 1 worker process with 1 torch thread (the scaling baseline),
   - ``local-2``: a pool of 2 worker processes with 1 torch thread each,
   - ``ray-2``: a local Ray instance with 2 CPUs, 1 CPU per task (Ray gives each task one
     intra-op thread by default).
   Each executor is started and warmed up (one throwaway build of ``workers`` archs, so
   workers have imported torch and loaded the data) before the timed build, so the figure
   is steady-state throughput. Scaling efficiency = throughput(2 workers) / (2 x
   throughput(local-1)).
2. ``fixed``: ``--fixed-tasks`` tasks that each sleep ``--fixed-s`` seconds (a stand-in for a
   10 s training whose duration does not depend on the machine's load), on 2 workers of
   each executor. Per-task overhead = wall time x workers / tasks - task duration; Ray's
   overhead is reported in seconds and as a fraction of the task duration, both absolute
   and relative to the local executor's.
3. ``dispatch``: ``--noop-tasks`` empty tasks through ``map``: the pure round-trip cost of
   one task on each engine.

Usage: ``python benchmarks/build_scaling.py [--out benchmarks/results/build_scaling.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def sleep_task(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def noop_task(x: int) -> int:
    return x


def make_executor(kind: str) -> Any:
    from nasforge.run import create_executor

    if kind == "local-1":
        return create_executor("local", workers=1, processes=True, threads_per_worker=1)
    if kind == "local-2":
        return create_executor("local", workers=2, threads_per_worker=1)
    if kind == "ray-2":
        return create_executor("ray", workers=2)
    raise ValueError(kind)


def timed_build(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from nasforge.bench.build import BuildConfig, build

    base = dict(
        dataset=args.dataset,
        seeds=(777,),
        limit=args.limit,
        epochs=args.epochs,
        C=args.C,
        N=args.N,
        device="cpu",
    )
    t0 = time.perf_counter()
    ex = make_executor(kind)
    try:
        started = time.perf_counter() - t0
        # Warm-up: different archs (order_seed 1) into a throwaway table.
        warm = BuildConfig(archs=ex.num_workers, order_seed=1, **base)
        build(warm, tmp / f"warm-{kind}", executor=ex, progress=False)
        warmed = time.perf_counter() - t0
        cfg = BuildConfig(archs=args.archs, order_seed=0, **base)
        rep = build(cfg, tmp / f"build-{kind}", executor=ex, progress=False)
    finally:
        ex.shutdown()
    assert rep.ok == args.archs, rep.errors
    return {
        "executor": kind,
        "trainings": rep.trained,
        "wall_s": round(rep.elapsed_s, 3),
        "archs_per_min": round(60.0 * rep.trained / rep.elapsed_s, 2),
        "start_s": round(started, 3),
        "start_and_warmup_s": round(warmed, 3),
    }


def fixed_tasks(kind: str, n: int, seconds: float) -> dict[str, Any]:
    ex = make_executor(kind)
    try:
        list(ex.map(noop_task, range(2 * ex.num_workers)))  # workers up before timing
        t0 = time.perf_counter()
        outs = list(ex.map(sleep_task, [seconds] * n))
        wall = time.perf_counter() - t0
    finally:
        ex.shutdown()
    assert all(o.ok for o in outs)
    per_task = wall * ex.num_workers / n
    return {
        "executor": kind,
        "tasks": n,
        "task_s": seconds,
        "workers": ex.num_workers,
        "wall_s": round(wall, 4),
        "per_task_s": round(per_task, 4),
        "overhead_per_task_s": round(per_task - seconds, 4),
        "mean_in_worker_s": round(sum(o.run_time for o in outs) / n, 4),
    }


def dispatch(kind: str, n: int) -> dict[str, Any]:
    ex = make_executor(kind)
    try:
        list(ex.map(noop_task, range(2 * ex.num_workers)))
        t0 = time.perf_counter()
        outs = list(ex.map(noop_task, range(n), max_in_flight=4 * ex.num_workers))
        wall = time.perf_counter() - t0
    finally:
        ex.shutdown()
    assert len(outs) == n and all(o.ok for o in outs)
    return {
        "executor": kind,
        "tasks": n,
        "wall_s": round(wall, 4),
        "ms_per_task": round(1000 * wall / n, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic-16px-10c")
    p.add_argument("--archs", type=int, default=16)
    p.add_argument("--limit", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--N", type=int, default=1)
    p.add_argument("--fixed-tasks", type=int, default=4)
    p.add_argument("--fixed-s", type=float, default=10.0)
    p.add_argument("--noop-tasks", type=int, default=200)
    p.add_argument("--no-ray", action="store_true", help="Skip the Ray measurements.")
    p.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = p.parse_args()

    try:
        import ray  # noqa: F401

        have_ray = not args.no_ray
    except ImportError:
        have_ray = False
    kinds = ["local-1", "local-2"] + (["ray-2"] if have_ray else [])
    two = ["local-2"] + (["ray-2"] if have_ray else [])

    tmp = Path(tempfile.mkdtemp(prefix="build-scaling-"))
    try:
        builds = {k: timed_build(k, args, tmp) for k in kinds}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fixed = {k: fixed_tasks(k, args.fixed_tasks, args.fixed_s) for k in two}
    noop = {k: dispatch(k, args.noop_tasks) for k in two}

    base = builds["local-1"]["archs_per_min"]
    result: dict[str, Any] = {
        "benchmark": "build_scaling",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared machine: other jobs were using the same cores during the run",
        },
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"out": None},
        "build": builds,
        "scaling_efficiency": {k: round(builds[k]["archs_per_min"] / (2 * base), 3) for k in two},
        "speedup_vs_local_1": {k: round(builds[k]["archs_per_min"] / base, 3) for k in two},
        "fixed_tasks": fixed,
        "dispatch": noop,
    }
    if have_ray:
        ray_over = fixed["ray-2"]["overhead_per_task_s"]
        local_over = fixed["local-2"]["overhead_per_task_s"]
        result["ray_overhead"] = {
            "per_task_s": ray_over,
            "fraction_of_task": round(ray_over / args.fixed_s, 5),
            "extra_vs_local_per_task_s": round(ray_over - local_over, 4),
            "extra_vs_local_fraction": round((ray_over - local_over) / args.fixed_s, 5),
            "target_fraction": 0.05,
            "meets_target": ray_over / args.fixed_s < 0.05,
            "dispatch_ms_per_task_ray_vs_local": [
                noop["ray-2"]["ms_per_task"],
                noop["local-2"]["ms_per_task"],
            ],
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
        tmp_out.write_text(text + "\n")
        os.replace(tmp_out, args.out)


if __name__ == "__main__":
    main()
