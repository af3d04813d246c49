"""The width (channel-count) search space of a backbone, with analytic FLOPs and params.

A *backbone spec* lists the channel *groups* of a network (a group is a set of layer ends
that must carry the same number of channels: the residual stream of a stage is one group,
since both ends of a residual sum must agree) and every Conv/BN/Linear layer as
``(name, kind, in_group, out_group, kernel, output size)``. Layer names are the module paths
of the torch module that ``nasforge.nn.backbones`` builds from the same spec, so the spec is
the single description both the analytic cost and the slimmable supernet read.

A *width configuration* is one channel count per searchable group, in
:attr:`BackboneSpec.searchable` order (a tuple of ints; a batch of them is an ``(B, G)``
integer array). FLOPs and params are bilinear in the widths, so they are evaluated for a
whole batch at once with a few vectorised numpy products (well over 10^5 configs per
second; ``benchmarks/width_ranking.py`` measures it).

The counting convention is ``nasforge.cost.count_flops``'s (NAS-Bench-201's): multiply-adds
of Conv2d (+ bias) and Linear (+ bias); BN, ReLU, pooling and additions are free.

This module is pure Python + numpy (the spaces layer imports no torch).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nasforge.errors import ArchError, SearchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.nats_sss import CANDIDATES as NATS_CANDIDATES
from nasforge.spaces.nats_sss import CELL as NATS_CELL
from nasforge.spaces.nats_sss import NUM_LAYERS as NATS_LAYERS
from nasforge.spaces.nb201 import Arch
from nasforge.spaces.registry import SPACES

LayerKind = Literal["conv", "dwconv", "bn", "linear"]
#: Names of the two fixed groups every spec has: the RGB input and the class logits.
INPUT_GROUP = "input"
CLASSES_GROUP = "classes"


@dataclass(frozen=True)
class GroupSpec:
    """A set of layer ends that share one channel count; ``full`` is its width in the supernet."""

    name: str
    full: int
    searchable: bool = True


@dataclass(frozen=True)
class LayerSpec:
    """One Conv2d / depthwise Conv2d / BatchNorm2d / Linear layer of a backbone.

    ``out_size`` is the spatial side of the layer's output (``H == W``); ``cin``/``cout`` are
    group names. A depthwise conv has ``cin == cout`` and ``groups == channels``.
    """

    name: str
    kind: LayerKind
    cin: str
    cout: str
    kernel: int = 1
    stride: int = 1
    out_size: int = 1
    bias: bool = False
    #: ``(group a, group b)``: the layer exists only when those two groups have different
    #: widths (a skip edge that needs a projection then, an identity otherwise: NATS-Bench
    #: size-space cells). Its cost counts only for such configurations.
    when_differ: tuple[str, str] | None = None


@dataclass(frozen=True)
class BackboneSpec:
    """Channel groups and layers of a backbone at a given input resolution and class count."""

    name: str
    resolution: int
    num_classes: int
    groups: tuple[GroupSpec, ...]
    layers: tuple[LayerSpec, ...]
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ArchError(f"backbone {self.name!r}: duplicate group names in {names}")
        known = set(names)
        for layer in self.layers:
            for g in (layer.cin, layer.cout):
                if g not in known:
                    raise ArchError(f"layer {layer.name!r} names unknown group {g!r}")
            if layer.kind in ("dwconv", "bn") and layer.cin != layer.cout:
                raise ArchError(f"{layer.kind} layer {layer.name!r} must map a group to itself")
            if layer.when_differ is not None and not set(layer.when_differ) <= known:
                raise ArchError(f"layer {layer.name!r}: unknown groups in {layer.when_differ}")

    @property
    def conditional(self) -> bool:
        """True when some layer exists only for some widths (``LayerSpec.when_differ``)."""
        return any(layer.when_differ is not None for layer in self.layers)

    def present_layers(self, widths: Sequence[int]) -> tuple[LayerSpec, ...]:
        """The layers of the standalone network of ``widths`` (conditional ones resolved)."""
        ch = self.widths_dict(widths)
        return tuple(
            layer for layer in self.layers
            if layer.when_differ is None or ch[layer.when_differ[0]] != ch[layer.when_differ[1]]
        )  # fmt: skip

    # -- groups ---------------------------------------------------------------------------
    @property
    def searchable(self) -> tuple[str, ...]:
        """Names of the searchable groups: the columns of a width configuration."""
        return tuple(g.name for g in self.groups if g.searchable)

    @property
    def full_widths(self) -> tuple[int, ...]:
        """The supernet (largest) width of each searchable group."""
        return tuple(g.full for g in self.groups if g.searchable)

    def group(self, name: str) -> GroupSpec:
        for g in self.groups:
            if g.name == name:
                return g
        raise ArchError(f"backbone {self.name!r} has no channel group {name!r}")

    def check_widths(self, widths: Sequence[int] | np.ndarray) -> np.ndarray:
        """``widths`` as an int64 array of shape (G,) or (B, G), validated against the spec."""
        w = np.asarray(widths)
        g = len(self.searchable)
        if w.ndim not in (1, 2) or w.shape[-1] != g:
            raise ArchError(
                f"a {self.name} width configuration has {g} entries "
                f"({', '.join(self.searchable)}); got shape {w.shape}"
            )
        if not np.issubdtype(w.dtype, np.integer) and not np.all(np.equal(np.mod(w, 1), 0)):
            raise ArchError(f"widths must be whole channel counts, got {w.tolist()}")
        w = w.astype(np.int64)
        full = np.asarray(self.full_widths, dtype=np.int64)
        bad = (w < 1) | (w > full)
        if bad.any():
            idx = np.argwhere(bad)[0]
            col = int(idx[-1])
            raise ArchError(
                f"width {int(w[tuple(idx)])} for group {self.searchable[col]!r} is outside "
                f"1..{int(full[col])}"
            )
        return w

    def widths_dict(self, widths: Sequence[int]) -> dict[str, int]:
        """``{group: channels}`` for every group, the fixed ones (input, classes) included."""
        w = self.check_widths(widths)
        if w.ndim != 1:
            raise ArchError("widths_dict takes one configuration, not a batch")
        out = {g.name: g.full for g in self.groups}
        out.update({n: int(c) for n, c in zip(self.searchable, w, strict=False)})
        return out

    # -- cost -----------------------------------------------------------------------------
    def _terms(self) -> dict[str, Any]:
        """Coefficients of the bilinear cost forms over the all-groups width vector: one set
        for the layers always present, one per ``when_differ`` condition."""
        if "terms" in self._cache:
            return self._cache["terms"]
        gi = {g.name: i for i, g in enumerate(self.groups)}
        always = [layer for layer in self.layers if layer.when_differ is None]
        conds = sorted({layer.when_differ for layer in self.layers} - {None})  # type: ignore[type-var]
        terms = self._forms(always, gi)
        terms["searchable_pos"] = np.asarray(
            [i for i, g in enumerate(self.groups) if g.searchable], dtype=np.int64
        )
        terms["fixed"] = np.asarray([g.full for g in self.groups], dtype=np.float64)
        terms["conditional"] = [
            ((gi[a], gi[b]),
             self._forms([la for la in self.layers if la.when_differ == (a, b)], gi))
            for a, b in conds
        ]  # fmt: skip
        self._cache["terms"] = terms
        return terms

    def _forms(self, layers: Sequence[LayerSpec], gi: dict[str, int]) -> dict[str, np.ndarray]:
        fq: list[tuple[int, int, float]] = []  # FLOPs: coef * w[a] * w[b]
        fl: list[tuple[int, float]] = []  # FLOPs: coef * w[a]
        pq: list[tuple[int, int, float]] = []
        pl: list[tuple[int, float]] = []
        for layer in layers:
            a, b = gi[layer.cin], gi[layer.cout]
            pos = float(layer.out_size * layer.out_size)
            kk = float(layer.kernel * layer.kernel)
            if layer.kind == "conv":
                fq.append((a, b, kk * pos))
                pq.append((a, b, kk))
            elif layer.kind == "dwconv":
                fl.append((b, kk * pos))
                pl.append((b, kk))
            elif layer.kind == "linear":
                fq.append((a, b, 1.0))
                pq.append((a, b, 1.0))
            if layer.kind == "bn":
                pl.append((b, 2.0))  # affine weight + bias
            elif layer.bias:
                fl.append((b, pos if layer.kind != "linear" else 1.0))
                pl.append((b, 1.0))

        n = len(self.groups)

        def quad(t: list[tuple[int, int, float]]) -> np.ndarray:
            # Bilinear terms collapse into one (G, G) matrix: cost = sum_ij w_i Q_ij w_j.
            q = np.zeros((n, n))
            for i, j, v in t:
                q[i, j] += v
            return q

        def lin(t: list[tuple[int, float]]) -> np.ndarray:
            c = np.zeros(n)
            for i, v in t:
                c[i] += v
            return c

        return {"fq": quad(fq), "fl": lin(fl), "pq": quad(pq), "pl": lin(pl)}

    def _cost(self, widths: np.ndarray, q: str, lin: str) -> np.ndarray:
        t = self._terms()
        a = self._all_groups(widths.astype(np.float64))

        def form(f: dict[str, np.ndarray]) -> np.ndarray:
            return ((a @ f[q]) * a).sum(-1) + a @ f[lin]

        out = form(t)
        for (i, j), f in t["conditional"]:
            out = out + np.where(a[..., i] != a[..., j], form(f), 0.0)
        return out

    def _all_groups(self, widths: np.ndarray) -> np.ndarray:
        t = self._terms()
        full = np.broadcast_to(t["fixed"], (*widths.shape[:-1], len(self.groups))).copy()
        full[..., t["searchable_pos"]] = widths
        return full

    def flops(self, widths: Sequence[int] | np.ndarray, *, check: bool = True) -> np.ndarray:
        """FLOPs in millions of one sample; a float array of shape () or (B,).

        ``check=False`` skips validation (for hot loops over known-good configurations).
        """
        w = self.check_widths(widths) if check else np.asarray(widths)
        return self._cost(w, "fq", "fl") / 1e6

    def params(self, widths: Sequence[int] | np.ndarray, *, check: bool = True) -> np.ndarray:
        """Parameters in millions (BN affine included, as ``nasforge.cost.count_params``)."""
        w = self.check_widths(widths) if check else np.asarray(widths)
        return self._cost(w, "pq", "pl") / 1e6

    @property
    def full_flops(self) -> float:
        """FLOPs (M) of the full-width network."""
        return float(self.flops(self.full_widths))


# ---------------------------------------------------------------------------------------
# Backbone specs
# ---------------------------------------------------------------------------------------


def _out(size: int, kernel: int, stride: int) -> int:
    # Every conv here pads kernel // 2, so out = floor((in + 2p - k) / s) + 1.
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _resnet_cifar(depth: int, num_classes: int, resolution: int) -> BackboneSpec:
    """ResNet-(6n+2) for CIFAR (He et al. 2016, Sec. 4.2): 16/32/64 channels, n blocks/stage.

    Shortcuts that change shape use a 1x1 conv + BN projection ("option B") instead of the
    paper's zero-padding: with searched widths a stage may be narrower than the previous
    one, which padding cannot express. The first conv of each block and the residual stream
    of each stage (stem output included for stage 1) are the searchable groups.
    """
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ArchError(f"a CIFAR ResNet has depth 6n+2 >= 8, got {depth}")
    n = (depth - 2) // 6
    groups = [GroupSpec(INPUT_GROUP, 3, False)]
    layers: list[LayerSpec] = []
    size = resolution
    groups.append(GroupSpec("stage1", 16))
    layers += [
        LayerSpec("stem.conv", "conv", INPUT_GROUP, "stage1", 3, 1, size),
        LayerSpec("stem.bn", "bn", "stage1", "stage1", out_size=size),
    ]
    prev = "stage1"
    for s, planes in enumerate((16, 32, 64), start=1):
        stream = f"stage{s}"
        if s > 1:
            groups.append(GroupSpec(stream, planes))
        for b in range(1, n + 1):
            stride = 2 if (s > 1 and b == 1) else 1
            mid = f"stage{s}.block{b}"
            groups.append(GroupSpec(mid, planes))
            p = f"stages.{s - 1}.{b - 1}"
            inner = _out(size, 3, stride)
            layers += [
                LayerSpec(f"{p}.conv1", "conv", prev, mid, 3, stride, inner),
                LayerSpec(f"{p}.bn1", "bn", mid, mid, out_size=inner),
                LayerSpec(f"{p}.conv2", "conv", mid, stream, 3, 1, inner),
                LayerSpec(f"{p}.bn2", "bn", stream, stream, out_size=inner),
            ]
            if prev != stream or stride != 1:
                layers += [
                    LayerSpec(f"{p}.shortcut.conv", "conv", prev, stream, 1, stride, inner),
                    LayerSpec(f"{p}.shortcut.bn", "bn", stream, stream, out_size=inner),
                ]
            size, prev = inner, stream
    groups.append(GroupSpec(CLASSES_GROUP, num_classes, False))
    layers.append(LayerSpec("classifier", "linear", prev, CLASSES_GROUP, bias=True))
    return BackboneSpec(f"resnet{depth}", resolution, num_classes, tuple(groups), tuple(layers))


#: MobileNetV2 inverted-residual settings (expansion t, channels c, repeats n, stride s) of
#: Sandler et al. 2018 (Table 2), with the CIFAR adaptation of the widely used 32x32 variant
#: (kuangliu/pytorch-cifar): stem stride 1 and the 24-channel stage at stride 1.
MOBILENETV2_CIFAR_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _mobilenetv2_cifar(num_classes: int, resolution: int) -> BackboneSpec:
    """MobileNetV2 for 32x32 inputs: stem 3x3/32, 17 inverted residuals, 1x1/1280 head.

    Residual connections only where the original has them (stride 1 and equal in/out
    channels, i.e. every block of a stage but the first), so each stage's output is one
    group; the expanded (hidden) channels of each block are one group (the expand conv's
    output, the depthwise conv and the projection's input must agree).
    """
    groups = [GroupSpec(INPUT_GROUP, 3, False), GroupSpec("stem", 32)]
    size = resolution
    layers = [
        LayerSpec("stem.conv", "conv", INPUT_GROUP, "stem", 3, 1, size),
        LayerSpec("stem.bn", "bn", "stem", "stem", out_size=size),
    ]
    prev = "stem"
    k = 0
    for s, (t, c, n, stride0) in enumerate(MOBILENETV2_CIFAR_SETTINGS, start=1):
        stream = f"stage{s}"
        groups.append(GroupSpec(stream, c))
        for i in range(n):
            stride = stride0 if i == 0 else 1
            p = f"blocks.{k}"
            if t == 1:
                hidden = prev
            else:
                hidden = f"block{k}"
                cin_full = next(g.full for g in groups if g.name == prev)
                groups.append(GroupSpec(hidden, cin_full * t))
                layers += [
                    LayerSpec(f"{p}.expand.conv", "conv", prev, hidden, 1, 1, size),
                    LayerSpec(f"{p}.expand.bn", "bn", hidden, hidden, out_size=size),
                ]
            size = _out(size, 3, stride)
            layers += [
                LayerSpec(f"{p}.dw.conv", "dwconv", hidden, hidden, 3, stride, size),
                LayerSpec(f"{p}.dw.bn", "bn", hidden, hidden, out_size=size),
                LayerSpec(f"{p}.project.conv", "conv", hidden, stream, 1, 1, size),
                LayerSpec(f"{p}.project.bn", "bn", stream, stream, out_size=size),
            ]
            prev = stream
            k += 1
    groups.append(GroupSpec("head", 1280))
    groups.append(GroupSpec(CLASSES_GROUP, num_classes, False))
    layers += [
        LayerSpec("head.conv", "conv", prev, "head", 1, 1, size),
        LayerSpec("head.bn", "bn", "head", "head", out_size=size),
        LayerSpec("classifier", "linear", "head", CLASSES_GROUP, bias=True),
    ]
    return BackboneSpec("mobilenetv2", resolution, num_classes, tuple(groups), tuple(layers))


def _nats_sss(num_classes: int, resolution: int) -> BackboneSpec:
    """The NATS-Bench size-space network (xautodl ``DynamicShapeTinyNet``; module names of
    ``nasforge.nn.nats_sss.NATSSizeNetwork``): stem, cell, residual block, cell, residual
    block, cell, each layer's output one group ``layer0..layer4`` (full width 64).

    A cell maps its input group to its own: the edges leaving the input node are built
    ``c_in -> c_out``, the others ``c_out -> c_out``; the skip edge is an identity when
    ``c_in == c_out`` and a 1x1 conv + BN (stride-1 ``FactorizedReduce``) otherwise
    (``when_differ``).
    """
    full = NATS_CANDIDATES[-1]
    names = [f"layer{i}" for i in range(NATS_LAYERS)]
    groups = [GroupSpec(INPUT_GROUP, 3, False), *(GroupSpec(n, full) for n in names)]
    size = resolution
    layers = [
        LayerSpec("stem.0", "conv", INPUT_GROUP, names[0], 3, 1, size),
        LayerSpec("stem.1", "bn", names[0], names[0], out_size=size),
    ]
    prev = names[0]
    for i, g in enumerate(names):
        p = f"cells.{i}"
        if i % 2 == 1:  # the stride-2 residual block between stages (ResNetBasicBlock)
            size = _out(size, 3, 2)
            layers += [
                LayerSpec(f"{p}.conv_a.op.1", "conv", prev, g, 3, 2, size),
                LayerSpec(f"{p}.conv_a.op.2", "bn", g, g, out_size=size),
                LayerSpec(f"{p}.conv_b.op.1", "conv", g, g, 3, 1, size),
                LayerSpec(f"{p}.conv_b.op.2", "bn", g, g, out_size=size),
                LayerSpec(f"{p}.downsample.1", "conv", prev, g, 1, 1, size),
            ]
        else:
            k = 0
            for node in Arch.parse(NATS_CELL).nodes():
                for op, src in node:
                    cin = prev if src == 0 else g
                    e = f"{p}.layers.{k}"
                    if op == "nor_conv_3x3":
                        layers += [
                            LayerSpec(f"{e}.op.1", "conv", cin, g, 3, 1, size),
                            LayerSpec(f"{e}.op.2", "bn", g, g, out_size=size),
                        ]
                    elif cin != g:  # skip edge between two groups: projection if widths differ
                        cond = (cin, g)
                        layers += [
                            LayerSpec(f"{e}.conv", "conv", cin, g, 1, 1, size, when_differ=cond),
                            LayerSpec(f"{e}.bn", "bn", g, g, out_size=size, when_differ=cond),
                        ]
                    k += 1
        prev = g
    groups.append(GroupSpec(CLASSES_GROUP, num_classes, False))
    layers += [
        LayerSpec("lastact.0", "bn", prev, prev, out_size=size),
        LayerSpec("classifier", "linear", prev, CLASSES_GROUP, bias=True),
    ]
    return BackboneSpec("nats-sss", resolution, num_classes, tuple(groups), tuple(layers))


_SPEC_BUILDERS: dict[str, Callable[[int, int], BackboneSpec]] = {
    "resnet20": lambda k, r: _resnet_cifar(20, k, r),
    "resnet56": lambda k, r: _resnet_cifar(56, k, r),
    "mobilenetv2": _mobilenetv2_cifar,
    "nats-sss": _nats_sss,
}
#: The width grid a backbone's space uses unless told otherwise: CafeNet's FLOPs-sensitive
#: bins over 10%..100% for the classic backbones; for nats-sss the official candidates
#: {8, 16, ..., 64} of every layer (a uniform grid of 8 levels from 1/8 of 64).
DEFAULT_GRID: dict[str, dict[str, Any]] = {
    "nats-sss": {
        "bins": "uniform",
        "levels": len(NATS_CANDIDATES),
        "min_ratio": NATS_CANDIDATES[0] / NATS_CANDIDATES[-1],
    },
}
_GRID = {"bins": "flops", "levels": 10, "min_ratio": 0.1}
BACKBONE_NAMES: tuple[str, ...] = tuple(_SPEC_BUILDERS)


def backbone_spec(name: str, *, num_classes: int = 10, resolution: int = 32) -> BackboneSpec:
    """The spec of backbone ``name`` ("resnet20", "resnet56", "mobilenetv2", "nats-sss")."""
    if name not in _SPEC_BUILDERS:
        raise ArchError(f"unknown backbone {name!r}; expected one of: {', '.join(BACKBONE_NAMES)}")
    if int(num_classes) < 1:
        raise ArchError(f"num_classes must be >= 1, got {num_classes}")
    if int(resolution) < 4:
        raise ArchError(f"resolution must be >= 4 pixels, got {resolution}")
    return _SPEC_BUILDERS[name](int(num_classes), int(resolution))


# ---------------------------------------------------------------------------------------
# The searchable space: candidate widths per group, FLOPs-sensitive bins
# ---------------------------------------------------------------------------------------

BinMode = Literal["flops", "uniform"]


class WidthSpace:
    """Candidate widths of each searchable group of a backbone.

    ``bins="uniform"``: every group has the same ``levels`` candidates, evenly spaced in
    channels between ``min_ratio`` and 100% of its full width (10%, 20%, ..., 100% by
    default) -- the usual slimming grid.

    ``bins="flops"`` (CafeNet's FLOPs-sensitive bins, Su et al., ICLR 2021, Sec. 3.3): the
    channels of each group are cut into bins so that one bin step of *any* group adds about
    the same FLOPs ``delta`` to the whole network (measured with the other groups at full
    width; FLOPs are linear in one group's width, so this is exact up to channel rounding).
    Groups whose channels are cheap get few, wide bins, so the space shrinks where FLOPs are
    cheap. ``delta`` is set so that the total number of bin steps equals the uniform grid's
    (``G * (levels - 1)``): the same space budget, spent where FLOPs are. Group ``g`` gets
    ``n_g = ceil(span_g / delta)`` steps (capped at one channel per step), so each of its
    steps adds ``span_g / n_g`` FLOPs, which lies in ``(delta / 2, delta]`` whenever
    ``span_g >= delta`` (and is ``span_g < delta`` for a group with a single step), plus at
    most one channel's FLOPs of rounding.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        *,
        bins: BinMode = "flops",
        levels: int = 10,
        min_ratio: float = 0.1,
    ) -> None:
        if bins not in ("flops", "uniform"):
            raise SearchError(f"bins must be 'flops' or 'uniform', got {bins!r}")
        if int(levels) < 2:
            raise SearchError(f"levels must be >= 2, got {levels}")
        if not 0.0 < float(min_ratio) <= 1.0:
            raise SearchError(f"min_ratio must be in (0, 1], got {min_ratio}")
        self.spec = spec
        self.bins: BinMode = bins
        self.levels = int(levels)
        self.min_ratio = float(min_ratio)
        full = np.asarray(spec.full_widths, dtype=np.int64)
        self.full = full
        self.min_widths = np.maximum(1, np.round(self.min_ratio * full)).astype(np.int64)
        if bins == "uniform":
            steps = np.full(len(full), self.levels - 1, dtype=np.int64)
            self.delta = float("nan")
        else:
            span = self.group_spans()
            total_steps = len(full) * (self.levels - 1)
            self.delta = float(span.sum() / total_steps) if span.sum() > 0 else 1.0
            steps = np.ceil(span / self.delta - 1e-9).astype(np.int64)
            steps = np.maximum(steps, 1)
        steps = np.minimum(steps, np.maximum(full - self.min_widths, 1))
        cands = []
        for hi, n in zip(full, steps, strict=False):
            # Evenly spaced ratios min_ratio..1 of the full width (10%, 20%, ..., 100%).
            ratios = self.min_ratio + (1.0 - self.min_ratio) * np.arange(n + 1) / n
            c = np.unique(np.maximum(1, np.round(ratios * hi)).astype(np.int64))
            cands.append(c)
        self.candidates: tuple[np.ndarray, ...] = tuple(cands)
        self.num_bins = np.asarray([len(c) for c in cands], dtype=np.int64)
        # Padded candidate table so that decoding a batch is one gather.
        self._table = np.zeros((len(cands), int(self.num_bins.max())), dtype=np.int64)
        for i, c in enumerate(cands):
            self._table[i, : len(c)] = c
            self._table[i, len(c) :] = c[-1]

    # -- description ----------------------------------------------------------------------
    @property
    def groups(self) -> tuple[str, ...]:
        return self.spec.searchable

    @property
    def log10_size(self) -> float:
        """log10 of the number of configurations."""
        return float(np.log10(self.num_bins.astype(np.float64)).sum())

    def group_spans(self) -> np.ndarray:
        """FLOPs (M) each group adds going from its smallest to its full width (others full)."""
        lo = np.asarray(np.maximum(1, np.round(self.min_ratio * self.full)), dtype=np.int64)
        base = np.tile(self.full, (len(self.full), 1))
        base[np.arange(len(self.full)), np.arange(len(self.full))] = lo
        return self.spec.full_flops - self.spec.flops(base)

    def bin_steps(self) -> list[np.ndarray]:
        """FLOPs (M) added by each bin step of each group, the other groups at full width."""
        out = []
        for i, c in enumerate(self.candidates):
            cfg = np.tile(self.full, (len(c), 1))
            cfg[:, i] = c
            out.append(np.diff(self.spec.flops(cfg)))
        return out

    def describe(self) -> dict:
        """A JSON-ready summary of the space."""
        return {
            "backbone": self.spec.name,
            "resolution": self.spec.resolution,
            "num_classes": self.spec.num_classes,
            "bins": self.bins,
            "levels": self.levels,
            "min_ratio": self.min_ratio,
            "delta_mflops": None if math.isnan(self.delta) else self.delta,
            "log10_size": self.log10_size,
            "full_flops_m": self.spec.full_flops,
            "full_params_m": float(self.spec.params(self.spec.full_widths)),
            "groups": {
                g: [int(x) for x in c] for g, c in zip(self.groups, self.candidates, strict=False)
            },
        }

    # -- configurations -------------------------------------------------------------------
    def decode(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Bin indices (G,) or (B, G) -> widths of the same shape."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.shape[-1:] != (len(self.groups),):
            raise ArchError(f"expected {len(self.groups)} bin indices, got shape {idx.shape}")
        if (idx < 0).any() or (idx >= self.num_bins).any():
            raise ArchError(
                f"bin indices {idx.tolist()} out of range; group sizes {self.num_bins.tolist()}"
            )
        return np.take_along_axis(
            np.broadcast_to(self._table, (*idx.shape[:-1], *self._table.shape)),
            idx[..., None],
            axis=-1,
        )[..., 0]

    def encode(self, widths: Sequence[int] | np.ndarray) -> np.ndarray:
        """Widths (G,) -> bin indices; every width must be one of its group's candidates."""
        w = self.spec.check_widths(widths)
        if w.ndim != 1:
            raise ArchError("encode takes one configuration")
        out = []
        for g, c, x in zip(self.groups, self.candidates, w, strict=False):
            hit = np.nonzero(c == x)[0]
            if len(hit) == 0:
                raise ArchError(f"width {int(x)} of group {g!r} is not a candidate {c.tolist()}")
            out.append(int(hit[0]))
        return np.asarray(out, dtype=np.int64)

    def sample_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniformly random configurations as bin indices, shape (n, G)."""
        u = rng.random((int(n), len(self.groups)))
        return np.minimum((u * self.num_bins).astype(np.int64), self.num_bins - 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniformly random configurations as widths, shape (n, G)."""
        return self.decode(self.sample_indices(rng, n))

    def largest(self) -> tuple[int, ...]:
        return tuple(int(c[-1]) for c in self.candidates)

    def smallest(self) -> tuple[int, ...]:
        return tuple(int(c[0]) for c in self.candidates)

    def uniform(self, ratio: float) -> tuple[int, ...]:
        """Every group at ``ratio`` of its full width (uniform slimming; not snapped to bins)."""
        if not 0.0 < float(ratio) <= 1.0:
            raise SearchError(f"a uniform width ratio is in (0, 1], got {ratio}")
        return tuple(int(x) for x in np.maximum(1, np.round(float(ratio) * self.full)))

    def flops(self, widths: Sequence[int] | np.ndarray, *, check: bool = True) -> np.ndarray:
        """Analytic FLOPs (M) of one configuration or a (B, G) batch; see BackboneSpec.flops."""
        return self.spec.flops(widths, check=check)

    def params(self, widths: Sequence[int] | np.ndarray, *, check: bool = True) -> np.ndarray:
        """Analytic params (M) of one configuration or a (B, G) batch."""
        return self.spec.params(widths, check=check)

    def parse_budget(self, budget: str | float) -> float:
        """A FLOPs budget in MFLOPs: ``"50%"`` (of the full network), ``"12.5M"`` or a number.

        The budget must admit at least the smallest configuration.
        """
        text = str(budget).strip()
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%|[mM])?", text)
        if not m:
            raise SearchError(
                f"FLOPs budget {budget!r} is not a percentage ('50%') or MFLOPs ('12.5M')"
            )
        value = float(m.group(1))
        mflops = value / 100.0 * self.spec.full_flops if m.group(2) == "%" else value
        floor = float(self.spec.flops(self.smallest()))
        if mflops < floor or mflops <= 0:
            raise SearchError(
                f"FLOPs budget {budget!r} = {mflops:.3f}M is below the smallest "
                f"{self.spec.name} configuration ({floor:.3f}M)"
            )
        return mflops

    def to_dict(self, widths: Sequence[int]) -> dict[str, int]:
        """``{group: width}`` for the searchable groups."""
        w = self.spec.check_widths(widths)
        return {g: int(x) for g, x in zip(self.groups, w, strict=False)}

    def from_dict(self, d: Mapping[str, int]) -> tuple[int, ...]:
        """The inverse of :meth:`to_dict`; every searchable group must be present."""
        missing = [g for g in self.groups if g not in d]
        extra = [k for k in d if k not in self.groups]
        if missing or extra:
            raise ArchError(f"width dict for {self.spec.name}: missing {missing}, unknown {extra}")
        w = tuple(int(d[g]) for g in self.groups)
        self.spec.check_widths(w)
        return w


def make_space(
    backbone: str,
    *,
    num_classes: int = 10,
    resolution: int = 32,
    bins: BinMode | None = None,
    levels: int | None = None,
    min_ratio: float | None = None,
) -> WidthSpace:
    """Convenience: ``WidthSpace(backbone_spec(backbone, ...), bins=..., ...)``; a grid
    setting left None is the backbone's (:data:`DEFAULT_GRID`; else FLOPs-sensitive bins,
    10 levels, from 10%)."""
    spec = backbone_spec(backbone, num_classes=num_classes, resolution=resolution)
    grid = {**_GRID, **DEFAULT_GRID.get(backbone, {})}
    given = {"bins": bins, "levels": levels, "min_ratio": min_ratio}
    grid.update({k: v for k, v in given.items() if v is not None})
    return WidthSpace(spec, **grid)


class WidthChainSpace(CategoricalBase):
    """A backbone's width chain behind the :class:`SearchSpace` protocol.

    An arch is a tuple of channel counts, one per searchable group (a
    :class:`WidthSpace` configuration); the positions are the groups and their options the
    group's candidate widths, so every black-box searcher (REINFORCE and BOHB included)
    runs on it. The string form is ``group=width,...``. Registered as
    ``width-<backbone>``; settings (``bins``, ``levels``, ``min_ratio``, ``num_classes``,
    ``resolution``) go to :func:`make_space`.
    """

    def __init__(self, backbone: str, **settings: Any) -> None:
        self.width = make_space(backbone, **settings)
        self.name = f"width-{backbone}"
        self._choices = tuple(
            Choice(g, tuple(str(int(w)) for w in c))
            for g, c in zip(self.width.groups, self.width.candidates, strict=True)
        )

    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def to_choices(self, arch: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(i) for i in self.width.encode(arch))

    def from_choices(self, picks: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(w) for w in self.width.decode(list(picks)))

    def describe(self) -> dict[str, Any]:
        # the width space's own summary lists the candidates ("groups"): no second copy
        base = {k: v for k, v in super().describe().items() if k != "positions"}
        return {**base, **self.width.describe()}

    def describe_arch(self, arch: Sequence[int]) -> dict[str, Any]:
        w = tuple(int(x) for x in arch)
        return {
            "widths": self.width.to_dict(w),
            "flops_m": float(self.width.flops(w)),
            "params_m": float(self.width.params(w)),
        }


def _register_width_chains() -> None:
    for backbone in BACKBONE_NAMES:
        # A backbone that is a registered space already (nats-sss) keeps its own strings.
        if backbone not in SPACES:
            SPACES.register(f"width-{backbone}")(functools.partial(WidthChainSpace, backbone))


_register_width_chains()


__all__ = [
    "BACKBONE_NAMES",
    "CLASSES_GROUP",
    "DEFAULT_GRID",
    "INPUT_GROUP",
    "MOBILENETV2_CIFAR_SETTINGS",
    "BackboneSpec",
    "GroupSpec",
    "LayerSpec",
    "WidthChainSpace",
    "WidthSpace",
    "backbone_spec",
    "make_space",
]
