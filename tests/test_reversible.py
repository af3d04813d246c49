"""Backpropagation by reconstruction: the gradients of every weight and of the
architecture weights equal ordinary autograd's, with dropout and with 2 and 3 splits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.nn.rev_transformer import RevTransformer
from nasforge.nn.reversible import MultiSplitLayer, ReversibleStack, saved_activation_bytes
from nasforge.spaces import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: An arch touching every kind of op (attention, both convolutions, FFN, GLU).
MIXED_ARCH = (
    "enc.l0.s0=self_attn,enc.l0.s1=dynconv7,enc.l1.s0=conv5,enc.l1.s1=ffn,"
    "dec.l0.s0=self_attn,dec.l0.s1=dynconv3,dec.l1.s0=glu,dec.l1.s1=conv3"
)


class _Split(nn.Module):
    """A small G_k: a dropout MLP plus an (optional) attention to a context tensor."""

    def __init__(self, c: int, ctx_dim: int, p: float) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, 2 * c), nn.Tanh(), nn.Dropout(p), nn.Linear(2 * c, c))
        self.mix = nn.Linear(ctx_dim, c)

    def forward(self, h: torch.Tensor, ctx) -> torch.Tensor:
        out = self.fc(h)
        if ctx and ctx[0] is not None:
            out = out + torch.tanh(self.mix(ctx[0])).mean(1, keepdim=True)
        return out


def _grads(stack: nn.Module, xs, ctx, rev: bool, seed: int):
    stack.reversible = rev
    for p in stack.parameters():
        p.grad = None
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    ctx = [c.detach().clone().requires_grad_(True) for c in ctx]
    torch.manual_seed(seed)
    ys = stack(xs, ctx)
    loss = sum((y * torch.arange(y.numel()).view_as(y).sin()).sum() for y in ys)
    loss.backward()
    return (
        [y.detach() for y in ys],
        [x.grad for x in xs],
        [c.grad for c in ctx],
        {n: p.grad for n, p in stack.named_parameters()},
    )


@pytest.mark.parametrize("splits", [2, 3, 4])
def test_multi_split_gradients_equal_autograd_with_dropout(splits: int) -> None:
    torch.manual_seed(0)
    c, ctx_dim = 5, 7
    stack = ReversibleStack(
        [
            MultiSplitLayer([_Split(c, ctx_dim, 0.3) for _ in range(splits)], pooling)
            for pooling in ("max", "mean", "max")
        ]
    ).double()
    stack.train()
    xs = [torch.randn(2, 6, c, dtype=torch.float64) for _ in range(splits)]
    ctx = [torch.randn(2, 4, ctx_dim, dtype=torch.float64)]
    y0, dx0, dc0, dp0 = _grads(stack, xs, ctx, rev=False, seed=11)
    y1, dx1, dc1, dp1 = _grads(stack, xs, ctx, rev=True, seed=11)
    for a, b in zip(y0, y1, strict=True):
        assert torch.equal(a, b)  # the same dropout masks: the very same forward
    for a, b in zip([*dx0, *dc0], [*dx1, *dc1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert dp0.keys() == dp1.keys()
    for k in dp0:
        torch.testing.assert_close(dp1[k], dp0[k], rtol=1e-10, atol=1e-12)
    # A different dropout seed gives a different gradient: the masks matter and were replayed.
    _, _, _, dp2 = _grads(stack, xs, ctx, rev=True, seed=12)
    assert any(not torch.allclose(dp2[k], dp0[k]) for k in dp0)


def test_supernet_weight_and_architecture_gradients_equal_autograd() -> None:
    torch.manual_seed(0)
    net = RevTransformer(
        None, vocab_size=40, d_model=12, heads=2, enc_layers=3, dec_layers=3, dropout=0.2
    ).double()
    net.train()
    src = torch.randint(4, 40, (2, 6))
    src[0, 4:] = 0
    tgt = torch.randint(4, 40, (2, 5))
    tgt[1, 3:] = 0

    def run(rev: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net.reversible = rev
        net.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        out = net(src, tgt)
        (out.log_softmax(-1)[..., 5]).mean().backward()
        return out.detach(), {n: p.grad for n, p in net.named_parameters()}

    o0, g0 = run(False)
    o1, g1 = run(True)
    assert torch.equal(o0, o1)
    alphas = [n for n in g0 if n.startswith("alphas.")]
    assert len(alphas) == 8 and all(g0[n] is not None and g0[n].abs().sum() > 0 for n in alphas)
    assert g0.keys() == g1.keys()
    for k in g0:
        if g0[k] is None:
            assert g1[k] is None, k
            continue
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-9, atol=1e-12, msg=k)
    # The encoder memory's gradient flows through every decoder cross-attention.
    assert g1["embed.weight"].abs().sum() > 0


def test_reconstruction_error_stays_small_over_depth_in_float32() -> None:
    """Inputs rebuilt from the outputs of a 24-layer float32 encoder stack (attention,
    dynamic convolution, convolution and FFN splits): the error, max abs relative to the
    inputs' max abs, grows with depth (about 1e-6 at 2 layers, 3e-4 at 24 on this seed)
    and stays below 1e-3."""
    arch = get_space("rev-transformer").from_string(MIXED_ARCH)
    torch.manual_seed(0)
    net = RevTransformer(arch, vocab_size=30, d_model=24, heads=2, enc_layers=24, dec_layers=1)
    net.eval()
    h = torch.randn(2, 9, 24)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    xs = list(h.chunk(2, -1))
    errors = {}
    with torch.no_grad():
        for depth in (2, 8, 24):
            stack = ReversibleStack(list(net.encoder.layers[:depth]))
            ys = stack(xs, (pad, None, None))
            back = stack.reconstruct(ys, (pad, None, None))
            err = max(float((a - b).abs().max()) for a, b in zip(back, xs, strict=True))
            errors[depth] = err / float(h.abs().max())
    assert errors[24] < 1e-3, errors
    assert errors[2] < 1e-5 and errors[2] <= errors[8] <= errors[24], errors


def test_reversible_stack_keeps_only_the_last_outputs() -> None:
    torch.manual_seed(0)
    arch = get_space("rev-transformer").from_string(MIXED_ARCH)
    net = RevTransformer(arch, vocab_size=30, d_model=24, heads=2, enc_layers=8, dec_layers=8)
    src = torch.randint(4, 30, (4, 10))
    tgt = torch.randint(4, 30, (4, 9))
    params = list(net.parameters())
    sizes = {}
    for rev in (False, True):
        net.reversible = rev
        sizes[rev], loss = saved_activation_bytes(lambda: net(src, tgt).sum(), params)
        loss.backward()
    assert sizes[True] * 5 < sizes[False], sizes
