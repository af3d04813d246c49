"""The builder's per-arch cost measurement against the training it accompanies, in a build.

A real ``nasforge.bench.build`` of ``--archs`` archs (one seed, tiny training: ``--epochs``
epochs on ``--limit`` images of ``--dataset``, the network at ``--C`` / ``--N``) runs on the
in-process local executor; every task reports the process CPU seconds of its cost
measurement (params, FLOPs, batch-1 latency: ``measure_cost``) and of its training
(``run_train_task``'s ``cpu_s``). The figure is ``cost_fraction`` = total cost seconds /
total training seconds (issue #32: under 0.10).

Reference, same process, same archs, after the build: the previous measurement -- build
the network, count params and FLOPs on it (``module_cost``), latency as
``nasforge.cost.latency``'s defaults (5 warm-up + median of 20 passes), for every arch --
timed the same way (after the build, so as warm as it), giving ``reference_cost_fraction`` against the same trainings. The
latencies of both are kept, with a second reference measurement of each arch, so the
effect of fewer passes can be set against the measurement's own run-to-run spread.

CPU time with one torch thread is what a shared machine's other jobs inflate least; the
latencies themselves are wall-clock and do move with the load (compare them only within
a run).

    PYTHONPATH=src python benchmarks/build_cost_overhead.py --threads 1 \\
        --out benchmarks/results/build_cost_overhead.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasforge.bench import build as build_mod
from nasforge.bench.build import BuildConfig, resolve_archs
from nasforge.io import atomic_write_json
from nasforge.run.local import LocalExecutor

TARGET_FRACTION = 0.10


class RecordingExecutor(LocalExecutor):
    """The in-process local executor, keeping each task's returned value."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.values: list[dict[str, Any]] = []

    def submit(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        def recorded(*a: Any, **kw: Any) -> Any:
            value = fn(*a, **kw)
            self.values.append(value)
            return value

        return super().submit(recorded, *args, **kwargs)


def reference_cost(arch: Any, data: Any, C: int, N: int) -> tuple[float, float]:
    """(CPU seconds, latency) of the previous per-arch measurement (see the module doc)."""
    from nasforge.cost import latency, module_cost
    from nasforge.nn.nb201 import NB201Network

    t0 = time.process_time()
    net = NB201Network(arch, C=C, N=N, num_classes=data.num_classes)
    res = data.resolution
    module_cost(net, (1, 3, res, res))
    lat = latency(net, (build_mod.LATENCY_BATCH, 3, res, res), device="cpu")
    return time.process_time() - t0, lat


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--archs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = BuildConfig(
        dataset=args.dataset,
        limit=args.limit,
        epochs=args.epochs,
        C=args.C,
        N=args.N,
        archs=args.archs,
        seeds=(777,),
        device="cpu",
    )
    # A one-arch build first (an arch outside the timed set) pays the process's one-off
    # costs -- data loading, oneDNN kernel creation, the params / FLOPs table of this
    # shape -- so that neither the timed build nor the reference after it carries them.
    warm_arch = resolve_archs(args.archs + 1)[-1]
    warm = RecordingExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        build_mod.build(
            dataclasses.replace(config, archs=(warm_arch.to_string(),)),
            Path(tmp) / "table",
            executor=warm,
            progress=False,
        )
    build_mod._LATENCY_CACHE.clear()  # the timed build measures every key afresh
    executor = RecordingExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = build_mod.build(config, Path(tmp) / "table", executor=executor, progress=False)
        wall = time.perf_counter() - t0
    values = executor.values
    cost = [v["cpu_s"]["cost"] for v in values]
    train = [v["cpu_s"]["train"] for v in values]
    data = build_mod._DATA_CACHE[next(iter(build_mod._DATA_CACHE))]
    ref_cost, ref_lat, ref_lat2, short_lat = [], [], [], []
    for arch in resolve_archs(args.archs):
        c, lat = reference_cost(arch, data, args.C, args.N)
        ref_cost.append(c)
        ref_lat.append(lat)
        ref_lat2.append(reference_cost(arch, data, args.C, args.N)[1])
        # The builder's fewer passes at the same moment as the reference (the build's own
        # latencies were measured minutes earlier, under another load).
        short_lat.append(
            build_mod.measure_cost(arch, data, C=args.C, N=args.N, device="cpu")["latency_s"]
        )
        build_mod._LATENCY_CACHE.clear()
    ours_lat = [v["cost"]["latency_s"] for v in values]
    fraction = sum(cost) / sum(train)
    out: dict[str, Any] = {
        "benchmark": "build_cost_overhead",
        "command": "PYTHONPATH=src python benchmarks/build_cost_overhead.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            **vars(args),
            "out": None if args.out is None else str(args.out),
            "latency_passes": [build_mod.LATENCY_WARMUP, build_mod.LATENCY_REPEATS],
            "reference_latency_passes": [5, 20],
        },
        "machine": {"cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "build": {"ok": rep.ok, "failed": rep.failed, "wall_s": wall},
        "warmup_build_cpu_s": warm.values[0]["cpu_s"],
        "train_cpu_s": train,
        "cost_cpu_s": cost,
        "reference_cost_cpu_s": ref_cost,
        "cost_fraction": fraction,
        "reference_cost_fraction": sum(ref_cost) / sum(train),
        "target_fraction": TARGET_FRACTION,
        "meets_target": fraction < TARGET_FRACTION,
        "latency_s": {
            "ours": ours_lat,
            "reference": ref_lat,
            "reference_again": ref_lat2,
            "ours_beside_reference": short_lat,
        },
        # How far our fewer-pass latency is from the reference, next to how far the
        # reference is from itself (the measurement's own spread on this machine).
        "median_abs_log_ratio": {
            "ours_vs_reference": statistics.median(
                abs(math.log(a / b)) for a, b in zip(ours_lat, ref_lat, strict=True)
            ),
            "ours_beside_reference": statistics.median(
                abs(math.log(a / b)) for a, b in zip(short_lat, ref_lat, strict=True)
            ),
            "reference_vs_itself": statistics.median(
                abs(math.log(a / b)) for a, b in zip(ref_lat2, ref_lat, strict=True)
            ),
        },
    }
    print(json.dumps(out, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, out)
    return out


if __name__ == "__main__":
    main()
