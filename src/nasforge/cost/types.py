"""The cost record and the dataset shapes of the cost functions, free of torch: looking up a
cost that needs no network build (``nasforge arch info``) must not pay for importing it."""

from __future__ import annotations

from dataclasses import dataclass

#: Input resolution and number of classes per dataset, as in NAS-Bench-201.
DATASET_SHAPES: dict[str, tuple[int, int]] = {
    "cifar10": (32, 10),
    "cifar10-valid": (32, 10),
    "cifar100": (32, 100),
    "ImageNet16-120": (16, 120),
}


@dataclass(frozen=True)
class Cost:
    """Params and FLOPs, both in millions."""

    params_m: float
    flops_m: float

    def to_dict(self) -> dict[str, float]:
        return {"params_m": self.params_m, "flops_m": self.flops_m}
