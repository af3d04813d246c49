"""The NB201 weight-sharing supernet: mixing modes, partial channels, edge weights."""

from __future__ import annotations

import pytest
import torch

from nasforge.errors import ArchError
from nasforge.nn.nb201 import NB201Network, stage_layout
from nasforge.nn.supernet import (
    MixedEdge,
    NB201Supernet,
    SearchCell,
    channel_shuffle,
    from_xautodl_state_dict,
    shuffle_concat,
    to_xautodl_state_dict,
)
from nasforge.spaces.nb201 import OPS, Arch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(**kw: object) -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(4, 1, 3, **kw).eval()


def test_skeleton_matches_nb201_network() -> None:
    net = NB201Supernet(8, 2, 7)
    ref = NB201Network(Arch(("none",) * 6), C=8, N=2, num_classes=7)
    kinds = [isinstance(c, SearchCell) for c in net.cells]
    assert kinds == [not red for _, red in stage_layout(8, 2)]
    # The skeleton around the cells is NB201Network's: same module names and shapes.
    ours = net.state_dict()
    for key, value in ref.state_dict().items():
        assert key in ours and ours[key].shape == value.shape, key
    assert net.classifier.out_features == 7 and net.classifier.in_features == 32
    # Every searched edge holds the five official ops, BatchNorms without affine parameters.
    edge = net.cells[0].edges[0]
    assert len(edge.ops) == len(OPS)
    bns = [m for m in edge.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.affine for bn in bns)


def test_one_hot_weights_equal_single_path() -> None:
    net = _net()
    x = torch.randn(2, 3, 8, 8)
    arch = Arch.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    )
    one_hot = torch.nn.functional.one_hot(torch.tensor(arch.op_ids), len(OPS)).float()
    with torch.no_grad():
        mixed = net(x, weights=one_hot)
        single = net.forward_arch(x, arch)
        st = net(x, weights=one_hot, index=arch.op_ids)  # GDAS form, same value
    torch.testing.assert_close(mixed, single)
    torch.testing.assert_close(st, single)


def test_weighted_sum_is_linear_in_weights() -> None:
    net = _net()
    cell = net.cells[0]
    x = torch.randn(2, 4, 8, 8)
    w1 = torch.softmax(torch.randn(6, 5), -1)
    w2 = torch.softmax(torch.randn(6, 5), -1)
    edge = cell.edges[0]
    with torch.no_grad():
        combined = edge(x, 0.3 * w1[0] + 0.7 * w2[0])
        separate = 0.3 * edge(x, w1[0]) + 0.7 * edge(x, w2[0])
    torch.testing.assert_close(combined, separate, atol=1e-5, rtol=1e-5)
    # All mass on `none`: every edge outputs zeros, so the cell does too.
    none_only = torch.zeros(6, 5)
    none_only[:, OPS.index("none")] = 1.0
    with torch.no_grad():
        assert torch.count_nonzero(cell(x, none_only)) == 0


def test_gdas_straight_through_reaches_every_logit() -> None:
    net = _net().train()
    x = torch.randn(4, 3, 8, 8)
    alphas = torch.randn(6, 5, requires_grad=True)
    probs = torch.softmax(alphas, -1)
    index = probs.argmax(-1)
    hard = torch.nn.functional.one_hot(index, 5).float() - probs.detach() + probs
    net(x, weights=hard, index=index.tolist()).sum().backward()
    assert alphas.grad is not None and torch.all(alphas.grad.abs().sum(1) > 0)


def test_channel_shuffle_is_a_permutation() -> None:
    x = torch.arange(2 * 8 * 1 * 1, dtype=torch.float32).view(2, 8, 1, 1)
    y = channel_shuffle(x, 4)
    assert sorted(y[0].flatten().tolist()) == x[0].flatten().tolist()
    # Group g channel i lands at position i * groups + g (ShuffleNet order).
    assert y[0, :, 0, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("groups", [2, 4])
def test_shuffle_concat_is_the_official_cat_and_shuffle_in_the_input_layout(
    groups: int, channels_last: bool
) -> None:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    y = torch.randn(2, 3, 5, 4).contiguous(memory_format=fmt).requires_grad_()
    rest = torch.randn(2, 3 * (groups - 1), 5, 4).contiguous(memory_format=fmt).requires_grad_()
    out = shuffle_concat(y, rest, groups)
    ref = channel_shuffle(torch.cat([y, rest], dim=1), groups)
    assert torch.equal(out, ref)
    assert out.is_contiguous(memory_format=fmt)
    g = torch.randn_like(ref)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            torch.autograd.grad(out, [y, rest], g),
            torch.autograd.grad(ref, [y, rest], g),
            strict=True,
        )
    )


def test_partial_channels_bypass_and_shapes() -> None:
    torch.manual_seed(0)
    edge = MixedEdge(8, partial_k=4).eval()
    assert edge.op_channels == 2
    conv = edge.ops[OPS.index("nor_conv_3x3")]
    assert conv.op[1].in_channels == 2
    x = torch.randn(3, 8, 5, 5)
    with torch.no_grad():
        y = edge(x, index=OPS.index("none"))
    # With `none` the op part is zero and the 6 bypassed channels come through unchanged.
    unshuffled = y.view(3, 2, 4, 5, 5).transpose(1, 2).reshape(3, 8, 5, 5)
    assert torch.count_nonzero(unshuffled[:, :2]) == 0
    torch.testing.assert_close(unshuffled[:, 2:], x[:, 2:])
    net = NB201Supernet(8, 1, 10, partial_k=4)
    out = net(torch.randn(2, 3, 8, 8), weights=torch.full((6, 5), 0.2))
    assert out.shape == (2, 10)
    # Partial channels cut the candidate-op parameters by about K^2.
    full = sum(p.numel() for p in NB201Supernet(8, 1, 10).cells[0].parameters())
    part = sum(p.numel() for p in net.cells[0].parameters())
    assert part < full / 8


def test_edge_weights_scale_edges() -> None:
    net = _net()
    x = torch.randn(2, 3, 8, 8)
    w = torch.softmax(torch.randn(6, 5), -1)
    with torch.no_grad():
        plain = net(x, weights=w)
        ones = net(x, weights=w, edge_weights=torch.ones(6))
        scaled = net(x, weights=w, edge_weights=torch.full((6,), 0.5))
    torch.testing.assert_close(plain, ones)
    assert not torch.allclose(plain, scaled)


def test_bad_inputs() -> None:
    net = _net()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\(6, 5\)"):
        net(x, weights=torch.ones(5, 5))
    with pytest.raises(ArchError, match="expected 6 ints"):
        net(x, index=[0, 1, 2])
    with pytest.raises(ValueError, match="needs mixing weights"):
        net(x)
    with pytest.raises(ValueError, match="partial_k=3"):
        NB201Supernet(8, 1, 10, partial_k=3)


def test_edge_scale_with_partial_channels_equals_scaled_output() -> None:
    torch.manual_seed(0)
    edge = MixedEdge(8, partial_k=4).eval()
    x = torch.randn(2, 8, 5, 5)
    w = torch.softmax(torch.randn(5), -1)
    s = torch.tensor(0.37)
    with torch.no_grad():
        torch.testing.assert_close(edge(x, w, scale=s), edge(x, w) * s)


def test_pool_bn_follows_pooling_as_pc_darts() -> None:
    # PC-DARTS model_search.py:34-35: BatchNorm2d(C // k, affine=False) after each pooling op.
    edge = MixedEdge(8, partial_k=4, pool_bn=True).train()
    pool = edge.ops[OPS.index("avg_pool_3x3")]
    assert isinstance(pool, torch.nn.Sequential) and isinstance(pool[1], torch.nn.BatchNorm2d)
    assert pool[1].num_features == 2 and not pool[1].affine
    x = torch.randn(4, 2, 5, 5)
    y = pool(x)
    # Normalised per channel over the batch.
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    assert not isinstance(MixedEdge(8).ops[OPS.index("avg_pool_3x3")], torch.nn.Sequential)
    # The PC-DARTS method builds its supernet with it.
    from nasforge.search import ONESHOT

    method = ONESHOT.create("pc-darts", C=8, N=1, partial_k=4)
    method.setup(3, seed=0)
    cell = next(c for c in method.supernet.cells if isinstance(c, SearchCell))
    assert isinstance(cell.edges[0].ops[OPS.index("avg_pool_3x3")], torch.nn.Sequential)


def test_xautodl_state_dict_names_round_trip() -> None:
    net = _net()
    alphas = torch.randn(6, 5)
    theirs = to_xautodl_state_dict(net.state_dict(), alphas)
    assert "cells.0.edges.3<-1.2.op.1.weight" in theirs  # edge 4 = 3<-1, op 2 = nor_conv_1x1
    assert torch.equal(theirs["arch_parameters"], alphas)
    back, a = from_xautodl_state_dict(theirs)
    assert a is alphas and list(back) == list(net.state_dict())


def test_path_parameters_are_the_sampled_ops() -> None:
    net = _net()
    index = [
        OPS.index(o)
        for o in (
            "nor_conv_3x3",
            "none",
            "skip_connect",
            "nor_conv_1x1",
            "avg_pool_3x3",
            "nor_conv_3x3",
        )
    ]
    chosen = {id(p) for p in net.path_parameters(index)}
    cell = next(c for c in net.cells if isinstance(c, SearchCell))
    assert all(id(p) in chosen for p in cell.edges[0].ops[index[0]].parameters())
    assert not any(
        id(p) in chosen for p in cell.edges[0].ops[OPS.index("nor_conv_1x1")].parameters()
    )
    assert all(id(p) in chosen for p in net.classifier.parameters())
