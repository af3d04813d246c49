"""Trilevel NAS networks: the one-phase supernet and the derived (weight-inheriting) net.

Structure as in the authors' search network (``NAS_GAN``, ``model_search_flexible.py``;
found in the code index by content, repository name not resolved):

- ``conv_first`` (3x3, in -> nf), the cells, ``conv_last`` (3x3, nf -> out * s^2) +
  PixelShuffle, and ``(tanh(y) + 1) / 2`` (``ENABLE_TANH = True`` in their configs);
- a cell: its ops in sequence, output ``0.2 * y + x`` (their ``Cell.forward``);
- cell level: each op is a mixture of :data:`~nasforge.spaces.trilevel.OPS` weighted by
  ``sparsestmax(alpha, r)``; ops whose weight is exactly 0 are not computed (their term
  and its gradient are 0);
- kernel level: the width between two ops is drawn per forward by hard Gumbel-softmax over
  ``ratio`` logits and the op's output is scaled by the chosen probabilities (straight-
  through), the slimmable convolutions using the first channels of their full weights
  (their ``MixedOp`` / ``sample_prun_ratio``); ``widths="max"`` / ``"min"`` force the
  extremes (their ``_loss`` adds the max- and min-width losses);
- network level: the output is ``sum_i g_i h_i`` over the feature maps after the stem and
  after each searched cell, ``g = sparsestmax(gamma, r)`` (their DFS over paths with
  ``num_up = 0``, the variant their configs select); cells after the last non-zero ``g_i``
  are not computed -- the network compresses as ``g`` sparsifies.

Op bodies (3x3 conv -> LeakyReLU 0.2, dilation 2, two of them, 1x1 for ``skip`` between
different widths) are this module's reading of the op names; the authors' operation code
could not be read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.nn.registry import NETWORKS
from nasforge.nn.sparsestmax import sparsestmax
from nasforge.spaces.trilevel import OPS, WIDTHS, TrilevelArch, TrilevelSpace

_SLOPE = 0.2


def channels(nf: int, w: int) -> int:
    """Channels of width index ``w`` (-1: ``nf``)."""
    return nf if w < 0 else max(1, round(nf * WIDTHS[w]))


class SlimConv(nn.Conv2d):
    """A conv whose forward uses the first ``cout`` filters on the input's channels."""

    def forward(self, x: torch.Tensor, cout: int | None = None) -> torch.Tensor:  # type: ignore[override]
        cout = self.out_channels if cout is None else cout
        w = self.weight[:cout, : x.shape[1]]
        b = None if self.bias is None else self.bias[:cout]
        return F.conv2d(x, w, b, padding=self.padding, dilation=self.dilation)


class SlimOp(nn.Module):
    """One candidate op between up to ``cin`` and ``cout`` channels."""

    def __init__(self, name: str, cin: int, cout: int) -> None:
        super().__init__()
        self.name = name
        dil = 2 if name.endswith("_di") else 1
        if name == "skip":
            self.convs = nn.ModuleList([SlimConv(cin, cout, 1)])
        else:
            n = 2 if name.startswith("conv_2x") else 1
            self.convs = nn.ModuleList(
                SlimConv(cin if i == 0 else cout, cout, 3, padding=dil, dilation=dil)
                for i in range(n)
            )

    def forward(self, x: torch.Tensor, cout: int) -> torch.Tensor:
        if self.name == "skip":
            return x if x.shape[1] == cout else self.convs[0](x, cout)
        for conv in self.convs:
            x = F.leaky_relu(conv(x, cout), _SLOPE)
        return x


class _Frame(nn.Module):
    """conv_first / conv_last + PixelShuffle + (tanh + 1) / 2, shared by both nets."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, nf: int) -> None:
        super().__init__()
        self.scale = scale
        self.first = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.last = nn.Conv2d(nf, out_channels * scale * scale, 3, padding=1)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        y = self.last(h)
        if self.scale > 1:
            y = F.pixel_shuffle(y, self.scale)
        return (torch.tanh(y) + 1) / 2


class TrilevelSupernet(_Frame):
    """The trilevel search network (``stem`` + ``path`` cells of ``ops`` mixed ops)."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        scale: int,
        nf: int = 64,
        stem: int = 1,
        path: int = 4,
        ops: int = 5,
        relaxation: str = "sparsestmax",
    ) -> None:
        super().__init__(in_channels, out_channels, scale, nf)
        self.nf, self.stem, self.path, self.n_ops = nf, stem, path, ops
        self.relaxation = relaxation
        n = stem + path
        self.cells = nn.ModuleList(
            nn.ModuleList(nn.ModuleList(SlimOp(o, nf, nf) for o in OPS) for _ in range(ops))
            for _ in range(n)
        )
        self.arch_alpha = nn.Parameter(1e-3 * torch.randn(n, ops, len(OPS)))
        self.arch_ratio = nn.Parameter(1e-3 * torch.randn(n, max(ops - 1, 1), len(WIDTHS)))
        self.arch_gamma = nn.Parameter(1e-3 * torch.randn(path + 1))
        self.rad = 0.0
        #: ``"sample"`` (hard Gumbel), ``"max"`` or ``"min"`` widths in the next forward.
        self.widths = "sample"

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("arch_")]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.arch_alpha, self.arch_ratio, self.arch_gamma]

    def relax(self, logits: torch.Tensor) -> torch.Tensor:
        if self.relaxation == "softmax":
            return F.softmax(logits, dim=-1)
        return sparsestmax(logits, self.rad)

    def _widths(self, c: int) -> list[tuple[int, torch.Tensor | float]]:
        """(channels, score) of the outputs of cell ``c``'s ops except the last."""
        out: list[tuple[int, torch.Tensor | float]] = []
        for k in range(self.n_ops - 1):
            if self.widths == "max":
                out.append((channels(self.nf, len(WIDTHS) - 1), 1.0))
            elif self.widths == "min":
                out.append((channels(self.nf, 0), 1.0))
            else:
                y = F.gumbel_softmax(F.log_softmax(self.arch_ratio[c, k], -1), hard=True)
                i = int(y.argmax())
                out.append((channels(self.nf, i), y[i]))
        return out

    def _cell(self, c: int, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        widths = self._widths(c)
        h = x
        for k, mixed in enumerate(self.cells[c]):
            cout, s_out = widths[k] if k < self.n_ops - 1 else (self.nf, 1.0)
            s_in = widths[k - 1][1] if k > 0 else 1.0
            y = sum(
                w * op(h, cout)
                for w, op in zip(alpha[c, k], mixed, strict=True)
                if float(w.detach()) != 0.0
            )
            h = y * s_in * s_out
        return 0.2 * h + x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        alpha, gamma = self.relax(self.arch_alpha), self.relax(self.arch_gamma)
        h = self.first(images)
        for c in range(self.stem):
            h = self._cell(c, h, alpha)
        live = [i for i in range(self.path + 1) if float(gamma[i].detach()) != 0.0]
        out = gamma[0] * h if 0 in live else 0
        for i in range(1, (max(live) if live else 0) + 1):
            h = self._cell(self.stem + i - 1, h, alpha)
            if i in live:
                out = out + gamma[i] * h
        return self.head(out)

    def order_loss(self) -> torch.Tensor:
        """The authors' order term on the network-level logits: ``sum(g[1:] - g[:-1])``
        along the path (their ``_criterion``)."""
        g = self.arch_gamma
        return (g[1:] - g[:-1]).sum()

    def derive(self) -> TrilevelArch:
        """Argmax at every level (the authors derive with ``sparsestmax(., 1)``, one-hot)."""
        with torch.no_grad():
            depth = self.stem + int(self.arch_gamma.argmax())
            cells = []
            for c in range(depth):
                ops = self.arch_alpha[c].argmax(-1).tolist()
                ws = self.arch_ratio[c].argmax(-1).tolist()
                cells.append(
                    tuple(
                        (OPS[o], -1 if k == self.n_ops - 1 else int(ws[k]))
                        for k, o in enumerate(ops)
                    )
                )
        return TrilevelSpace(self.stem, self.path, self.n_ops).check(TrilevelArch(tuple(cells)))


class TrilevelNetwork(_Frame):
    """The fixed network of a trilevel arch."""

    def __init__(
        self, arch: TrilevelArch, *, in_channels: int, out_channels: int, scale: int, nf: int = 64
    ) -> None:
        super().__init__(in_channels, out_channels, scale, nf)
        self.arch, self.nf = arch, nf
        self.cells = nn.ModuleList()
        for cell in arch.cells:
            ops, cin = nn.ModuleList(), nf
            for op, w in cell:
                cout = channels(nf, w)
                ops.append(SlimOp(op, cin, cout))
                cin = cout
            self.cells.append(ops)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.first(images)
        for cell, ops in zip(self.arch.cells, self.cells, strict=True):
            x = h
            for (_, w), op in zip(cell, ops, strict=True):
                x = op(x, channels(self.nf, w))
            h = 0.2 * x + h
        return self.head(h)

    @torch.no_grad()
    def inherit(self, supernet: TrilevelSupernet) -> TrilevelNetwork:
        """Copy the supernet's weights (the chosen op's filters, first channels): the
        one-phase search hands over a trained network (the authors'
        ``config_get_inherit_weight`` step)."""
        self.first.load_state_dict(supernet.first.state_dict())
        self.last.load_state_dict(supernet.last.state_dict())
        for c, (cell, ops) in enumerate(zip(self.arch.cells, self.cells, strict=True)):
            for k, ((name, _), op) in enumerate(zip(cell, ops, strict=True)):
                src = supernet.cells[c][k][OPS.index(name)]
                for mine, theirs in zip(op.convs, src.convs, strict=True):
                    o, i = mine.weight.shape[:2]
                    mine.weight.copy_(theirs.weight[:o, :i])
                    if mine.bias is not None:
                        mine.bias.copy_(theirs.bias[:o])
        return self


@NETWORKS.register("trilevel-sr")
def trilevel_network(
    arch: TrilevelArch, *, in_channels: int, out_channels: int, scale: int = 1, nf: int = 64
) -> nn.Module:
    """The fixed trilevel network of ``arch`` (see :class:`TrilevelNetwork`)."""
    return TrilevelNetwork(
        arch, in_channels=in_channels, out_channels=out_channels, scale=scale, nf=nf
    )
