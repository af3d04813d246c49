"""What each speed lever of the one-shot supernet step buys, measured A/B in one process.

Issue #32 lists levers to try; this script measures each against the code without it, on
the same machine in the same run (the two sides alternate step by step, the side that goes
first alternating too; the figure is the ratio of the median process CPU time per step,
``without / with``: above 1 means the lever pays). Run with ``--threads 1`` on a shared
machine.

* ``layout``: the NB201 supernet in channels_last (what ``OneShotSearch.setup`` picks on
  x86-64 through ``default_channels_last``) vs NCHW, a ``--method`` step (default
  DARTS-V1: weight step + arch step) at ``--C`` / ``--N`` / ``--batch``.
* ``shared_relu``: one ReLU per edge input for the edge's ReLU-led candidate ops
  (``MixedEdge.relu_led``) vs one per op, same step; also the activation bytes one forward
  saves for backward (``supernet_cost.activation_bytes``).
* ``darts_layout``: the DARTS-space supernet (``--darts-method``, default DARTS-V1, at
  ``--darts-C`` / ``--darts-layers`` / ``--darts-batch``) in channels_last (the default:
  every 1x1 conv runs at stride 1, :class:`~nasforge.nn.ops.SubsampledConv2d`) vs NCHW.
* ``narrow_bn``: a PC-DARTS DARTS-space step (same sizes) with its < 8-channel BatchNorms
  computing on NCHW copies (``narrow_batchnorms_in_nchw``, the default) vs in channels_last.
* ``node_shuffle``: the same step with each node's edge parts summed and shuffled once and
  one ReLU / bypass pool per source node (``mixed_nodes``, the default) vs every edge
  concatenating, shuffling, ReLU-ing and pooling on its own (the official order).
* ``shuffle_layout``: the same step with the edge output's concatenation + channel shuffle
  as one channels_last-preserving stack (``shuffle_concat``, the default) vs
  ``channel_shuffle(torch.cat(...))``, whose reshape returns NCHW.
* ``subsampled_conv``: the stride-2 convs whose taps lie on the stride grid as strided
  ``nn.Conv2d`` vs ``SubsampledConv2d`` (forward + backward).
* ``merged_conv``: NB201's two convolutions on one edge input (3x3 and 1x1, C -> C) as
  one 3x3 convolution of 2C outputs (the 1x1 kernel zero-padded), forward + backward,
  channels_last, at the three stage shapes.
* ``compile``: ``torch.compile`` (inductor) of one NB201 mixed edge's weighted forward +
  backward vs eager, after the compile (whose seconds are reported); an error is reported
  as such (e.g. no C++ compiler).

    PYTHONPATH=src python benchmarks/oneshot_levers.py --threads 1 \\
        --out benchmarks/results/oneshot_levers.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import nasforge.nn.supernet as supernet_mod
from nasforge.io import atomic_write_json
from nasforge.nn.ops import conv2d
from nasforge.nn.supernet import MixedEdge
from nasforge.search import ONESHOT
from nasforge.search.oneshot.base import OneShotSearch
from nasforge.train.device import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supernet_cost import activation_bytes

LEVERS = (
    "layout",
    "shared_relu",
    "darts_layout",
    "narrow_bn",
    "node_shuffle",
    "shuffle_layout",
    "subsampled_conv",
    "merged_conv",
    "compile",
)
CL = torch.channels_last


def ab(sides: dict[str, Callable[[], None]], repeats: int) -> dict[str, Any]:
    """Median process CPU seconds per call of each side, after one untimed call each,
    alternating the order every round."""
    for fn in sides.values():
        fn()
    names = list(sides)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.process_time()
            sides[name]()
            times[name].append(time.process_time() - t0)
    return {"median_s": {k: statistics.median(v) for k, v in times.items()}, "all_s": times}


def _batches(batch: int, res: int = 32) -> tuple[tuple, tuple]:
    g = torch.Generator().manual_seed(0)
    mk = lambda: (  # noqa: E731
        torch.randn(batch, 3, res, res, generator=g),
        torch.randint(0, 10, (batch,), generator=g),
    )
    return mk(), mk()


def _method(space: str, name: str, **config: Any) -> OneShotSearch:
    m = ONESHOT.create(name, space=space, **config)
    m.setup(10, seed=0)
    m.begin_epoch(20)  # PC-DARTS: past the warm-up, so the arch step runs too
    return m


def _stepper(m: OneShotSearch, base: tuple, arch: tuple) -> Callable[[], None]:
    return lambda: m.train_step(base, arch if type(m).uses_arch_batches else None, 20)


def lever_layout(args: argparse.Namespace) -> dict[str, Any]:
    base, arch = _batches(args.batch)
    cl = _method("nb201", args.method, C=args.C, N=args.N)
    nchw = _method("nb201", args.method, C=args.C, N=args.N)
    nchw.supernet.to(memory_format=torch.contiguous_format)
    out = ab(
        {"channels_last": _stepper(cl, base, arch), "nchw": _stepper(nchw, base, arch)},
        args.repeats,
    )
    out["gain"] = out["median_s"]["nchw"] / out["median_s"]["channels_last"]
    return out


def lever_shared_relu(args: argparse.Namespace) -> dict[str, Any]:
    base, arch = _batches(args.batch)
    shared = _method("nb201", args.method, C=args.C, N=args.N)
    per_op = _method("nb201", args.method, C=args.C, N=args.N)
    for m in per_op.supernet.modules():
        if isinstance(m, MixedEdge):
            m.relu_led = (False,) * len(m.relu_led)
    out = ab(
        {"shared": _stepper(shared, base, arch), "per_op": _stepper(per_op, base, arch)},
        args.repeats,
    )
    out["gain"] = out["median_s"]["per_op"] / out["median_s"]["shared"]
    out["activation_bytes"] = {
        "shared": activation_bytes(shared, *base),
        "per_op": activation_bytes(per_op, *base),
    }
    return out


def _clear_narrow_bn_hooks(net: torch.nn.Module) -> int:
    """Undo ``narrow_batchnorms_in_nchw`` on ``net``; returns how many BNs had its hooks."""
    cleared = 0
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d) and mod._forward_hooks:
            mod._forward_pre_hooks.clear()
            mod._forward_hooks.clear()
            cleared += 1
    return cleared


def lever_darts_layout(args: argparse.Namespace) -> dict[str, Any]:
    base, arch = _batches(args.darts_batch)
    cfg = {"C": args.darts_C, "N": args.darts_layers}
    sides = {}
    for name in ("nchw", "channels_last"):
        m = _method("darts", args.darts_method, **cfg)  # channels_last: the default
        if name == "nchw":
            m.supernet.to(memory_format=torch.contiguous_format)
            _clear_narrow_bn_hooks(m.supernet)  # they are for channels_last
        sides[name] = _stepper(m, base, arch)
    out = ab(sides, args.repeats)
    med = out["median_s"]
    out["gain"] = {k: med["nchw"] / v for k, v in med.items()}
    return out


def _pc_darts(args: argparse.Namespace) -> OneShotSearch:
    return _method("darts", "pc-darts", C=args.darts_C, N=args.darts_layers)


def lever_narrow_bn(args: argparse.Namespace) -> dict[str, Any]:
    base, arch = _batches(args.darts_batch)
    hooked, plain = _pc_darts(args), _pc_darts(args)
    cleared = _clear_narrow_bn_hooks(plain.supernet)
    out = ab(
        {
            "nchw_narrow_bn": _stepper(hooked, base, arch),
            "channels_last_bn": _stepper(plain, base, arch),
        },
        args.repeats,
    )
    out["gain"] = out["median_s"]["channels_last_bn"] / out["median_s"]["nchw_narrow_bn"]
    out["narrow_bns"] = cleared
    return out


def _per_edge_forward(cell, s0, s1, weights, index, edge_weights):  # type: ignore[no-untyped-def]
    """A DARTS search cell as the official PC-DARTS computes it: every edge concatenates and
    shuffles its own output, every edge applies its own ReLU and bypass pool."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    e = 0
    for _ in range(cell.steps):
        total = None
        for h in list(states):
            ew = None if edge_weights is None else edge_weights[e]
            y = cell.edges[e](h, weights[e], None, ew)
            total = y if total is None else total + y
            e += 1
        states.append(total)
    return torch.cat(states[-cell.multiplier :], dim=1)


def lever_node_shuffle(args: argparse.Namespace) -> dict[str, Any]:
    base, arch = _batches(args.darts_batch)
    node, per_edge = _pc_darts(args), _pc_darts(args)
    for cell in per_edge.supernet.cells:
        cell.forward = types.MethodType(_per_edge_forward, cell)
    out = ab(
        {"node_level": _stepper(node, base, arch), "per_edge": _stepper(per_edge, base, arch)},
        args.repeats,
    )
    out["gain"] = out["median_s"]["per_edge"] / out["median_s"]["node_level"]
    out["activation_bytes"] = {
        "node_level": activation_bytes(node, *base),
        "per_edge": activation_bytes(per_edge, *base),
    }
    return out


def lever_shuffle_layout(args: argparse.Namespace) -> dict[str, Any]:
    """PC-DARTS step with the edge output's concatenation + shuffle as one stack that keeps
    channels_last (``shuffle_concat``, the default) vs ``channel_shuffle(torch.cat(...))``,
    whose reshape returns NCHW (the module function is swapped around each side's step)."""
    base, arch = _batches(args.darts_batch)
    sides_m = {"stacked": _pc_darts(args), "cat_reshape": _pc_darts(args)}
    impl = {
        "stacked": supernet_mod.shuffle_concat,
        "cat_reshape": lambda y, rest, k: supernet_mod.channel_shuffle(
            torch.cat([y, rest], dim=1), k
        ),
    }

    def run(name: str) -> Callable[[], None]:
        step = _stepper(sides_m[name], base, arch)

        def go() -> None:
            saved = supernet_mod.shuffle_concat
            supernet_mod.shuffle_concat = impl[name]
            try:
                step()
            finally:
                supernet_mod.shuffle_concat = saved

        return go

    out = ab({k: run(k) for k in sides_m}, args.repeats)
    out["gain"] = out["median_s"]["cat_reshape"] / out["median_s"]["stacked"]
    return out


def lever_subsampled_conv(args: argparse.Namespace) -> dict[str, Any]:
    """The stride-2 convs whose taps lie on the stride grid, forward + backward, as
    ``nn.Conv2d`` vs :class:`~nasforge.nn.ops.SubsampledConv2d`: PC-DARTS' reduction-edge
    ``dil_conv`` depthwise convs (channels_last) and FactorizedReduce's 1x1 (NCHW: the
    strided 1x1 kernel is unsafe in channels_last, oneDNN#6035), at the DARTS search shapes."""
    out = {}
    c0 = args.darts_C * 2 // 4  # the first reduction cell's C/K at K=4
    cases = [
        ("dil3", c0, 32, 3, 2, 2, c0, CL),
        ("dil5", c0, 32, 5, 4, 2, c0, CL),
        ("dil3", 2 * c0, 16, 3, 2, 2, 2 * c0, CL),
        ("dil5", 2 * c0, 16, 5, 4, 2, 2 * c0, CL),
        ("fr1x1", 4 * args.darts_C, 32, 1, 0, 1, 1, torch.contiguous_format),
    ]
    for name, c, res, k, pad, dil, groups, fmt in cases:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(args.darts_batch, c, res, res, generator=g).contiguous(memory_format=fmt)
        x.requires_grad_()
        fast = conv2d(c, c, k, 2, pad, dil, groups=groups, bias=False).to(memory_format=fmt)
        ref = torch.nn.Conv2d(c, c, k, 2, pad, dil, groups=groups, bias=False)
        ref.load_state_dict(fast.state_dict())
        ref.to(memory_format=fmt)

        def run(conv: torch.nn.Module, x: torch.Tensor = x) -> Callable[[], None]:
            return lambda: conv(x).sum().backward()

        r = ab({"strided": run(ref), "subsampled": run(fast)}, max(10, args.repeats))
        r["gain"] = r["median_s"]["strided"] / r["median_s"]["subsampled"]
        out[f"{name}:{c}x{res}x{res}"] = r
    return out


def lever_merged_conv(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for c, res in ((args.C, 32), (2 * args.C, 16), (4 * args.C, 8)):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, c, res, res, generator=g).contiguous(memory_format=CL)
        x.requires_grad_()
        w3 = torch.randn(c, c, 3, 3, generator=g).contiguous(memory_format=CL).requires_grad_()
        w1 = torch.randn(c, c, 1, 1, generator=g).contiguous(memory_format=CL).requires_grad_()

        def separate(x=x, w3=w3, w1=w1) -> None:
            (F.conv2d(x, w3, padding=1).sum() + F.conv2d(x, w1).sum()).backward()

        def merged(x=x, w3=w3, w1=w1) -> None:
            w = torch.cat([w3, F.pad(w1, (1, 1, 1, 1))])
            F.conv2d(x, w, padding=1).sum().backward()

        r = ab({"separate": separate, "merged": merged}, max(5, args.repeats))
        r["gain"] = r["median_s"]["separate"] / r["median_s"]["merged"]
        out[f"{c}x{res}x{res}"] = r
    return out


def lever_compile(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    edge = MixedEdge(args.C).to(memory_format=CL)
    x = torch.randn(args.batch, args.C, 32, 32).contiguous(memory_format=CL)
    w = torch.softmax(torch.randn(5), 0).requires_grad_()

    def run(fn: Callable[..., torch.Tensor]) -> Callable[[], None]:
        return lambda: fn(x, w).sum().backward()

    t0 = time.perf_counter()
    try:
        compiled = torch.compile(edge)
        run(compiled)()
    except Exception as exc:  # the lever is optional: report why it is unavailable
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    compile_s = time.perf_counter() - t0
    out = ab({"eager": run(edge), "compiled": run(compiled)}, max(5, args.repeats))
    out["gain"] = out["median_s"]["eager"] / out["median_s"]["compiled"]
    out["compile_wall_s"] = compile_s
    return out


LEVER_RUNS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "layout": lever_layout,
    "shared_relu": lever_shared_relu,
    "darts_layout": lever_darts_layout,
    "narrow_bn": lever_narrow_bn,
    "node_shuffle": lever_node_shuffle,
    "shuffle_layout": lever_shuffle_layout,
    "subsampled_conv": lever_subsampled_conv,
    "merged_conv": lever_merged_conv,
    "compile": lever_compile,
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=LEVERS)
    p.add_argument("--method", default="darts-v1")
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--darts-method", default="darts-v1")
    p.add_argument("--darts-C", type=int, default=16)
    p.add_argument("--darts-layers", type=int, default=5)
    p.add_argument("--darts-batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "benchmark": "oneshot_levers",
        "command": "PYTHONPATH=src python benchmarks/oneshot_levers.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
        },
        "levers": {},
    }
    for lever in args.levers:
        report["levers"][lever] = LEVER_RUNS[lever](args)
        print(f"{lever}: {json.dumps(report['levers'][lever].get('gain'))}", file=sys.stderr)
        if args.out is not None:
            atomic_write_json(args.out, report)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.out is not None:
        atomic_write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
