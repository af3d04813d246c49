"""The DARTS primitives (quark0/darts cnn/operations.py, identical in PC-DARTS).

Layer order, padding, dilation and ``bias=False`` follow the official definitions, so the
parameter counts match theirs exactly. ``ReLUConvBN``, ``Identity``, ``Zero`` and
``FactorizedReduce`` are the NB201 modules of :mod:`nasforge.nn.ops`: for the even feature
sizes and channel counts DARTS networks use they compute the same function with the same
parameters as the DARTS versions (NB201's ``FactorizedReduce`` pads one row/column that
a 1x1 stride-2 conv over an even size never reads).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasforge.nn.ops import FactorizedReduce, Identity, ReLUConvBN, Zero


class DilConv(nn.Module):
    """ReLU -> depthwise k x k (dilated) conv -> pointwise 1x1 conv -> BN (operations.py:35-47)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_in,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked :class:`DilConv` (dilation 1); only the first strides (operations.py:50-66).

    This "doubled" separable conv is DARTS's ``sep_conv_*``; the first half keeps
    ``c_in`` channels, the second maps to ``c_out``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Conv7x1x1x7(nn.Module):
    """ReLU -> 1x7 conv -> 7x1 conv -> BN, AmoebaNet's ``conv_7x1_1x7`` (operations.py:14-19)."""

    def __init__(self, c: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


DartsOpFactory = Callable[[int, int, bool], nn.Module]

#: op name -> factory(C, stride, affine), as the official ``OPS`` table (operations.py:4-20).
DARTS_OPS: dict[str, DartsOpFactory] = {
    "none": lambda c, s, a: Zero(c, c, s),
    "avg_pool_3x3": lambda c, s, a: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, s, a: nn.MaxPool2d(3, stride=s, padding=1),
    "skip_connect": lambda c, s, a: Identity() if s == 1 else FactorizedReduce(c, c, s, a),
    "sep_conv_3x3": lambda c, s, a: SepConv(c, c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, c, 5, s, 2, a),
    "sep_conv_7x7": lambda c, s, a: SepConv(c, c, 7, s, 3, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, c, 5, s, 4, 2, a),
    "conv_7x1_1x7": lambda c, s, a: Conv7x1x1x7(c, s, a),
}


def build_darts_op(name: str, c: int, stride: int, affine: bool = True) -> nn.Module:
    """The DARTS primitive ``name`` on ``c`` channels with ``stride``."""
    try:
        factory = DARTS_OPS[name]
    except KeyError:
        raise ValueError(
            f"unknown DARTS op {name!r}; expected one of {sorted(DARTS_OPS)}"
        ) from None
    return factory(c, stride, affine)


__all__ = [
    "DARTS_OPS",
    "Conv7x1x1x7",
    "DilConv",
    "FactorizedReduce",
    "Identity",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "build_darts_op",
]
