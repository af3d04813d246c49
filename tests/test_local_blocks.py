"""Window attention, depth-wise and dynamic depth-wise blocks; the local-stages space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasforge.cost import ARCH_COSTS, count_flops, module_cost, space_cost
from nasforge.errors import ArchError, NasforgeError
from nasforge.nn import NETWORKS, build_network, network_options
from nasforge.nn.local_blocks import (
    LOCAL_BLOCKS,
    DWBlock,
    DynamicDWConv,
    LocalNet,
    SwinBlock,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from nasforge.spaces import get_space
from nasforge.spaces.local_stages import BLOCKS


def test_window_partition_and_reverse_round_trip():
    x = torch.randn(2, 8, 12, 5)
    w = window_partition(x, 4)
    assert w.shape == (2 * 2 * 3, 4, 4, 5)
    # row-major windows: the second window of image 0 is columns 4..7 of rows 0..3
    torch.testing.assert_close(w[1], x[0, :4, 4:8])
    torch.testing.assert_close(w[3], x[0, 4:8, :4])
    torch.testing.assert_close(window_reverse(w, 4, 8, 12), x)
    with pytest.raises(ArchError, match="7x12"):
        window_partition(torch.zeros(1, 7, 12, 1), 4)


def test_relative_position_index_by_hand():
    # tokens of a 2x2 window: (0,0) (0,1) (1,0) (1,1); index (dy + 1) * 3 + (dx + 1)
    expected = [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    assert relative_position_index(2, 2).tolist() == expected
    idx = relative_position_index(3, 4)
    assert idx.shape == (12, 12) and int(idx.max()) == 5 * 7 - 1
    assert int(idx[0, 0]) == 2 * 7 + 3  # (dy, dx) = (0, 0) is the table's centre


def test_shifted_window_mask_separates_regions():
    assert shifted_window_mask(4, 4, 2, 0) is None
    mask = shifted_window_mask(4, 4, 2, 1)
    assert mask.shape == (4, 4, 4)
    assert torch.all(mask[0] == 0)  # the top-left window holds one region
    # the bottom-right window holds 4 regions of one token each: only the diagonal is open
    torch.testing.assert_close(mask[3], torch.full((4, 4), -100.0).fill_diagonal_(0.0))
    assert torch.equal(mask, mask.transpose(1, 2))


def test_shifted_window_attention_never_mixes_wrapped_regions():
    torch.manual_seed(0)
    block = SwinBlock(8, 8, 4, 2, 2, 16).eval()
    x = torch.randn(1, 8, 8, 8)
    base = block(x)
    # a token from the far (wrapped) side must not influence the top-left corner token,
    # which shares its shifted window only with tokens of other regions
    y = x.clone()
    y[0, 7, 7] += 10.0
    out = block(y)
    torch.testing.assert_close(out[0, 0, 0], base[0, 0, 0])
    assert not torch.allclose(out[0, 7, 7], base[0, 7, 7])


def test_one_window_covers_a_small_map():
    block = SwinBlock(8, 4, 4, 2, 2, 16)
    assert (block.window, block.shift, block.attn_mask) == (4, 0, None)


def test_dynamic_kernel_shape_and_per_instance_behaviour():
    torch.manual_seed(0)
    conv = DynamicDWConv(8, 3).eval()
    x = torch.randn(3, 8, 6, 6)
    kernels = conv.kernels(x)
    assert kernels.shape == (3, 8, 3, 3)
    assert not torch.allclose(kernels[0], kernels[1])  # one kernel per image
    out = conv(x)
    for i in range(3):
        # each image convolved with its own kernel, as a static depth-wise conv would
        ref = F.conv2d(x[i : i + 1], kernels[i].unsqueeze(1), conv.bias, padding=1, groups=8)
        torch.testing.assert_close(out[i : i + 1], ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(conv(x[i : i + 1]), out[i : i + 1], rtol=1e-5, atol=1e-5)


def test_even_kernels_keep_the_size():
    for k in (2, 4):
        assert DWBlock(8, k, 16, dynamic=True)(torch.randn(2, 5, 5, 8)).shape == (2, 5, 5, 8)
        assert DWBlock(8, k, 16, dynamic=False)(torch.randn(2, 5, 5, 8)).shape == (2, 5, 5, 8)


def test_cost_of_each_block():
    c, hw, h = 16, 8 * 8, 40
    mlp = hw * (2 * c * h + h + c)
    # Swin: qkv (+bias), two attention products (2 * N * C per token), proj (+bias), MLP
    swin = SwinBlock(c, 8, 4, 2, 1, h)
    assert (
        count_flops(_nhwc(swin), (1, c, 8, 8)) * 1e6
        == hw * (3 * c * c + 3 * c + 2 * 16 * c + c * c + c) + mlp
    )
    # DWNet: two 1x1 convs, a depth-wise 4x4 with bias, MLP
    dw = DWBlock(c, 4, h, dynamic=False)
    convs = hw * (2 * c * c + c * 16 + c)
    assert count_flops(_nhwc(dw), (1, c, 8, 8)) * 1e6 == convs + mlp
    # dynamic: + the kernel generator on the pooled 1x1 map (no bias, then with bias)
    dyn = DWBlock(c, 4, h, dynamic=True)
    gen = c * (c // 4) + (c // 4) * c * 16 + c * 16
    assert count_flops(_nhwc(dyn), (1, c, 8, 8)) * 1e6 == convs + gen + mlp


def _nhwc(block: torch.nn.Module) -> torch.nn.Module:
    """The block fed from an NCHW input (count_flops builds NCHW zeros)."""

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = block

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(x.permute(0, 2, 3, 1))

    return Wrap()


def test_matched_parameters():
    for kind in BLOCKS:
        net = LocalNet((kind,) * 3, C=16, match_params=True)
        attn = LocalNet(("window_attn",) * 3, C=16)
        for stage, ref in zip(net.stages, attn.stages, strict=True):
            diff = sum(p.numel() for p in stage.parameters()) - sum(
                p.numel() for p in ref.parameters()
            )
            assert abs(diff) <= 2 * (2 * stage[0].mlp.fc1.in_features + 1)


def test_space_network_and_cost_are_registered_together():
    space = get_space("local-stages")
    assert set(LOCAL_BLOCKS.names()) == set(BLOCKS)
    assert space.size() == 27 and "local-stages" in NETWORKS and "local-stages" in ARCH_COSTS
    assert {"C", "depth", "window", "match_params"} <= set(network_options("local-stages"))
    arch = space.sample(np.random.default_rng(3))
    text = space.to_string(arch)
    assert space.from_string(text) == arch
    net = build_network("local-stages", arch, num_classes=10)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cost = space_cost("local-stages", text, "cifar10")
    assert cost == module_cost(net, (1, 3, 32, 32))
    with pytest.raises(ArchError, match="stage1=conv"):
        space.from_string("stage0=dwconv,stage1=conv,stage2=dwconv")
    with pytest.raises(NasforgeError, match="ImageNet16-120"):
        space_cost("local-stages", text, "ImageNet16-120")


def test_gradients_flow_through_every_block_kind():
    torch.manual_seed(0)
    net = LocalNet(BLOCKS, C=16, depth=2, image_size=16)
    F.cross_entropy(net(torch.randn(2, 3, 16, 16)), torch.tensor([1, 2])).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
