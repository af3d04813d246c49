"""Activation memory and step time of the DARTS-space supernet: DARTS (K=1) vs PC-DARTS
K = 2, 4, 8, and optionally the official PC-DARTS code at the same configuration.

Configuration (default): the official search network, C=16, 8 cells, 10 classes, 32x32
inputs, batch 32, on CPU. A *step* is the weight step of the search as each method runs it
(forward of the mixed supernet -- with the normalised betas for PC-DARTS --, backward,
gradient clipping, SGD update), built through the methods' own classes
(``ONESHOT.create(name, space="darts")``, :data:`nasforge.search.registry.ONESHOT`), so it is what a search runs.
``darts`` is DARTS-V1 in the DARTS space (K=1, no betas); ``pc-darts-kK`` is PC-DARTS.

Memory (CPU has no allocator statistics): ``activation_bytes`` is the sum of the bytes of
the distinct tensor storages autograd saves for backward during the forward
(``torch.autograd.graph.saved_tensors_hooks``), parameters excluded -- everything saved
stays alive until the backward, so this is the activation peak of the step, measured the
same way on both sides. Weights, gradients and momentum add ``3 x param_bytes``.

``--official DIR``: a checkout of github.com/yuhuixu1993/PC-DARTS (never committed). Its
``model_search.py`` hard-codes K=4 (``self.k = 4``, line 31) and moves the arch
parameters to CUDA (``:172-175``); for each K the module is loaded with ``self.k = K`` and,
without CUDA, ``Tensor.cuda`` as the identity during construction. Its step is
``train_search.py:159-165``. Ratios ours / official are taken in the same run. Official
K=1 is skipped on CPU: its reduction edges max-pool a 0-channel bypass, which fails there.

    PYTHONPATH=src python benchmarks/darts_supernet_cost.py [--official DIR] \\
        [--repeats 2] [--threads 2] [--out benchmarks/results/darts_supernet_cost.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.io import atomic_write_json
from nasforge.search import ONESHOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supernet_cost import cuda_as_identity, fixed_batch, logits_fn, sync

VARIANTS: dict[str, tuple[str, int]] = {
    "darts": ("darts-v1", 1),
    "pc-darts-k2": ("pc-darts", 2),
    "pc-darts-k4": ("pc-darts", 4),
    "pc-darts-k8": ("pc-darts", 8),
}
#: The goal of the issue: PC-DARTS K=4 at most 0.3x DARTS' activation memory.
K4_TARGET = 0.3
Step = Callable[[], None]


def saved_bytes(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> int:
    """Bytes of the distinct non-parameter storages the forward of ``loss_fn`` saves for
    backward (then runs the backward so nothing is left behind)."""
    exclude = {p.untyped_storage().data_ptr() for p in params}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    loss.backward()
    return sum(storages.values())


def ours(name: str, k: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    overrides = {"partial_k": k} if name == "pc-darts" else {}
    method = ONESHOT.create(name, space="darts", C=args.C, N=args.layers, **overrides)
    method.setup(args.classes, seed=0, device=device)
    net = method.supernet
    assert net is not None
    forward = logits_fn(method)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        method.weight_step(forward, (x, y))

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(forward(x), y)

    return {"params": list(net.parameters()), "step": step, "loss": loss}


def official(k: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    root = Path(args.official).resolve()
    source = (root / "model_search.py").read_text()
    if source.count("self.k = 4") != 1:
        raise SystemExit(f"{root}/model_search.py: expected one 'self.k = 4' (line 31)")
    sys.path.insert(0, str(root))  # for its `from operations import *`, `from genotypes ...`
    spec = importlib.util.spec_from_loader(f"pcdarts_model_search_k{k}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(
        compile(source.replace("self.k = 4", f"self.k = {k}"), "model_search.py", "exec"),
        module.__dict__,
    )
    criterion = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    with contextlib.nullcontext() if device.type == "cuda" else cuda_as_identity():
        model = module.Network(args.C, args.classes, args.layers, criterion).to(device)
    arch = list(model.arch_parameters())
    # train_search.py:81-85
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=3e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        # train_search.py:159-165
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return criterion(model(x), y)

    return {"params": [*model.parameters(), *arch], "step": step, "loss": loss}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed steps per variant (0: memory only)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--official", type=Path, default=None, help="PC-DARTS checkout")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="ours"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device, x, y = fixed_batch(args)

    runs: dict[str, dict[str, Any]] = {}
    for key, (name, k) in VARIANTS.items():
        if key not in args.variants:
            continue
        runs[key] = {**ours(name, k, args, device), "k": k}
        # Official K=1 max-pools a 0-channel bypass, which PyTorch on CPU refuses.
        if args.official is not None and (k > 1 or device.type == "cuda"):
            runs[f"official-k{k}"] = {**official(k, args, device), "k": k}
    report: dict[str, dict[str, Any]] = {}
    for key, run in runs.items():
        pbytes = sum(p.numel() * p.element_size() for p in run["params"])
        acts = saved_bytes(lambda r=run: r["loss"](x, y), run["params"])
        report[key] = {
            "partial_k": run["k"],
            "activation_bytes": acts,
            "activation_mb": acts / 2**20,
            "param_bytes": pbytes,
            "times_s": [],
        }
        print(f"{key}: activations {acts / 2**20:.1f} MB", file=sys.stderr, flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            run["step"](x, y)
            sync(device)
            report[key]["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
        if args.repeats:
            run["step"](x, y)  # warm-up (momentum buffers, oneDNN primitives)
    # Round-robin, so a change in the (shared) machine's load hits every variant alike.
    for _ in range(args.repeats):
        for key, run in runs.items():
            sync(device)
            # CPU: process CPU time (with --threads 1, what a shared machine's load moves
            # least); CUDA: wall time between synchronisations.
            clock = time.perf_counter if device.type == "cuda" else time.process_time
            t0 = clock()
            run["step"](x, y)
            sync(device)
            report[key]["times_s"].append(clock() - t0)
    for r in report.values():
        r["step_time_s"] = statistics.median(r["times_s"]) if r["times_s"] else None

    def ratios(r: dict[str, Any], ref: dict[str, Any]) -> dict[str, float | None]:
        timed = r["step_time_s"] is not None
        return {
            "activation": r["activation_bytes"] / ref["activation_bytes"],
            "step_time": r["step_time_s"] / ref["step_time_s"] if timed else None,
        }

    darts = report.get("darts")
    for key, r in report.items():
        if darts is not None:
            r["ratio_to_darts"] = ratios(r, darts)
        off = report.get(f"official-k{r['partial_k']}")
        if off is not None and not key.startswith("official"):
            r["ratio_to_official"] = ratios(r, off)
    k4 = (
        report["pc-darts-k4"]["ratio_to_darts"]["activation"]
        if darts and "pc-darts-k4" in report
        else None
    )
    result = {
        "benchmark": "darts_supernet_cost",
        "setup": {
            "C": args.C,
            "layers": args.layers,
            "batch": args.batch,
            "resolution": args.resolution,
            "classes": args.classes,
            "repeats": args.repeats,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "official": str(args.official) if args.official else None,
            "memory_method": "saved_tensors_hooks: distinct non-parameter storages saved for "
            "backward by one forward",
        },
        "variants": report,
        "target": {
            "pc_darts_k4_activation_ratio": k4,
            "activation_ratio_max": K4_TARGET,
            "activation_target_met": None if k4 is None else k4 <= K4_TARGET,
        },
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
