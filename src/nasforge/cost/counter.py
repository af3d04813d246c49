"""Parameter and FLOPs counting in the NAS-Bench-201 convention.

The convention is the official reference code's (``xautodl/utils/flop_benchmark.py``),
applied to one forward pass of a batch-1 input in eval mode:

* Conv2d: ``k_h * k_w * C_in * C_out / groups`` multiply-adds per output position
  (+ ``C_out`` per position when it has a bias);
* Linear: ``in * out`` (+ ``out`` with a bias);
* BatchNorm, ReLU, additions and every pooling layer: free. (The reference counter hooks
  pooling layers but ``compute_average_flops_cost`` sums only Conv/Linear modules, so the
  published figures exclude pooling; they are reproduced here to the digit.)

Parameters are all ``named_parameters`` (BN affine included) except those whose name
contains ``auxiliary``, in millions. The counter works on any ``nn.Module``.

Modules whose multiply-adds the two hooks cannot see (a convolution computed with
``F.conv2d`` from a reconstructed or predicted kernel, the two matrix products of an
attention) register a rule in :data:`MAC_RULES` (``@register_macs(ModuleType)``, in the
cost module of their family: ``nasforge.cost.blocks``); the rule returns the multiply-adds
of one forward call that its module's ``Conv2d`` / ``Linear`` children do not already count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasforge.cost.types import DATASET_SHAPES, Cost
from nasforge.errors import NasforgeError

__all__ = ["DATASET_SHAPES", "Cost", "count_flops", "count_params", "module_cost"]


#: Module type -> ``rule(module, inputs, output) -> multiply-adds`` of one forward call (see
#: the module docstring); looked up along the module's MRO.
MacRule = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], float]
MAC_RULES: dict[type, MacRule] = {}


def register_macs(kind: type) -> Callable[[MacRule], MacRule]:
    """Decorator registering the multiply-add rule of module type ``kind``."""

    def deco(fn: MacRule) -> MacRule:
        MAC_RULES[kind] = fn
        return fn

    return deco


def _mac_rule(m: nn.Module) -> MacRule | None:
    for cls in type(m).__mro__:
        if cls in MAC_RULES:
            return MAC_RULES[cls]
    return None


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_flops(m: nn.Conv2d, out: torch.Tensor) -> float:
    kh, kw = _pair(m.kernel_size)
    positions = out.shape[0] * out.shape[2] * out.shape[3]
    flops = kh * kw * m.in_channels * m.out_channels / m.groups * positions
    if m.bias is not None:
        flops += m.out_channels * positions
    return flops


def _linear_flops(m: nn.Linear, inp: torch.Tensor) -> float:
    batch = inp.numel() // inp.shape[-1]
    flops = batch * m.in_features * m.out_features
    if m.bias is not None:
        flops += batch * m.out_features
    return flops


def count_params(module: nn.Module) -> float:
    """Parameters in millions (NB201 convention: everything but ``auxiliary`` heads)."""
    return sum(p.numel() for name, p in module.named_parameters() if "auxiliary" not in name) / 1e6


def count_flops(module: nn.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs (millions) of one forward pass of ``module`` on a zero input of ``input_shape``.

    The result is per sample: totals are divided by the batch size of ``input_shape``.
    """
    if len(input_shape) < 2 or any(int(s) < 1 for s in input_shape):
        raise NasforgeError(
            f"input_shape must be (batch, C, ...) with sizes >= 1, got {input_shape}"
        )
    from nasforge.cost.registry import load_torch_costs

    load_torch_costs()  # the MAC rules registered by nasforge.cost.blocks
    total = [0.0]

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        rule = _mac_rule(m)
        if rule is not None:
            total[0] += float(rule(m, inputs, out))
        elif isinstance(m, nn.Conv2d):
            total[0] += _conv_flops(m, out)
        elif isinstance(m, nn.Linear):
            total[0] += _linear_flops(m, inputs[0])

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) or _mac_rule(m) is not None
    ]
    was_training = module.training
    try:
        module.eval()
        p = next(module.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        with torch.no_grad():
            module(torch.zeros(*input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return total[0] / input_shape[0] / 1e6


def module_cost(module: nn.Module, input_shape: tuple[int, ...]) -> Cost:
    """Params and FLOPs (millions) of any module for an input shape."""
    return Cost(params_m=count_params(module), flops_m=count_flops(module, input_shape))
