"""Benchmark: activation memory of the DARTSformer supernet, backpropagation by
reconstruction vs the same supernet with ordinary backprop, measured side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/rev_memory.py [--out FILE] [--quick]

What is measured (one torch thread, CPU, float32; batch of ``BATCH`` sentence pairs of
``SEQ`` source and target tokens, the rev-transformer supernet: 13 candidates per encoder
split, 14 per decoder split):

1. ``activation_mib``: the bytes autograd keeps between forward and backward -- the
   distinct storages of every tensor saved for backward, parameters excluded
   (``nasforge.nn.reversible.saved_activation_bytes``, a ``saved_tensors_hooks`` count).
   Chosen over allocator statistics because it is exact, deterministic and immune to the
   other processes of this shared machine and to allocator caching, and it is precisely
   the quantity the paper's method removes; it leaves out the transient memory of the
   backward pass (one layer's recomputation in the reversible case).
2. ``peak_step_mib`` (for a few depths): the growth of the peak resident set size of a
   fresh process over one full forward + backward step (``VmHWM`` after the step, reset
   through ``/proc/self/clear_refs`` just before it, minus ``VmRSS`` before it), which
   includes that transient memory, the gradients and the allocator. Coarser (page
   granularity, glibc behaviour; Linux only), shown as a cross-check.
3. ``step_s``: wall time of one forward + backward step (median of 3; the machine was
   shared, so only the ratio within a row means much).

Sweeps: depth (encoder = decoder layers) 2..24 at ``d_model`` 96; ``d_model`` 48..384 at 6
layers; then, for a fixed activation budget, the largest ``d_model`` (multiples of 24) and
the largest number of candidate ops (the first k of the op list, at ``d_model`` 96, half
the budget) that fit, per mode. ``d_model`` is scanned up to 384 only (a reversible
supernet at that width still stores a few MiB; larger supernets take long to build here),
so a maximum equal to ``d_grid_max`` means "at least".
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nasforge.nn.rev_transformer import RevTransformer
from nasforge.nn.reversible import saved_activation_bytes
from nasforge.spaces.rev_transformer import DECODER_OPS

BATCH, SEQ, VOCAB, HEADS = 16, 32, 1000, 4
BUDGET_MIB = 256.0


def _net(layers: int, d: int, reversible: bool, k_ops: int | None = None) -> RevTransformer:
    torch.manual_seed(0)
    cand = None if k_ops is None else DECODER_OPS[:k_ops]
    return RevTransformer(
        None,
        vocab_size=VOCAB,
        d_model=d,
        heads=HEADS,
        enc_layers=layers,
        dec_layers=layers,
        dropout=0.1,
        reversible=reversible,
        candidates=cand,
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(4, VOCAB, (BATCH, SEQ), generator=g), torch.randint(
        4, VOCAB, (BATCH, SEQ), generator=g
    )


def activation_mib(layers: int, d: int, reversible: bool, k_ops: int | None = None) -> float:
    net = _net(layers, d, reversible, k_ops)
    net.train()
    src, tgt = _batch()
    nbytes, loss = saved_activation_bytes(
        lambda: net(src, tgt).float().logsumexp(-1).mean(), list(net.parameters())
    )
    del loss
    return nbytes / 2**20


def step_seconds(layers: int, d: int, reversible: bool) -> float:
    net = _net(layers, d, reversible)
    net.train()
    src, tgt = _batch()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        net(src, tgt).float().logsumexp(-1).mean().backward()
        times.append(time.perf_counter() - t0)
        net.zero_grad(set_to_none=True)
    return statistics.median(times)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak-RSS growth of one forward+backward step (run in a fresh process)."""
    torch.set_num_threads(1)
    net = _net(spec["layers"], spec["d"], spec["reversible"])
    net.train()
    src, tgt = _batch()
    # Linux: writing 5 to clear_refs resets the high-water mark (VmHWM) to the current
    # resident set, so the step's own peak is measured, not the model build's.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mib("VmRSS")
    net(src, tgt).float().logsumexp(-1).mean().backward()
    return {"peak_step_mib": _status_mib("VmHWM") - before}


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def peak_step_mib(layers: int, d: int, reversible: bool) -> float:
    spec = json.dumps({"layers": layers, "d": d, "reversible": reversible})
    out = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_step_mib"])


def largest_fitting(values: list[int], fits: Any) -> int | None:
    """The largest of the increasing ``values`` for which ``fits(v)`` (memory grows with v,
    so the scan stops at the first miss)."""
    best = None
    for v in values:
        if not fits(v):
            break
        best = v
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--quick", action="store_true", help="fewer points (a smoke run)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    torch.set_num_threads(1)
    depths = [2, 8] if args.quick else [2, 4, 8, 16, 24]
    widths = [48, 96] if args.quick else [48, 96, 192, 384]
    t0 = time.perf_counter()
    depth_rows = []
    for L in depths:
        row: dict[str, Any] = {"layers": L, "d_model": 96}
        for mode, rev in (("ordinary", False), ("reversible", True)):
            row[f"{mode}_activation_mib"] = activation_mib(L, 96, rev)
        row["ratio"] = row["ordinary_activation_mib"] / row["reversible_activation_mib"]
        if L in (2, 8, 24) or args.quick:
            for mode, rev in (("ordinary", False), ("reversible", True)):
                row[f"{mode}_peak_step_mib"] = peak_step_mib(L, 96, rev)
                row[f"{mode}_step_s"] = step_seconds(L, 96, rev)
        depth_rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    width_rows = []
    for d in widths:
        row = {"layers": 6, "d_model": d}
        for mode, rev in (("ordinary", False), ("reversible", True)):
            row[f"{mode}_activation_mib"] = activation_mib(6, d, rev)
        row["ratio"] = row["ordinary_activation_mib"] / row["reversible_activation_mib"]
        width_rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    budget: dict[str, Any] = {"budget_mib": BUDGET_MIB, "layers": 6}
    d_grid = list(range(24, 24 * (5 if args.quick else 17), 24))
    for mode, rev in (("ordinary", False), ("reversible", True)):
        budget[f"{mode}_max_d_model"] = largest_fitting(
            d_grid, lambda d, rev=rev: activation_mib(6, d, rev) <= BUDGET_MIB
        )
        budget[f"{mode}_max_candidates_at_d96"] = largest_fitting(
            list(range(1, len(DECODER_OPS) + 1)),
            lambda k, rev=rev: activation_mib(6, 96, rev, k) <= BUDGET_MIB / 2,
        )
    budget["candidates_budget_mib"] = BUDGET_MIB / 2
    budget["d_grid_max"] = d_grid[-1]
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    doc = {
        "setting": {
            "batch": BATCH,
            "seq": SEQ,
            "vocab": VOCAB,
            "heads": HEADS,
            "dtype": "float32",
            "candidates": {"encoder": 13, "decoder": 14},
            "op_order_for_candidate_counts": list(DECODER_OPS),
        },
        "depth": depth_rows,
        "width": width_rows,
        "budget": budget,
        "cpu": cpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": 1,
        "wall_s": time.perf_counter() - t0,
        "note": "shared, loaded machine: step times are indicative only",
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        from nasforge.io import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
