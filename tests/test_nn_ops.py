"""The shared op building blocks keep each space's official settings: conv biases, BN affine /
running statistics / momentum / eps, parameter counts, and the order random numbers are drawn
in at initialisation (so a seed initialises as the official code does)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.nn.darts_supernet import DartsSupernet
from nasforge.nn.ops import DARTS_OPS, OP_FACTORIES, build_darts_op, build_op

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Parameters of each official DARTS op at C=8 (quark0/darts cnn/operations.py ``OPS[name](8,
# stride, affine)``, measured by running it; the same at stride 1 and 2 where both exist).
OFFICIAL_DARTS_PARAMS = {
    True: {
        "none": 0,
        "avg_pool_3x3": 0,
        "max_pool_3x3": 0,
        "skip_connect": 80,  # stride 2: FactorizedReduce
        "sep_conv_3x3": 304,
        "sep_conv_5x5": 560,
        "sep_conv_7x7": 944,
        "dil_conv_3x3": 152,
        "dil_conv_5x5": 280,
        "conv_7x1_1x7": 912,
    },
    False: {
        "none": 0,
        "avg_pool_3x3": 0,
        "max_pool_3x3": 0,
        "skip_connect": 64,
        "sep_conv_3x3": 272,
        "sep_conv_5x5": 528,
        "sep_conv_7x7": 912,
        "dil_conv_3x3": 136,
        "dil_conv_5x5": 264,
        "conv_7x1_1x7": 896,
    },
}
# The official DARTS search network (quark0/darts cnn/model_search.py ``Network(8, 10, 5,
# criterion)``) right after ``torch.manual_seed(0)``, measured by running it (torch 2.13 CPU):
# the sum of its 889 weight tensors (the architecture logits left out), in float64.
OFFICIAL_DARTS_SEARCH_INIT_SUM = 108.27845129568578


def _bns(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name", sorted(DARTS_OPS))
@pytest.mark.parametrize("affine", [True, False])
def test_darts_ops_keep_the_official_settings(name: str, affine: bool) -> None:
    for stride in (1, 2):
        op = build_darts_op(name, 8, stride, affine)
        # operations.py: every conv bias-free (also where NB201's rule would add one, i.e. the
        # affine=False search ops), every BN BatchNorm2d(C, affine=affine) with defaults.
        assert all(conv.bias is None for conv in _convs(op)), (name, stride)
        for bn in _bns(op):
            assert bn.affine == affine and bn.track_running_stats
            assert bn.momentum == 0.1 and bn.eps == 1e-5
        if stride == 2 or name != "skip_connect":  # stride 1: the identity
            assert sum(p.numel() for p in op.parameters()) == OFFICIAL_DARTS_PARAMS[affine][name]
        x = torch.randn(2, 8, 6, 6)
        assert op(x).shape == (2, 8, 6 // stride, 6 // stride)


def test_darts_search_network_initialises_as_the_official_one() -> None:
    # Same modules created in the same order with the same shapes: the seed draws the same
    # weights. A bias created and dropped again (affine=False convs under NB201's rule) would
    # shift every later draw.
    torch.manual_seed(0)
    net = DartsSupernet(8, 5, 10)
    params = list(net.parameters())
    assert len(params) == 889
    total = sum(p.detach().double().sum() for p in params)
    assert float(total) == pytest.approx(OFFICIAL_DARTS_SEARCH_INIT_SUM, rel=1e-12)


SHAPES = [(8, 8, 1), (8, 8, 2), (8, 16, 1), (8, 16, 2)]


@pytest.mark.parametrize("name", sorted(OP_FACTORIES))
@pytest.mark.parametrize(("affine", "track"), [(True, True), (False, True), (False, False)])
def test_nb201_ops_are_the_xautodl_ops(name: str, affine: bool, track: bool) -> None:
    pytest.importorskip("xautodl", reason="xautodl (official reference code) not installed")
    from xautodl.models.cell_operations import OPS

    for c_in, c_out, stride in SHAPES:
        torch.manual_seed(0)
        ours = build_op(name, c_in, c_out, stride, affine, track)
        torch.manual_seed(0)
        theirs = OPS[name](c_in, c_out, stride, affine, track)
        # Same names, shapes and initial values (the same random draws in the same order):
        # ``bias=not affine`` on every conv before a BN, BN settings from the caller.
        a, b = ours.state_dict(), theirs.state_dict()
        assert list(a) == list(b), (name, c_in, c_out, stride)
        assert all(torch.equal(a[k], b[k]) for k in a), (name, c_in, c_out, stride)
        for ob, tb in zip(_bns(ours), _bns(theirs), strict=True):
            assert (ob.affine, ob.track_running_stats) == (tb.affine, tb.track_running_stats)
            assert (ob.momentum, ob.eps) == (tb.momentum, tb.eps)
        if name == "none" and c_in != c_out:
            continue  # xautodl's Zero keeps the input's size here; ours strides it
        x = torch.randn(2, c_in, 8, 8)
        torch.testing.assert_close(ours.train()(x), theirs.train()(x), rtol=0, atol=0)
