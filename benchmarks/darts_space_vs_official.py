"""Search-iteration time and activation memory of the DARTS-space one-shot methods vs the
official code: DARTS-V1 and DARTS-V2 against quark0/darts (``cnn/``), PC-DARTS against
yuhuixu1993/PC-DARTS, at the official search configuration (C=16, 8 cells, 10 classes,
32x32 inputs; batch 64 for DARTS, ``cnn/train_search.py:23``, 256 for PC-DARTS,
``train_search.py:24``).

An *iteration* is one step of the search loop as each side runs it after the warm-up:

* official (``cnn/train_search.py:147-155``; PC-DARTS ``train_search.py:156-165``, the
  architecture step from epoch 15 on): ``architect.step(...)`` -- first order: forward +
  ``loss.backward()`` of the validation loss; ``--unrolled`` (DARTS-V2): the virtual step,
  the unrolled model's backward and the two finite-difference forwards
  (``architect.py``) --, then the weight step (forward, backward, ``clip_grad_norm`` 5,
  SGD);
* ours: ``method.train_step(train_batch, valid_batch, epoch)`` of
  ``ONESHOT.create(name, space="darts")`` with its published settings, at an epoch past
  the warm-up, which computes the same updates (``tests/test_darts_search.py``).

``pc-darts/warmup`` also times PC-DARTS' first 15 epochs, whose iterations are the weight
step alone, so the whole 50-epoch search's time ratio is the 15:35 mix of the two
(``search_speedup``).

The official modules are loaded from the checkouts given (never committed) and run
unchanged, on CPU, with ``Tensor.cuda`` / ``Module.cuda`` as the identity (they move the
arch parameters and the unrolled model to CUDA). Their deprecated ``add_(Number,
Tensor)`` calls still run on current PyTorch (with a warning).

Time: process CPU time per iteration (run with ``--threads 1``: what a shared machine's
load moves least), the median of ``--repeats`` after one warm-up iteration per side, the
two sides alternating and the side that goes first alternating too; ratios are
``official / ours`` within the same run (issue #32: at least 1.5). Memory:
``peak_saved_bytes``, the peak over the iteration of the storages autograd holds for
backward (:class:`supernet_cost.SavedTensorPeak`), the model's own parameters excluded;
the official DARTS-V2 unrolled model's weights count there (it is a second model).

    PYTHONPATH=src python benchmarks/darts_space_vs_official.py --threads 1 \\
        --darts /path/to/darts/cnn --pcdarts /path/to/PC-DARTS \\
        [--methods darts-v1 darts-v2 pc-darts] [--repeats 3] [--batch N] \\
        [--out benchmarks/results/darts_space_vs_official.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.io import atomic_write_json
from nasforge.search import ONESHOT
from nasforge.train.device import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supernet_cost import SavedTensorPeak, cuda_as_identity

#: name -> (official checkout option, unrolled, official batch, SGD lr, arch Adam lr)
METHODS: dict[str, tuple[str, bool, int, float, float]] = {
    "darts-v1": ("darts", False, 64, 0.025, 3e-4),  # cnn/train_search.py:23-24, 42
    "darts-v2": ("darts", True, 64, 0.025, 3e-4),
    "pc-darts": ("pcdarts", False, 256, 0.1, 6e-4),  # PC-DARTS train_search.py:24-25, 43
}
#: PC-DARTS: 15 warm-up epochs (weight steps only) of 50 (train_search.py:156).
PC_WARMUP, PC_EPOCHS = 15, 50
TARGET_SPEEDUP = 1.5
Step = Callable[[], None]


def load_official(root: Path, module: str) -> types.ModuleType:
    """``root/module.py`` as a fresh module whose ``from operations import *`` and
    ``from genotypes import ...`` read ``root``'s own files (two checkouts can be loaded in
    one process)."""
    path = root / f"{module}.py"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; expected an official checkout")
    saved = {k: sys.modules.pop(k) for k in ("operations", "genotypes") if k in sys.modules}
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location(f"official_{root.name}_{module}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(root))
        for k in ("operations", "genotypes"):
            sys.modules.pop(k, None)
        sys.modules.update(saved)
    return mod


def official_iteration(
    root: Path,
    unrolled: bool,
    lrs: tuple[float, float],
    args: argparse.Namespace,
    base,
    arch,
    arch_step: bool,
) -> tuple[Step, list[torch.Tensor]]:
    model_search = load_official(root, "model_search")
    architect_mod = load_official(root, "architect")
    criterion = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    with cuda_as_identity():
        model = model_search.Network(args.C, args.classes, args.layers, criterion)
    lr, arch_lr = lrs
    optimizer = torch.optim.SGD(model.parameters(), lr, momentum=0.9, weight_decay=3e-4)
    hyper = argparse.Namespace(
        momentum=0.9,
        weight_decay=3e-4,
        arch_learning_rate=arch_lr,
        arch_weight_decay=1e-3,
    )
    architect = architect_mod.Architect(model, hyper)

    def step() -> None:
        with cuda_as_identity():
            model.train()
            if arch_step:
                architect.step(*base, *arch, lr, optimizer, unrolled=unrolled)
            optimizer.zero_grad()
            loss = criterion(model(base[0]), base[1])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

    return step, list(model.parameters())


def our_iteration(
    name: str, args: argparse.Namespace, base, arch, arch_step: bool
) -> tuple[Step, list[torch.Tensor], Any]:
    method = ONESHOT.create(name, space="darts", C=args.C, N=args.layers)
    method.setup(args.classes, seed=0)
    method.steps_per_epoch = 1
    epoch = int(getattr(method.config, "warmup_epochs", 0)) if arch_step else 0

    def step() -> None:
        method.train_step(base, arch, epoch)

    assert method.supernet is not None
    return step, list(method.supernet.parameters()), method


def _batch(gen: torch.Generator, n: int, args: argparse.Namespace):
    x = torch.randn(n, 3, args.resolution, args.resolution, generator=gen)
    return x, torch.randint(0, args.classes, (n,), generator=gen)


def bench(name: str, args: argparse.Namespace, arch_step: bool = True) -> dict[str, Any]:
    key, unrolled, official_batch, lr, arch_lr = METHODS[name]
    batch = args.batch or official_batch
    gen = torch.Generator().manual_seed(0)
    base, arch = _batch(gen, batch, args), _batch(gen, batch, args)
    root = getattr(args, key)
    ours, our_params, method = our_iteration(name, args, base, arch, arch_step)
    theirs, their_params = official_iteration(
        root, unrolled, (lr, arch_lr), args, base, arch, arch_step
    )
    sides = {"ours": ours, "official": theirs}
    params = {"ours": our_params, "official": their_params}
    out: dict[str, Any] = {
        "batch": batch,
        "arch_step": arch_step,
        "times_s": {},
        "peak_saved_bytes": {},
    }
    for side, step in sides.items():
        t0 = time.perf_counter()
        exclude = {p.untyped_storage().data_ptr() for p in params[side]}
        out["peak_saved_bytes"][side] = SavedTensorPeak(exclude).measure(step)
        out.setdefault("first_iteration_wall_s", {})[side] = time.perf_counter() - t0
        out["times_s"][side] = []
        print(
            f"{name}: {side} warm-up {out['first_iteration_wall_s'][side]:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    order = list(sides)
    for r in range(args.repeats):
        for side in order[r % 2 :] + order[: r % 2]:
            t0 = time.process_time()
            sides[side]()
            out["times_s"][side].append(time.process_time() - t0)
        print(f"{name}: round {r + 1}: {out['times_s']}", file=sys.stderr, flush=True)
    med = {s: statistics.median(v) for s, v in out["times_s"].items()}
    out["median_s"] = med
    out["speedup"] = med["official"] / med["ours"]
    out["memory_ratio"] = out["peak_saved_bytes"]["ours"] / out["peak_saved_bytes"]["official"]
    out["ours_layout"] = method.layout
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--darts", type=Path, help="quark0/darts checkout's cnn/ directory")
    parser.add_argument("--pcdarts", type=Path, help="yuhuixu1993/PC-DARTS checkout")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=None, help="default: the official one")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-warmup-row", action="store_true", help="skip pc-darts/warmup")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    for name in args.methods:
        key = METHODS[name][0]
        if getattr(args, key) is None:
            parser.error(f"--{key} DIR is needed for {name}")
    for flag in ("repeats", "C", "layers", "resolution", "classes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: expected >= 1")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch {args.batch}: expected >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    for name in args.methods:
        results[name] = bench(name, args)
        if name == "pc-darts" and not args.no_warmup_row:
            results["pc-darts/warmup"] = bench(name, args, arch_step=False)
    if "pc-darts" in results and "pc-darts/warmup" in results:
        t = {
            s: PC_WARMUP * results["pc-darts/warmup"]["median_s"][s]
            + (PC_EPOCHS - PC_WARMUP) * results["pc-darts"]["median_s"][s]
            for s in ("ours", "official")
        }
        results["pc-darts"]["search_speedup"] = t["official"] / t["ours"]
    report = {
        "benchmark": "darts_space_vs_official",
        "command": "python benchmarks/darts_space_vs_official.py " + " ".join(argv or sys.argv[1:]),
        "setup": {
            "C": args.C,
            "layers": args.layers,
            "resolution": args.resolution,
            "classes": args.classes,
            "repeats": args.repeats,
            "threads": torch.get_num_threads(),
            "cpu": cpu_model(),
            "machine": platform.machine(),
            "torch": torch.__version__,
        },
        "methods": results,
        "target_speedup": TARGET_SPEEDUP,
        "target_met": {k: r["speedup"] >= TARGET_SPEEDUP for k, r in results.items()},
    }
    print(json.dumps(report, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, report)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
