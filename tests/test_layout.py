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


def test_darts_supernet_keeps_strided_pointwise_convs_in_nchw():
    torch.manual_seed(0)
    net = DartsSupernet(8, 3, 10).train()
    plain = copy.deepcopy(net)
    layout = prefer_channels_last(net, "cpu")
    assert layout == ("safe_channels_last" if X86 else "contiguous")
    x = torch.randn(2, 3, 16, 16)
    w = torch.softmax(torch.randn(NUM_ARCH_ROWS, NUM_DARTS_OPS), -1)
    if X86:
        names = narrow_strided_pointwise(net)
        assert names  # FactorizedReduce's 1x1 stride-2 convs
        for name in names:
            assert net.get_submodule(name).weight.is_contiguous()
        conv3 = next(
            m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
        )
        assert conv3.weight.is_contiguous(memory_format=torch.channels_last)
        # The pre-hook hands the strided 1x1 conv a contiguous (NCHW) input.
        seen = []
        conv = net.get_submodule(names[0])
        conv.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
    _assert_same(_grads(net, x, weights=w), _grads(plain, x, weights=w))
    if X86:
        assert seen and all(seen)


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
    """A PC-DARTS search step in the default layout with a 4-channel strided 1x1 conv (the
    reduction edges' FactorizedReduce at C=8, K=4): the oneDNN#6035 case. Run in a
    subprocess with ``ONEDNN_MAX_CPU_ISA=AVX2`` and two threads, where the channels_last
    kernel corrupts the heap or hangs; the default keeps that conv in NCHW."""
    code = """
        import torch
        from nasforge.search import ONESHOT

        torch.set_num_threads(2)
        m = ONESHOT.create("pc-darts", space="darts", C=8, N=3)
        m.setup(10, seed=0)
        narrow = [c for c in m.supernet.modules()
                  if isinstance(c, torch.nn.Conv2d) and c.stride == (2, 2)
                  and c.kernel_size == (1, 1) and c.in_channels < 8]
        assert narrow, "the test needs a narrow strided 1x1 conv"
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
    assert f"layout {'safe_channels_last' if X86 else 'contiguous'}" in proc.stdout
