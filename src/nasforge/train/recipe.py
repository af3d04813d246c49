"""Training recipes: frozen dataclasses, registered by name.

The official NAS-Bench-201 hyper-parameters (xautodl ``configs/nas-benchmark/hyper-opts/
200E.config`` and ``12E.config``): SGD, lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4,
batch 256, cross-entropy ("Softmax"), cosine schedule with eta_min 0 and no warm-up, over
200 or 12 epochs. Smaller recipes (tiny CPU runs, tests) are these with fields replaced via
:meth:`Recipe.replace` -- one code path for all.

The DARTS evaluation recipes (``darts-cifar-600e``, ``darts-imagenet-250e``) are PC-DARTS's
``train.py`` / ``train_imagenet.py`` defaults with the flags its README runs them with
(``--auxiliary --cutout``); each value cites its file and line below.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from nasforge.errors import RecipeError
from nasforge.registry import Registry

SCHEDULERS = ("cosine", "constant", "linear")
WARMUP_STYLES = ("step", "epoch")
#: PC-DARTS's linear decay keeps a gentler slope for its last 5 epochs
#: (train_imagenet.py:186-194, adjust_lr).
LINEAR_TAIL_EPOCHS = 5
#: Fields added for the DARTS recipes, with the defaults that leave a recipe as it was;
#: :meth:`Recipe.to_dict` omits them at these values, so the dicts (and run identities)
#: of recipes written before the fields existed are unchanged.
_LATER_FIELDS: dict[str, Any] = {
    "cutout": 0,
    "drop_path_prob": 0.0,
    "auxiliary_weight": 0.0,
    "label_smoothing": 0.0,
    "warmup_style": "step",
    "betas": (0.9, 0.999),
}
#: ``sgd`` (momentum / Nesterov / weight decay), ``adam`` (L2 weight decay, as
#: ``torch.optim.Adam``) and ``adamw`` (decoupled weight decay): restoration and
#: translation recipes train with Adam, as BasicSR and fairseq do.
OPTIMIZERS = ("sgd", "adam", "adamw")
#: Training criteria; each task says which it implements (classification: ``ce``;
#: restoration: ``l1`` / ``mse``).
LOSSES = ("ce", "l1", "mse", "detection")


@dataclass(frozen=True)
class Recipe:
    """Everything that fixes how a network is trained, apart from the seed and the data.

    Learning-rate schedule (as xautodl's ``CosineAnnealingLR`` used by NB201): during the
    first ``warmup_epochs`` the rate rises linearly per step to ``lr``; after that it is
    constant within an epoch and follows ``eta_min + (lr - eta_min) * (1 + cos(pi * e / T)) / 2``
    for the e-th post-warm-up epoch, ``T = epochs - warmup_epochs``. So the last epoch trains
    at a small positive rate, exactly as the benchmark did.

    ``scheduler="linear"`` is PC-DARTS's ImageNet decay: ``lr * (E - 5 - e) / (E - 5)``,
    then ``lr * (E - e) / ((E - 5) * 5)`` over the last 5 epochs (fewer when ``E <= 5``).
    ``warmup_style="epoch"`` is PC-DARTS's warm-up, ``lr * (e + 1) / warmup_epochs`` for
    the whole of epoch ``e``, instead of xautodl's per-step ramp from 0.

    DARTS additions, all off by default: ``cutout`` (side of the square zeroed at a random
    centre of each normalised training image, clipped at the border; 0 = off),
    ``drop_path_prob`` (final drop-path rate, ramped linearly: epoch ``e`` uses
    ``drop_path_prob * e / epochs``), ``auxiliary_weight`` (weight of the auxiliary head's
    loss when the network has one) and ``label_smoothing`` (of the training loss only).
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
    cutout: int = 0
    drop_path_prob: float = 0.0
    auxiliary_weight: float = 0.0
    label_smoothing: float = 0.0
    warmup_style: str = "step"
    betas: tuple[float, float] = (0.9, 0.999)

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
        if isinstance(self.cutout, bool) or not isinstance(self.cutout, int) or self.cutout < 0:
            raise bad("cutout", "an int >= 0 (the side of the cut square in pixels; 0 = off)")
        for f in ("drop_path_prob", "label_smoothing"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise bad(f, "a number in [0, 1)")
        w = self.auxiliary_weight
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise bad("auxiliary_weight", "a finite number >= 0")
        if self.warmup_style not in WARMUP_STYLES:
            raise bad("warmup_style", f"one of {WARMUP_STYLES}")
        b = self.betas
        if (
            not isinstance(b, (tuple, list))
            or len(b) != 2
            or not all(isinstance(v, (int, float)) and 0 <= v < 1 for v in b)
        ):
            raise bad("betas", "two numbers in [0, 1) (Adam's beta1, beta2)")
        if self.optimizer != "sgd" and self.nesterov:
            raise bad("nesterov", f"False with optimizer {self.optimizer!r} (Nesterov is SGD's)")

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
        """Plain JSON-serialisable dict of the fields (DARTS-era fields only when set)."""
        d = dataclasses.asdict(self)
        d["betas"] = tuple(d["betas"])
        for k, default in _LATER_FIELDS.items():
            if d[k] == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        """Inverse of :meth:`to_dict` (validated)."""
        if "betas" in d:
            d = {**d, "betas": tuple(d["betas"])}  # JSON stores the pair as a list
        try:
            return cls(**d)
        except TypeError as exc:
            raise RecipeError(f"not a recipe dict: {exc}") from None

    def lr_at(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """Learning rate of ``step`` (0-based) within ``epoch`` (0-based)."""
        if epoch < self.warmup_epochs and self.warmup_style == "epoch":
            # PC-DARTS train_imagenet.py:156-158: lr * (epoch + 1) / 5 for the whole epoch.
            return self.lr * (epoch + 1) / self.warmup_epochs
        if epoch < self.warmup_epochs:
            # xautodl: (current_epoch + current_iter) / warmup * base_lr, per step.
            return self.lr * (epoch + step / max(steps_per_epoch, 1)) / self.warmup_epochs
        if self.scheduler == "constant":
            return self.lr
        if epoch >= self.epochs:
            return self.eta_min
        if self.scheduler == "linear":
            # PC-DARTS train_imagenet.py:186-194 (adjust_lr); the epoch counts from 0
            # including the warm-up epochs, whose rate the warm-up overrides.
            tail = min(LINEAR_TAIL_EPOCHS, self.epochs - 1)
            if self.epochs - epoch > tail:
                return self.lr * (self.epochs - tail - epoch) / (self.epochs - tail)
            return self.lr * (self.epochs - epoch) / ((self.epochs - tail) * tail)
        # xautodl CosineAnnealingLR.get_lr: cos(pi * (epoch - warmup) / T_max) with
        # T_max = epochs (get_optim_scheduler's default), not epochs - warmup.
        e = epoch - self.warmup_epochs
        return (
            self.eta_min + (self.lr - self.eta_min) * (1 + math.cos(math.pi * e / self.epochs)) / 2
        )

    def build_optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The recipe's optimizer over ``params`` (learning rate set per step by the trainer)."""
        if self.optimizer in ("adam", "adamw"):
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
            return cls(params, lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
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


@RECIPES.register("darts-cifar-600e")
def darts_cifar_600e() -> Recipe:
    """DARTS / PC-DARTS CIFAR-10 evaluation (yuhuixu1993/PC-DARTS train.py, run as its
    README says with ``--auxiliary --cutout``).

    batch 96 (train.py:23), lr 0.025 (:24), momentum 0.9 (:25), weight decay 3e-4 (:26),
    600 epochs (:29), auxiliary weight 0.4 (:34), cutout length 16 (:36), drop-path 0.3
    (:37) ramped as ``0.3 * epoch / epochs`` (:108), grad clip 5 (:41, :138), plain SGD
    without Nesterov (:80-85), ``CosineAnnealingLR(optimizer, epochs)`` to 0 stepped at
    each epoch start (:103-106; with the PyTorch 0.3 it was written for, epoch e trains at
    ``0.0125 * (1 + cos(pi * e / 600))``, which is :meth:`Recipe.lr_at`).
    """
    return Recipe(
        "darts-cifar-600e",
        epochs=600,
        batch_size=96,
        lr=0.025,
        momentum=0.9,
        nesterov=False,
        weight_decay=3e-4,
        scheduler="cosine",
        grad_clip=5.0,
        cutout=16,
        drop_path_prob=0.3,
        auxiliary_weight=0.4,
    )


@RECIPES.register("darts-imagenet-250e")
def darts_imagenet_250e() -> Recipe:
    """PC-DARTS ImageNet (mobile) evaluation (yuhuixu1993/PC-DARTS train_imagenet.py, run
    with ``--auxiliary`` as its README says).

    batch 1024 (train_imagenet.py:24), lr 0.5 (:25), momentum 0.9 (:26), weight decay 3e-5
    (:27), 250 epochs (:29), auxiliary weight 0.4 (:33), drop-path 0 (:34), grad clip 5
    (:38, :215), label smoothing 0.1 on the training loss (:39, :100, :165), linear decay
    (:40, :150-151, adjust_lr :186-194), warm-up ``lr * (epoch + 1) / 5`` over the first 5
    epochs (:156-158; the official code skips it for batches <= 256, this recipe always
    warms up), plain SGD without Nesterov (:103-108). No cutout.
    """
    return Recipe(
        "darts-imagenet-250e",
        epochs=250,
        batch_size=1024,
        lr=0.5,
        momentum=0.9,
        nesterov=False,
        weight_decay=3e-5,
        scheduler="linear",
        warmup_epochs=5,
        warmup_style="epoch",
        grad_clip=5.0,
        auxiliary_weight=0.4,
        label_smoothing=0.1,
    )


@RECIPES.register("tsm-cos-50e")
def tsm_cos_50e() -> Recipe:
    """TSM's Kinetics training (mit-han-lab/temporal-shift-module
    scripts/train_tsm_kinetics_rgb_8f.sh: lr 0.02, weight decay 1e-4, 50 epochs, batch 128,
    gradient clipping 20) with its cosine option (main.py:355-357, ``--lr_type cos``:
    ``0.5 * lr * (1 + cos(pi * epoch / epochs))``); the script itself steps at 20/40. Plain
    SGD momentum 0.9 (opts.py:39, main.py builds ``torch.optim.SGD`` without Nesterov)."""
    return Recipe(
        "tsm-cos-50e", 50, batch_size=128, lr=0.02, nesterov=False, weight_decay=1e-4,
        grad_clip=20.0,
    )  # fmt: skip


@RECIPES.register("video-tiny")
def video_tiny() -> Recipe:
    """``tsm-cos-50e`` cut to CPU scale for the embedded moving digits: 12 epochs of
    batch 32 at lr 0.05 (the small batch trains from scratch, without ImageNet weights)."""
    return tsm_cos_50e().replace(name="video-tiny", epochs=12, batch_size=32, lr=0.05)


@RECIPES.register("translation-adam")
def translation_adam() -> Recipe:
    """Translation training with the optimiser of DARTSformer's search (Zhao et al. 2021,
    section 3, as a third-party summary reports it): Adam with betas (0.9, 0.98), peak lr
    5e-4, no weight decay, label smoothing 0.1 (dropout 0.1 is the network's). The paper's
    inverse-square-root warm-up over 10k steps has no counterpart among the schedulers;
    this recipe decays by cosine over 30 epochs of batches of 64 sentences, without
    warm-up (so that one-epoch runs stay valid; CPU-scale, not the paper's token
    batches)."""
    return Recipe(
        "translation-adam",
        epochs=30,
        batch_size=64,
        lr=5e-4,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        optimizer="adam",
        betas=(0.9, 0.98),
        label_smoothing=0.1,
    )


#: AOWS's reference batch for its lr scaling (``train_nas.py:82``: ``lr * batch_size / 256``).
AOWS_LR_BATCH = 256


@RECIPES.register("aows-20e")
def aows_20e(batch_size: int = 512) -> Recipe:
    """AOWS's slimmable-supernet training (bermanmaxim/AOWS ``train_nas.py:36-46, 82-87``):
    20 epochs, batch 512, SGD lr ``0.1 * batch / 256`` (0.2 at 512), momentum 0.9 without
    Nesterov (``torch.optim.SGD`` defaults), weight decay 1e-5, no scheduler (the lr stays
    constant; the script builds none). Its temperature schedule's knots (epochs 5, 6, 10,
    20, ``aows_temp``) assume these 20 epochs. Another batch size keeps the scaling rule:
    ``aows_20e(batch_size=64)`` trains at 0.025."""
    return Recipe(
        "aows-20e",
        epochs=20,
        batch_size=batch_size,
        lr=0.1 * batch_size / AOWS_LR_BATCH,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-5,
        scheduler="constant",
    )


def _restoration(name: str, loss: str) -> Recipe:
    """CPU-scale restoration training: Adam (betas 0.9/0.999, no weight decay: EDSR's
    optimizer), batch 16 (EDSR), cosine decay over 20 epochs of the task's patches, lr 1e-3
    (EDSR trains at 1e-4 for 300k steps; a budget of a few thousand steps needs a larger
    rate). Use ``--epochs`` / ``--lr`` to change the budget."""
    return Recipe(
        name,
        epochs=20,
        batch_size=16,
        lr=1e-3,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        scheduler="cosine",
        loss=loss,
        optimizer="adam",
    )


@RECIPES.register("restoration-l1")
def restoration_l1() -> Recipe:
    """Super-resolution: L1 loss (EDSR); see :func:`_restoration`."""
    return _restoration("restoration-l1", "l1")


@RECIPES.register("restoration-mse")
def restoration_mse() -> Recipe:
    """Denoising: MSE loss (DnCNN); see :func:`_restoration`."""
    return _restoration("restoration-mse", "mse")


NB201_200E = nb201_200e()
NB201_12E = nb201_12e()


@RECIPES.register("smnas-det")
def smnas_det() -> Recipe:
    """SM-NAS's from-scratch detector training, CPU scale: SGD lr 0.02 with Nesterov
    momentum (Vega's SM-NAS example config ``train_setting``), weight decay 1e-4 and
    gradient clipping at norm 35 (mmdetection's RetinaNet config); cosine decay over 12
    epochs where Vega steps the rate down at epochs 8 and 11 (no step scheduler here), and
    no warm-up where Vega warms up linearly from a third of the rate over the first
    iterations (warm-up here is counted in epochs, longer than a short CPU run can spare).
    ``detection``: the detector's own loss (focal + box terms)."""
    return Recipe(
        "smnas-det",
        epochs=12,
        batch_size=16,
        lr=0.02,
        weight_decay=1e-4,
        grad_clip=35.0,
        loss="detection",
    )


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
