"""Validating a requested torch device before any work starts."""

from __future__ import annotations

import torch

from nasforge.errors import NasforgeError


def resolve_device(
    device: str | torch.device, error: type[NasforgeError] = NasforgeError
) -> torch.device:
    """``device`` as a :class:`torch.device`, checked to be usable on this machine.

    A malformed name (``"gpu"``), CUDA without CUDA, or a CUDA index beyond the visible
    devices raises ``error`` (a :class:`NasforgeError` subclass, e.g. ``SearchError``)
    naming the device, instead of a raw torch ``RuntimeError`` deep inside a run.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise error(
            f"device {device!r} invalid ({exc}); expected e.g. 'cpu', 'cuda' or 'cuda:0'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise error(f"device {str(dev)!r} requested but CUDA is not available; use 'cpu'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise error(
                f"device {str(dev)!r} requested but only {count} CUDA device(s) are visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise error(f"device {str(dev)!r} requested but MPS is not available; use 'cpu'")
    return dev
