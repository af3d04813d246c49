"""The PV-NAS spatial-temporal search space: one operation and one width per layer.

PV-NAS (Wang, Lin, Sheng, Yan, Shao: "PV-NAS: Practical Neural Architecture Search for
Video Recognition", arXiv:2011.00826) searches, layer by layer, which spatial-temporal
operation a video network uses and how wide it is, with a gradient-based (DARTS-style)
search. **What could be verified:** only the paper's abstract was reachable from here (no
full text and no official code was found in the stored public material); it names a
"spatial-temporal network search space" searched with gradient-based methods and a
learning-rate scheduler promoting diversity. **What could not be verified:** the published
operation list, kernel sizes, widths and macro skeleton. The candidates here are the
families the issue names, each in its usual form:

========  ==============================================================================
``2d3``   spatial conv 1x3x3 (TSN: frames processed independently)
``2d5``   spatial conv 1x5x5
``t1d3``  temporal conv 3x1x1 (temporal 1D; no spatial extent)
``shift`` TSM temporal shift (1/8 of the channels back, 1/8 forward; ``fold_div=8``,
          mit-han-lab/temporal-shift-module ops/temporal_shift.py:27-44) + conv 1x3x3
``r21d3`` R(2+1)D: conv 1x3x3 to M channels, BN, ReLU, conv 3x1x1; M chosen so the pair
          has the parameters of the 3x3x3 conv (Tran et al. 2018, Sec. 3.5:
          ``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))``)
``3d3``   full 3D conv 3x3x3 (C3D / I3D style)
========  ==============================================================================

and the width of a layer is the inner (bottleneck) channel count as a fraction of the
layer's output channels, one of ``0.5 / 0.75 / 1``.

The macro skeleton (:data:`SKELETON`) is a small residual network for CPU-scale clips: a
1x3x3 stem of ``C`` channels, then six residual layers of ``C, C, 2C, 2C, 4C, 4C`` output
channels, spatial stride 2 at layers 2 and 4, no temporal stride, global average pooling
over time and space, dropout, a linear classifier. A layer is ``op (C_in -> inner, stride)
-> BN -> ReLU -> conv 1x1x1 (inner -> C_out) -> BN``, added to the shortcut (identity, or
a strided 1x1x1 conv + BN where the shape changes), then ReLU.

Archs print as ``l0.op=shift,l0.width=1,l1.op=2d3,...`` (:class:`CategoricalBase`).
Multiply-adds and parameters are counted analytically here (pure python): conv and linear
multiply-adds per output position, BN/ReLU/pooling/additions free, the NAS-Bench-201
convention of :mod:`nasforge.cost.counter`; tests compare the count with hooks on the
torch network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ArchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.registry import SPACES

#: Candidate operations of a layer (see the module docstring).
OPS: tuple[str, ...] = ("2d3", "2d5", "t1d3", "shift", "r21d3", "3d3")
#: Candidate widths: inner channels as a fraction of the layer's output channels.
WIDTHS: tuple[str, ...] = ("0.5", "0.75", "1")
#: (output-channel multiple of C, spatial stride) of the six searched layers.
SKELETON: tuple[tuple[int, int], ...] = ((1, 1), (1, 1), (2, 2), (2, 1), (4, 2), (4, 1))
#: Temporal and spatial kernel of each op's single conv (r21d3: see :func:`r21d_mid`).
KERNELS: dict[str, tuple[int, int]] = {
    "2d3": (1, 3),
    "2d5": (1, 5),
    "t1d3": (3, 1),
    "shift": (1, 3),
    "r21d3": (3, 3),
    "3d3": (3, 3),
}
#: Ops that mix information across frames (all but the per-frame 2D convs).
TEMPORAL_OPS = frozenset({"t1d3", "shift", "r21d3", "3d3"})
#: TSM's default fold divisor (opts.py ``--shift_div`` 8).
SHIFT_DIV = 8


def r21d_mid(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """R(2+1)D's intermediate channels: the (2+1)D pair has the 3D conv's parameters."""
    return max(1, (t * d * d * cin * cout) // (d * d * cin + t * cout))


def inner_channels(width: str, cout: int) -> int:
    """Inner channels of a layer of ``cout`` output channels at ``width``."""
    return max(1, round(float(width) * cout))


@dataclass(frozen=True)
class PVNASArch:
    """One op and one width per layer of :data:`SKELETON`."""

    ops: tuple[str, ...]
    widths: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(SKELETON)
        if len(self.ops) != n or len(self.widths) != n:
            raise ArchError(f"a pvnas arch has {n} ops and {n} widths; got {self}")
        for o in self.ops:
            if o not in OPS:
                raise ArchError(f"pvnas op {o!r}; expected one of {list(OPS)}")
        for w in self.widths:
            if w not in WIDTHS:
                raise ArchError(f"pvnas width {w!r}; expected one of {list(WIDTHS)}")

    @classmethod
    def uniform(cls, op: str, width: str = "1") -> PVNASArch:
        """Every layer ``op`` at ``width`` (the hand-designed baselines: all ``2d3`` is a
        TSN ResNet, all ``shift`` a TSM one, all ``r21d3`` an R(2+1)D, all ``3d3`` a 3D CNN)."""
        n = len(SKELETON)
        return cls((op,) * n, (width,) * n)


def layer_plan(C: int) -> list[tuple[int, int, int]]:
    """``(C_in, C_out, stride)`` of each searched layer for stem width ``C``."""
    plan, cin = [], C
    for mult, stride in SKELETON:
        plan.append((cin, mult * C, stride))
        cin = mult * C
    return plan


def _out(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # 'same' padding, odd kernels


def layer_cost(
    i: int, op: str, width: str, *, frames: int, size: int, C: int = 16
) -> tuple[float, float]:
    """``(multiply-adds, params)`` of searched layer ``i`` with ``op`` at ``width`` on
    clips of ``frames`` x ``size`` x ``size`` at the network input (shortcut included)."""
    cin, cout, stride = layer_plan(C)[i]
    h = size
    for _, s in SKELETON[: i + 1]:
        h = _out(h, s)
    pos = frames * h * h
    inner = inner_channels(width, cout)
    if op == "r21d3":
        mid = r21d_mid(cin, inner)
        w = 9 * cin * mid + 3 * mid * inner
        params = w + 2 * mid
    else:
        kt, ks = KERNELS[op]
        w = kt * ks * ks * cin * inner
        params = w
    macs = pos * w
    params += 2 * inner + inner * cout + 2 * cout  # BN, 1x1x1 projection, BN
    macs += pos * inner * cout
    if stride != 1 or cin != cout:
        params += cin * cout + 2 * cout
        macs += pos * cin * cout
    return float(macs), float(params)


def pvnas_cost(
    arch: PVNASArch,
    *,
    frames: int,
    size: int,
    in_channels: int = 3,
    num_classes: int = 10,
    C: int = 16,
) -> dict[str, float]:
    """Multiply-adds per clip and parameters of the network of ``arch`` (exact counts).

    ``frames`` x ``size`` x ``size`` is one clip. Convs have no bias (BN follows each);
    BN has 2 parameters per channel; the classifier has a bias."""
    macs = float(frames * size * size * in_channels * C * 9)  # stem 1x3x3
    params = float(in_channels * C * 9 + 2 * C)
    for i, (op, width) in enumerate(zip(arch.ops, arch.widths, strict=True)):
        m, p = layer_cost(i, op, width, frames=frames, size=size, C=C)
        macs, params = macs + m, params + p
    cfinal = layer_plan(C)[-1][1]
    params += cfinal * num_classes + num_classes
    macs += cfinal * num_classes
    return {"macs": macs, "params": params}


@SPACES.register("pvnas")
class PVNASSpace(CategoricalBase):
    """The PV-NAS layer-wise op x width space over :data:`SKELETON` (6^6 x 3^6 archs)."""

    name = "pvnas"

    def choices(self) -> tuple[Choice, ...]:
        out = []
        for i in range(len(SKELETON)):
            out += [Choice(f"l{i}.op", OPS), Choice(f"l{i}.width", WIDTHS)]
        return tuple(out)

    def to_choices(self, arch: PVNASArch) -> tuple[int, ...]:
        if not isinstance(arch, PVNASArch):
            raise ArchError(f"not a pvnas arch: {arch!r}")
        out: list[int] = []
        for o, w in zip(arch.ops, arch.widths, strict=True):
            out += [OPS.index(o), WIDTHS.index(w)]
        return tuple(out)

    def from_choices(self, picks: Sequence[int]) -> PVNASArch:
        picks = [int(p) for p in picks]
        n = len(SKELETON)
        if len(picks) != 2 * n:
            raise ArchError(f"a pvnas arch has {2 * n} positions; got {len(picks)} picks")
        for i, p in enumerate(picks):
            k = len(OPS) if i % 2 == 0 else len(WIDTHS)
            if not 0 <= p < k:
                raise ArchError(f"pvnas pick {p} at position {i}; expected 0..{k - 1}")
        return PVNASArch(tuple(OPS[p] for p in picks[0::2]), tuple(WIDTHS[p] for p in picks[1::2]))

    def describe_arch(self, arch: PVNASArch) -> dict[str, Any]:
        return {
            **super().describe_arch(arch),
            "temporal_layers": sum(o in TEMPORAL_OPS for o in arch.ops),
            "cost_16px_4f_C16": pvnas_cost(arch, frames=4, size=16, in_channels=1, num_classes=4),
        }


def hamming(a: PVNASArch, b: PVNASArch) -> int:
    """Positions (ops and widths) where two archs differ: the spread measure of searches."""
    sp = PVNASSpace()
    return sum(x != y for x, y in zip(sp.to_choices(a), sp.to_choices(b), strict=True))
