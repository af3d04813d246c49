"""Video networks of the PV-NAS space: the fixed network of an arch and the search supernet.

Both are built from one skeleton (:data:`nasforge.spaces.pvnas.SKELETON`) and one layer
class: a fixed layer holds one op at one width, a searched layer holds every op at the
widest width, mixes their outputs with ``softmax(alpha)`` (DARTS' mixed op) and the widths
with ``softmax(beta)``-weighted channel masks (a narrower width is the first channels of
the widest, so one convolution serves all widths). Inputs are clips ``(B, T, C, H, W)``;
features run as ``(B, C, T, H, W)`` through ``Conv3d`` layers, so one network handles
per-frame (kernel 1 in time), temporal and joint convolutions.

The head averages features over time and space before the linear classifier: for an
all-``2d3`` arch this is TSN's average consensus of per-frame predictions (the classifier
is linear, so averaging logits or features gives the same output).
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.registry import NETWORKS
from nasforge.spaces.pvnas import (
    KERNELS,
    OPS,
    SHIFT_DIV,
    WIDTHS,
    PVNASArch,
    inner_channels,
    layer_plan,
    r21d_mid,
)


def temporal_shift(x: torch.Tensor, fold_div: int = SHIFT_DIV) -> torch.Tensor:
    """TSM's shift on ``(B, C, T, H, W)``: the first ``C // fold_div`` channels take the
    next frame's values, the second ``C // fold_div`` the previous frame's, zeros at the
    ends, the rest unchanged (ops/temporal_shift.py:27-44, ``shift``)."""
    c = x.shape[1]
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :fold, :-1] = x[:, :fold, 1:]  # shift left (frame t sees t + 1)
    out[:, fold : 2 * fold, 1:] = x[:, fold : 2 * fold, :-1]  # shift right
    out[:, 2 * fold :] = x[:, 2 * fold :]
    return out


class Shift(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x)


def _conv(cin: int, cout: int, kt: int, ks: int, stride: int) -> nn.Conv3d:
    return nn.Conv3d(
        cin, cout, (kt, ks, ks), stride=(1, stride, stride), padding=(kt // 2, ks // 2, ks // 2),
        bias=False,
    )  # fmt: skip


def make_op(name: str, cin: int, cout: int, stride: int, affine: bool = True) -> nn.Module:
    """The op ``name`` from ``cin`` to ``cout`` channels (spatial ``stride``), ending in BN."""
    if name not in OPS:
        raise ArchError(f"pvnas op {name!r}; expected one of {list(OPS)}")
    if name == "r21d3":
        mid = r21d_mid(cin, cout)
        return nn.Sequential(
            _conv(cin, mid, 1, 3, stride),
            nn.BatchNorm3d(mid, affine=affine),
            nn.ReLU(inplace=False),
            _conv(mid, cout, 3, 1, 1),
            nn.BatchNorm3d(cout, affine=affine),
        )
    kt, ks = KERNELS[name]
    layers: list[nn.Module] = [Shift()] if name == "shift" else []
    layers += [_conv(cin, cout, kt, ks, stride), nn.BatchNorm3d(cout, affine=affine)]
    return nn.Sequential(*layers)


class VideoLayer(nn.Module):
    """One residual layer: op(s) -> ReLU -> (width mask) -> 1x1x1 conv -> BN, + shortcut, ReLU.

    ``ops`` of length 1 and ``widths`` of length 1 is a fixed layer; more is a searched one
    whose mixture weights are given to :meth:`forward`."""

    def __init__(
        self, cin: int, cout: int, stride: int, ops: tuple[str, ...], widths: tuple[str, ...]
    ) -> None:
        super().__init__()
        searched = len(ops) > 1 or len(widths) > 1
        self.inner = max(inner_channels(w, cout) for w in widths)
        self.ops = nn.ModuleList(
            make_op(o, cin, self.inner, stride, affine=not searched) for o in ops
        )
        masks = torch.zeros(len(widths), self.inner)
        for i, w in enumerate(widths):
            masks[i, : inner_channels(w, cout)] = 1.0
        self.register_buffer("masks", masks.view(len(widths), 1, self.inner, 1, 1, 1))
        self.searched = searched
        self.proj = nn.Sequential(nn.Conv3d(self.inner, cout, 1, bias=False), nn.BatchNorm3d(cout))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv3d(cin, cout, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(cout),
            )
        self.relu = nn.ReLU(inplace=False)

    def forward(
        self,
        x: torch.Tensor,
        op_weights: torch.Tensor | None = None,
        width_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if op_weights is None:
            y = self.ops[0](x)
        else:
            y = sum(w * op(x) for w, op in zip(op_weights, self.ops, strict=True))
        y = self.relu(y)
        if width_weights is not None:
            y = y * (width_weights.view(-1, 1, 1, 1, 1, 1) * self.masks).sum(0)
        return self.relu(self.proj(y) + self.shortcut(x))


class _VideoBackbone(nn.Module):
    """Stem, the six layers of the skeleton, pooled head."""

    def __init__(
        self,
        layer_ops: list[tuple[tuple[str, ...], tuple[str, ...]]],
        *,
        num_classes: int,
        in_channels: int,
        frames: int,
        C: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if frames < 1 or in_channels < 1 or num_classes < 1 or C < 1:
            raise ArchError(
                f"frames={frames}, in_channels={in_channels}, num_classes={num_classes}, "
                f"C={C}; expected positive ints"
            )
        if not 0 <= dropout < 1:
            raise ArchError(f"dropout={dropout}; expected a number in [0, 1)")
        self.frames, self.C, self.in_channels = frames, C, in_channels
        self.stem = nn.Sequential(_conv(in_channels, C, 1, 3, 1), nn.BatchNorm3d(C), nn.ReLU())
        self.layers = nn.ModuleList(
            VideoLayer(cin, cout, stride, ops, widths)
            for (cin, cout, stride), (ops, widths) in zip(layer_plan(C), layer_ops, strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(layer_plan(C)[-1][1], num_classes)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.frames or x.shape[2] != self.in_channels:
            raise ArchError(
                f"input of shape {tuple(x.shape)}; expected (batch, {self.frames} frames, "
                f"{self.in_channels} channels, H, W)"
            )
        return x.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(x.mean(dim=(2, 3, 4))))


@NETWORKS.register("pvnas")
class PVNASNetwork(_VideoBackbone):
    """The fixed network of a PV-NAS arch (TSN/TSM/R(2+1)D/3D baselines are uniform archs)."""

    def __init__(
        self,
        arch: PVNASArch,
        *,
        num_classes: int,
        in_channels: int = 3,
        frames: int = 8,
        C: int = 16,
        dropout: float = 0.5,
    ) -> None:
        if not isinstance(arch, PVNASArch):
            raise ArchError(f"not a pvnas arch: {arch!r}")
        super().__init__(
            [((o,), (w,)) for o, w in zip(arch.ops, arch.widths, strict=True)],
            num_classes=num_classes,
            in_channels=in_channels,
            frames=frames,
            C=C,
            dropout=dropout,
        )
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self._check(x))
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class PVNASSupernet(_VideoBackbone):
    """Every op at the widest width in every layer; architecture parameters ``alpha``
    (layers x ops) and ``beta`` (layers x widths), initialised to ``1e-3 * N(0, 1)`` as
    DARTS' (model_search.py ``_initialize_alphas``)."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        frames: int,
        C: int = 16,
        dropout: float = 0.0,
    ) -> None:
        n = len(layer_plan(C))
        super().__init__(
            [(OPS, WIDTHS)] * n,
            num_classes=num_classes,
            in_channels=in_channels,
            frames=frames,
            C=C,
            dropout=dropout,
        )
        self.alpha = nn.Parameter(1e-3 * torch.randn(n, len(OPS)))
        self.beta = nn.Parameter(1e-3 * torch.randn(n, len(WIDTHS)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha, self.beta]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self._check(x))
        a, b = self.alpha.softmax(-1), self.beta.softmax(-1)
        for i, layer in enumerate(self.layers):
            x = layer(x, a[i], b[i])
        return self.head(x)

    def derive(self) -> PVNASArch:
        """The arch of the strongest op and width of every layer (DARTS' argmax)."""
        ops = tuple(OPS[int(i)] for i in self.alpha.argmax(-1))
        widths = tuple(WIDTHS[int(i)] for i in self.beta.argmax(-1))
        return PVNASArch(ops, widths)
