"""Benchmark: restoration NAS at CPU scale -- HiNAS, plain DARTS over its space, trilevel
NAS, and hand-designed baselines at matched parameters, on the embedded photographs.

    PYTHONPATH=src python benchmarks/restoration.py [--task sr-x2] [--out FILE] [--quick]

1. Searches (each in a fresh subprocess, through ``nasforge search``, so its peak RSS is
   its own): ``hinas`` (cell sharing), ``hinas`` with ``cell_sharing=false`` (what HiNAS's
   cell sharing saves, its memory claim), ``darts-hinas`` (plain DARTS over the same space:
   no layerwise or cell sharing) and, for SR tasks, ``trilevel`` (one phase). Records
   search time, peak RSS and the activation memory of one weight step.
2. Trains every derived network and the baselines (EDSR-style for SR, DnCNN-style for
   denoising, widths chosen to match the HiNAS net's parameters; FSRCNN at its paper size)
   with the same recipe and budget, and evaluates them on the held-out test photographs
   (``skimage`` split, see nasforge.data.restoration.SKIMAGE_SPLITS); adds the bicubic
   (SR) or noisy-input (denoising) reference, measured in the same run.
3. Reports PSNR / SSIM (papers' conventions), parameters, multiply-adds at the stated input
   size and the median CPU latency at that size. Prints JSON.

Tiny budgets (seconds of CPU per network): the numbers compare methods under one budget on
one machine; they are not the papers' figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CLI = "from nasforge.cli import main; main()"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _search(
    task: str, space: str, algo: str, out: Path, common: list[str], params: list[str]
) -> dict[str, Any]:
    args = [sys.executable, "-c", CLI, "search", "--task", task, "--space", space, "--algo", algo]
    args += ["-o", str(out), *common]
    for p in params:
        args += ["--param", p]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, env=os.environ.copy(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    return {
        "algo": algo,
        "params": params,
        "arch": summary["arch"],
        "search_time_s": summary["search_time_s"],
        "process_wall_s": wall,
        "peak_rss_mb": summary["peak_memory_mb"],
        "activation_mb_per_step": summary["activation_mb_per_step"],
        "metrics": summary["metrics"],
    }


def _match_width(build: Any, target: int, lo: int = 2, hi: int = 256) -> int:
    """The width whose network's parameter count is closest to ``target``."""
    best, best_gap = lo, None
    for c in range(lo, hi + 1):
        n = sum(p.numel() for p in build(c).parameters())
        gap = abs(n - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = c, gap
        if n > target:
            break
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="sr-x2")
    ap.add_argument("--dataset", default="skimage-p32-e96")
    ap.add_argument("--patches", type=int, default=64, help="training patches per epoch")
    ap.add_argument("--search-epochs", type=int, default=3)
    ap.add_argument("--train-epochs", type=int, default=10)
    ap.add_argument("--latency-size", type=int, default=64, help="input side for MACs/latency")
    ap.add_argument("--quick", action="store_true", help="smoke run (seconds)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.patches, args.search_epochs, args.train_epochs = 16, 1, 1
    torch.set_num_threads(1)

    from nasforge.cost.latency import latency
    from nasforge.cost.macs import count_macs
    from nasforge.nn import build_network
    from nasforge.nn.restoration_baselines import bicubic_upscale
    from nasforge.spaces import get_space
    from nasforge.tasks import get_task
    from nasforge.train import fit_fresh, get_recipe

    task = get_task(args.task)
    sr = task.name.startswith("sr-")
    common = [
        "--dataset",
        args.dataset,
        "--limit",
        str(args.patches),
        "--epochs",
        str(args.search_epochs),
        "--threads",
        "1",
    ]
    hinas_p = ["C=8", "layers=2", "blocks=3", "batch_size=16"]
    runs: list[tuple[str, str, list[str]]] = [
        ("hinas", "hinas", hinas_p),
        ("hinas", "hinas", [*hinas_p, "cell_sharing=false"]),
        ("hinas", "darts-hinas", hinas_p),
    ]
    if sr:
        runs.append(
            (
                "trilevel-sr",
                "trilevel",
                ["nf=16", "path=3", "ops=3", "batch_size=16", "w_lr=0.001", "a_lr=0.001"],
            )
        )
    searches = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (space, algo, params) in enumerate(runs):
            searches.append(
                {
                    "space": space,
                    **_search(task.name, space, algo, Path(tmp) / str(i), common, params),
                }
            )

    data = task.load(args.dataset, limit=args.patches)
    io = task.network_io(data)
    recipe = get_recipe(task.default_recipe, epochs=args.train_epochs)
    c_in = io["in_channels"]
    shape = (1, c_in, args.latency_size, args.latency_size)

    def describe(model: torch.nn.Module) -> dict[str, Any]:
        return {
            "params": sum(p.numel() for p in model.parameters()),
            "macs_m": count_macs(model, shape),
            "latency_ms": 1e3 * latency(model, shape, warmup=2, repeats=5),
        }

    hinas_arch = get_space("hinas").from_string(searches[0]["arch"])
    candidates: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("hinas", "hinas", hinas_arch, {"C": 8, "D": 32}),
        (
            "darts-hinas",
            "hinas",
            get_space("hinas").from_string(searches[2]["arch"]),
            {"C": 8, "D": 32},
        ),
    ]
    if sr:
        candidates.append(
            (
                "trilevel",
                "trilevel-sr",
                get_space("trilevel-sr").from_string(searches[3]["arch"]),
                {"nf": 16},
            )
        )
    target = sum(
        p.numel() for p in build_network("hinas", hinas_arch, io=io, C=8, D=32).parameters()
    )
    if sr:
        depth = 4
        c = _match_width(
            lambda w: build_network("restoration-baseline", "edsr", io=io, C=w, depth=depth), target
        )
        candidates += [
            (
                f"edsr-style (C={c}, {depth} blocks, matched)",
                "restoration-baseline",
                "edsr",
                {"C": c, "depth": depth},
            ),
            ("fsrcnn (56, 12, 4)", "restoration-baseline", "fsrcnn", {}),
        ]
    else:
        depth = 8
        c = _match_width(
            lambda w: build_network("restoration-baseline", "dncnn", io=io, C=w, depth=depth),
            target,
        )
        candidates.append(
            (
                f"dncnn-style (C={c}, depth {depth}, matched)",
                "restoration-baseline",
                "dncnn",
                {"C": c, "depth": depth},
            )
        )

    nets = []
    for name, space, arch, opts in candidates:
        t0 = time.perf_counter()
        res, model = fit_fresh(
            lambda s=space, a=arch, o=opts: build_network(s, a, io=io, **o),
            data,
            recipe,
            seed=0,
            task=task,
        )
        test = res.epochs[-1].eval["test"] if res.epochs else {}
        nets.append(
            {
                "name": name,
                "space": space,
                "options": opts,
                "train_s": time.perf_counter() - t0,
                "test": test,
                **describe(model),
            }
        )
    # References measured in the same run: bicubic upscaling / the noisy input itself.
    ref = bicubic_upscale(task.scale) if sr else torch.nn.Identity()
    ref_metrics = task.evaluate(ref, task.loader(data, "test", 1, train=False))
    nets.append({"name": "bicubic" if sr else "noisy input", "test": ref_metrics, "params": 0})

    report = {
        "task": task.name,
        "dataset": args.dataset,
        "test_images": data.evals["test"].names,
        "patches_per_epoch": args.patches,
        "search_epochs": args.search_epochs,
        "train_epochs": args.train_epochs,
        "recipe": recipe.name,
        "macs_latency_input": list(shape),
        "cpu": _cpu(),
        "threads": 1,
        "searches": searches,
        "networks": nets,
        "cell_sharing_activation_ratio": searches[1]["activation_mb_per_step"]
        / searches[0]["activation_mb_per_step"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
