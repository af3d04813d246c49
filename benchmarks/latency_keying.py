"""Benchmark: AOWS latency model, official layer-type keying vs per-group-pair tables.

    python benchmarks/latency_keying.py --out benchmarks/results/latency_keying.json

Measures the CPU latency (ms per image; ``nasforge.cost.latency_model.measure_widths``) of
``--train`` biased + ``--val`` uniformly random width configurations of a backbone, once,
and fits both keyings of :class:`~nasforge.cost.latency_model.LatencyModel` on the first
n of the training configurations for every n of ``--sizes``: ``layer-type`` (the official
``Vartype``: one variable per layer type and (in, out) channels, shared by every layer of
that type; the default) and ``group-pair`` (one free table per pair of channel groups, the
earlier nasforge model). Both are scored on the same held-out configurations (RMSE in ms,
and relative to the mean latency). Both fits see the same measurements; the noise floor is
estimated by measuring ``--repeat-configs`` configurations twice.

``--clock wall`` times forward passes by the wall clock (``measure_widths``, what a search
uses); on a shared machine under load its noise can exceed the spread of latencies.
``--clock cpu`` (default) times the same passes (eval mode, no gradients, one thread) by
the process's CPU time, which other processes disturb far less: the benchmark then compares
the two keyings on a signal a loaded machine can measure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nasforge.cost.latency_model import (
    LatencyModel,
    MeasureSettings,
    measure_widths,
    sample_configurations,
)
from nasforge.io import atomic_write_json
from nasforge.nn.backbones import build_from_spec
from nasforge.spaces.width import make_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet20")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--train", type=int, default=160)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--sizes", default="20,40,80,160")
    ap.add_argument("--repeat-configs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--penalty", type=float, default=100.0)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    if not sizes or max(sizes) > args.train or min(sizes) < 1:
        raise SystemExit(f"--sizes must be in 1..--train ({args.train}), got {sizes}")
    space = make_space(args.backbone, resolution=args.resolution, levels=args.levels)
    ms = MeasureSettings(batch_size=args.batch, warmup=2, repeats=args.repeats)
    shell = LatencyModel(space)
    train = sample_configurations(shell, np.random.default_rng([args.seed, 11]), args.train,
                                  biased=True)  # fmt: skip
    val = space.sample_indices(np.random.default_rng([args.seed, 12]), args.val)
    t0, c0 = time.perf_counter(), time.process_time()

    def cpu_ms(widths: list[int]) -> float:
        model = build_from_spec(space.spec, widths).eval()
        x = torch.randn(args.batch, 3, args.resolution, args.resolution)
        with torch.no_grad():
            for _ in range(ms.warmup):
                model(x)
            c = time.process_time()
            for _ in range(ms.repeats):
                model(x)
            return 1000.0 * (time.process_time() - c) / ms.repeats / args.batch

    def measure(idx: np.ndarray) -> np.ndarray:
        out = []
        for i in idx:
            w = [int(v) for v in space.decode(i)]
            out.append(cpu_ms(w) if args.clock == "cpu" else measure_widths(space, w, settings=ms))
        return np.asarray(out)

    y_train, y_val = measure(train), measure(val)
    n_rep = min(args.repeat_configs, len(val))
    y_rep = measure(val[:n_rep])
    noise = float(np.sqrt(np.mean((y_rep - y_val[:n_rep]) ** 2) / 2))
    measure_s = time.perf_counter() - t0
    rows = []
    for n in sizes:
        for keying in ("layer-type", "group-pair"):
            model = LatencyModel(space, keying=keying)
            t = time.process_time()
            model.fit(train[:n], y_train[:n], penalty=args.penalty)
            rmse = model.rmse(val, y_val)
            rows.append({"train_configs": n, "keying": keying, "variables": model.num_variables,
                         "val_rmse_ms": rmse, "val_nrmse": rmse / float(y_val.mean()),
                         "train_rmse_ms": model.rmse(train[:n], y_train[:n]),
                         "fit_cpu_s": time.process_time() - t})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    best = {k: min((r for r in rows if r["keying"] == k), key=lambda r: r["val_rmse_ms"])
            for k in ("layer-type", "group-pair")}  # fmt: skip
    out = {
        "benchmark": "latency_keying",
        "command": " ".join(["python", *sys.argv]),
        "space": {k: v for k, v in space.describe().items() if k != "groups"},
        "measure": vars(args) | {"out": str(args.out)},
        "val_mean_ms": float(y_val.mean()),
        "val_sd_ms": float(y_val.std()),
        "measurement_noise_sd_ms": noise,
        "measure_wall_s": measure_s,
        "cpu_s": time.process_time() - c0,
        "fits": rows,
        "verdict": (
            f"held-out RMSE, layer-type {best['layer-type']['val_rmse_ms']:.4f} ms at "
            f"{best['layer-type']['train_configs']} configs vs group-pair "
            f"{best['group-pair']['val_rmse_ms']:.4f} ms at {best['group-pair']['train_configs']};"
            f" single-measurement noise SD {noise:.4f} ms, spread of latencies "
            f"{float(y_val.std()):.4f} ms"
        ),
    }
    print(out["verdict"])
    if args.out is not None:
        atomic_write_json(args.out, out)


if __name__ == "__main__":
    main()
