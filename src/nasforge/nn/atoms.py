"""Atom-coefficient decomposed convolution (DCFNet / ACDC) and its sharing levels.

Every ``k x k`` kernel is a combination of ``m`` 2D dictionary atoms,
``W[o, i] = sum_j a[o, i, j] * D[j]`` (Wang et al., "ACDC: Weight Sharing in Atom-Coefficient
Decomposed Convolution", arXiv:2009.02386; the decomposed layer of Qiu et al.'s DCFNet).
ACDC then *shares the coefficients* ``a`` across a sub-structure -- a layer, a group of layers,
the whole network -- while every convolution keeps its own atoms ``D`` (``m * k * k``
parameters: 72 for 8 atoms of 3x3).

What follows the official DCFNet code (ZeWang95/DCFNet-Pytorch, ``DCF.py`` at commit 6a1e4d0,
the layer ACDC builds on; no official ACDC code was found to compare with):

* the two ways of computing the layer, which give the same function: ``"reconstruct"``
  (``mode1``, the default there and here: ``einsum`` of coefficients and atoms into the
  kernel, then one ordinary convolution, ``DCF.py:139-145``) and ``"atoms-first"``
  (``mode0``: every input channel convolved with the ``m`` atoms, then a 1x1 convolution
  with the coefficients, ``DCF.py:122-137``);
* learnable atoms drawn from ``N(0, 1)`` (``DCF.py:92-94``, ``bases_grad=True``), and
  coefficients from ``N(0, 1 / (C_in * m))`` (``DCF.py:114-117``: ``std = 1/sqrt(C_in*m)``);
* the CIFAR ResNet-18 (``ImageClassification/models/resnet_dcf.py:17-110``): every 3x3
  convolution decomposed, the stem included (``:81``); the 1x1 shortcut convolutions stay
  ordinary (``:31-36``).

Sharing across layers whose channel counts differ: a scope holds one coefficient tensor of
the largest shape among its convolutions, ``(C_out_max, C_in_max / groups, m)``, and each
convolution uses its leading ``[:C_out, :C_in / groups]`` block. (The paper's own rule for
layers of different widths could not be checked against code; this one shares every
coefficient of the narrower layers, and the parameter counts per level follow from it.)

Levels (:data:`SHARING_LEVELS`): ``"layer"`` -- every convolution owns its coefficients (no
sharing: DCFNet); ``"stage"`` -- one coefficient tensor per group of layers (a ResNet stage,
a cell, whatever scope the network builder opens with :meth:`AtomConvFactory.scope`);
``"network"`` -- one for the whole network. Convolutions with a 1x1 kernel are never
decomposed (a 1x1 "atom" is a scalar: nothing to share), as in the official ResNet.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.ops import ConvFactory

#: Sharing levels of the coefficients, narrowest first.
SHARING_LEVELS: tuple[str, ...] = ("layer", "stage", "network")
#: The two computations of a decomposed convolution (DCFNet ``mode1`` / ``mode0``).
ATOM_MODES: tuple[str, ...] = ("reconstruct", "atoms-first")
#: Number of atoms when none is given (Conv_DCFDE's ``num_bases=6`` default is for another
#: model; ACDC's ResNet experiments use a handful -- 8 keeps a 3x3 kernel under-complete).
DEFAULT_ATOMS = 8

AtomMode = Literal["reconstruct", "atoms-first"]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Coefficients(nn.Module):
    """A coefficient tensor ``(C_out, C_in_per_group, m)``, shareable by several
    :class:`AtomConv2d` (register it in each; ``named_parameters`` counts it once)."""

    def __init__(self, c_out: int, c_in: int, num_atoms: int) -> None:
        super().__init__()
        if min(c_out, c_in, num_atoms) < 1:
            raise ArchError(
                f"coefficients need positive sizes, got C_out={c_out}, C_in={c_in}, "
                f"atoms={num_atoms}"
            )
        self.weight = nn.Parameter(torch.empty(c_out, c_in, num_atoms))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # DCF.py:114-117: normal with std 1/sqrt(in_channels * num_bases).
        c_in, m = self.weight.shape[1], self.weight.shape[2]
        nn.init.normal_(self.weight, 0.0, 1.0 / math.sqrt(c_in * m))

    def block(self, c_out: int, c_in: int) -> torch.Tensor:
        """The leading ``[:c_out, :c_in]`` block (what a narrower convolution uses)."""
        if c_out > self.weight.shape[0] or c_in > self.weight.shape[1]:
            raise ArchError(
                f"a ({c_out}, {c_in}) convolution does not fit shared coefficients of shape "
                f"{tuple(self.weight.shape[:2])}"
            )
        return self.weight[:c_out, :c_in]


class AtomConv2d(nn.Module):
    """``Conv2d`` whose kernel is ``einsum('oim,mhw->oihw', coefficients, atoms)``.

    ``coefficients`` is a shared :class:`Coefficients` (ACDC) or ``None`` (own coefficients,
    DCFNet). ``mode`` picks the computation (same function, different cost: see
    :func:`nasforge.cost.counter.count_flops`). ``groups`` as ``Conv2d`` (depth-wise ops).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = False,
        *,
        num_atoms: int = DEFAULT_ATOMS,
        coefficients: Coefficients | None = None,
        mode: AtomMode = "reconstruct",
    ) -> None:
        super().__init__()
        if mode not in ATOM_MODES:
            raise ArchError(f"atom mode {mode!r} invalid; expected one of {list(ATOM_MODES)}")
        if groups < 1 or c_in % groups or c_out % groups:
            raise ArchError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
        if num_atoms < 1:
            raise ArchError(f"num_atoms={num_atoms}, expected an int >= 1")
        self.in_channels, self.out_channels, self.groups = c_in, c_out, groups
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.num_atoms, self.mode = num_atoms, mode
        self.shared = coefficients is not None
        self.coefficients = (
            coefficients
            if coefficients is not None
            else Coefficients(c_out, c_in // groups, num_atoms)
        )
        if self.coefficients.weight.shape[2] != num_atoms:
            raise ArchError(
                f"shared coefficients have {self.coefficients.weight.shape[2]} atoms, the "
                f"convolution {num_atoms}"
            )
        self.coefficients.block(c_out, c_in // groups)  # fails now rather than in forward
        self.atoms = nn.Parameter(torch.empty(num_atoms, *self.kernel_size))
        nn.init.normal_(self.atoms, 0.0, 1.0)  # DCF.py:94 (learnable bases)
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def coefficient_block(self) -> torch.Tensor:
        """This convolution's coefficients, ``(C_out, C_in / groups, m)``."""
        return self.coefficients.block(self.out_channels, self.in_channels // self.groups)

    def kernel(self) -> torch.Tensor:
        """The reconstructed ``(C_out, C_in / groups, kh, kw)`` kernel (DCF.py:140)."""
        return torch.einsum("oim,mhw->oihw", self.coefficient_block(), self.atoms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "reconstruct":
            return F.conv2d(
                x, self.kernel(), self.bias, self.stride, self.padding, self.dilation, self.groups
            )
        # atoms first (DCF.py:122-137): every input channel against the m atoms (one
        # grouped conv), then the coefficients as a grouped 1x1 convolution.
        c = x.shape[1]
        m = self.num_atoms
        atoms = self.atoms.unsqueeze(1).repeat(c, 1, 1, 1)  # (C*m, 1, kh, kw)
        feats = F.conv2d(x, atoms, None, self.stride, self.padding, self.dilation, groups=c)
        coef = self.coefficient_block()  # (C_out, C_in/g, m) -> (C_out, C_in/g * m, 1, 1)
        coef = coef.reshape(self.out_channels, (c // self.groups) * m, 1, 1)
        return F.conv2d(feats, coef, self.bias, groups=self.groups)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"atoms={self.num_atoms}, shared={self.shared}, mode={self.mode}"
        )


class AtomConvFactory:
    """Builds convolutions for a network: decomposed ones sharing coefficients at ``level``.

    Called like ``nn.Conv2d(c_in, c_out, k, stride=, padding=, dilation=, groups=, bias=)``,
    so it can replace ``nn.Conv2d`` wherever a block takes a ``conv`` factory (the NB201 /
    DARTS conv ops, :class:`ResNet18`). ``max_channels`` bounds the widths of the shared
    coefficient tensors (``"stage"`` / ``"network"``): it must be at least the widest
    convolution that will share them. A builder opens the scope of a group of layers with
    ``with factory.scope(name): ...``; dense and depth-wise convolutions and each kernel
    size get separate coefficient tensors (their shapes cannot be blocks of each other).
    """

    def __init__(
        self,
        level: str = "layer",
        *,
        num_atoms: int = DEFAULT_ATOMS,
        max_channels: int | None = None,
        mode: AtomMode = "reconstruct",
    ) -> None:
        if level not in SHARING_LEVELS:
            raise ArchError(
                f"sharing level {level!r} invalid; expected one of {list(SHARING_LEVELS)}"
            )
        if mode not in ATOM_MODES:
            raise ArchError(f"atom mode {mode!r} invalid; expected one of {list(ATOM_MODES)}")
        if not isinstance(num_atoms, int) or num_atoms < 1:
            raise ArchError(f"num_atoms={num_atoms!r}, expected an int >= 1")
        if level != "layer" and (not isinstance(max_channels, int) or max_channels < 1):
            raise ArchError(
                f"sharing level {level!r} needs max_channels (the widest shared convolution), "
                f"got {max_channels!r}"
            )
        self.level, self.num_atoms, self.mode = level, num_atoms, mode
        self.max_channels = max_channels
        self._scope: str = "network"
        self._scope_channels: int | None = None
        self.banks: dict[tuple[str, tuple[int, int], bool], Coefficients] = {}

    @contextlib.contextmanager
    def scope(self, name: str, channels: int | None = None) -> Iterator[None]:
        """Convolutions built inside share one coefficient tensor at level ``"stage"``, of
        width ``channels`` (the widest of them; default ``max_channels``)."""
        previous = self._scope, self._scope_channels
        self._scope, self._scope_channels = str(name), channels
        try:
            yield
        finally:
            self._scope, self._scope_channels = previous

    def _width(self) -> int:
        if self.level == "stage" and self._scope_channels is not None:
            return int(self._scope_channels)
        return int(self.max_channels)  # type: ignore[arg-type]

    def _bank(self, kernel: tuple[int, int], depthwise: bool) -> Coefficients | None:
        if self.level == "layer":
            return None
        scope = self._scope if self.level == "stage" else "network"
        key = (scope, kernel, depthwise)
        if key not in self.banks:
            c = self._width()
            self.banks[key] = Coefficients(c, 1 if depthwise else c, self.num_atoms)
        return self.banks[key]

    def __call__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> nn.Module:
        k = _pair(kernel_size)
        if k == (1, 1):
            return nn.Conv2d(c_in, c_out, 1, stride, padding, dilation, groups, bias)
        depthwise = groups > 1
        if depthwise and not (groups == c_in == c_out):
            raise ArchError(
                f"atom convolutions support dense or depth-wise convolutions, got groups="
                f"{groups} for {c_in} -> {c_out} channels"
            )
        if self.level != "layer" and max(c_in, c_out) > self._width():
            raise ArchError(
                f"a {c_in} -> {c_out} convolution is wider than max_channels="
                f"{self._width()} of the shared coefficients"
            )
        return AtomConv2d(
            c_in,
            c_out,
            k,
            stride,
            padding,
            dilation,
            groups,
            bias,
            num_atoms=self.num_atoms,
            coefficients=self._bank(k, depthwise),
            mode=self.mode,
        )


class BasicBlock(nn.Module):
    """The CIFAR ResNet basic block (kuangliu/pytorch-cifar, as ``resnet_dcf.py:17-43``):
    conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the identity or a 1x1 conv + BN shortcut,
    then ReLU. ``conv`` builds the 3x3 convolutions (``nn.Conv2d`` or an atom factory)."""

    def __init__(self, c_in: int, c_out: int, stride: int, conv: ConvFactory) -> None:
        super().__init__()
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18 (``resnet_dcf.py:76-110``): 3x3 stem at ``width``, four stages of two
    basic blocks at ``width * (1, 2, 4, 8)`` (strides 1, 2, 2, 2), global average pooling,
    linear classifier. ``width=64`` is the published network (11.2M parameters).

    ``conv`` builds every 3x3 convolution: ``nn.Conv2d`` (the standard network) or an
    :class:`AtomConvFactory`; the stem is in the first stage's scope.
    """

    def __init__(self, num_classes: int = 10, *, width: int = 64, conv: ConvFactory = nn.Conv2d):
        super().__init__()
        if width < 1 or num_classes < 1:
            raise ArchError(
                f"ResNet18 needs width >= 1 and classes >= 1, got {width}, {num_classes}"
            )
        widths = [width, 2 * width, 4 * width, 8 * width]
        scope = conv.scope if isinstance(conv, AtomConvFactory) else None
        stages = []
        c_prev = width
        for s, (c, stride) in enumerate(zip(widths, (1, 2, 2, 2), strict=True)):
            # the stem (3 input channels) is in the first stage's scope
            widest = max(c, 3) if s == 0 else c
            with scope(f"stage{s}", widest) if scope else contextlib.nullcontext():
                if s == 0:
                    self.conv1 = conv(3, width, 3, stride=1, padding=1, bias=False)
                blocks = [BasicBlock(c_prev, c, stride, conv), BasicBlock(c, c, 1, conv)]
            stages.append(nn.Sequential(*blocks))
            c_prev = c
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        # global average pooling (avg_pool2d(out, 4) at 32 px in the official code)
        return self.linear(out.mean(dim=(2, 3)))


def atom_resnet18(
    num_classes: int = 10,
    *,
    width: int = 64,
    level: str | None = "layer",
    num_atoms: int = DEFAULT_ATOMS,
    mode: AtomMode = "reconstruct",
) -> ResNet18:
    """ResNet-18 with decomposed 3x3 convolutions sharing coefficients at ``level``
    (``None``: the standard network with ordinary convolutions)."""
    if level is None:
        return ResNet18(num_classes, width=width)
    factory = AtomConvFactory(level, num_atoms=num_atoms, max_channels=max(8 * width, 3), mode=mode)
    return ResNet18(num_classes, width=width, conv=factory)


def atom_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The atoms of every decomposed convolution of ``model`` (ACDC's few-shot adaptation
    trains only these)."""
    return [m.atoms for m in model.modules() if isinstance(m, AtomConv2d)]


__all__ = [
    "ATOM_MODES",
    "DEFAULT_ATOMS",
    "SHARING_LEVELS",
    "AtomConv2d",
    "AtomConvFactory",
    "BasicBlock",
    "Coefficients",
    "ResNet18",
    "atom_parameters",
    "atom_resnet18",
]
