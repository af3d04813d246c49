"""Step time and activation memory of each nasforge one-shot method vs the official code.

For DARTS-V1, DARTS-V2, GDAS, SETN, ENAS and RSPS: the nasforge method and xautodl's
official search model (``xautodl.models.cell_searchs``) are built at the same configuration
(default C=16, N=5, batch 64, 32x32 inputs, 10 classes) with the same initial weights; a
*step* is one search iteration as each side runs it -- nasforge's ``train_step``; for the
official side the script's step as restated in ``tests/official_reference.py``
(DARTS / GDAS: weight step + arch step; DARTS-V2: unrolled arch step + weight step; SETN:
single-path weight step + joint arch step; ENAS: controller sample + weight step; RSPS:
random arch + weight step). Both sides compute the same updates
(``tests/test_oneshot_official.py``) and, before each measured pair of steps, are made to
draw the same archs (seeded generators / our draw handed to the official model), so the
sampled methods are compared on the same paths.

Time: the median over ``--repeats`` steps per side, measured round-robin after one warm-up
step each, the side that goes first alternating (ours-official, official-ours, ...), so a
change in machine load hits both alike; the ratio ours / official is taken within the same
run. On CPU a step's time is the process CPU time (``time.process_time``; run it with
``--threads 1``), which other jobs on a shared machine inflate far less than wall time; on
CUDA it is wall time between synchronisations. ``speedup`` = official / ours (issue #32:
at least 1.5 for every method); ``ours_layout`` is the memory layout our supernet trains in
(``nasforge.train.device.default_channels_last``: channels_last for NB201 on x86-64).

``--device cuda`` runs both sides on the GPU (refused with one line when CUDA is absent). On
CUDA the GDAS / ENAS draws are not aligned (the official model samples from the CUDA
generator, ours from a CPU one); both sides still compute one sampled path per edge.

Memory (CPU has no allocator statistics): ``peak_saved_bytes`` is the peak over the step of
the bytes of the distinct tensor storages autograd holds for backward passes
(``torch.autograd.graph.saved_tensors_hooks``; a storage counts from the moment a forward
saves it until the tensor dies, tracked with ``weakref.finalize``), parameters excluded.
That is the activation memory a step keeps alive, the part that differs between
implementations; weights, gradients and optimizer state are the same on both sides except
that the official DARTS-V2 step also deep-copies the whole model (``DARTS-V2.py:84``),
reported as ``official_model_copy_bytes``. On CUDA, ``cuda_peak_bytes`` =
``torch.cuda.max_memory_allocated`` over the step is added.

    PYTHONPATH=src python benchmarks/oneshot_vs_official.py --repeats 5 --threads 1 \\
        --out benchmarks/results/oneshot_vs_official.json

The committed ``benchmarks/results/oneshot_vs_official.json`` merges two runs on a busy
2-core machine: all six methods with ``--repeats 5``, then the sampled methods again with
``--repeats 15 --methods rsps gdas enas`` (their step cost moves with the drawn path); its
``command`` field lists them. Absolute seconds there reflect that load; the ratios are what
compare.

Needs ``xautodl`` (``pip install --no-deps xautodl`` plus ``pyyaml``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# The restated official steps live beside the side-by-side tests (they need xautodl, which
# is no dependency of nasforge).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import official_reference as official

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nasforge.errors import NasforgeError
from nasforge.io import atomic_write_json
from nasforge.search import ONESHOT
from nasforge.search.oneshot.base import OneShotSearch
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS
from nasforge.train.device import cpu_model, resolve_device
from supernet_cost import SavedTensorPeak

METHODS = ("darts-v1", "darts-v2", "gdas", "setn", "enas", "rsps")
#: Issue #32: every method's step at least 1.5x faster than the official one (official / ours).
TARGET_SPEEDUP = 1.5


class BenchmarkError(NasforgeError):
    """A bad benchmark option (e.g. ``--device cuda`` without CUDA)."""


Step = Callable[[], None]


def _batch(seed: int, batch: int, res: int, classes: int, device: torch.device):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, res, res, generator=g).to(device)
    return x, torch.randint(0, classes, (batch,), generator=g).to(device)


def _steps(
    name: str, C: int, N: int, classes: int, base, arch, device: torch.device
) -> tuple[Callable[[int], None], Step, Step, OneShotSearch, torch.nn.Module]:
    """(align(k), ours, official, method, model): ``align(k)`` makes the next ``ours`` and
    ``official`` steps draw the same archs (as the side-by-side tests do), so both compute
    the same sampled paths and their costs compare like for like."""
    method = ONESHOT.create(name, C=C, N=N)
    method.setup(classes, seed=0, device=device)
    model = official.official_model(method)
    controller = official.official_controller(method, model) if name == "enas" else None
    w_opt, a_opt = official.official_optimizers(method, model, controller)
    clip = method.config.grad_clip
    method.begin_epoch(0)
    if name == "gdas":
        model.set_tau(method.config.tau_max)  # type: ignore[attr-defined]
    uses_arch = type(method).uses_arch_batches
    drawn: list[list[int]] = []

    def align(k: int) -> None:
        # GDAS / ENAS: the official model samples from the global generator, ours from its own.
        torch.manual_seed(k)
        method.generator.manual_seed(k)
        # SETN / RSPS: hand the official model our next uniform draw.
        drawn[:] = [copy.deepcopy(method.rng).integers(0, NUM_OPS, size=NUM_EDGES).tolist()]

    def ours() -> None:
        method.train_step(base, arch if uses_arch else None, 0)

    def theirs() -> None:
        model.train()
        if name in ("darts-v1", "gdas"):
            official.weight_step(model, w_opt, *base, clip)
            official.arch_step(model, a_opt, *arch)
        elif name == "darts-v2":
            official.darts_v2_arch_step(model, w_opt, a_opt, base, arch)
            official.weight_step(model, w_opt, *base, clip)
        elif name == "setn":
            official.setn_step(model, w_opt, a_opt, base, arch, drawn[0])
        elif name == "enas":
            official.enas_weight_step(model, controller, w_opt, *base)
        else:
            official.rsps_weight_step(model, w_opt, *base, drawn[0])

    return align, ours, theirs, method, model


def _cuda_peak(step: Step, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def _timed(step: Step, device: torch.device) -> float:
    """Seconds of one step: process CPU time on CPU (what other jobs on a shared machine
    do not inflate, with one torch thread), wall time between synchronisations on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0
    t0 = time.process_time()
    step()
    return time.process_time() - t0


def bench_method(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    base = _batch(0, args.batch, args.resolution, args.classes, device)
    arch = _batch(1, args.batch, args.resolution, args.classes, device)
    align, ours, theirs, method, model = _steps(
        name, args.C, args.N, args.classes, base, arch, device
    )
    assert method.supernet is not None
    param_ptrs = {p.untyped_storage().data_ptr() for p in method.supernet.parameters()}
    param_ptrs |= {p.untyped_storage().data_ptr() for p in model.parameters()}
    for extra in ("alphas", "betas"):
        if hasattr(method, extra):
            param_ptrs.add(getattr(method, extra).untyped_storage().data_ptr())
    # The warm-up steps double as the memory measurement (the peak does not depend on timing).
    align(0)
    mem = {"ours": SavedTensorPeak(param_ptrs).measure(ours)}
    mem["official"] = SavedTensorPeak(param_ptrs).measure(theirs)
    cuda: dict[str, int | None] = {}
    if device.type == "cuda":
        align(1)
        cuda = {"ours": _cuda_peak(ours, device)}
        cuda["official"] = _cuda_peak(theirs, device)
    times: dict[str, list[float]] = {"ours": [], "official": []}
    for k in range(args.repeats):
        align(2 + k)
        # Alternate which side goes first, so a machine load that drifts during the run
        # does not favour one side.
        order = (("ours", ours), ("official", theirs))
        for side, step in order if k % 2 == 0 else order[::-1]:
            times[side].append(_timed(step, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "step_seconds": med,
        "step_seconds_all": times,
        "time_ratio": med["ours"] / med["official"],
        "speedup": med["official"] / med["ours"],
        # The sampled methods draw another path at every pair of steps (the same one on
        # both sides), so a step's cost moves with the path: the median of the per-pair
        # ratios compares like with like.
        "pair_speedup_median": statistics.median(
            o / u for o, u in zip(times["official"], times["ours"], strict=True)
        ),
        "ours_layout": "channels_last"
        if next(method.supernet.parameters()).is_contiguous(memory_format=torch.channels_last)
        and not next(method.supernet.parameters()).is_contiguous()
        else "contiguous",
        "peak_saved_bytes": mem,
        "memory_ratio": mem["ours"] / mem["official"] if mem["official"] else None,
    }
    if name == "darts-v2":
        out["official_model_copy_bytes"] = sum(
            t.numel() * t.element_size() for t in copy.deepcopy(model).state_dict().values()
        )
    if cuda:
        out["cuda_peak_bytes"] = cuda
        out["cuda_memory_ratio"] = cuda["ours"] / cuda["official"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, BenchmarkError)
    report: dict[str, Any] = {
        "benchmark": "oneshot_vs_official",
        "command": "PYTHONPATH=src python benchmarks/oneshot_vs_official.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {
            "C": args.C,
            "N": args.N,
            "batch": args.batch,
            "resolution": args.resolution,
            "classes": args.classes,
            "repeats": args.repeats,
            "threads": args.threads,
            "device": str(device),
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "loadavg_at_start": os.getloadavg(),
            "platform": platform.platform(),
        },
        "methods": {},
    }
    for name in args.methods:
        report["methods"][name] = bench_method(name, args, device)
        summarise(report)
        print(f"{name}: {json.dumps(report['methods'][name]['time_ratio'])}", file=sys.stderr)
        if args.out is not None:  # after every method, so a long run keeps what it measured
            atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return report


def summarise(report: dict[str, Any]) -> None:
    """The worst (largest) ours / official ratios over the methods measured so far."""
    methods = report["methods"].values()
    report["worst_time_ratio"] = max(m["time_ratio"] for m in methods)
    report["worst_speedup"] = min(m["speedup"] for m in methods)
    report["worst_pair_speedup_median"] = min(m["pair_speedup_median"] for m in methods)
    report["target_speedup"] = TARGET_SPEEDUP
    report["meets_target"] = report["worst_speedup"] >= TARGET_SPEEDUP
    report["worst_memory_ratio"] = max(
        m["memory_ratio"] for m in methods if m["memory_ratio"] is not None
    )


if __name__ == "__main__":
    try:
        main()
    except NasforgeError as exc:  # a bad option: one line, exit code 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
