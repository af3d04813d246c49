"""The fixed NB201 network: structure, shapes, and the official module layout."""

from __future__ import annotations

import pytest
import torch

from nasforge.nn import NB201Network, Zero, build_op
from nasforge.spaces.nb201 import Arch


@pytest.mark.parametrize(("res", "classes"), [(32, 10), (16, 120), (8, 10)])
def test_forward_shapes(res: int, classes: int) -> None:
    net = NB201Network(Arch.from_index(123), C=4, N=1, num_classes=classes)
    out = net(torch.randn(2, 3, res, res))
    assert out.shape == (2, classes)


def test_layout_follows_the_official_skeleton() -> None:
    net = NB201Network(Arch.from_index(0), C=16, N=5, num_classes=10)
    assert len(net.cells) == 17  # 5 + reduction + 5 + reduction + 5
    keys = set(net.state_dict())
    # The official TinyNetwork / InferCell parameter names, so official weights line up.
    for key in [
        "stem.0.weight",
        "stem.1.running_mean",
        "cells.0.layers.1.op.1.weight",
        "cells.5.conv_a.op.1.weight",
        "cells.5.downsample.1.weight",
        "lastact.0.weight",
        "classifier.weight",
    ]:
        assert key in keys, key
    assert net.classifier.in_features == 64


def test_final_bn_relu_is_present() -> None:
    # A popular re-implementation dropped this and lost 5-6 accuracy points.
    net = NB201Network(Arch.from_index(0), C=8, N=1)
    assert isinstance(net.lastact[0], torch.nn.BatchNorm2d)
    assert isinstance(net.lastact[1], torch.nn.ReLU)


def test_empty_cell_outputs_zero_features() -> None:
    net = NB201Network(Arch(("none",) * 6), C=4, N=1).eval()
    cell_out = net.cells[0](torch.randn(2, 4, 8, 8))
    assert torch.count_nonzero(cell_out) == 0


def test_zero_op_with_stride_and_channel_change() -> None:
    x = torch.randn(2, 4, 7, 7)
    assert Zero(4, 4, 2)(x).shape == (2, 4, 4, 4)
    assert Zero(4, 8, 2)(x).shape == (2, 8, 4, 4)
    assert build_op("skip_connect", 4, 8, 2)(x).shape == (2, 8, 4, 4)


def test_unknown_op_is_rejected() -> None:
    with pytest.raises(ValueError, match="conv_9x9"):
        build_op("conv_9x9", 4, 4)


def test_network_accepts_strings_and_indices() -> None:
    s = Arch.from_index(42).to_string()
    assert NB201Network(s, C=4, N=1).arch == NB201Network(42, C=4, N=1).arch
