"""Measured latency of a module (or an NB201 arch) on a device."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from nasforge.errors import NasforgeError

if TYPE_CHECKING:  # torch is imported when a latency is measured, not with nasforge.cost
    import torch
    from torch import nn

_REDUCTIONS = {"median": statistics.median, "mean": statistics.fmean, "min": min}


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latency(
    model: nn.Module | object,
    input_shape: tuple[int, ...] | None = None,
    *,
    dataset: str = "cifar10",
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    warmup: int = 5,
    repeats: int = 20,
    reduction: str = "median",
) -> float:
    """Median forward latency in seconds of ``model`` (an ``nn.Module`` or an NB201 arch).

    ``warmup`` untimed passes come first; the result is the median of ``repeats`` timed
    passes in eval mode without gradients (``reduction="mean"``: their mean, as AOWS's
    ``latency.py`` reports; ``"min"`` their minimum). For an arch, the network and input shape follow
    ``dataset``; ``input_shape`` defaults to ``(batch_size, 3, res, res)`` of that dataset.
    """
    import torch
    from torch import nn

    if warmup < 0 or repeats < 1:
        raise NasforgeError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    if reduction not in _REDUCTIONS:
        raise NasforgeError(f"reduction must be one of {sorted(_REDUCTIONS)}, got {reduction!r}")
    from nasforge.cost.nb201 import dataset_shape

    res, classes = dataset_shape(dataset)
    if not isinstance(model, nn.Module):
        from nasforge.nn.nb201 import NB201Network

        model = NB201Network(model, num_classes=classes)  # type: ignore[arg-type]
    if input_shape is None:
        input_shape = (batch_size, 3, res, res)
    dev = torch.device(device)
    was_training = model.training
    model = model.to(dev).eval()
    x = torch.randn(*input_shape, device=dev)
    times = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            _sync(dev)
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                _sync(dev)
                times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return float(_REDUCTIONS[reduction](times))
