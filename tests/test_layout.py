"""The speed levers of issue #32 keep the values: a one-shot supernet in the layout it
trains in (channels_last, or channels_last but for the strided 1x1 convolutions of
uxlfoundation/oneDNN#6035) and the shared ReLU of an edge / a cell compute the same
outputs and gradients as the plain NCHW, one-ReLU-per-op code. (Their speed is measured by
benchmarks/oneshot_levers.py, not here.)"""

from __future__ import annotations

import copy
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from nasforge.nn.darts_supernet import NUM_ARCH_ROWS, NUM_DARTS_OPS, DartsSupernet
from nasforge.nn.nb201 import InferCell, NB201Network
from nasforge.nn.ops import SubsampledConv2d, conv2d
from nasforge.nn.supernet import MixedEdge, NB201Supernet
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS, Arch
from nasforge.train.device import narrow_strided_pointwise, prefer_channels_last

pytestmark = pytest.mark.usefixtures("one_torch_thread")
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _grads(net: torch.nn.Module, x: torch.Tensor, **kw) -> tuple[torch.Tensor, list]:
    net.zero_grad(set_to_none=True)
    out = net(x, **kw)
    out.square().sum().backward()
    return out.detach(), [p.grad for p in net.parameters()]


def _assert_same(a, b) -> None:
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-4)
    for ga, gb in zip(a[1], b[1], strict=True):
        if ga is None or gb is None:
            assert ga is None and gb is None
        else:
            torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def test_darts_supernet_runs_channels_last_with_stride1_pointwise_kernels():
    """FactorizedReduce's 1x1 stride-2 convs run as stride-1 convs of the subsampled input,
    so the DARTS supernet has no strided 1x1 kernel (oneDNN#6035) and trains in
    channels_last everywhere on x86-64, computing what the NCHW network computes."""
    torch.manual_seed(0)
    net = DartsSupernet(8, 3, 10).train()
    plain = copy.deepcopy(net)
    sub = [m for m in net.modules() if isinstance(m, SubsampledConv2d)]
    assert any(m.kernel_size == (1, 1) for m in sub)  # FactorizedReduce
    assert narrow_strided_pointwise(net) == []
    assert prefer_channels_last(net, "cpu") == ("channels_last" if X86 else "contiguous")
    x = torch.randn(2, 3, 16, 16)
    w = torch.softmax(torch.randn(NUM_ARCH_ROWS, NUM_DARTS_OPS), -1)
    _assert_same(_grads(net, x, weights=w), _grads(plain, x, weights=w))


def test_a_strided_pointwise_conv_keeps_nchw_in_the_safe_layout():
    """A model with a narrow 1x1 stride-2 conv gets channels_last everywhere else; that
    conv keeps NCHW weights and is handed an NCHW input by its pre-hook."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 1, stride=2)
    )
    plain = copy.deepcopy(net)
    assert narrow_strided_pointwise(net) == ["2"]
    assert prefer_channels_last(net, "cpu") == ("safe_channels_last" if X86 else "contiguous")
    x = torch.randn(2, 3, 8, 8)
    seen = []
    net[2].register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
    _assert_same(_grads(net, x), _grads(plain, x))
    if X86:
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert net[2].weight.stride() == (4, 1, 1, 1)
        assert seen == [True]


@pytest.mark.parametrize(
    ("c", "k", "stride", "padding", "dilation"),
    [(4, 1, 2, 0, 1), (6, 3, 2, 2, 2), (8, 5, 2, 4, 2), (5, 3, 3, 3, 3)],
)
@pytest.mark.parametrize("size", [8, 9])
def test_subsampled_conv_equals_the_strided_conv(c, k, stride, padding, dilation, size):
    torch.manual_seed(0)
    groups = 1 if k == 1 else c
    fast = conv2d(c, c, k, stride, padding, dilation, groups=groups, bias=False)
    assert isinstance(fast, SubsampledConv2d)
    ref = torch.nn.Conv2d(c, c, k, stride, padding, dilation, groups=groups, bias=False)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, c, size, size, requires_grad=True)
    y, y_ref = fast(x), ref(x)
    assert torch.equal(y, y_ref)
    g = torch.randn_like(y)
    for a, b in zip(
        torch.autograd.grad(y, [x, fast.weight], g),
        torch.autograd.grad(y_ref, [x, ref.weight], g),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_off_grid_convs_stay_plain():
    # A stride-2 3x3 (sep_conv) and stride-1 convs read every position: nothing to skip.
    assert type(conv2d(4, 4, 3, 2, 1, groups=4)) is torch.nn.Conv2d
    assert type(conv2d(4, 4, 3, 1, 2, 2, groups=4)) is torch.nn.Conv2d
    assert type(conv2d(4, 8, 1, 2, 1)) is torch.nn.Conv2d  # padded 1x1: the border is read
    # With a bias oneDNN's stride-1 kernel rounds differently: kept strided (xautodl parity).
    assert type(conv2d(4, 8, 1, 2, 0, bias=True)) is torch.nn.Conv2d


def test_nb201_supernet_channels_last_and_shared_relu_keep_the_step():
    torch.manual_seed(0)
    net = NB201Supernet(4, 1, 10).train()
    plain = copy.deepcopy(net)
    for m in plain.modules():
        if isinstance(m, MixedEdge):
            assert sum(m.relu_led) == 2  # nor_conv_1x1 and nor_conv_3x3 share the ReLU
            m.relu_led = (False,) * len(m.relu_led)
    assert prefer_channels_last(net, "cpu") == ("channels_last" if X86 else "contiguous")
    x = torch.randn(3, 3, 8, 8)
    w = torch.softmax(torch.randn(NUM_EDGES, NUM_OPS), -1)
    _assert_same(_grads(net, x, weights=w), _grads(plain, x, weights=w))


def test_a_cell_shares_the_relu_of_a_node_read_by_two_convs():
    arch = Arch.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    )
    torch.manual_seed(0)
    net = NB201Network(arch, C=4, N=1, num_classes=5).train()
    plain = copy.deepcopy(net)
    cell = net.cells[0]
    assert isinstance(cell, InferCell)
    # Node 0 feeds two convolutions: they share one ReLU; node 1 and 2 feed one each.
    assert cell.shared_relu == (True, True, False, False, False, False)
    for m in plain.modules():
        if isinstance(m, InferCell):
            m.shared_relu = (False,) * len(m.shared_relu)
    x = torch.randn(3, 3, 8, 8)
    _assert_same(_grads(net, x), _grads(plain, x))


@pytest.mark.slow
def test_darts_space_search_default_layout_runs_on_avx2_kernels():
    """A PC-DARTS search step in the default layout with a 4-channel 1x1 conv of stride 2
    (the reduction edges' FactorizedReduce at C=8, K=4): the oneDNN#6035 case. Run in a
    subprocess with ``ONEDNN_MAX_CPU_ISA=AVX2`` and two threads, where the strided
    channels_last kernel corrupts the heap or hangs; the default runs that conv as a
    stride-1 kernel on the subsampled input (SubsampledConv2d), in channels_last."""
    code = """
        import torch
        from nasforge.search import ONESHOT

        torch.set_num_threads(2)
        m = ONESHOT.create("pc-darts", space="darts", C=8, N=3)
        m.setup(10, seed=0)
        from nasforge.nn.ops import SubsampledConv2d
        narrow = [c for c in m.supernet.modules() if isinstance(c, SubsampledConv2d)
                  and c.kernel_size == (1, 1) and c.in_channels < 8]
        assert narrow, "the test needs a narrow 1x1 conv of stride 2 (FactorizedReduce)"
        m.begin_epoch(20)
        g = torch.Generator().manual_seed(0)
        batch = lambda: (torch.randn(8, 3, 16, 16, generator=g),
                         torch.randint(0, 10, (8,), generator=g))
        m.train_step(batch(), batch(), 20)
        print("layout", m.layout)
    """
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"layout {'channels_last' if X86 else 'contiguous'}" in proc.stdout


def _per_edge_cell(cell, s0, s1, weights, edge_weights):
    """A DARTS search cell computed edge by edge: every edge shuffles its own output and the
    node sums them (the official PC-DARTS order, model_search.py:46-53, 80-88)."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    e = 0
    for _ in range(cell.steps):
        total = None
        for h in list(states):
            y = cell.edges[e](
                h, weights[e], None, None if edge_weights is None else edge_weights[e]
            )
            total = y if total is None else total + y
            e += 1
        states.append(total)
    return torch.cat(states[-cell.multiplier :], dim=1)


@pytest.mark.parametrize("reduction", [False, True])
@pytest.mark.parametrize("partial_k", [1, 4])
def test_node_level_shuffle_and_shared_inputs_equal_the_per_edge_sum(reduction, partial_k):
    """Summing a node's edge parts and shuffling once, with one ReLU and one bypass pool per
    source node, computes the same values as shuffling every edge's output and summing."""
    from nasforge.nn.darts_supernet import DartsSearchCell

    torch.manual_seed(0)
    cell = DartsSearchCell(4, 4, 8, 8, 8, reduction, False, partial_k=partial_k).train()
    s0, s1 = torch.relu(torch.randn(2, 8, 8, 8)), torch.relu(torch.randn(2, 8, 8, 8))
    w = torch.softmax(torch.randn(14, 8), -1)
    beta = torch.softmax(torch.randn(14), -1) * 3
    for ew in (None, beta):
        ref_cell = copy.deepcopy(cell)
        out = cell(s0, s1, w, None, ew)
        ref = _per_edge_cell(ref_cell, s0, s1, w, ew)
        assert torch.equal(out, ref)
        g = torch.randn_like(out)
        grads = torch.autograd.grad(out, list(cell.parameters()), g, allow_unused=True)
        ref_grads = torch.autograd.grad(ref, list(ref_cell.parameters()), g, allow_unused=True)
        for a, b in zip(grads, ref_grads, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
