"""NAS-Bench-201 primitives.

Faithful to the official reference code (``xautodl/models/cell_operations.py``): the same
layer order, padding, ``bias=not affine`` for convolutions, ``count_include_pad=False`` for
the 3x3 average pool, and the ResNet basic block with an avg-pool + 1x1 conv shortcut for
the reduction cells. The structure (module names included) is the one the official
checkpoints use, so their ``state_dict`` keys line up.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Module):
    """ReLU -> Conv -> BN (the ``nor_conv_*`` ops)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_out,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                bias=not affine,
            ),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Pooling(nn.Module):
    """3x3 average pooling (``count_include_pad=False``), with a 1x1 ReLUConvBN when C changes."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.preprocess = (
            None
            if c_in == c_out
            else ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats)
        )
        self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: an all-zero output of the right shape."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            if self.stride == 1:
                return x.mul(0.0)
            return x[:, :, :: self.stride, :: self.stride].mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        shape[2] = (shape[2] + self.stride - 1) // self.stride
        shape[3] = (shape[3] + self.stride - 1) // self.stride
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """``skip_connect`` that changes the shape. Stride 2: two offset 1x1 convs concatenated
    (supernets); stride 1 (a width change, NATS size-space cells): one 1x1 conv, no ReLU,
    as the official ``FactorizedReduce`` (xautodl ``cell_operations.py``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"FactorizedReduce needs stride 1 or 2, got {stride}")
        self.stride = stride
        if stride == 1:
            self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=not affine)
            self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)
            return
        self.relu = nn.ReLU(inplace=False)
        c_half = c_out // 2
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(c_in, c_half, 1, stride=stride, padding=0, bias=not affine),
                nn.Conv2d(c_in, c_out - c_half, 1, stride=stride, padding=0, bias=not affine),
            ]
        )
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return self.bn(self.conv(x))
        x = self.relu(x)
        y = self.pad(x)
        out = torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


class ResNetBasicBlock(nn.Module):
    """The residual block joining two NB201 stages (stride 2, C -> 2C)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResNetBasicBlock stride must be 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, 1, affine, track_running_stats)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats)
        else:
            self.downsample = None
        self.out_dim = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_b(self.conv_a(x))
        residual = x if self.downsample is None else self.downsample(x)
        return residual + out


OpFactory = Callable[[int, int, int, bool, bool], nn.Module]

#: op name -> factory(c_in, c_out, stride, affine, track_running_stats)
OP_FACTORIES: dict[str, OpFactory] = {
    "none": lambda ci, co, s, a, t: Zero(ci, co, s),
    "avg_pool_3x3": lambda ci, co, s, a, t: Pooling(ci, co, s, a, t),
    "nor_conv_1x1": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 1, s, 0, 1, a, t),
    "nor_conv_3x3": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 3, s, 1, 1, a, t),
    "skip_connect": lambda ci, co, s, a, t: (
        Identity() if s == 1 and ci == co else FactorizedReduce(ci, co, s, a, t)
    ),
}


def build_op(
    name: str,
    c_in: int,
    c_out: int,
    stride: int = 1,
    affine: bool = True,
    track_running_stats: bool = True,
) -> nn.Module:
    """Build the NB201 primitive ``name``."""
    try:
        factory = OP_FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; expected one of {sorted(OP_FACTORIES)}") from None
    return factory(c_in, c_out, stride, affine, track_running_stats)
