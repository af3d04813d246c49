"""The search space of DARTSformer (Zhao et al., "Memory-Efficient Differentiable
Transformer Architecture Search", Findings of ACL 2021).

A network is a multi-split reversible encoder-decoder (:mod:`nasforge.nn.reversible`):
every encoder layer has ``ENCODER_SPLITS`` = 2 splits and every decoder layer
``DECODER_SPLITS`` = 3, the decoder's last split being a fixed cross-attention (the paper's
constraint, which it found to give better architectures). Each remaining split holds one
operation; the searched block is ``BLOCK_LAYERS`` = 2 consecutive layers (``s = 2``), and
the network repeats it over its depth. So an arch is 2 x 2 encoder ops from
:data:`ENCODER_OPS` (13 candidates) and 2 x 2 decoder ops from :data:`DECODER_OPS` (14:
the encoder's plus cross-attention); 13^4 * 14^4 = 1.1e9 archs.

Candidate operations (the paper's set, as a third-party summary of the paper reports it:
standard convolutions of width 3/5/7/11, dynamic convolutions of width 3/7/11/15,
8-head self-attention, 8-head cross-attention in the decoder, GLU, FFN, zero and identity;
every op but zero/identity is wrapped as ``LayerNorm(x + op(x))``). Neither the paper's
own text nor its official code (github.com/microsoft/DARTSformer) could be read from here,
so the op details in :mod:`nasforge.nn.rev_transformer` are this implementation's reading.

Pure Python (no torch): the network is built by ``nasforge.nn.rev_transformer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ArchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.registry import SPACES

ENCODER_OPS: tuple[str, ...] = (
    "conv3",
    "conv5",
    "conv7",
    "conv11",
    "dynconv3",
    "dynconv7",
    "dynconv11",
    "dynconv15",
    "self_attn",
    "glu",
    "ffn",
    "zero",
    "identity",
)
DECODER_OPS: tuple[str, ...] = (*ENCODER_OPS, "cross_attn")
ENCODER_SPLITS = 2
DECODER_SPLITS = 3
#: Layers in the searched block (the paper's s = 2).
BLOCK_LAYERS = 2
#: The decoder's last split: fixed, not searched.
DECODER_FIXED_OP = "cross_attn"


@dataclass(frozen=True)
class RevArch:
    """``encoder[l][k]``: op of split k of block layer l; ``decoder[l][k]`` likewise for the
    searched decoder splits (the last, fixed split is :data:`DECODER_FIXED_OP`)."""

    encoder: tuple[tuple[str, ...], ...]
    decoder: tuple[tuple[str, ...], ...]

    def decoder_ops(self, layer: int) -> tuple[str, ...]:
        """Every split's op of decoder block layer ``layer``, the fixed one included."""
        return (*self.decoder[layer], DECODER_FIXED_OP)


def positions() -> list[tuple[str, int, int]]:
    """``(side, block layer, split)`` of every searched position, in string order."""
    out = [("enc", li, k) for li in range(BLOCK_LAYERS) for k in range(ENCODER_SPLITS)]
    out += [("dec", li, k) for li in range(BLOCK_LAYERS) for k in range(DECODER_SPLITS - 1)]
    return out


@SPACES.register("rev-transformer")
class RevTransformerSpace(CategoricalBase):
    """DARTSformer's space: one op per searched split of a 2-layer encoder block and a
    2-layer decoder block (string form ``enc.l0.s0=ffn,...,dec.l1.s1=cross_attn``)."""

    name = "rev-transformer"

    def choices(self) -> tuple[Choice, ...]:
        return tuple(
            Choice(f"{side}.l{li}.s{k}", ENCODER_OPS if side == "enc" else DECODER_OPS)
            for side, li, k in positions()
        )

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        if not isinstance(arch, RevArch):
            raise ArchError(f"expected a rev-transformer RevArch, got {type(arch).__name__}")
        ops = [*(o for layer in arch.encoder for o in layer)]
        ops += [o for layer in arch.decoder for o in layer]
        return tuple(c.options.index(o) for c, o in zip(self.choices(), ops, strict=True))

    def from_choices(self, picks: Sequence[int]) -> RevArch:
        choices = self.choices()
        if len(picks) != len(choices):
            raise ArchError(f"{len(picks)} picks; expected {len(choices)} (one per position)")
        ops = []
        for c, p in zip(choices, picks, strict=True):
            p = int(p)
            if not 0 <= p < len(c.options):
                raise ArchError(f"pick {p} at {c.name}; expected 0..{len(c.options) - 1}")
            ops.append(c.options[p])
        ne = BLOCK_LAYERS * ENCODER_SPLITS
        nd = DECODER_SPLITS - 1
        enc = tuple(
            tuple(ops[li * ENCODER_SPLITS : (li + 1) * ENCODER_SPLITS])
            for li in range(BLOCK_LAYERS)
        )
        dec = tuple(tuple(ops[ne + li * nd : ne + (li + 1) * nd]) for li in range(BLOCK_LAYERS))
        return RevArch(enc, dec)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "encoder_splits": ENCODER_SPLITS,
            "decoder_splits": DECODER_SPLITS,
            "block_layers": BLOCK_LAYERS,
            "decoder_fixed_op": DECODER_FIXED_OP,
        }

    def describe_arch(self, arch: Any) -> dict[str, Any]:
        return {
            **super().describe_arch(arch),
            **{f"dec.l{li}.s{DECODER_SPLITS - 1}": DECODER_FIXED_OP for li in range(BLOCK_LAYERS)},
        }


#: Vaswani's layer order in this space's terms, for reference: encoder splits
#: self-attention then FFN; decoder splits self-attention, FFN, fixed cross-attention.
TRANSFORMER_LIKE = RevArch(
    (("self_attn", "ffn"),) * BLOCK_LAYERS, (("self_attn", "ffn"),) * BLOCK_LAYERS
)
