"""Atom-coefficient decomposed convolution: the function, the sharing, the costs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.cost import count_flops, count_params
from nasforge.errors import ArchError
from nasforge.nn.atoms import (
    AtomConv2d,
    AtomConvFactory,
    Coefficients,
    ResNet18,
    atom_parameters,
    atom_resnet18,
)
from nasforge.nn.ops import build_darts_op, build_op


def _hand_kernel(conv: AtomConv2d) -> torch.Tensor:
    """sum_m a[o, i, m] * D[m], written out."""
    a = conv.coefficient_block()
    k = torch.zeros(a.shape[0], a.shape[1], *conv.atoms.shape[1:])
    for m in range(conv.num_atoms):
        k += a[:, :, m, None, None] * conv.atoms[m]
    return k


@pytest.mark.parametrize("mode", ["reconstruct", "atoms-first"])
@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "groups"),
    [
        (3, 5, 3, 1, 1, 1, 1),
        (4, 6, 3, 2, 1, 1, 1),
        (6, 6, 5, 1, 4, 2, 6),
        (4, 4, (1, 3), 1, (0, 1), 1, 1),
    ],
)
def test_decomposed_conv_equals_conv_with_reconstructed_kernel(
    mode, c_in, c_out, k, stride, padding, dilation, groups
):
    torch.manual_seed(0)
    conv = AtomConv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=True, mode=mode)
    nn.init.normal_(conv.bias)
    ref = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=True)
    with torch.no_grad():
        ref.weight.copy_(_hand_kernel(conv))
        ref.bias.copy_(conv.bias)
    x = torch.randn(2, c_in, 9, 9)
    torch.testing.assert_close(conv(x), ref(x), rtol=1e-4, atol=1e-4)


def test_both_modes_compute_the_same_function():
    torch.manual_seed(1)
    a = AtomConv2d(5, 7, 3, 1, 1, mode="reconstruct")
    b = AtomConv2d(5, 7, 3, 1, 1, mode="atoms-first")
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 5, 8, 8)
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-4)


def test_initialisation_follows_dcfnet():
    torch.manual_seed(0)
    conv = AtomConv2d(64, 64, 3, num_atoms=8)
    # coefficients N(0, 1/(C_in*m)), atoms N(0, 1) (DCF.py:94, 114-117)
    assert conv.coefficients.weight.std().item() == pytest.approx((64 * 8) ** -0.5, rel=0.05)
    assert conv.atoms.numel() == 72


def _convs(model: nn.Module) -> list[AtomConv2d]:
    return [m for m in model.modules() if isinstance(m, AtomConv2d)]


def _kernel_shapes(width: int) -> list[list[tuple[int, int]]]:
    """(C_out, C_in) of the 3x3 convolutions of ResNet-18, per stage (stem in stage 0)."""
    w = [width, 2 * width, 4 * width, 8 * width]
    stages = [[(w[0], 3), *[(w[0], w[0])] * 4]]
    for prev, c in itertools.pairwise(w):
        stages.append([(c, prev), (c, c), (c, c), (c, c)])
    return stages


@pytest.mark.parametrize("level", ["layer", "stage", "network"])
def test_sharing_levels_share_and_count(level):
    width, m = 4, 6
    standard = count_params(ResNet18(10, width=width)) * 1e6
    model = atom_resnet18(10, width=width, level=level, num_atoms=m)
    stages = _kernel_shapes(width)
    shapes = [s for st in stages for s in st]
    assert len(_convs(model)) == len(shapes) == 17
    # the 3x3 kernels leave, every conv keeps m atoms of 3x3, plus the coefficients
    base = standard - sum(9 * o * i for o, i in shapes) + len(shapes) * m * 9
    if level == "layer":
        coef = sum(o * i * m for o, i in shapes)
        assert len({id(c.coefficients) for c in _convs(model)}) == 17
    elif level == "stage":
        coef = sum(max(o for o, _ in st) ** 2 * m for st in stages)
        groups = [
            {id(c.coefficients) for c in stage.modules() if isinstance(c, AtomConv2d)}
            for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
        ]
        assert all(len(g) == 1 for g in groups) and len(set().union(*groups)) == 4
        assert model.conv1.coefficients is model.layer1[0].conv1.coefficients
    else:
        coef = (8 * width) ** 2 * m
        assert len({id(c.coefficients) for c in _convs(model)}) == 1
    assert count_params(model) * 1e6 == pytest.approx(base + coef)
    # the optimiser sees a shared tensor once
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(base + coef)


def test_wider_sharing_means_fewer_parameters():
    counts = [
        count_params(atom_resnet18(width=8, level=lvl)) for lvl in ("layer", "stage", "network")
    ]
    assert counts[0] > counts[1] > counts[2]
    assert counts[2] < 0.25 * count_params(ResNet18(width=8))


def test_gradients_reach_atoms_and_shared_coefficients():
    torch.manual_seed(0)
    model = atom_resnet18(10, width=4, level="network")
    # 8 px: the network pools globally, and every 3x3 conv still sees a 1x1 map or larger
    loss = F.cross_entropy(model(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1]))
    loss.backward()
    atoms = atom_parameters(model)
    assert len(atoms) == 17 and all(a.grad is not None and a.grad.abs().sum() > 0 for a in atoms)
    (coef,) = {id(c.coefficients): c.coefficients for c in _convs(model)}.values()
    assert coef.weight.grad is not None
    # rows beyond the narrowest layer get gradient only from the wide layers
    assert coef.weight.grad[:4, :3].abs().sum() > 0 and coef.weight.grad[16:, 16:].abs().sum() > 0


def test_shared_gradient_is_the_sum_over_layers():
    torch.manual_seed(0)
    bank = Coefficients(4, 4, 3)
    a = AtomConv2d(4, 4, 3, padding=1, num_atoms=3, coefficients=bank)
    b = AtomConv2d(4, 4, 3, padding=1, num_atoms=3, coefficients=bank)
    x = torch.randn(2, 4, 5, 5)
    a(x).sum().backward()
    ga = bank.weight.grad.clone()
    bank.weight.grad = None
    b(x).sum().backward()
    gb = bank.weight.grad.clone()
    bank.weight.grad = None
    (a(x).sum() + b(x).sum()).backward()
    torch.testing.assert_close(bank.weight.grad, ga + gb)


@pytest.mark.parametrize("mode", ["reconstruct", "atoms-first"])
def test_macs_of_an_atom_conv(mode):
    conv = AtomConv2d(8, 16, 3, stride=2, padding=1, num_atoms=5, mode=mode)
    macs = count_flops(conv, (1, 8, 16, 16)) * 1e6
    positions = 8 * 8
    if mode == "reconstruct":
        assert macs == 16 * 8 * 5 * 9 + 9 * 8 * 16 * positions
    else:
        assert macs == 8 * 5 * 9 * positions + 8 * 5 * 16 * positions


def test_network_macs_are_standard_plus_kernel_reconstruction():
    width, m = 4, 8
    standard = count_flops(ResNet18(10, width=width), (1, 3, 32, 32)) * 1e6
    atoms = atom_resnet18(10, width=width, level="stage", num_atoms=m)
    rebuild = sum(c.out_channels * c.in_channels * m * 9 for c in _convs(atoms))
    assert count_flops(atoms, (1, 3, 32, 32)) * 1e6 == pytest.approx(standard + rebuild)


def test_nb201_and_darts_ops_take_the_decomposed_conv_without_changing_the_default():
    plain = build_op("nor_conv_3x3", 4, 8, 1)
    assert not any(isinstance(m, AtomConv2d) for m in plain.modules())
    op = build_op("nor_conv_3x3", 4, 8, 1, conv=AtomConvFactory("layer", num_atoms=4))
    (conv,) = [m for m in op.modules() if isinstance(m, AtomConv2d)]
    assert (conv.in_channels, conv.out_channels, conv.num_atoms) == (4, 8, 4)
    assert op(torch.randn(2, 4, 6, 6)).shape == (2, 8, 6, 6)
    # 1x1 convs stay ordinary; a DARTS sep conv gets decomposed depth-wise kernels
    one = build_op("nor_conv_1x1", 4, 8, 1, conv=AtomConvFactory())
    assert not any(isinstance(m, AtomConv2d) for m in one.modules())
    factory = AtomConvFactory("network", max_channels=16)
    ops = [
        build_darts_op("sep_conv_3x3", 8, 1, conv=factory),
        build_darts_op("dil_conv_3x3", 16, 2, conv=factory),
    ]
    convs = [m for op in ops for m in op.modules() if isinstance(m, AtomConv2d)]
    assert len(convs) == 3 and all(c.groups == c.in_channels for c in convs)
    assert len({id(c.coefficients) for c in convs}) == 1  # one depth-wise 3x3 bank
    assert ops[1](torch.randn(1, 16, 8, 8)).shape == (1, 16, 4, 4)


def test_bad_settings_fail_with_the_value_named():
    with pytest.raises(ArchError, match="'everything'"):
        AtomConvFactory("everything")
    with pytest.raises(ArchError, match="max_channels"):
        AtomConvFactory("network")
    with pytest.raises(ArchError, match="'fast'"):
        AtomConv2d(4, 4, 3, mode="fast")
    with pytest.raises(ArchError, match="wider than max_channels=8"):
        AtomConvFactory("stage", max_channels=8)(8, 16, 3)
    with pytest.raises(ArchError, match="does not fit"):
        AtomConv2d(8, 8, 3, coefficients=Coefficients(4, 4, 8))
