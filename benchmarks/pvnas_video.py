"""Benchmark: video recognition on the embedded moving digits -- TSN vs TSM on motion,
PV-NAS search (diversity scheduler vs plain cosine), searched net vs baselines at matched
multiply-adds.

    PYTHONPATH=src .venv/bin/python benchmarks/pvnas_video.py \\
        --out benchmarks/results/pvnas_video.json

CPU scale, tiny: 16x16 grey clips of 8 frames, 4 TSN segments, a 6-layer residual
skeleton (:mod:`nasforge.spaces.pvnas`), one torch thread. Everything is measured in this
run; nothing is a constant.

1. **Motion needs time.** TSN (every layer ``2d3``: per-frame 2D CNN, average consensus)
   and TSM (every layer ``shift``) at the same width, trained with the ``video-tiny``
   recipe on ``moving-digits-motion`` (label = direction alone, 2 classes, chance 50%).
   The data are built so that the frame set of a clip does not depend on its direction
   (:func:`nasforge.data.video.make_moving_digits`), so TSN must stay at chance.
2. **Search.** ``pv-nas`` on ``moving-digits-full`` (direction x digit, 20 classes) for
   each of ``--seeds`` seeds, with the default diversity (restart) scheduler and with plain
   cosine; the spread of the derived archs across seeds (mean pairwise Hamming distance
   over the 12 positions, number of distinct archs) and, within a run, the distinct archs
   derived at the end of each epoch / cycle.
3. **Searched vs baselines at matched multiply-adds.** The arch derived by the first seed
   of each scheduler, trained at C=16; TSN, TSM, R(2+1)D (all ``r21d3``) and a 3D CNN (all
   ``3d3``) with their stem width C chosen to bring their multiply-adds per clip closest to
   the diversity-searched net's. Each is trained from scratch with ``video-tiny``
   (``--train-epochs``) on ``moving-digits-full``: test top-1 (single centre clip),
   params, multiply-adds per clip, CPU latency (one clip, one thread, median of
   ``--latency-runs``), and the search cost (wall seconds of the search that found it).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln),
            platform.processor(),
        )
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()


def _train(
    arch: Any, dataset: str, epochs: int, C: int, seed: int, limit: int | None
) -> dict[str, Any]:
    from nasforge.nn import build_network
    from nasforge.tasks import get_task
    from nasforge.train import fit_fresh, get_recipe

    task = get_task("video-digits")
    data = task.load(dataset, seed=0, limit=limit)
    io = task.network_io(data)
    recipe = get_recipe("video-tiny", epochs=epochs)
    t0 = time.perf_counter()
    res, model = fit_fresh(
        lambda: build_network("pvnas", arch, io=io, C=C), data, recipe, task=task, seed=seed
    )
    last = res.epochs[-1].eval
    return {
        "test_acc": last["test"]["acc"],
        "valid_acc": last["valid"]["acc"],
        "train_s": time.perf_counter() - t0,
        "curve_test_acc": [r.eval["test"]["acc"] for r in res.epochs],
        "params": res.num_params,
        "model": model,
        "io": io,
    }


def _latency(model: torch.nn.Module, io: dict[str, Any], runs: int) -> float:
    model.eval()
    x = torch.randn(1, io["frames"], io["in_channels"], 16, 16)
    times = []
    with torch.no_grad():
        for i in range(runs + 5):
            t0 = time.perf_counter()
            model(x)
            if i >= 5:
                times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--search-epochs", type=int, default=6)
    ap.add_argument("--search-limit", type=int, default=384, help="clips per split in search")
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--arch-lr", type=float, default=3e-4, help="pv-nas arch_lr (DARTS: 3e-4)")
    ap.add_argument(
        "--only-search", action="store_true", help="part 2 alone (the scheduler comparison)"
    )
    ap.add_argument("--train-epochs", type=int, default=8)
    ap.add_argument("--motion-epochs", type=int, default=4)
    ap.add_argument("--latency-runs", type=int, default=30)
    ap.add_argument("--train-limit", type=int, default=None, help="clips per split (smoke runs)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from nasforge.io import atomic_write_json, check_output_file
    from nasforge.search.task_search import TaskSearchSpec
    from nasforge.search.video.pvnas import PVNASSearch
    from nasforge.spaces import get_space
    from nasforge.spaces.pvnas import PVNASArch, hamming, pvnas_cost
    from nasforge.tasks import get_task

    check_output_file(args.out)
    space = get_space("pvnas")
    t_start = time.perf_counter()
    doc: dict[str, Any] = {
        "cpu": _cpu(),
        "threads": 1,
        "note": "shared, loaded 2-core machine; times are wall seconds",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }

    # 1. TSN vs TSM on the motion alone.
    motion = {}
    for name, op in () if args.only_search else (("TSN", "2d3"), ("TSM", "shift")):
        r = _train(
            PVNASArch.uniform(op),
            "moving-digits-motion",
            args.motion_epochs,
            16,
            0,
            args.train_limit,
        )
        motion[name] = {k: v for k, v in r.items() if k not in ("model", "io")}
        print(f"motion {name}: test {r['test_acc']:.2f}%", flush=True)
    doc["motion"] = {"dataset": "moving-digits-motion", "chance": 50.0, "runs": motion}

    # 2. Searches: diversity vs cosine, several seeds.
    task = get_task("video-digits")
    searches: dict[str, list[dict[str, Any]]] = {}
    for scheduler in ("diversity", "cosine"):
        searches[scheduler] = []
        for seed in range(args.seeds):
            spec = TaskSearchSpec(
                task=task,
                space="pvnas",
                seed=seed,
                dataset="moving-digits-full",
                epochs=args.search_epochs,
                limit=args.search_limit,
                params={"scheduler": scheduler, "cycles": args.cycles, "arch_lr": args.arch_lr},
            )
            with tempfile.TemporaryDirectory() as tmp:
                res = PVNASSearch().run(spec, Path(tmp))
            searches[scheduler].append(
                {
                    "seed": seed,
                    "arch": res.arch,
                    "search_s": res.search_time_s,
                    "supernet_valid_acc": res.extra["supernet_valid"]["acc"],
                    "cycle_archs": res.extra["cycle_archs"],
                    "distinct_epoch_archs": res.extra["distinct_epoch_archs"],
                    "epoch_archs": [h["arch"] for h in res.extra["history"]],
                }
            )
            print(
                f"search {scheduler} seed {seed}: {res.arch} ({res.search_time_s:.0f} s)",
                flush=True,
            )
    spread = {}
    for scheduler, runs in searches.items():
        archs = [space.from_string(r["arch"]) for r in runs]
        pairs = list(itertools.combinations(archs, 2))
        spread[scheduler] = {
            "mean_pairwise_hamming": (
                statistics.mean(hamming(a, b) for a, b in pairs) if pairs else 0.0
            ),
            "distinct_archs_across_seeds": len(set(archs)),
            "mean_distinct_epoch_archs": statistics.mean(r["distinct_epoch_archs"] for r in runs),
            "mean_distinct_cycle_archs": statistics.mean(len(set(r["cycle_archs"])) for r in runs),
            "temporal_layers": [sum(o != "2d3" and o != "2d5" for o in a.ops) for a in archs],
            "positions": 2 * len(archs[0].ops),
        }
    doc["search"] = {"dataset": "moving-digits-full", "runs": searches, "spread": spread}

    if args.only_search:
        doc["wall_s"] = time.perf_counter() - t_start
        atomic_write_json(args.out, doc)
        print(f"wrote {args.out}")
        return

    # 3. Searched vs baselines at matched multiply-adds.
    shape = {"frames": 4, "size": 16, "in_channels": 1, "num_classes": 20}
    searched = {s: space.from_string(searches[s][0]["arch"]) for s in searches}
    target = pvnas_cost(searched["diversity"], **shape, C=16)["macs"]

    def matched_C(arch: PVNASArch) -> int:
        return min(range(4, 49), key=lambda c: abs(pvnas_cost(arch, **shape, C=c)["macs"] - target))

    rows = [
        (f"PV-NAS ({s})", searched[s], 16, searches[s][0]["search_s"])
        for s in ("diversity", "cosine")
    ]
    for name, op in (("TSN", "2d3"), ("TSM", "shift"), ("R(2+1)D", "r21d3"), ("3D CNN", "3d3")):
        arch = PVNASArch.uniform(op)
        rows.append((name, arch, matched_C(arch), 0.0))
    table = []
    for name, arch, C, search_s in rows:
        r = _train(arch, "moving-digits-full", args.train_epochs, C, 0, args.train_limit)
        cost = pvnas_cost(arch, **shape, C=C)
        row = {
            "model": name,
            "arch": space.to_string(arch),
            "C": C,
            "test_acc": r["test_acc"],
            "valid_acc": r["valid_acc"],
            "curve_test_acc": r["curve_test_acc"],
            "params": r["params"],
            "macs_per_clip": cost["macs"],
            "latency_ms": _latency(r["model"], r["io"], args.latency_runs),
            "train_s": r["train_s"],
            "search_s": search_s,
        }
        assert row["params"] == cost["params"]
        table.append(row)
        print(
            f"{name}: C={C} test {row['test_acc']:.2f}% params {row['params']} "
            f"MACs {cost['macs'] / 1e6:.2f}M latency {row['latency_ms']:.2f} ms",
            flush=True,
        )
    doc["matched"] = {"dataset": "moving-digits-full", "target_macs": target, "rows": table}
    doc["wall_s"] = time.perf_counter() - t_start
    atomic_write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
