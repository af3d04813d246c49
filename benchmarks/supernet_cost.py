"""Memory and time of one supernet training step: DARTS vs PC-DARTS (K = 2, 4, 8).

All variants use the same NB201 supernet skeleton (C, N), the same batch and the same
input; a step is the weight step of the search (forward of the mixed supernet, backward,
SGD update), built through the methods' own classes so it is exactly what a search runs.

Memory (the figure to reach: PC-DARTS K=4 keeps <= 0.4x DARTS' activation memory):

* ``activation_bytes``: the bytes of the distinct tensor storages autograd saves for the
  backward pass during the forward (``torch.autograd.graph.saved_tensors_hooks``),
  parameters excluded. On CPU this is exact and deterministic: it is what stays alive
  between forward and backward.
* ``param_bytes``, ``grad_bytes``, ``momentum_bytes``: weights, their gradients and SGD's
  momentum buffers; ``step_bytes`` = activations + weights + grads.
* on CUDA, also ``cuda_peak_bytes`` = ``torch.cuda.max_memory_allocated`` over the step.

Time: the median over ``--repeats`` steps, measured round-robin across the variants (after
one warm-up step each), so a change in machine load hits every variant alike. The report
gives every variant's ratios to DARTS measured in the same run.

    python benchmarks/supernet_cost.py [--C 16 --N 5 --batch 64 --resolution 32] \\
        [--repeats 5] [--device cpu] [--out benchmarks/results/supernet_cost.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.search import ONESHOT
from nasforge.search.oneshot.base import OneShotSearch

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "darts": ("darts-v1", {}),
    "pc-darts-k2": ("pc-darts", {"partial_k": 2}),
    "pc-darts-k4": ("pc-darts", {"partial_k": 4}),
    "pc-darts-k8": ("pc-darts", {"partial_k": 8}),
}


class SavedTensorPeak:
    """Peak bytes of the non-parameter storages autograd holds for backward over a step: a
    storage counts from the moment a forward saves it (``saved_tensors_hooks``) until the
    last tensor saved from it dies (``weakref.finalize``); ``exclude`` holds the data
    pointers of the parameters."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.live: dict[int, list[int]] = {}
        self.current = self.peak = 0

    def _release(self, ptr: int) -> None:
        entry = self.live[ptr]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[ptr]

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr, nbytes = storage.data_ptr(), storage.nbytes()
        if ptr in self.exclude or nbytes == 0:
            return t
        entry = self.live.get(ptr)
        if entry is None:
            self.live[ptr] = [nbytes, 1]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        else:
            entry[1] += 1
        weakref.finalize(t, self._release, ptr)
        return t

    def measure(self, step: Callable[[], None]) -> int:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            step()
        return self.peak


@contextlib.contextmanager
def cuda_as_identity() -> Iterator[None]:
    """``Tensor.cuda`` and ``Module.cuda`` return their object unchanged (CPU runs of the
    official code, which calls them on arch parameters and on the unrolled model)."""
    saved = torch.Tensor.cuda, nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda = saved  # type: ignore[method-assign]


def build(
    name: str, overrides: dict[str, Any], C: int, N: int, num_classes: int, device: torch.device
) -> OneShotSearch:
    method = ONESHOT.create(name, C=C, N=N, **overrides)
    method.setup(num_classes, seed=0, device=device)
    return method


def logits_fn(method: OneShotSearch) -> Any:
    """The forward of the method's weight step (architecture parameters detached)."""
    net = method.supernet
    assert net is not None
    if hasattr(method, "edge_weights"):
        return lambda x: net(
            x,
            weights=method.mix_weights(detach=True),
            edge_weights=method.edge_weights(detach=True),
        )
    return lambda x: net(x, weights=method.mix_weights(detach=True))


def activation_bytes(method: OneShotSearch, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter storages saved for backward by one forward."""
    assert method.supernet is not None
    param_ptrs = {p.untyped_storage().data_ptr() for p in method.supernet.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in param_ptrs:
            storages[s.data_ptr()] = s.nbytes()
        return t

    forward = logits_fn(method)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.cross_entropy(forward(x), y)
    total = sum(storages.values())
    loss.backward()
    method.w_optimizer.zero_grad(set_to_none=True)
    return total


def step(method: OneShotSearch, x: torch.Tensor, y: torch.Tensor) -> None:
    method.weight_step(logits_fn(method), (x, y))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fixed_batch(args: argparse.Namespace) -> tuple[torch.device, torch.Tensor, torch.Tensor]:
    """Apply ``--threads`` and make the seeded random batch (``--batch``, ``--resolution``,
    ``--classes``) on ``--device`` that every supernet benchmark times its steps on."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.resolution, args.resolution, generator=gen).to(device)
    y = torch.randint(0, args.classes, (args.batch,), generator=gen).to(device)
    return device, x, y


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device, x, y = fixed_batch(args)

    methods = {
        k: build(n, o, args.C, args.N, args.classes, device) for k, (n, o) in VARIANTS.items()
    }
    report: dict[str, Any] = {}
    for key, method in methods.items():
        assert method.supernet is not None
        params = list(method.supernet.parameters())
        pbytes = sum(p.numel() * p.element_size() for p in params)
        acts = activation_bytes(method, x, y)
        report[key] = {
            "algo": VARIANTS[key][0],
            "partial_k": method.partial_k(),
            "activation_bytes": acts,
            "param_bytes": pbytes,
            "grad_bytes": pbytes,
            "momentum_bytes": pbytes,
            "step_bytes": acts + 2 * pbytes,
            "times_s": [],
        }
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            step(method, x, y)
            sync(device)
            report[key]["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
        step(method, x, y)  # warm-up (allocator, oneDNN primitives, momentum buffers)
        sync(device)
    for _ in range(args.repeats):
        for key, method in methods.items():
            sync(device)
            t0 = time.perf_counter()
            step(method, x, y)
            sync(device)
            report[key]["times_s"].append(time.perf_counter() - t0)
    ref = report["darts"]
    for r in report.values():
        r["step_time_s"] = statistics.median(r["times_s"])
        r["activation_mb"] = r["activation_bytes"] / 2**20
        r["step_mb"] = r["step_bytes"] / 2**20
        r["ratio_to_darts"] = {
            "activation": r["activation_bytes"] / ref["activation_bytes"],
            "step_memory": r["step_bytes"] / ref["step_bytes"],
            "step_time": r["step_time_s"] / ref["step_time_s"],
        }
        if "cuda_peak_bytes" in r:
            r["ratio_to_darts"]["cuda_peak"] = r["cuda_peak_bytes"] / ref["cuda_peak_bytes"]
    k4 = report["pc-darts-k4"]["ratio_to_darts"]
    result = {
        "benchmark": "supernet_cost",
        "setup": {
            "C": args.C,
            "N": args.N,
            "batch": args.batch,
            "resolution": args.resolution,
            "classes": args.classes,
            "repeats": args.repeats,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "variants": report,
        "target": {
            "pc_darts_k4_activation_ratio": k4["activation"],
            "activation_ratio_max": 0.4,
            "activation_target_met": k4["activation"] <= 0.4,
            "pc_darts_k4_time_ratio": k4["step_time"],
            "k4_faster": k4["step_time"] < 1.0,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{args.out.name}.", dir=args.out.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
