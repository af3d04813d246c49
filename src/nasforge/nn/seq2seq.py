"""Encoder-decoder networks for translation: shared embeddings, greedy and beam decoding,
and the standard Transformer the searched networks are compared with.

Every translation network is a :class:`Seq2Seq`: ``encode(src) -> (memory, src_pad)``,
``decode(memory, src_pad, tgt_in) -> logits`` and ``forward(src, tgt_in)``; decoding
(:func:`greedy_decode`, :func:`beam_search`) needs nothing else. Token ids 0-3 are pad /
unk / bos / eos (:mod:`nasforge.data.translation`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data.translation import BOS_ID, EOS_ID, PAD_ID
from nasforge.errors import ArchError

#: Longest sequence a network embeds (sinusoidal table size).
MAX_POSITIONS = 1024


def sinusoidal_positions(n: int, dim: int) -> torch.Tensor:
    """The Transformer's fixed position table ``[n, dim]`` (sin on even, cos on odd
    features; Vaswani et al. 2017, section 3.5)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, dim, 2, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, i / dim)
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table.float()


def causal_mask(t: int, device: torch.device) -> torch.Tensor:
    """``[t, t]`` bool mask, True above the diagonal (future positions hidden)."""
    return torch.ones(t, t, dtype=torch.bool, device=device).triu(1)


class Seq2Seq(nn.Module):
    """Shared source/target/output embedding (one joint vocabulary, fairseq's
    ``--share-all-embeddings``), optionally factorized into ``V x embed_dim`` and
    ``embed_dim x d_model`` (the paper's search uses e=256, d=960), scaled by
    ``sqrt(d_model)``, plus sinusoidal positions and dropout. Subclasses implement
    :meth:`encode_states` and :meth:`decode_states` on ``[B, T, d_model]`` states."""

    def __init__(
        self, vocab_size: int, d_model: int, dropout: float, embed_dim: int | None = None
    ) -> None:
        super().__init__()
        if vocab_size < 5:
            raise ArchError(f"vocab_size={vocab_size}; expected >= 5 (4 special ids + text)")
        e = d_model if embed_dim is None else int(embed_dim)
        self.vocab_size, self.d_model, self.embed_dim = int(vocab_size), int(d_model), e
        self.embed = nn.Embedding(vocab_size, e, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, 0.0, e**-0.5)
        with torch.no_grad():
            self.embed.weight[PAD_ID].zero_()
        self.proj_in = nn.Linear(e, d_model, bias=False) if e != d_model else None
        self.proj_out = nn.Linear(d_model, e, bias=False) if e != d_model else None
        self.register_buffer("positions", sinusoidal_positions(MAX_POSITIONS, d_model), False)
        self.drop = nn.Dropout(dropout)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > MAX_POSITIONS:
            raise ArchError(f"a sequence of {ids.shape[1]} tokens; expected <= {MAX_POSITIONS}")
        h = self.embed(ids)
        if self.proj_in is not None:
            h = self.proj_in(h)
        h = h * math.sqrt(self.d_model) + self.positions[: ids.shape[1]].to(h.dtype)
        return self.drop(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.proj_out is not None:
            h = self.proj_out(h)
        return F.linear(h, self.embed.weight)

    def encode_states(self, h: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_states(
        self, h: torch.Tensor, pad: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = src.eq(PAD_ID)
        return self.encode_states(self.embed_tokens(src), pad), pad

    def decode(
        self, memory: torch.Tensor, memory_pad: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        pad = tgt_in.eq(PAD_ID)
        return self.logits(self.decode_states(self.embed_tokens(tgt_in), pad, memory, memory_pad))

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, memory_pad = self.encode(src)
        return self.decode(memory, memory_pad, tgt_in)


class StandardTransformer(Seq2Seq):
    """The post-norm Transformer of Vaswani et al. (2017): ``layers`` encoder and decoder
    layers of self-attention (+ cross-attention) and a ReLU FFN of width ``ffn``; base:
    d=512, 8 heads, FFN 2048, 6+6 layers, dropout 0.1 (PyTorch's own layers)."""

    def __init__(
        self,
        *,
        vocab_size: int,
        d_model: int = 512,
        heads: int = 8,
        ffn: int = 2048,
        enc_layers: int = 6,
        dec_layers: int = 6,
        dropout: float = 0.1,
        embed_dim: int | None = None,
    ) -> None:
        super().__init__(vocab_size, d_model, dropout, embed_dim)
        if d_model % heads:
            raise ArchError(f"d_model={d_model} is not divisible by heads={heads}")
        enc = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, batch_first=True)
        dec = nn.TransformerDecoderLayer(d_model, heads, ffn, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, enc_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec, dec_layers)

    def encode_states(self, h: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        return self.encoder(h, src_key_padding_mask=pad)

    def decode_states(
        self, h: torch.Tensor, pad: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor
    ) -> torch.Tensor:
        return self.decoder(
            h,
            memory,
            tgt_mask=causal_mask(h.shape[1], h.device),
            tgt_key_padding_mask=pad,
            memory_key_padding_mask=memory_pad,
        )


# -- decoding --------------------------------------------------------------------------------


def _max_steps(src: torch.Tensor, max_len: int | None) -> int:
    # fairseq's max_len_a * src_len + max_len_b with a=1.5, b=10 (bounded by the positions).
    src_len = int(src.ne(PAD_ID).sum(1).max().item()) if src.numel() else 0
    steps = int(1.5 * src_len) + 10
    return min(steps if max_len is None else min(steps, max_len), MAX_POSITIONS - 1)


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: torch.Tensor, max_len: int | None = None) -> list[list[int]]:
    """The argmax continuation of bos for every source, up to eos (excluded)."""
    memory, memory_pad = model.encode(src)
    b = src.shape[0]
    tokens = torch.full((b, 1), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    for _ in range(_max_steps(src, max_len)):
        lp = model.decode(memory, memory_pad, tokens)[:, -1].float()
        lp[:, PAD_ID] = lp[:, BOS_ID] = -math.inf
        nxt = lp.argmax(-1).masked_fill(done, PAD_ID)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt.eq(EOS_ID)
        if bool(done.all()):
            break
    return [_strip(row) for row in tokens[:, 1:].tolist()]


def _strip(row: list[int]) -> list[int]:
    out = []
    for t in row:
        if t in (EOS_ID, PAD_ID):
            break
        out.append(t)
    return out


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    beam: int = 4,
    lenpen: float = 0.6,
    max_len: int | None = None,
) -> list[list[int]]:
    """Beam search with fairseq's length normalisation: a finished hypothesis scores
    ``sum(log p) / len ** lenpen`` (len counting eos); a sentence stops once ``beam``
    hypotheses have finished (fairseq's stopping rule), at ``max_len`` the open beams
    are finished as they are. Defaults: beam 4, lenpen 0.6, the WMT En-De Transformer
    setting (Vaswani et al. 2017, section 6.1, with fairseq's form of the penalty)."""
    if beam < 1:
        raise ArchError(f"beam={beam}; expected >= 1")
    memory, memory_pad = model.encode(src)
    b, dev = src.shape[0], src.device
    memory = memory.repeat_interleave(beam, 0)
    memory_pad = memory_pad.repeat_interleave(beam, 0)
    tokens = torch.full((b * beam, 1), BOS_ID, dtype=torch.long, device=dev)
    scores = torch.zeros(b, beam, device=dev)
    scores[:, 1:] = -math.inf  # all beams start identical: expand only the first
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    active = [True] * b
    steps = _max_steps(src, max_len)
    for step in range(steps):
        lp = F.log_softmax(model.decode(memory, memory_pad, tokens)[:, -1].float(), -1)
        lp[:, PAD_ID] = lp[:, BOS_ID] = -math.inf
        if step == steps - 1:
            keep = lp[:, EOS_ID].clone()
            lp.fill_(-math.inf)
            lp[:, EOS_ID] = keep
        vocab = lp.shape[1]
        cand = (scores.reshape(-1, 1) + lp).reshape(b, beam * vocab)
        top_s, top_i = cand.topk(min(2 * beam, cand.shape[1]), dim=1)
        new_scores = torch.full((b, beam), -math.inf, device=dev)
        new_src = torch.zeros(b, beam, dtype=torch.long, device=dev)
        new_tok = torch.full((b, beam), PAD_ID, dtype=torch.long, device=dev)
        top_s_l, top_i_l = top_s.tolist(), top_i.tolist()
        prev = tokens.view(b, beam, -1)
        for i in range(b):
            if not active[i]:
                continue
            k = 0
            for s, idx in zip(top_s_l[i], top_i_l[i], strict=True):
                if s == -math.inf:
                    break
                origin, tok = divmod(idx, vocab)
                if tok == EOS_ID:
                    if len(finished[i]) < beam:
                        hyp = prev[i, origin, 1:].tolist()
                        finished[i].append((s / (step + 1) ** lenpen, hyp))
                    continue
                if k < beam:
                    new_scores[i, k], new_src[i, k], new_tok[i, k] = s, origin, tok
                    k += 1
                if k == beam and len(finished[i]) >= beam:
                    break
            if len(finished[i]) >= beam or k == 0:
                active[i] = False
        if not any(active):
            break
        scores = new_scores
        base = (torch.arange(b, device=dev) * beam)[:, None]
        tokens = torch.cat([tokens[(base + new_src).reshape(-1)], new_tok.reshape(-1, 1)], 1)
    return [max(f, key=lambda t: t[0])[1] if f else [] for f in finished]
