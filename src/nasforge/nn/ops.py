"""The cell primitives of the NAS-Bench-201 and DARTS spaces: one set of building blocks and
each space's op table.

Both official op files build the same few blocks -- ReLU -> conv(s) -> BN, a 3x3 pooling, the
factorized stride-2 ``skip_connect``, zero and identity -- with the same layer order, padding
and ``count_include_pad=False``. They differ only in settings, which are explicit parameters
of the blocks here and are fixed by each space's table:

* NB201 (:data:`OP_FACTORIES`, xautodl ``models/cell_operations.py``): a convolution followed
  by a BN has a bias exactly when the BN has no affine parameters (``bias=not affine``,
  ``cell_operations.py:137,173,334,340``), and every BN takes ``affine`` and
  ``track_running_stats`` from the caller (the search models pass ``affine=False``). Ops map
  ``C_in -> C_out`` (``factory(C_in, C_out, stride, affine, track_running_stats)``).
* DARTS (:data:`DARTS_OPS`, quark0/darts ``cnn/operations.py``, identical in PC-DARTS):
  convolutions never have a bias (``operations.py:16-17,28,41-42,56-61,96-97``), every BN
  tracks running statistics, and ops keep ``C`` channels (``factory(C, stride, affine)``).

Neither file sets a BN momentum or eps: both use PyTorch's defaults (0.1, 1e-5), as here.

The blocks default to xautodl's rule (``bias=None``: ``not affine``); the DARTS table and the
DARTS networks pass ``bias=False``. With ``affine=True`` (every evaluation network) the two
rules agree. Module names are the ones our checkpoints use (``op.<i>`` for the conv ops, as
both official codes; ``preprocess`` / ``op`` for pooling and ``convs.<i>`` / ``bn`` for
``FactorizedReduce``, as xautodl), so ``state_dict`` keys line up with the official NB201
checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import nn

#: What builds a convolution inside an op: ``nn.Conv2d`` (the default, the official ops) or
#: anything called like it, e.g. :class:`nasforge.nn.atoms.AtomConvFactory` (decomposed
#: kernels with shared coefficients).
ConvFactory = Callable[..., nn.Module]


def _conv_bias(bias: bool | None, affine: bool) -> bool:
    """The bias of a convolution feeding a BN: ``None`` is xautodl's rule (``not affine``)."""
    return not affine if bias is None else bias


def _check_stride(stride: int, owner: str) -> None:
    if stride not in (1, 2):
        raise ValueError(f"{owner} needs stride 1 or 2, got {stride}")


class SubsampledConv2d(nn.Conv2d):
    """A convolution of stride ``s`` computed as a stride-1 convolution of the input
    subsampled on the stride grid, ``x[:, :, ::s, ::s]``: :func:`conv2d` builds one where
    that is the same function, i.e. every tap of the strided kernel lands on that grid -- a
    1x1 kernel without padding (FactorizedReduce), or dilation ``d = s`` with padding
    ``d * (k - 1) / 2`` (DARTS' stride-2 ``dil_conv``, whose taps ``s * o - p + d * j`` are
    all multiples of ``s``), which then runs undilated with padding ``(k - 1) / 2``.

    Same parameters (names, shapes) and same outputs as the strided module; cheaper,
    because the kernel skips the taps that the stride would discard (the stride-2 dilated
    depthwise step, forward + backward, 3-5x less CPU time on an AVX2 EPYC at the DARTS
    search shapes). The oneDNN kernel that runs is a stride-1 one, so channels_last is safe
    for it (:func:`nasforge.train.device.narrow_strided_pointwise` does not list it)."""

    def __init__(self, *args: object, subsample: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.subsample = subsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.subsample
        return super().forward(x[:, :, ::s, ::s])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, subsample={self.subsample}"


def conv2d(
    c_in: int,
    c_out: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """``nn.Conv2d`` with these arguments, or the equal and cheaper
    :class:`SubsampledConv2d` where every tap of the strided kernel lies on the stride
    grid (see there) and there is no bias."""
    k = kernel_size
    # Bias-free only: with a bias, oneDNN's stride-1 kernel rounds differently from its
    # strided one (4.8e-7 off xautodl's FactorizedReduce at affine=False, bias=True); without
    # one the NCHW outputs are bitwise equal (tests/test_nn_ops.py, atol=0). Every
    # convolution this serves in the DARTS space is bias-free.
    on_grid = (
        stride > 1
        and not bias
        and (
            (k == 1 and padding == 0) or (dilation == stride and 2 * padding == dilation * (k - 1))
        )
    )
    if not on_grid:
        return nn.Conv2d(
            c_in,
            c_out,
            k,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
    return SubsampledConv2d(
        c_in, c_out, k, padding=(k - 1) // 2, groups=groups, bias=bias, subsample=stride
    )


class _ReLUConvsBN(nn.Module):
    """ReLU -> ``convs`` -> BN as one ``op`` Sequential: the shape of every convolutional
    primitive of both spaces. ``op.0`` is the ReLU, ``op.1..`` the convolutions, then the BN
    (the module names of both official codes)."""

    def __init__(
        self, convs: Sequence[nn.Conv2d], c_out: int, affine: bool, track_running_stats: bool
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            *convs,
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def leads_with_relu(self) -> bool:
        """Whether the op starts with a ReLU that :meth:`forward_activated` skips."""
        return isinstance(self.op[0], nn.ReLU)

    def forward_activated(self, r: torch.Tensor) -> torch.Tensor:
        """The op on ``r = relu(x)``: the convolutions and BN only. A supernet edge applies
        one ReLU to its input for all of its ReLU-led candidate ops (the same values, one
        ReLU and one saved activation instead of one per op)."""
        for i, layer in enumerate(self.op):
            if i:
                r = layer(r)
        return r


class ReLUConvBN(_ReLUConvsBN):
    """ReLU -> Conv -> BN: NB201's ``nor_conv_*`` ops and both spaces' 1x1 preprocessing."""

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
        *,
        bias: bool | None = None,
        conv: ConvFactory = nn.Conv2d,
    ) -> None:
        layer = conv(
            c_in,
            c_out,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=_conv_bias(bias, affine),
        )
        super().__init__([layer], c_out, affine, track_running_stats)


class DilConv(_ReLUConvsBN):
    """ReLU -> depthwise k x k (dilated) conv -> pointwise 1x1 conv -> BN: DARTS's ``DilConv``
    (``operations.py:35-47``), xautodl's ``SepConv`` (``cell_operations.py:148-180``). The
    depthwise conv never has a bias in either."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool | None = None,
        conv: ConvFactory = nn.Conv2d,
    ) -> None:
        # The official nn.Conv2d is built as conv2d, its equal (a stride-2 dilated kernel
        # runs on the stride grid, SubsampledConv2d); another factory is used as given.
        depthwise = (conv2d if conv is nn.Conv2d else conv)(
            c_in,
            c_in,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=c_in,
            bias=False,
        )
        pointwise = conv(c_in, c_out, 1, padding=0, bias=_conv_bias(bias, affine))
        super().__init__([depthwise, pointwise], c_out, affine, track_running_stats)


class SepConv(nn.Module):
    """Two stacked :class:`DilConv` (dilation 1); only the first strides: DARTS's ``sep_conv_*``
    (``operations.py:50-66``), xautodl's ``DualSepConv``. The first half keeps ``c_in``
    channels, the second maps to ``c_out``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool | None = None,
        conv: ConvFactory = nn.Conv2d,
    ) -> None:
        super().__init__()
        kw = {"bias": bias, "conv": conv}
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine, track_running_stats, **kw),
            DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine, track_running_stats, **kw),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def leads_with_relu(self) -> bool:
        """Whether the op starts with a ReLU (that of its first half)."""
        return self.op[0].leads_with_relu()

    def forward_activated(self, r: torch.Tensor) -> torch.Tensor:
        """The op on ``r = relu(x)`` (see :meth:`_ReLUConvsBN.forward_activated`)."""
        return self.op[1](self.op[0].forward_activated(r))


class Conv7x1x1x7(_ReLUConvsBN):
    """ReLU -> 1x7 conv -> 7x1 conv -> BN, AmoebaNet's ``conv_7x1_1x7`` (DARTS
    ``operations.py:14-19``); the 1x7 conv has no bias (it does not feed the BN)."""

    def __init__(
        self,
        c: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool | None = None,
        conv: ConvFactory = nn.Conv2d,
    ) -> None:
        convs = [
            conv(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            conv(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=_conv_bias(bias, affine)),
        ]
        super().__init__(convs, c, affine, track_running_stats)


class Pooling(nn.Module):
    """3x3 pooling, stride ``stride``, padding 1 (average: ``count_include_pad=False``), after a
    1x1 :class:`ReLUConvBN` when C changes: xautodl's ``POOLING`` (``cell_operations.py:262-285``);
    with ``c_in == c_out`` DARTS's ``avg_pool_3x3`` / ``max_pool_3x3`` (``operations.py:6-7``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        mode: Literal["avg", "max"] = "avg",
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        self.preprocess = (
            None
            if c_in == c_out
            else ReLUConvBN(c_in, c_out, 1, 1, 0, 1, affine, track_running_stats, bias=bias)
        )
        if mode == "avg":
            self.op: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        elif mode == "max":
            self.op = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise ValueError(f"Pooling mode {mode!r} invalid; expected 'avg' or 'max'")

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
    """``skip_connect`` that changes the shape. Stride 2: ReLU, two offset 1x1 convs
    concatenated, BN (both spaces; DARTS ``operations.py:90-104``); stride 1 (a width change,
    NATS size-space cells): one 1x1 conv and BN, no ReLU, as xautodl's ``FactorizedReduce``
    (``cell_operations.py:320-356``).

    xautodl pads one row/column before the offset conv; DARTS does not, which only matters
    for odd sizes (where DARTS's shapes do not line up): the function is the same on the even
    sizes DARTS networks use.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        _check_stride(stride, "FactorizedReduce")
        self.stride = stride
        conv_bias = _conv_bias(bias, affine)
        if stride == 1:
            self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=conv_bias)
        else:
            self.relu = nn.ReLU(inplace=False)
            c_half = c_out // 2
            # 1x1 convs of stride 2 run as stride-1 convs of the subsampled input
            # (SubsampledConv2d): the same values, and no strided 1x1 kernel for oneDNN.
            self.convs = nn.ModuleList(
                conv2d(c_in, c, 1, stride=stride, padding=0, bias=conv_bias)
                for c in (c_half, c_out - c_half)
            )
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def leads_with_relu(self) -> bool:
        """Whether the op starts with a ReLU (stride 2, unless a cell replaced it)."""
        return self.stride != 1 and isinstance(self.relu, nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return self.bn(self.conv(x))
        return self.forward_activated(self.relu(x))

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-2 op on ``x = relu(input)`` (see :meth:`_ReLUConvsBN.forward_activated`)."""
        # Odd sizes read the padded row / column; on even sizes the stride never reaches the
        # padding, so the offset view reads the same values without a padded copy.
        odd = x.shape[2] % 2 or x.shape[3] % 2
        shifted = (self.pad(x) if odd else x)[:, :, 1:, 1:]
        out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
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
        _check_stride(stride, "ResNetBasicBlock")
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


OpFactory = Callable[..., nn.Module]

# Every factory takes an optional ``conv`` (default ``nn.Conv2d``): the convolution builder
# of the ops that have convolutions, ignored by the others (pooling's 1x1 preprocessing and
# FactorizedReduce keep ordinary 1x1 convolutions, which atom decomposition leaves alone).
_C2D = nn.Conv2d

#: NB201 op name -> factory(c_in, c_out, stride, affine, track_running_stats, conv=nn.Conv2d),
#: as xautodl's ``OPS`` (``cell_operations.py:9-92``).
OP_FACTORIES: dict[str, OpFactory] = {
    "none": lambda ci, co, s, a, t, conv=_C2D: Zero(ci, co, s),
    "avg_pool_3x3": lambda ci, co, s, a, t, conv=_C2D: Pooling(ci, co, s, a, t),
    "nor_conv_1x1": lambda ci, co, s, a, t, conv=_C2D: ReLUConvBN(
        ci, co, 1, s, 0, 1, a, t, conv=conv
    ),
    "nor_conv_3x3": lambda ci, co, s, a, t, conv=_C2D: ReLUConvBN(
        ci, co, 3, s, 1, 1, a, t, conv=conv
    ),
    "skip_connect": lambda ci, co, s, a, t, conv=_C2D: (
        Identity() if s == 1 and ci == co else FactorizedReduce(ci, co, s, a, t)
    ),
}

DartsOpFactory = Callable[..., nn.Module]

#: DARTS op name -> factory(C, stride, affine, conv=nn.Conv2d), as the official ``OPS``
#: table (``operations.py:4-20``): bias-free convolutions, BNs tracking running statistics.
DARTS_OPS: dict[str, DartsOpFactory] = {
    "none": lambda c, s, a, conv=_C2D: Zero(c, c, s),
    "avg_pool_3x3": lambda c, s, a, conv=_C2D: Pooling(c, c, s, mode="avg"),
    "max_pool_3x3": lambda c, s, a, conv=_C2D: Pooling(c, c, s, mode="max"),
    "skip_connect": lambda c, s, a, conv=_C2D: (
        Identity() if s == 1 else FactorizedReduce(c, c, s, a, bias=False)
    ),
    "sep_conv_3x3": lambda c, s, a, conv=_C2D: SepConv(c, c, 3, s, 1, a, bias=False, conv=conv),
    "sep_conv_5x5": lambda c, s, a, conv=_C2D: SepConv(c, c, 5, s, 2, a, bias=False, conv=conv),
    "sep_conv_7x7": lambda c, s, a, conv=_C2D: SepConv(c, c, 7, s, 3, a, bias=False, conv=conv),
    "dil_conv_3x3": lambda c, s, a, conv=_C2D: DilConv(c, c, 3, s, 2, 2, a, bias=False, conv=conv),
    "dil_conv_5x5": lambda c, s, a, conv=_C2D: DilConv(c, c, 5, s, 4, 2, a, bias=False, conv=conv),
    "conv_7x1_1x7": lambda c, s, a, conv=_C2D: Conv7x1x1x7(c, s, a, bias=False, conv=conv),
}


def _factory(table: Mapping[str, Callable[..., nn.Module]], name: str, space: str):
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {space} op {name!r}; expected one of {sorted(table)}") from None


def build_op(
    name: str,
    c_in: int,
    c_out: int,
    stride: int = 1,
    affine: bool = True,
    track_running_stats: bool = True,
    *,
    conv: ConvFactory = nn.Conv2d,
) -> nn.Module:
    """Build the NB201 primitive ``name``; ``conv`` builds its convolutions (e.g. an
    :class:`~nasforge.nn.atoms.AtomConvFactory` for atom-decomposed kernels)."""
    return _factory(OP_FACTORIES, name, "NB201")(
        c_in, c_out, stride, affine, track_running_stats, conv=conv
    )


def build_darts_op(
    name: str, c: int, stride: int, affine: bool = True, *, conv: ConvFactory = nn.Conv2d
) -> nn.Module:
    """The DARTS primitive ``name`` on ``c`` channels with ``stride``; ``conv`` builds its
    convolutions (default ``nn.Conv2d``, the official op)."""
    return _factory(DARTS_OPS, name, "DARTS")(c, stride, affine, conv=conv)
