"""Multiply-adds of any restoration network (convolutions of any width, transposed
convolutions, slimmed convolutions), counted from one forward pass."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Multiply-adds (millions) of one forward pass of ``model`` on a zero input of
    ``input_shape`` (batch 1): every ``Conv2d`` (with the channels it actually used, so
    slimmable convolutions count their slice), ``ConvTranspose2d`` and ``Linear``; bias
    additions, activations and normalisation are not counted."""
    total = [0.0]

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        x = inputs[0]
        if isinstance(m, nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += k * m.in_channels * m.out_channels / m.groups * x.shape[2] * x.shape[3]
        elif isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += k * x.shape[1] / m.groups * out.shape[1] * out.shape[2] * out.shape[3]
        elif isinstance(m, nn.Linear):
            total[0] += x.numel() // x.shape[-1] * m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was = model.training
    try:
        model.eval()
        p = next(model.parameters(), None)
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return total[0] / input_shape[0] / 1e6
