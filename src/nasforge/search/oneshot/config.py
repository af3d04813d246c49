"""The config every one-shot method shares (:class:`OneShotConfig`), its field checks and
the weight learning-rate schedule (:func:`cosine_lr`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from nasforge.errors import SearchError

#: The values of ``OneShotConfig.score_bn`` (see its docstring).
SCORE_BN = ("running", "batch")


@dataclass(frozen=True)
class OneShotConfig:
    """Hyper-parameters shared by the one-shot methods.

    Defaults are the NAS-Bench-201 DARTS settings of D-X-Y/AutoDL-Projects
    (``configs/nas-benchmark/algos/DARTS.config``: 50 epochs, SGD lr 0.025 nesterov momentum
    0.9, cosine to 0.001, batch 64, weight decay 5e-4;
    ``scripts-search/NAS-Bench-201-algos/DARTS-V1.sh``: C=16, N=5 (lines 20-21), arch Adam
    lr 3e-4, weight decay 1e-3, ``track_running_stats`` from its second argument, 1 in
    ``docs/NAS-Bench-201.md:227``; betas (0.5, 0.999) and ``--gradient_clip`` default 5 in
    ``exps/NAS-Bench-201-algos/DARTS-V1.py:383``). Each
    method's subclass overrides what its own published config changes. ``replace`` makes
    a validated copy, which is how tiny CPU runs shrink a published config.

    ``steps_per_epoch`` caps the weight steps per epoch and ``valid_batches`` the batches
    of each per-epoch evaluation (None = the whole split, as published). ``t_max`` is the
    cosine period in epochs (None = ``epochs``; xautodl ``get_optim_scheduler`` reads
    ``T_max = getattr(config, "T_max", config.epochs)``).

    ``score_bn`` is how BatchNorm normalises when a single path is scored (SETN / RSPS /
    ENAS candidate selection, ENAS' reward, the one-shot accuracy of a derived arch):
    ``"running"`` (default, official) puts the supernet in eval mode, so the running
    statistics accumulated during the search are used (``SETN.py:119``,
    ``RANDOM-NAS.py:109``, ``ENAS.py:123,206``); ``"batch"`` normalises with the scored
    batch's own statistics and restores the buffers afterwards -- our option: the running
    statistics average over many paths and describe no single one, which can blur a
    ranking of single paths.
    """

    #: The official procedure of the DARTS methods where the code bases differ, fixed per
    #: (method, space) by the config class (class attributes: neither overridden nor
    #: recorded): whether the arch step comes before the weight step (quark0/darts) or
    #: after it (xautodl), and whether the weight step's clipping norm covers the alphas
    #: (xautodl clips ``network.parameters()``, which hold them; quark0/darts does not).
    arch_step_first: ClassVar[bool] = False
    clip_alphas: ClassVar[bool] = True

    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    eta_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    C: int = 16
    N: int = 5
    track_running_stats: bool = True
    eval_batch_size: int = 512
    steps_per_epoch: int | None = None
    valid_batches: int | None = None
    t_max: int | None = None
    score_bn: str = "running"

    def __post_init__(self) -> None:
        if self.score_bn not in SCORE_BN:
            raise SearchError(
                f"config field score_bn={self.score_bn!r} invalid; expected one of {SCORE_BN}"
            )
        for name in ("epochs", "batch_size", "C", "N", "eval_batch_size"):
            check_int(self, name)
        for name in ("steps_per_epoch", "valid_batches", "t_max"):
            check_int(self, name, optional=True)
        for name in (
            "lr",
            "eta_min",
            "weight_decay",
            "grad_clip",
            "arch_lr",
            "arch_weight_decay",
            "momentum",
        ):
            check_float(self, name)
        for name in ("nesterov", "track_running_stats"):
            check_bool(self, name)
        if self.eta_min > self.lr:
            raise SearchError(f"eta_min={self.eta_min} exceeds lr={self.lr}; expected <= lr")
        betas = tuple(self.arch_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise SearchError(
                f"arch_betas={self.arch_betas!r} invalid; expected two floats in [0, 1)"
            )
        object.__setattr__(self, "arch_betas", (float(betas[0]), float(betas[1])))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **overrides: Any) -> OneShotConfig:
        """A validated copy with ``overrides`` applied; unknown fields are an error."""
        known = self.field_names()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise SearchError(
                f"unknown config field(s) {unknown} for {type(self).__name__}; "
                f"expected some of: {', '.join(known)}"
            )
        values = dict(overrides)
        for name, value in list(values.items()):
            # Accept ints for float fields (e.g. ``lr=1``) and lists for the betas tuple.
            default = getattr(self, name)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                values[name] = float(value)
            if isinstance(default, tuple) and isinstance(value, list):
                values[name] = tuple(value)
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check_float(config: Any, name: str, *, positive: bool = False) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is a finite real
    number >= 0 (> 0 with ``positive``); bools and strings are rejected."""
    value = getattr(config, name)
    expected = "a finite float > 0" if positive else "a finite float >= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise SearchError(f"config field {name}={value!r} invalid; expected {expected}")


def check_int(config: Any, name: str, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is an int >=
    ``minimum`` (or None, with ``optional``); bools are rejected."""
    value = getattr(config, name)
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"None or an int >= {minimum}" if optional else f"an int >= {minimum}"
        raise SearchError(f"config field {name}={value!r} invalid; expected {expected}")


def check_bool(config: Any, name: str) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is a bool."""
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise SearchError(f"config field {name}={value!r} invalid; expected True or False")


def cosine_lr(config: OneShotConfig, epoch: int) -> float:
    """The weight learning rate of (0-based) ``epoch``, constant within the epoch.

    xautodl ``xautodl/procedures/optimizers.py:70-100`` ``CosineAnnealingLR.get_lr``: without warm-up
    the cosine uses only the integer ``current_epoch`` (``current_iter``, updated every
    step by ``scheduler.update(None, step / len(loader))``, matters only during warm-up):
    ``eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` with ``T_max`` =
    ``config.t_max`` or ``epochs``; ``eta_min`` from ``epochs`` on. With ``T_max`` <
    ``epochs`` (ENAS' config) the schedule is periodic, as in the official code.
    """
    if epoch >= config.epochs:
        return config.eta_min
    t_max = config.t_max if config.t_max is not None else config.epochs
    return (
        config.eta_min + (config.lr - config.eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2
    )
