"""Multiply-adds of the analysed blocks, and the costs of ``local-stages`` archs.

The rules registered here extend :func:`nasforge.cost.counter.count_flops` (NB201's
convention: Conv2d / Linear multiply-adds, biases included, norms / activations / pooling
free) to what its hooks cannot see:

* :class:`~nasforge.nn.atoms.AtomConv2d` counts what its mode executes. ``"reconstruct"``:
  building the kernel, ``C_out * C_in/g * m * kh * kw`` per forward call (at inference the
  kernel can be cached; it is counted because the layer as written recomputes it), plus
  the ordinary convolution. ``"atoms-first"``: ``C_in * m * kh * kw`` per output position
  for the atom responses, then ``C_in/g * m * C_out`` per position for the 1x1 combination
  (DCFNet's two modes, ``DCF.py:122-145``).
* :class:`~nasforge.nn.local_blocks.WindowAttention`: its two matrix products,
  ``2 * windows * N^2 * C`` (``swin_transformer.py:166-169``); its qkv and output linear
  layers are counted by the Linear hook, as in Swin's ``flops()``.
* :class:`~nasforge.nn.local_blocks.DynamicDWConv`: applying the predicted kernel,
  ``C * (k*k + 1)`` per position (as a static depth-wise conv with bias); the kernel
  generator's 1x1 convolutions are counted by the Conv2d hook on the pooled 1x1 map
  (DWNet's ``flops()``, ``dwnet.py:113-114``, also counts the pooling's ``N * C`` adds,
  which the NB201 convention leaves out).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from nasforge.cost.counter import DATASET_SHAPES, Cost, module_cost, register_macs
from nasforge.cost.registry import ARCH_COSTS
from nasforge.errors import NasforgeError
from nasforge.nn.atoms import AtomConv2d
from nasforge.nn.local_blocks import (
    DynamicDWConv,
    WindowAttention,
    attention_macs,
    dynamic_kernel_macs,
)


@register_macs(AtomConv2d)
def atom_conv_macs(m: AtomConv2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
    kh, kw = m.kernel_size
    c_in_g = m.in_channels // m.groups
    positions = out.shape[0] * out.shape[2] * out.shape[3]
    bias = m.out_channels * positions if m.bias is not None else 0
    if m.mode == "reconstruct":
        rebuild = m.out_channels * c_in_g * m.num_atoms * kh * kw
        return rebuild + kh * kw * c_in_g * m.out_channels * positions + bias
    atoms = m.in_channels * m.num_atoms * kh * kw * positions
    combine = c_in_g * m.num_atoms * m.out_channels * positions
    return atoms + combine + bias


@register_macs(WindowAttention)
def window_attention_macs(
    m: WindowAttention, inputs: tuple[torch.Tensor, ...], out: torch.Tensor
) -> float:
    windows, tokens, dim = inputs[0].shape
    return attention_macs(windows, tokens, dim)


@register_macs(DynamicDWConv)
def dynamic_dwconv_macs(
    m: DynamicDWConv, inputs: tuple[torch.Tensor, ...], out: torch.Tensor
) -> float:
    return dynamic_kernel_macs(m.dim, m.kernel_size, out.shape[0] * out.shape[2] * out.shape[3])


@lru_cache(maxsize=256)
def _local_cost(arch: tuple[str, ...], dataset: str) -> Cost:
    from nasforge.nn.local_blocks import build_local_stages_network

    if dataset not in DATASET_SHAPES:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for local-stages costs; expected one of "
            f"{sorted(DATASET_SHAPES)}"
        )
    res, classes = DATASET_SHAPES[dataset]
    if res != 32:
        raise NasforgeError(
            f"the local-stages network is built for 32 px images; {dataset!r} has {res} px"
        )
    return module_cost(build_local_stages_network(arch, num_classes=classes), (1, 3, res, res))


@ARCH_COSTS.register("local-stages")
def local_stages_cost(arch: Sequence[str] | str, dataset: str = "cifar10") -> Cost:
    """Params and multiply-adds (millions) of a ``local-stages`` arch (tuple of block names
    or its string) with the network builder's defaults."""
    from nasforge.spaces.local_stages import LocalStagesSpace

    space = LocalStagesSpace()
    a = space.from_string(arch) if isinstance(arch, str) else tuple(arch)
    space.to_choices(a)  # validates
    return _local_cost(a, dataset)


__all__ = [
    "atom_conv_macs",
    "dynamic_dwconv_macs",
    "local_stages_cost",
    "window_attention_macs",
]
