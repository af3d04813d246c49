"""Params and multiply-adds of PV-NAS archs on the video datasets (analytic, per clip)."""

from __future__ import annotations

from typing import Any

from nasforge.cost.registry import ARCH_COSTS
from nasforge.cost.types import Cost
from nasforge.errors import NasforgeError

#: (frames per clip as sampled, side, input channels, classes) of the embedded video data
#: at the video task's defaults (4 segments of 16x16 grey frames).
VIDEO_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "moving-digits": (4, 16, 1, 4),
    "moving-digits-full": (4, 16, 1, 20),
    "moving-digits-motion": (4, 16, 1, 2),
}


@ARCH_COSTS.register("pvnas")
def pvnas_arch_cost(arch: Any, dataset: str = "moving-digits") -> Cost:
    """Params and multiply-adds (millions) of a pvnas arch (value or string) at C=16."""
    from nasforge.spaces.pvnas import PVNASSpace, pvnas_cost

    if dataset not in VIDEO_SHAPES:
        raise NasforgeError(
            f"unknown dataset {dataset!r} for pvnas costs; expected one of {sorted(VIDEO_SHAPES)}"
        )
    a = PVNASSpace().from_string(arch) if isinstance(arch, str) else arch
    t, s, c, k = VIDEO_SHAPES[dataset]
    cost = pvnas_cost(a, frames=t, size=s, in_channels=c, num_classes=k)
    return Cost(cost["params"] / 1e6, cost["macs"] / 1e6)
