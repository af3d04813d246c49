"""DARTSformer networks: the multi-split reversible encoder-decoder of the
``rev-transformer`` space, as a DARTS supernet (every searched split a mixed operation
over all candidates) or as the fixed network of one arch.

Zhao et al., "Memory-Efficient Differentiable Transformer Architecture Search" (Findings of
ACL 2021). Per the paper (as summarised by a third party; the paper's text and its
official code, github.com/microsoft/DARTSformer, could not be read from here):

- the embedding (optionally factorized, e=256 x d=960 in the search) is split along the
  feature axis into 2 encoder / 3 decoder splits, updated by
  :class:`~nasforge.nn.reversible.MultiSplitLayer` (max pooling of a split's inputs, then
  its operation);
- candidate ops: standard convolutions of width 3/5/7/11, dynamic convolutions of width
  3/7/11/15, 8-head self-attention, 8-head cross-attention (decoder), GLU, FFN, zero,
  identity; every op but zero/identity is ``LayerNorm(x + op(x))``;
- the decoder's last split is a fixed cross-attention; the searched 2-layer block is
  repeated over the depth (one architecture weight vector per block position, shared by
  the repeats, as DARTS shares its cell's weights between cells);
- a mixed op is ``sum_o softmax(alpha)_o * o(x)``, alpha randomly initialised (here
  ``1e-3 * N(0, 1)``, DARTS' initialisation).

This implementation's own choices (not verified against the paper): the standard
convolution is a full ``Conv1d(c, c, w)``; the dynamic convolution is Wu et al. (2019)'s
(GLU input projection, per-position kernels predicted by a linear layer and softmax-
normalised over the width, ``heads`` kernel groups, output projection); FFN width is 4x the
split width; decoder convolutions are causal (left-padded) and decoder self-attention is
masked; padding positions are zeroed before a convolution; a final LayerNorm closes the
encoder and the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.registry import NETWORKS
from nasforge.nn.reversible import POOLINGS, MultiSplitLayer, ReversibleStack
from nasforge.nn.seq2seq import Seq2Seq, causal_mask
from nasforge.spaces.rev_transformer import (
    BLOCK_LAYERS,
    DECODER_FIXED_OP,
    DECODER_OPS,
    DECODER_SPLITS,
    ENCODER_OPS,
    ENCODER_SPLITS,
    RevArch,
)

#: The context every op receives: (padding mask of its own sequence, encoder memory,
#: memory padding mask); the encoder's memory entries are None.
Context = Sequence[torch.Tensor | None]


class Conv(nn.Module):
    """A standard convolution of width ``w`` over time, ``c -> c`` channels."""

    def __init__(self, c: int, w: int, causal: bool) -> None:
        super().__init__()
        self.pad = (w - 1, 0) if causal else (w // 2, w - 1 - w // 2)
        self.conv = nn.Conv1d(c, c, w)

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        h = h.masked_fill(ctx[0][..., None], 0.0)
        return self.conv(F.pad(h.transpose(1, 2), self.pad)).transpose(1, 2)


class DynamicConv(nn.Module):
    """Wu et al. (2019)'s dynamic convolution of width ``w``: a GLU input projection,
    a kernel per position and kernel group predicted from that position's input and
    softmax-normalised over the width, and an output projection."""

    def __init__(self, c: int, w: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.w, self.heads = w, heads
        self.pad = (w - 1, 0) if causal else (w // 2, w - 1 - w // 2)
        self.inp = nn.Linear(c, 2 * c)
        self.kernel = nn.Linear(c, heads * w)
        self.out = nn.Linear(c, c)

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        b, t, c = h.shape
        x = F.glu(self.inp(h), -1).masked_fill(ctx[0][..., None], 0.0)
        k = torch.softmax(self.kernel(x).view(b, t, self.heads, 1, self.w), -1)
        win = F.pad(x, (0, 0, *self.pad)).unfold(1, self.w, 1)  # [B, T, C, w]
        y = (win.reshape(b, t, self.heads, c // self.heads, self.w) * k).sum(-1)
        return self.out(y.reshape(b, t, c))


class SelfAttention(nn.Module):
    def __init__(self, c: int, heads: int, causal: bool, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(c, heads, dropout=dropout, batch_first=True)
        self.causal = causal

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        mask = causal_mask(h.shape[1], h.device) if self.causal else None
        return self.attn(h, h, h, key_padding_mask=ctx[0], attn_mask=mask, need_weights=False)[0]


class CrossAttention(nn.Module):
    def __init__(self, c: int, memory_dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            c, heads, dropout=dropout, kdim=memory_dim, vdim=memory_dim, batch_first=True
        )

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        memory, memory_pad = ctx[1], ctx[2]
        return self.attn(h, memory, memory, key_padding_mask=memory_pad, need_weights=False)[0]


class GLU(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.lin = nn.Linear(c, 2 * c)

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        return F.glu(self.lin(h), -1)


class FFN(nn.Module):
    def __init__(self, c: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, ratio * c), nn.Linear(ratio * c, c)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(h))))


class Zero(nn.Module):
    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        return torch.zeros_like(h)


class Identity(nn.Module):
    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        return h


class Residual(nn.Module):
    """``LayerNorm(x + dropout(op(x)))``: how every candidate but zero/identity is wrapped."""

    def __init__(self, op: nn.Module, c: int, dropout: float) -> None:
        super().__init__()
        self.op, self.norm, self.drop = op, nn.LayerNorm(c), nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        return self.norm(h + self.drop(self.op(h, ctx)))


def build_op(
    name: str, c: int, *, heads: int, causal: bool, memory_dim: int, dropout: float, ffn: int
) -> nn.Module:
    """The candidate ``name`` on ``c`` channels (wrapped as :class:`Residual` unless it is
    zero or identity)."""
    if name == "zero":
        return Zero()
    if name == "identity":
        return Identity()
    if name.startswith("conv"):
        op: nn.Module = Conv(c, int(name[4:]), causal)
    elif name.startswith("dynconv"):
        op = DynamicConv(c, int(name[7:]), heads, causal)
    elif name == "self_attn":
        op = SelfAttention(c, heads, causal, dropout)
    elif name == "cross_attn":
        op = CrossAttention(c, memory_dim, heads, dropout)
    elif name == "glu":
        op = GLU(c)
    elif name == "ffn":
        op = FFN(c, ffn, dropout)
    else:
        raise ArchError(f"unknown rev-transformer op {name!r}; expected one of {DECODER_OPS}")
    return Residual(op, c, dropout)


class MixedOp(nn.Module):
    """DARTS' continuous relaxation: ``sum_o softmax(alpha)_o * o(x)`` over ``names``;
    ``alpha`` may be shared with the other repeats of the same block position."""

    def __init__(self, names: Sequence[str], ops: Sequence[nn.Module], alpha: nn.Parameter):
        super().__init__()
        self.names = tuple(names)
        self.ops = nn.ModuleList(ops)
        self.alpha = alpha

    def forward(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        w = torch.softmax(self.alpha, 0).to(h.dtype)
        out = w[0] * self.ops[0](h, ctx)
        for i in range(1, len(self.ops)):
            out = out + w[i] * self.ops[i](h, ctx)
        return out


class RevTransformer(Seq2Seq):
    """The multi-split reversible encoder-decoder of ``arch`` (``None``: the supernet).

    ``d_model`` must split evenly into 2 and 3 parts, each divisible by ``heads``;
    ``reversible=True`` trains with backpropagation by reconstruction, ``False`` with
    ordinary autograd (the paper retrains the derived network that way). ``candidates``
    restricts the supernet's mixed ops to a subset of the op set (memory studies).
    """

    def __init__(
        self,
        arch: RevArch | None,
        *,
        vocab_size: int,
        d_model: int = 480,
        heads: int = 8,
        enc_layers: int = 6,
        dec_layers: int = 6,
        dropout: float = 0.1,
        pooling: str = "max",
        reversible: bool = False,
        embed_dim: int | None = None,
        ffn_ratio: int = 4,
        candidates: Sequence[str] | None = None,
    ) -> None:
        super().__init__(vocab_size, d_model, dropout, embed_dim)
        if candidates is not None:
            bad = sorted(set(candidates) - set(DECODER_OPS))
            if bad or not candidates:
                raise ArchError(
                    f"candidates {bad or list(candidates)}; expected a non-empty subset of "
                    f"{DECODER_OPS}"
                )
        for s in (ENCODER_SPLITS, DECODER_SPLITS):
            if d_model % s or (d_model // s) % heads:
                raise ArchError(
                    f"d_model={d_model} with heads={heads}: each of {s} splits must have a "
                    f"width divisible by heads; expected d_model a multiple of {6 * heads}"
                )
        if pooling not in POOLINGS:
            raise ArchError(f"pooling={pooling!r}; expected one of {POOLINGS}")
        for name, v in (("enc_layers", enc_layers), ("dec_layers", dec_layers)):
            if not isinstance(v, int) or v < 1:
                raise ArchError(f"{name}={v!r}; expected an int >= 1")
        self.arch = arch
        self.alphas = nn.ParameterList()
        kw = {"heads": heads, "memory_dim": d_model, "dropout": dropout, "ffn": ffn_ratio}
        shared: dict[tuple[str, int, int], nn.Parameter] = {}
        self._alpha_names: dict[tuple[str, int, int], tuple[str, ...]] = {}

        def node(side: str, li: int, k: int, c: int, causal: bool) -> nn.Module:
            b = li % BLOCK_LAYERS
            if side == "dec" and k == DECODER_SPLITS - 1:
                return build_op(DECODER_FIXED_OP, c, causal=causal, **kw)
            if arch is not None:
                op = arch.encoder[b][k] if side == "enc" else arch.decoder[b][k]
                return build_op(op, c, causal=causal, **kw)
            names = tuple(
                n
                for n in (ENCODER_OPS if side == "enc" else DECODER_OPS)
                if candidates is None or n in candidates
            )
            if not names:
                raise ArchError(f"no candidate of {list(candidates or ())} is an encoder op")
            self._alpha_names[side, b, k] = names
            if (side, b, k) not in shared:
                shared[side, b, k] = nn.Parameter(1e-3 * torch.randn(len(names)))
                self.alphas.append(shared[side, b, k])
            ops = [build_op(n, c, causal=causal, **kw) for n in names]
            return MixedOp(names, ops, shared[side, b, k])

        ce, cd = d_model // ENCODER_SPLITS, d_model // DECODER_SPLITS
        self.encoder = ReversibleStack(
            [
                MultiSplitLayer(
                    [node("enc", li, k, ce, False) for k in range(ENCODER_SPLITS)], pooling
                )
                for li in range(enc_layers)
            ],
            reversible,
        )
        self.decoder = ReversibleStack(
            [
                MultiSplitLayer(
                    [node("dec", li, k, cd, True) for k in range(DECODER_SPLITS)], pooling
                )
                for li in range(dec_layers)
            ],
            reversible,
        )
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self._alpha_keys = list(shared)

    @property
    def reversible(self) -> bool:
        return self.encoder.reversible

    @reversible.setter
    def reversible(self, on: bool) -> None:
        self.encoder.reversible = self.decoder.reversible = bool(on)

    def encode_states(self, h: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        xs = self.encoder(list(h.chunk(ENCODER_SPLITS, -1)), (pad, None, None))
        return self.enc_norm(torch.cat(xs, -1))

    def decode_states(
        self, h: torch.Tensor, pad: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor
    ) -> torch.Tensor:
        xs = self.decoder(list(h.chunk(DECODER_SPLITS, -1)), (pad, memory, memory_pad))
        return self.dec_norm(torch.cat(xs, -1))

    # -- DARTS -----------------------------------------------------------------------------

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture weights (one vector per searched block position)."""
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(a) for a in self.alphas}
        return [p for p in self.parameters() if id(p) not in ids]

    def alpha_weights(self) -> dict[str, dict[str, float]]:
        """``softmax(alpha)`` of every searched position, by op name."""
        out = {}
        for (side, b, k), a in zip(self._alpha_keys, self.alphas, strict=True):
            names = self._alpha_names[side, b, k]
            w = torch.softmax(a.detach().double(), 0).tolist()
            out[f"{side}.l{b}.s{k}"] = dict(zip(names, w, strict=True))
        return out

    def derive(self) -> RevArch:
        """The arch of the largest architecture weight at every position (DARTS' argmax)."""
        if not len(self.alphas):
            raise ArchError("derive() needs the supernet (a network built with arch=None)")
        best = {
            key: self._alpha_names[key][int(a.detach().argmax())]
            for key, a in zip(self._alpha_keys, self.alphas, strict=True)
        }
        enc = tuple(
            tuple(best["enc", b, k] for k in range(ENCODER_SPLITS)) for b in range(BLOCK_LAYERS)
        )
        dec = tuple(
            tuple(best["dec", b, k] for k in range(DECODER_SPLITS - 1)) for b in range(BLOCK_LAYERS)
        )
        return RevArch(enc, dec)


@NETWORKS.register("rev-transformer")
def rev_transformer_network(
    arch: RevArch,
    *,
    vocab_size: int,
    d_model: int = 480,
    heads: int = 8,
    enc_layers: int = 6,
    dec_layers: int = 6,
    dropout: float = 0.1,
    pooling: str = "max",
    reversible: bool = False,
    embed_dim: int | None = None,
) -> RevTransformer:
    """The fixed network of a rev-transformer arch. Defaults: 8 heads, 6+6 layers (the
    searched 2-layer block three times), dropout 0.1, max pooling (the paper's); d_model
    480 is the multiple of 48 (2 and 3 splits of 8 heads) nearest the base Transformer's
    512 -- the paper's retraining widths could not be checked. Ordinary backprop unless
    ``reversible``."""
    return RevTransformer(
        arch,
        vocab_size=int(vocab_size),
        d_model=int(d_model),
        heads=int(heads),
        enc_layers=int(enc_layers),
        dec_layers=int(dec_layers),
        dropout=float(dropout),
        pooling=str(pooling),
        reversible=_flag(reversible),
        embed_dim=None if embed_dim in (None, "none", "None") else int(embed_dim),
    )


def _flag(v: object) -> bool:
    """A boolean option that may arrive as a CLI string."""
    if isinstance(v, str):
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise ArchError(f"reversible={v!r}; expected true or false")
    return bool(v)
