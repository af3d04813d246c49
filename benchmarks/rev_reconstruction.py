"""Benchmark: float32 reconstruction error of multi-split reversible stacks over depth.

    PYTHONPATH=src .venv/bin/python benchmarks/rev_reconstruction.py [--out FILE]

The inputs of a stack of 2..24 layers are rebuilt from its outputs
(``ReversibleStack.reconstruct``, eval mode) and compared with the true inputs: max
absolute error relative to the inputs' max absolute value, for the encoder (2 splits) and
the decoder (3 splits, with encoder memory), of the rev-transformer supernet (13 / 14
mixed candidates per split) and of a fixed arch (attention, convolutions, FFN, GLU), at
``d_model`` 96, batch 8 x 24 tokens, 2 weight seeds (the maximum is reported). The
float64 error is shown for scale. Backpropagation by reconstruction differentiates at the
reconstructed inputs, so this error is what separates its gradients from autograd's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nasforge.nn.rev_transformer import RevTransformer
from nasforge.nn.reversible import ReversibleStack
from nasforge.spaces import get_space

ARCH = (
    "enc.l0.s0=self_attn,enc.l0.s1=dynconv7,enc.l1.s0=conv5,enc.l1.s1=ffn,"
    "dec.l0.s0=self_attn,dec.l0.s1=dynconv3,dec.l1.s0=glu,dec.l1.s1=conv11"
)
DEPTHS = (2, 4, 8, 16, 24)
SEEDS = (0, 1)


def errors(arch: object, dtype: torch.dtype, seed: int) -> dict[str, dict[int, float]]:
    torch.manual_seed(seed)
    net = RevTransformer(
        arch, vocab_size=50, d_model=96, heads=4, enc_layers=max(DEPTHS), dec_layers=max(DEPTHS)
    ).to(dtype)
    net.eval()
    h = torch.randn(8, 24, 96, dtype=dtype)
    memory = torch.randn(8, 20, 96, dtype=dtype)
    pad = torch.zeros(8, 24, dtype=torch.bool)
    mpad = torch.zeros(8, 20, dtype=torch.bool)
    out: dict[str, dict[int, float]] = {"encoder": {}, "decoder": {}}
    with torch.no_grad():
        for side, stack, n, ctx in (
            ("encoder", net.encoder, 2, (pad, None, None)),
            ("decoder", net.decoder, 3, (pad, memory, mpad)),
        ):
            xs = list(h.chunk(n, -1))
            for depth in DEPTHS:
                sub = ReversibleStack(list(stack.layers[:depth]))
                back = sub.reconstruct(sub(xs, ctx), ctx)
                err = max(float((a - b).abs().max()) for a, b in zip(back, xs, strict=True))
                out[side][depth] = err / float(h.abs().max())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    fixed = get_space("rev-transformer").from_string(ARCH)
    doc: dict[str, object] = {"depths": list(DEPTHS), "d_model": 96, "seeds": list(SEEDS)}
    for name, arch in (("supernet", None), ("fixed_arch", fixed)):
        for dtype in (torch.float32, torch.float64):
            runs = [errors(arch, dtype, s) for s in SEEDS]
            doc[f"{name}_{str(dtype).split('.')[-1]}"] = {
                side: {d: max(r[side][d] for r in runs) for d in DEPTHS}
                for side in ("encoder", "decoder")
            }
    doc["fixed_arch"] = ARCH
    doc["wall_s"] = time.perf_counter() - t0
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        from nasforge.io import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
