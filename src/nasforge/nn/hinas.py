"""HiNAS networks: the search supernet and the fixed network of a derived arch.

Followed from hkzhang91/HiNAS (file:line of the official code at each piece):

- ops: LeakyReLU(0.2) -> conv -> BN (``LeakyConvBN``, one_stage_nas/darts/operations.py:79-93)
  and twice [LeakyReLU -> depthwise -> pointwise -> BN] (``LeakySepConv`` :151-170);
- cells: states ``[s1, s0]`` + one state per block, output = concat of the blocks
  (darts/cell.py:49-63, FixCell :118-133);
- supernet (``Dn_supernet`` / ``Sr_supernet``, modeling/dn_supernet.py:59-238): stems
  (:77-82), per-layer routers that 1x1-project every hidden state to the widths one level
  down / same / up (:15-56), beta-weighted sums feeding ONE cell per (layer, width)
  (:190-221: *cell sharing* -- the three paths into a node share its cell), the previous
  layer's inputs as ``s1`` (:209-221), an ASPP decoder on every width (modeling/
  decoders.py:216-248, rate 16 at search time: :265-271), residual output (``images -
  pred`` for denoising :225-226; bicubic-upsampled input + pred for SR, sr_supernet.py:
  219-221 with the v4 "bicubic" change of the log file);
- fixed net (``Dn_compnet``, modeling/dn_compnet.py:60-196): stems, per-layer scalers
  (LeakyReLU + 1x1 conv-BN) of the two previous states, the cells on the path, the
  DeepLab-v3+-style decoder (decoders.py:187-213 denoising without ASPP, :43-73 SR with
  ASPP rates (2, 4, 6), defaults.py:34) with its endpoint rule (dn_compnet.py:91-96).

Not followed: the supernet's final sigmoid (dn_supernet.py:227; the log file's v2->v3
drops it, and the fixed nets have none), the log-SSIM term of the official loss (the task's
L1/MSE is used). ``cell_sharing=False`` gives every path into a node its own cell (the
memory cost HiNAS avoids); that variant is not in the official code and follows the paper's
description. ``share_alphas``: ``"layer"`` = one cell arch per layer shared by its widths
(HiNAS v2+, the log's "cells in the same layer share the same structure"; the official
default ``TIE_CELL: False``), ``"all"`` = one arch for every cell, ``"none"`` = one per
cell (plain DARTS).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.nn.registry import NETWORKS
from nasforge.spaces.hinas import SUPERNET_OPS, WIDTH_FACTORS, HinasArch, check_arch

_SLOPE = 0.2


def conv_bn(cin: int, cout: int, k: int, *, act: bool, affine: bool = True) -> nn.Sequential:
    """conv (no bias) -> BN (-> LeakyReLU 0.2): ``conv3x3_bn`` / ``conv1x1_bn`` of
    modeling/common.py:15-75 with ``activate_f='leaky'`` or ``None``."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout, affine=affine),
    ]
    if act:
        layers.append(nn.LeakyReLU(_SLOPE))
    return nn.Sequential(*layers)


def sep_bn(cin: int, cout: int, rate: int = 1) -> nn.Sequential:
    """``sep3x3_bn`` (common.py:78-98, leaky): dw 3x3 (dilation ``rate``) -> BN -> act ->
    1x1 -> BN -> act."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=rate, dilation=rate, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.LeakyReLU(_SLOPE),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(_SLOPE),
    )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, C: int, affine: bool = True) -> nn.Module:
    """One candidate op on ``C`` channels (operations.py:27-36, the ``_leaky`` ones)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "none":
        return Zero()
    kind, k = name[:5], int(name[-1])
    if kind == "sep_c":  # LeakySepConv, repeated twice
        return nn.Sequential(
            *(
                nn.Sequential(
                    nn.LeakyReLU(_SLOPE),
                    nn.Conv2d(C, C, k, padding=k // 2, groups=C, bias=False),
                    nn.Conv2d(C, C, 1, bias=False),
                    nn.BatchNorm2d(C, affine=affine),
                )
                for _ in range(2)
            )
        )
    dilation = 2 if kind == "dil_c" else 1
    return nn.Sequential(
        nn.LeakyReLU(_SLOPE),
        nn.Conv2d(C, C, k, padding=dilation * (k // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(C, affine=affine),
    )


class MixedCell(nn.Module):
    """The supernet cell: every edge is a softmax-weighted sum of all candidate ops."""

    def __init__(self, blocks: int, C: int, affine: bool) -> None:
        super().__init__()
        self.blocks = blocks
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(p, C, affine) for p in SUPERNET_OPS)
            for b in range(blocks)
            for _ in range(b + 2)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, e = [s1, s0], 0
        for _ in range(self.blocks):
            s = 0
            for h in list(states):
                s = s + sum(w * op(h) for w, op in zip(weights[e], self.edges[e], strict=True))
                e += 1
            states.append(s)
        return torch.cat(states[-self.blocks :], 1)


class FixedCell(nn.Module):
    """The cell of a derived genotype: block ``i`` = op_a(state_a) + op_b(state_b)."""

    def __init__(self, genotype: tuple[tuple[str, int], ...], C: int) -> None:
        super().__init__()
        self.genotype = genotype
        self.ops = nn.ModuleList(make_op(op, C) for op, _ in genotype)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [s1, s0]
        for b in range(len(self.genotype) // 2):
            states.append(sum(self.ops[k](states[self.genotype[k][1]]) for k in (2 * b, 2 * b + 1)))
        return torch.cat(states[-(len(self.genotype) // 2) :], 1)


class ASPP(nn.Module):
    """ASPP without global pooling (decoders.py:9-39): 1x1 branch + one separable branch
    per rate, concatenated, 1x1 conv."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...], affine: bool = True) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 1, act=True, affine=affine)
        self.atrous = nn.ModuleList(sep_bn(cin, cout, r) for r in rates)
        self.last = conv_bn(cout * (1 + len(rates)), cout, 1, act=True, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(torch.cat([a(x) for a in self.atrous] + [self.conv1(x)], 1))


class Head(nn.Module):
    """Output conv (+ PixelShuffle for SR) and the residual connection to the input."""

    def __init__(self, cin: int, out_channels: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(cin, out_channels * scale * scale, 3, padding=1)

    def forward(self, feats: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        pred = self.conv(feats)
        if self.scale == 1:
            return images - pred  # residual: the net predicts the noise (dn_supernet.py:225)
        pred = F.pixel_shuffle(pred, self.scale)
        up = F.interpolate(images, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up + pred


def widths(C: int, levels: int) -> list[int]:
    return [int(C * f) for f in WIDTH_FACTORS[:levels]]


class HinasSupernet(nn.Module):
    """The HiNAS search network: ``layers`` x width levels of mixed cells joined by routers.

    ``alphas`` (op weights) and ``betas`` (router weights) are the architecture parameters
    (names start with ``arch_``); ``search_widths=False`` keeps every layer at ``fixed_level``
    (no routers' choice: an inner-only search).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        scale: int,
        C: int = 10,
        layers: int = 3,
        blocks: int = 4,
        levels: int = len(WIDTH_FACTORS),
        cell_sharing: bool = True,
        share_alphas: str = "layer",
        affine: bool = False,
    ) -> None:
        super().__init__()
        self.layers, self.blocks, self.levels = layers, blocks, levels
        self.cell_sharing, self.share_alphas = cell_sharing, share_alphas
        self.W = widths(C, levels)
        B = blocks
        self.stem1 = conv_bn(in_channels, 64, 3, act=True, affine=affine)
        self.stem2 = conv_bn(64, self.W[0] * B, 3, act=False, affine=affine)
        self.reduce1 = conv_bn(64, self.W[0], 3, act=False, affine=affine)
        self.upsamplers = nn.ModuleList(
            conv_bn(self.W[i - 1], self.W[i], 1, act=False, affine=affine) for i in range(1, levels)
        )
        self.routers = nn.ModuleList()
        self.cells = nn.ModuleDict()
        self.nodes: list[list[int]] = []  # levels present after each layer
        for li in range(layers):
            n_in = min(li + 1, levels)  # hidden states entering layer li
            row = nn.ModuleList()
            for h in range(n_in):
                cin = self.W[h] * B
                row.append(
                    nn.ModuleList(
                        conv_bn(cin, self.W[t], 1, act=False, affine=affine)
                        if 0 <= t < levels
                        else nn.Identity()
                        for t in (h - 1, h, h + 1)
                    )
                )
            self.routers.append(row)
            n_out = min(li + 2, levels)
            self.nodes.append(list(range(n_out)))
            for h in range(n_out):
                if cell_sharing:
                    self.cells[f"{li}_{h}"] = MixedCell(B, self.W[h], affine)
                else:
                    for src in (h + 1, h, h - 1):  # one cell per incoming path
                        if 0 <= src < n_in:
                            self.cells[f"{li}_{h}_{src}"] = MixedCell(B, self.W[h], affine)
        self.decoders = nn.ModuleList(
            ASPP(self.W[h] * B, self.W[0] * B, (16,), affine) for h in self.nodes[-1]
        )
        n_dec = self.W[0] * B * len(self.nodes[-1])
        self.pre = conv_bn(n_dec, n_dec, 3, act=True, affine=affine)
        self.head = Head(n_dec, out_channels, scale)
        k = sum(2 + i for i in range(B))
        shape = {"layer": (layers, k), "all": (k,), "none": (layers, levels, k)}[share_alphas]
        self.arch_alphas = nn.Parameter(torch.ones(*shape, len(SUPERNET_OPS)))
        betas = torch.ones(sum(min(li + 1, levels) for li in range(layers)), 3)
        # Moves off the levels are masked out (dn_supernet.py:148-164).
        r = 0
        for li in range(layers):
            for h in range(min(li + 1, levels)):
                if h == 0:
                    betas[r, 0] = -50.0
                if h == levels - 1:
                    betas[r, 2] = -50.0
                r += 1
        self.arch_betas = nn.Parameter(betas)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("arch_")]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.arch_alphas, self.arch_betas]

    def cell_weights(self, li: int, h: int) -> torch.Tensor:
        a = F.softmax(self.arch_alphas, dim=-1)
        return {"layer": lambda: a[li], "all": lambda: a, "none": lambda: a[li, h]}[
            self.share_alphas
        ]()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        betas = F.softmax(self.arch_betas, dim=-1)
        f = self.stem1(images)
        inputs1 = [self.reduce1(f)]
        hidden = [self.stem2(F.leaky_relu(f, _SLOPE))]
        r = 0
        for li in range(self.layers):
            routed: dict[int, list[tuple[int, torch.Tensor]]] = {}
            for h, hs in enumerate(hidden):
                for d, proj in zip((-1, 0, 1), self.routers[li][h], strict=True):
                    t = h + d
                    if 0 <= t < self.levels:
                        routed.setdefault(t, []).append((h, betas[r, d + 1] * proj(hs)))
                r += 1
            while len(inputs1) < len(routed):
                inputs1.append(self.upsamplers[len(inputs1) - 1](inputs1[-1]))
            new_hidden, new_inputs1 = [], []
            for h in range(len(routed)):
                s1 = inputs1[h]
                if self.cell_sharing:
                    s0 = sum(x for _, x in routed[h])
                    out = self.cells[f"{li}_{h}"](s0, s1, self.cell_weights(li, h))
                    new_inputs1.append(s0)
                else:
                    out = sum(
                        self.cells[f"{li}_{h}_{src}"](x, s1, self.cell_weights(li, h))
                        for src, x in routed[h]
                    )
                    new_inputs1.append(sum(x for _, x in routed[h]))
                new_hidden.append(out)
            hidden, inputs1 = new_hidden, new_inputs1
        feats = torch.cat([dec(hs) for dec, hs in zip(self.decoders, hidden, strict=True)], 1)
        return self.head(self.pre(feats), images)

    # -- derivation ------------------------------------------------------------------------

    def derive(self) -> HinasArch:
        """The discrete arch: per layer the official genotype rule (cell.py:65-89: the two
        inputs with the strongest non-``none`` op, each with that op) on the layer's alphas,
        and the most probable width path under the betas (Viterbi, common.py:121-171)."""
        with torch.no_grad():
            betas = F.softmax(self.arch_betas, dim=-1).double().cpu()
            path = viterbi_path(betas, self.layers, self.levels)
            cells = []
            for li, h in enumerate(path):
                w = self.cell_weights(li, h).double().cpu()
                cells.append(genotype(w, self.blocks))
        return check_arch(HinasArch(tuple(cells), tuple(path)), self.levels)


def genotype(weights: torch.Tensor, blocks: int) -> tuple[tuple[str, int], ...]:
    """Official cell.py:65-89 on one cell's ``(edges, ops)`` softmax weights."""
    none = SUPERNET_OPS.index("none")
    out: list[tuple[str, int]] = []
    start = 0
    for i in range(blocks):
        W = weights[start : start + i + 2]
        strength = [
            max(float(W[j][k]) for k in range(W.shape[1]) if k != none) for j in range(i + 2)
        ]
        edges = sorted(range(i + 2), key=lambda j: -strength[j])[:2]
        for j in sorted(edges):
            k_best = max((k for k in range(W.shape[1]) if k != none), key=lambda k: float(W[j][k]))
            out.append((SUPERNET_OPS[k_best], j))
        start += i + 2
    return tuple(out)


def viterbi_path(betas: torch.Tensor, layers: int, levels: int) -> list[int]:
    """The width path maximising the product of router probabilities, from level 0
    (common.py:121-171; the rows of ``betas`` are the routers in layer-major order)."""
    prob = [1.0] + [0.0] * (levels - 1)
    back: list[list[int]] = []
    r = 0
    for li in range(layers):
        nxt, arg = [0.0] * levels, [-1] * levels
        for h in range(min(li + 1, levels)):
            for d in (-1, 0, 1):
                t = h + d
                if 0 <= t < levels and prob[h] * float(betas[r, d + 1]) > nxt[t]:
                    nxt[t], arg[t] = prob[h] * float(betas[r, d + 1]), h
            r += 1
        prob = nxt
        back.append(arg)
    level = max(range(levels), key=lambda h: prob[h])
    path = [level]
    for li in range(layers - 1, 0, -1):
        level = back[li][level]
        path.insert(0, level)
    return path


class HinasNetwork(nn.Module):
    """The fixed network of a HiNAS arch (``Dn_compnet`` / ``Sr_compnet``).

    ``C`` is the filter multiplier (official retraining: 10 for denoising in the search
    configs, 16 for SR in configs/sr/DIV2K_2c3n/03_x2_train_CR.yaml:23), ``D`` the decoder
    width (128 in decoders.py:56-63).
    """

    def __init__(
        self,
        arch: HinasArch,
        *,
        in_channels: int,
        out_channels: int,
        scale: int,
        C: int = 10,
        D: int = 128,
    ) -> None:
        super().__init__()
        check_arch(arch)
        self.arch = arch
        B = arch.blocks
        W = widths(C, len(WIDTH_FACTORS))
        self.stem1 = conv_bn(in_channels, 64, 3, act=True)
        self.stem2 = conv_bn(64, 64, 3, act=False)
        self.reduce = conv_bn(64, C * B, 3, act=False, affine=False)
        # The decoder's low-level input: the last level-0 cell before the final layer
        # (dn_compnet.py:91-96), else the reduced stem.
        zeros = [i for i, h in enumerate(arch.path) if h == 0]
        self.endpoint = zeros[-1] if zeros and zeros[-1] != arch.layers - 1 else None
        self.cells = nn.ModuleList()
        self.scalers = nn.ModuleList()
        prev0 = prev1 = 64
        for genotype_, h in zip(arch.cells, arch.path, strict=True):
            self.cells.append(FixedCell(genotype_, W[h]))
            self.scalers.append(
                nn.ModuleList([self._scaler(prev0, W[h]), self._scaler(prev1, W[h])])
            )
            prev1, prev0 = prev0, W[h] * B
        low = C * B
        rates = (2, 4, 6) if scale > 1 else ()
        self.pre = ASPP(prev0, D, rates) if rates else conv_bn(prev0, D, 1, act=True)
        p = max(1, D * 3 // 8)  # 48 of 128 (decoders.py:59)
        self.proj = conv_bn(low, p, 1, act=True)
        self.conv = nn.Sequential(sep_bn(D + p, D), sep_bn(D, D))
        self.head = Head(D, out_channels, scale)

    @staticmethod
    def _scaler(cin: int, cout: int) -> nn.Module:
        """``DeepLabScaler_Width`` (dn_compnet.py:42-57): LeakyReLU then 1x1 conv-BN."""
        return nn.Sequential(nn.LeakyReLU(_SLOPE), conv_bn(cin, cout, 1, act=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h1 = self.stem1(images)
        h0 = self.stem2(F.leaky_relu(h1, _SLOPE))
        endpoint = self.reduce(h0) if self.endpoint is None else None
        for i, (cell, (sc0, sc1)) in enumerate(zip(self.cells, self.scalers, strict=True)):
            h1, h0 = h0, cell(sc0(h0), sc1(h1))
            if i == self.endpoint:
                endpoint = h0
        assert endpoint is not None
        x = torch.cat([self.proj(endpoint), self.pre(F.leaky_relu(h0, _SLOPE))], 1)
        return self.head(self.conv(x), images)


@NETWORKS.register("hinas")
def hinas_network(
    arch: HinasArch,
    *,
    in_channels: int,
    out_channels: int,
    scale: int = 1,
    C: int = 10,
    D: int = 128,
) -> nn.Module:
    """The fixed HiNAS network of ``arch`` (see :class:`HinasNetwork`)."""
    return HinasNetwork(
        arch, in_channels=in_channels, out_channels=out_channels, scale=scale, C=C, D=D
    )
