"""Training recipes: frozen dataclasses, registered by name.

The official NAS-Bench-201 hyper-parameters (xautodl ``configs/nas-benchmark/hyper-opts/
200E.config`` and ``12E.config``): SGD, lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4,
batch 256, cross-entropy ("Softmax"), cosine schedule with eta_min 0 and no warm-up, over
200 or 12 epochs. Smaller recipes (tiny CPU runs, tests) are these with fields replaced via
:meth:`Recipe.replace` -- one code path for all.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from nasforge.errors import RecipeError
from nasforge.registry import Registry

SCHEDULERS = ("cosine", "constant")
OPTIMIZERS = ("sgd",)
LOSSES = ("ce",)


@dataclass(frozen=True)
class Recipe:
    """Everything that fixes how a network is trained, apart from the seed and the data.

    Learning-rate schedule (as xautodl's ``CosineAnnealingLR`` used by NB201): during the
    first ``warmup_epochs`` the rate rises linearly per step to ``lr``; after that it is
    constant within an epoch and follows ``eta_min + (lr - eta_min) * (1 + cos(pi * e / T)) / 2``
    for the e-th post-warm-up epoch, ``T = epochs - warmup_epochs``. So the last epoch trains
    at a small positive rate, exactly as the benchmark did.
    """

    name: str
    epochs: int
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    eta_min: float = 0.0
    warmup_epochs: int = 0
    loss: str = "ce"
    optimizer: str = "sgd"
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        def bad(field: str, expected: str) -> RecipeError:
            return RecipeError(
                f"recipe {self.name!r}: {field}={getattr(self, field)!r}, expected {expected}"
            )

        if not isinstance(self.name, str) or not self.name:
            raise RecipeError(f"recipe name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise bad("epochs", "an int >= 1")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise bad("batch_size", "an int >= 1")
        for f in ("lr", "momentum", "weight_decay", "eta_min"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise bad(f, "a finite number >= 0")
        if self.lr <= 0:
            raise bad("lr", "> 0")
        if self.eta_min > self.lr:
            raise bad("eta_min", f"<= lr ({self.lr})")
        if self.momentum >= 1:
            raise bad("momentum", "< 1")
        if self.nesterov and self.momentum == 0:
            raise bad("nesterov", "False when momentum is 0 (Nesterov needs momentum)")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise bad("warmup_epochs", f"an int in [0, epochs={self.epochs})")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"one of {SCHEDULERS}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.loss not in LOSSES:
            raise bad("loss", f"one of {LOSSES}")
        if self.grad_clip is not None and not (
            isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0
        ):
            raise bad("grad_clip", "None or a number > 0")

    def replace(self, **overrides: Any) -> Recipe:
        """A new, validated recipe with ``overrides``.

        Unless ``name`` is given, the name records what changed, e.g.
        ``nb201-12e[epochs=2]``, so a derived recipe is never mistaken for the official one.
        """
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            fields = ", ".join(f.name for f in dataclasses.fields(self))
            raise RecipeError(f"unknown recipe fields {sorted(unknown)}; expected: {fields}")
        changed = {k: v for k, v in overrides.items() if k != "name" and getattr(self, k) != v}
        if "name" not in overrides and changed:
            desc = ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
            overrides = {**overrides, "name": f"{self.name}[{desc}]"}
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict` (validated)."""
        try:
            return cls(**d)
        except TypeError as exc:
            raise RecipeError(f"not a recipe dict: {exc}") from None

    def lr_at(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """Learning rate of ``step`` (0-based) within ``epoch`` (0-based)."""
        if epoch < self.warmup_epochs:
            # xautodl: (current_epoch + current_iter) / warmup * base_lr, per step.
            return self.lr * (epoch + step / max(steps_per_epoch, 1)) / self.warmup_epochs
        if self.scheduler == "constant":
            return self.lr
        if epoch >= self.epochs:
            return self.eta_min
        # xautodl CosineAnnealingLR.get_lr: cos(pi * (epoch - warmup) / T_max) with
        # T_max = epochs (get_optim_scheduler's default), not epochs - warmup.
        e = epoch - self.warmup_epochs
        return (
            self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * e / self.epochs)) / 2
        )

    def build_optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The recipe's optimizer over ``params`` (learning rate set per step by the trainer)."""
        return torch.optim.SGD(
            params,
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )


RECIPES: Registry[Recipe] = Registry("recipe")


@RECIPES.register("nb201-200e")
def nb201_200e() -> Recipe:
    """NAS-Bench-201's main schedule (xautodl configs/nas-benchmark/hyper-opts/200E.config)."""
    return Recipe("nb201-200e", epochs=200)


@RECIPES.register("nb201-12e")
def nb201_12e() -> Recipe:
    """NAS-Bench-201's short schedule (xautodl configs/nas-benchmark/hyper-opts/12E.config)."""
    return Recipe("nb201-12e", epochs=12)


NB201_200E = nb201_200e()
NB201_12E = nb201_12e()


def get_recipe(name: str | Recipe, **overrides: Any) -> Recipe:
    """The registered recipe ``name`` (or a Recipe as is), with ``overrides`` replaced.

    Override values of ``None`` are ignored, so CLI options can be passed straight through.
    """
    if isinstance(name, Recipe):
        recipe = name
    elif name in RECIPES:
        recipe = RECIPES.create(name)
    else:
        raise RecipeError(f"unknown recipe {name!r}; expected one of: {', '.join(RECIPES.names())}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return recipe.replace(**overrides) if overrides else recipe
