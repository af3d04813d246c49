"""Training many small NB201 networks at once on one GPU, and what the full table would cost.

One NB201 network (C=16, N=5, batch 256, 32x32) leaves most of a modern GPU idle: its
kernels are small and launched one by one from Python. Three ways to train ``--nets`` of
them are timed here, interleaved round by round in the same process:

* ``sequential``: one network after the other, a step each (what one build worker does);
  ``sequential_stacked_arch`` the same for ``--nets`` networks of the stacked arch, the
  baseline of ``stacked_speedup_same_arch``;
* ``streams``: the networks (``--nets`` different archs) each step on its own CUDA stream,
  so their kernels can overlap (CUDA only);
* ``stacked``: ``--nets`` networks of *one* arch (e.g. the seeds of an arch, or archs the
  table trains under several seeds) fused into one network of ``--nets`` times the width:
  every convolution becomes a grouped convolution (``groups`` times ``--nets``), every
  BatchNorm one BN over all channels, the classifier a batched matmul
  (:func:`stack_networks`). BN, ReLU, pooling and the additions act per channel, and the
  parameters of different networks never meet, so each network computes exactly what it
  computes alone (up to float summation order), with its own batch in its own channels:
  one kernel launch per layer for all of them. SGD with momentum and weight decay acts per
  element, so one optimizer over the stacked parameters is the ``--nets`` optimizers. A
  recipe with gradient clipping (a global norm) would need a per-network norm: NB201's has
  none.

Each strategy reports images/s (all networks together); the projection turns the best one
into GPU-hours for the full NAS-Bench-201 table: 15,625 archs x ``--seeds`` seeds x 200
epochs on CIFAR-10 (50,000 training images, plus the cifar10-valid 25,000), CIFAR-100
(50,000) and ImageNet16-120 (151,700 images of 16x16, counted at 1/4 of a 32x32 image's
cost: the FLOPs scale with the pixels), training only; evaluation passes are forward only
and add ``--eval-fraction`` (default 0.15) on top. Images are synthetic tensors already on
the device (the builder's loader keeps the whole split on the device too), so the figure is
the networks' throughput.

On CPU the script runs at a tiny size (``--tiny``) to check its logic (the stacked network
computes what the separate ones compute: ``max_abs_diff``); ``--device cuda`` without CUDA
is refused with one line (exit code 2), and ``streams`` is skipped on CPU.

    python benchmarks/gpu_plan.py --device cuda --nets 8 --steps 20 \\
        --out benchmarks/results/gpu_plan.json
    python benchmarks/gpu_plan.py --device cpu --tiny        # logic check, seconds
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import NasforgeError
from nasforge.io import atomic_write_json
from nasforge.nn import ops as nf_ops
from nasforge.nn.nb201 import InferCell, NB201Network
from nasforge.spaces.nb201 import NUM_ARCHS, Arch
from nasforge.train import get_recipe

#: Training images x epochs per arch and seed of the full NB201 table, as 32x32-image
#: equivalents (ImageNet16-120's 16x16 images cost a quarter of the FLOPs).
TABLE_DATASETS = {
    "cifar10-valid": (25_000, 1.0),
    "cifar10": (50_000, 1.0),
    "cifar100": (50_000, 1.0),
    "ImageNet16-120": (151_700, 0.25),
}
TABLE_EPOCHS = 200


class PlanError(NasforgeError):
    """A bad option of this script (e.g. ``--device cuda`` without CUDA)."""


class GroupedLinear(nn.Module):
    """``K`` linear layers on ``K`` feature groups: ``[B, K * in] -> [B, K, out]``."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.k = len(layers)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]).clone())
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.k, -1)
        return torch.einsum("bki,koi->bko", x, self.weight) + self.bias


def _stack_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    c = convs[0]
    k = len(convs)
    out = nn.Conv2d(
        k * c.in_channels,
        k * c.out_channels,
        c.kernel_size,  # type: ignore[arg-type]
        stride=c.stride,  # type: ignore[arg-type]
        padding=c.padding,  # type: ignore[arg-type]
        dilation=c.dilation,  # type: ignore[arg-type]
        groups=k * c.groups,
        bias=c.bias is not None,
    )
    with torch.no_grad():
        # Group j of network i is group i * groups + j: its filters follow network i's.
        out.weight.copy_(torch.cat([m.weight for m in convs]))
        if c.bias is not None:
            out.bias.copy_(torch.cat([m.bias for m in convs]))  # type: ignore[union-attr]
    return out.to(c.weight.device)


def _stack_bn(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = bns[0]
    out = nn.BatchNorm2d(
        len(bns) * b.num_features,
        eps=b.eps,
        momentum=b.momentum,
        affine=b.affine,
        track_running_stats=b.track_running_stats,
    ).to(next(iter(b.buffers()), torch.empty(0)).device)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name, None) is not None:
                getattr(out, name).copy_(torch.cat([getattr(m, name) for m in bns]))
        if b.track_running_stats:
            out.num_batches_tracked.copy_(b.num_batches_tracked)
    return out


#: Modules :func:`stack_networks` keeps as they are: parameter-free and acting per channel.
_PER_CHANNEL = (
    nn.ReLU,
    nn.AvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nf_ops.Identity,
)
#: Containers whose forward only routes tensors through their children.
_CONTAINERS = (
    nn.Sequential,
    nn.ModuleList,
    NB201Network,
    InferCell,
    nf_ops.ReLUConvBN,
    nf_ops.Pooling,
    nf_ops.ResNetBasicBlock,
)


def stack_networks(nets: Sequence[NB201Network]) -> NB201Network:
    """One network computing ``len(nets)`` NB201 networks of the same arch side by side.

    The input is the networks' batches concatenated along channels (``[B, K * 3, H, W]``),
    the output their logits ``[B, K, classes]``; see the module docstring. Raises
    :class:`PlanError` for networks of different archs or shapes, or holding a module whose
    stacking is not known to be exact.
    """
    first = nets[0]
    for net in nets[1:]:
        if (net.arch, net.C, net.N, net.num_classes) != (
            first.arch,
            first.C,
            first.N,
            first.num_classes,
        ):
            raise PlanError(
                f"stacking needs one arch and shape, got {net.arch.to_string()!r} C={net.C} "
                f"N={net.N} beside {first.arch.to_string()!r} C={first.C} N={first.N}"
            )
    out = copy.deepcopy(first)
    named = [dict(net.named_modules()) for net in nets]
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.Conv2d):
            new: nn.Module = _stack_conv([n[name] for n in named])
        elif isinstance(module, nn.BatchNorm2d):
            new = _stack_bn([n[name] for n in named])
        elif isinstance(module, nn.Linear):
            new = GroupedLinear([n[name] for n in named])
        elif isinstance(module, nf_ops.Zero) and module.c_in == module.c_out:
            continue  # x * 0 of the stacked input: per channel
        elif isinstance(module, _PER_CHANNEL + _CONTAINERS):
            continue
        else:
            raise PlanError(f"cannot stack module {name!r} of type {type(module).__name__}")
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, attr, new)
    return out


def stacked_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The sum over the ``K`` networks of each one's mean cross-entropy: ``logits`` ``[B, K,
    classes]``, ``targets`` ``[B, K]``. Its gradient for a network's parameters is that
    network's own loss gradient (the parameters are disjoint)."""
    return F.cross_entropy(logits.permute(0, 2, 1), targets, reduction="none").mean(0).sum()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _nets(archs: Sequence[Arch], args: argparse.Namespace, device: torch.device, seed: int):
    torch.manual_seed(seed)
    return [NB201Network(a, C=args.C, N=args.N, num_classes=10).to(device) for a in archs]


def _layout(model: nn.Module, device: torch.device) -> nn.Module:
    # channels_last on CUDA (cuDNN's NHWC kernels); NCHW on CPU, whatever oneDNN's bugs.
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def strategies(
    args: argparse.Namespace, device: torch.device, archs: Sequence[Arch]
) -> dict[str, Callable[[], None]]:
    """One step of every strategy: ``--nets`` networks, a batch each, per call."""
    recipe = get_recipe("nb201-200e")
    k, b, res = args.nets, args.batch, args.resolution
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(k, b, 3, res, res, generator=g).to(device)
    ys = torch.randint(0, 10, (k, b), generator=g).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None

    def step(model: nn.Module, opt: torch.optim.Optimizer, x, y, loss_fn) -> None:
        if amp is not None:
            with amp:
                loss = loss_fn(model(x), y)
        else:
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seq = [_layout(m, device) for m in _nets(archs, args, device, 1)]
    seq_opts = [recipe.build_optimizer(m.parameters()) for m in seq]

    def sequential() -> None:
        for i, (m, o) in enumerate(zip(seq, seq_opts, strict=True)):
            step(m, o, xs[i], ys[i], F.cross_entropy)

    # The stacked arch trained one network after another: what stacking is compared with.
    alone = [_layout(m, device) for m in _nets([archs[0]] * k, args, device, 2)]
    alone_opts = [recipe.build_optimizer(m.parameters()) for m in alone]

    def sequential_stacked_arch() -> None:
        for i, (m, o) in enumerate(zip(alone, alone_opts, strict=True)):
            step(m, o, xs[i], ys[i], F.cross_entropy)

    same = _nets([archs[0]] * k, args, device, 2)
    stacked = _layout(stack_networks(same), device)
    st_opt = recipe.build_optimizer(stacked.parameters())
    x_st = xs.permute(1, 0, 2, 3, 4).reshape(b, k * 3, res, res)
    if device.type == "cuda":
        x_st = x_st.contiguous(memory_format=torch.channels_last)
    y_st = ys.t().contiguous()

    def stacked_step() -> None:
        step(stacked, st_opt, x_st, y_st, stacked_loss)

    out: dict[str, Callable[[], None]] = {
        "sequential": sequential,
        "sequential_stacked_arch": sequential_stacked_arch,
        "stacked": stacked_step,
    }
    if device.type == "cuda":
        par = [_layout(m, device) for m in _nets(archs, args, device, 3)]
        par_opts = [recipe.build_optimizer(m.parameters()) for m in par]
        streams = [torch.cuda.Stream(device) for _ in par]

        def on_streams() -> None:
            current = torch.cuda.current_stream(device)
            for i, (m, o, s) in enumerate(zip(par, par_opts, streams, strict=True)):
                s.wait_stream(current)
                with torch.cuda.stream(s):
                    step(m, o, xs[i], ys[i], F.cross_entropy)
            for s in streams:
                current.wait_stream(s)

        out["streams"] = on_streams
    return out


def stacking_error(args: argparse.Namespace, device: torch.device, arch: Arch) -> float:
    """Largest |logit difference| between the stacked network and the separate networks,
    after one SGD step of each on the same batches (the check that stacking is exact)."""
    recipe = get_recipe("nb201-200e")
    k, b, res = args.nets, max(2, min(args.batch, 8)), args.resolution
    nets = _nets([arch] * k, args, torch.device("cpu"), 4)
    stacked = stack_networks(nets)
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(k, b, 3, res, res, generator=g)
    ys = torch.randint(0, 10, (k, b), generator=g)
    opts = [recipe.build_optimizer(m.parameters()) for m in nets]
    st_opt = recipe.build_optimizer(stacked.parameters())
    for o in [*opts, st_opt]:
        for group in o.param_groups:
            group["lr"] = 0.1
    x_st = xs.permute(1, 0, 2, 3, 4).reshape(b, k * 3, res, res)
    for m, o, x, y in zip(nets, opts, xs, ys, strict=True):
        o.zero_grad()
        F.cross_entropy(m(x), y).backward()
        o.step()
    st_opt.zero_grad()
    stacked_loss(stacked(x_st), ys.t()).backward()
    st_opt.step()
    with torch.no_grad():
        sep = torch.stack([m(x) for m, x in zip(nets, xs, strict=True)], dim=1)
        return float((stacked(x_st) - sep).abs().max())


def project(images_per_s: float, seeds: int, eval_fraction: float) -> dict[str, Any]:
    """GPU-hours of the full table at ``images_per_s`` (32x32-image equivalents)."""
    per_arch = sum(n * f for n, f in TABLE_DATASETS.values()) * TABLE_EPOCHS * seeds
    total = per_arch * NUM_ARCHS * (1.0 + eval_fraction)
    hours = total / images_per_s / 3600.0
    return {
        "images_32px_equivalent": total,
        "gpu_hours": hours,
        "gpu_days": hours / 24.0,
        "assumes": f"{NUM_ARCHS} archs x {seeds} seed(s) x {TABLE_EPOCHS} epochs over "
        + ", ".join(f"{k} ({n} x {f})" for k, (n, f) in TABLE_DATASETS.items())
        + f", evaluation +{eval_fraction:.0%}",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--nets", type=int, default=8, help="networks trained at once")
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed rounds")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3, help="seeds per arch in the projection")
    p.add_argument("--eval-fraction", type=float, default=0.15)
    p.add_argument("--arch-seed", type=int, default=0, help="draws the --nets archs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--tiny", action="store_true", help="C=4 N=1 batch 8 16px 2 nets 2 steps (logic check)"
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.tiny:
        args.C, args.N, args.batch, args.resolution = 4, 1, 8, 16
        args.nets, args.steps, args.warmup = 2, 2, 1
    for name in ("nets", "C", "N", "batch", "resolution", "steps", "seeds"):
        if getattr(args, name) < 1:
            raise PlanError(f"--{name} must be >= 1, got {getattr(args, name)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PlanError(
            f"--device {args.device!r} requested but CUDA is not available; "
            "pass --device cpu --tiny for the logic check"
        )
    if device.type not in ("cpu", "cuda"):
        raise PlanError(f"--device {args.device!r} invalid; expected cpu or cuda[:N]")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.arch_seed)
    archs = [Arch.sample(rng) for _ in range(args.nets)]
    steps = strategies(args, device, archs)
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for r in range(args.warmup + args.steps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            steps[name]()
            _sync(device)
            if r >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    images = args.nets * args.batch
    ips = {k: images / statistics.median(v) for k, v in times.items()}
    best = max(ips, key=lambda k: ips[k])
    scale = (args.resolution / 32) ** 2  # a 32x32-image equivalent costs 1/scale images
    report: dict[str, Any] = {
        "benchmark": "gpu_plan",
        "command": "python benchmarks/gpu_plan.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "archs": [a.to_string() for a in archs],
        "stacked_arch": archs[0].to_string(),
        "step_seconds": {k: statistics.median(v) for k, v in times.items()},
        "images_per_s": ips,
        "speedup_vs_sequential": {k: v / ips["sequential"] for k, v in ips.items()},
        # Stacking trains one arch: compared with that arch's networks one after another.
        "stacked_speedup_same_arch": ips["stacked"] / ips["sequential_stacked_arch"],
        "stacking_max_abs_diff": stacking_error(args, device, archs[0]),
        "best": best,
        "projection": project(ips[best] * scale, args.seeds, args.eval_fraction),
        "projection_sequential": project(ips["sequential"] * scale, args.seeds, args.eval_fraction),
        "cpu_count": os.cpu_count(),
    }
    if device.type != "cuda":
        report["note"] = "CPU run: a logic check, not a GPU figure; streams need CUDA"
    print(json.dumps(report, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, report)
    return report


if __name__ == "__main__":
    try:
        main()
    except NasforgeError as exc:  # a bad option: one line, exit code 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
