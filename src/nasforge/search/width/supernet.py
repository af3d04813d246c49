"""Training a slimmable supernet (sandwich rule, min-min) and scoring widths with it.

Training (``train_supernet``) follows the sandwich rule of slimmable networks (Yu & Huang,
"Universally Slimmable Networks", ICCV 2019): every step runs the largest and the smallest
width plus ``num_random`` random ones on the same batch, accumulates their gradients and
takes one optimiser step. With CafeNet sharing each sampled width is first resolved to the
candidate placement of its free channels with the lowest loss on that batch (min-min,
Su et al., ICLR 2021), and only that sub-network is updated.

Scoring (``SupernetScorer``) resolves a width to its best placement the same way (lowest
training loss on fixed selection batches), recalibrates the BN statistics of that one
sub-network on training batches, and measures its accuracy on the validation split.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data import DatasetSplits, DeviceLoader
from nasforge.errors import SearchError
from nasforge.nn.slimmable import (
    FixedSharing,
    LocallyFreeSharing,
    Placement,
    SlimmableNetwork,
    placement_outputs,
    recalibrate_bn,
    select_placement,
)
from nasforge.spaces.width import WidthSpace
from nasforge.train import Recipe, evaluate
from nasforge.train.device import default_channels_last, resolve_device

Sharing = FixedSharing | LocallyFreeSharing
#: Training images on which the full-width net's BN statistics are estimated after training
#: (>= 2,000, as for every scored sub-network).
BN_CALIB_IMAGES = 2048


@dataclass(frozen=True)
class SupernetSettings:
    """How a supernet is trained, beyond the optimiser recipe.

    ``num_random``: random widths per step besides the largest and smallest (sandwich rule;
    Yu & Huang use 2). ``num_placements``: candidate placements per width for min-min
    (ignored by fixed sharing, which has one): the prefix, every group shifted right, then
    random mixes (:meth:`~nasforge.nn.slimmable.LocallyFreeSharing.placements`). The paper
    minimises over the whole local zone; with a zone of one FLOPs-sensitive bin that is
    ``2^g`` placements for ``g`` groups below full width (a median ResNet-20 configuration:
    thousands). How many the published runs looked at per step could not be established:
    no official code is public (paperswithcode lists none) and only the abstract and a
    review of the paper were readable here, which say the supernet "can be trained
    stochastically" within min-min. So the default stays 3; ``benchmarks/cafenet_inner_min.py``
    measures what a larger k costs per step and changes in the ranking (#24 item 7).
    ``distill``: in-place distillation
    (Yu & Huang 2019; AutoSlim, BigNAS; AOWS ``train_nas.py:198-219``): the largest width
    learns from the labels, every other width from the largest one's softmax (soft
    cross-entropy against its detached probabilities) on the same batch. ``None``: the
    search method's own default (fixed sharing and AOWS distil, CafeNet does not); a bare
    ``train_supernet`` call treats it as False.
    """

    num_random: int = 2
    num_placements: int = 3
    distill: bool | None = None

    def __post_init__(self) -> None:
        if self.num_random < 0:
            raise SearchError(f"num_random must be >= 0, got {self.num_random}")
        if self.num_placements < 1:
            raise SearchError(f"num_placements must be >= 1, got {self.num_placements}")


@dataclass
class SupernetLog:
    """Per-epoch record of supernet training (JSON-ready via ``to_dict``)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    free_wins: int = 0
    selections: int = 0
    train_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "free_wins": self.free_wins,
            "selections": self.selections,
            "free_win_rate": self.free_wins / self.selections if self.selections else None,
            "train_time": self.train_time,
        }


#: ``sampler(rng, n, epoch, step, steps)`` -> ``n`` random width configurations, shape (n, G).
Sampler = Callable[[np.random.Generator, int, int, int, int], np.ndarray]
#: ``on_step(epoch, step, steps, widths, per_sample_losses)`` after each optimiser step:
#: the sandwich's widths and each one's per-sample cross-entropy on the batch (detached).
StepHook = Callable[[int, int, int, list[tuple[int, ...]], list[torch.Tensor]], None]


def sandwich_widths(
    space: WidthSpace,
    rng: np.random.Generator,
    num_random: int,
    sampler: Callable[[np.random.Generator, int], np.ndarray] | None = None,
) -> list[tuple[int, ...]]:
    """Largest, smallest and ``num_random`` random widths (uniform, or from ``sampler``)."""
    draw = sampler or space.sample
    rand = [tuple(int(v) for v in w) for w in draw(rng, num_random)] if num_random else []
    return [space.largest(), space.smallest(), *rand]


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` against soft targets (in-place distillation)."""
    return -(target_probs * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def train_supernet(
    supernet: SlimmableNetwork,
    sharing: Sharing,
    data: DatasetSplits,
    recipe: Recipe,
    *,
    seed: int,
    settings: SupernetSettings | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    sampler: Sampler | None = None,
    on_step: StepHook | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SupernetLog:
    """Train ``supernet`` in place on ``data.train`` with the optimiser of ``recipe``.

    ``recipe`` is a ``nasforge.train.Recipe``: its optimiser, learning-rate schedule
    (``Recipe.lr_at``, per step), epochs, batch size and gradient clipping. Randomness: the loader's own generator
    and a numpy Generator seeded by ``seed`` for the widths and placements. ``channels_last``
    (default: :func:`nasforge.train.device.default_channels_last`, as in
    ``nasforge.train.Trainer``) only changes the memory layout. ``sampler`` replaces the
    uniform draw of the random widths (AOWS samples from its MRF marginals); ``on_step``
    sees every step's widths and per-sample losses; ``progress(done, total)`` is called
    after every step (total = epochs x steps per epoch).
    """
    device = resolve_device(device, SearchError)
    settings = settings or SupernetSettings()
    space = sharing.space
    rng = np.random.default_rng([int(seed), 1])
    supernet.to(device).train()
    if channels_last is None:
        channels_last = default_channels_last(supernet, device)
    if channels_last:
        supernet.to(memory_format=torch.channels_last)
    loader = DeviceLoader(
        data.train,
        data,
        int(recipe.batch_size),
        train=True,
        seed=seed,
        device=device,
        channels_last=channels_last,
    )
    opt = recipe.build_optimizer(supernet.parameters())
    steps = len(loader)
    log = SupernetLog()
    t0 = time.perf_counter()
    for epoch in range(int(recipe.epochs)):
        loader.set_epoch(epoch)
        sums = {"loss_largest": 0.0, "loss_smallest": 0.0, "acc_largest": 0.0, "acc_smallest": 0.0}
        n = 0
        lr = recipe.lr_at(epoch, 0, steps)
        for step, (x, y) in enumerate(loader):
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(epoch, step, steps)
            opt.zero_grad(set_to_none=True)
            draw = None
            if sampler is not None:
                draw = functools.partial(_call_sampler, sampler, epoch=epoch, step=step,
                                         steps=steps)  # fmt: skip
            widths = sandwich_widths(space, rng, settings.num_random, draw)
            teacher: torch.Tensor | None = None
            per_sample: list[torch.Tensor] = []
            for j, w in enumerate(widths):
                cands = sharing.placements(w, rng, settings.num_placements)
                # Min-min: every candidate's loss on this batch (kept in the graph, so the
                # winner needs no second forward pass); only the lowest one is back-propagated.
                best, outs, losses = placement_outputs(supernet, cands, x, y)
                if len(cands) > 1:
                    log.selections += 1
                    log.free_wins += int(not cands[best].is_prefix)
                logits, loss = outs[best], losses[best]
                if on_step is not None:
                    per_sample.append(F.cross_entropy(logits.detach(), y, reduction="none"))
                if bool(settings.distill) and j == 0:
                    teacher = torch.softmax(logits.detach(), dim=1)
                train_loss = (
                    loss if teacher is None or j == 0 else soft_cross_entropy(logits, teacher)
                )
                train_loss.backward()
                if j < 2:
                    key = "largest" if j == 0 else "smallest"
                    sums[f"loss_{key}"] += float(loss.detach()) * len(y)
                    sums[f"acc_{key}"] += float((logits.argmax(1) == y).sum()) * 100.0
                del outs, losses
            if recipe.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(supernet.parameters(), recipe.grad_clip)
            opt.step()
            n += len(y)
            if on_step is not None:
                on_step(epoch, step, steps, widths, per_sample)
            if progress is not None:
                progress(epoch * steps + step + 1, int(recipe.epochs) * steps)
        rec = {"epoch": epoch, "lr": lr, **{k: v / max(n, 1) for k, v in sums.items()}}
        rec["time"] = time.perf_counter() - t0
        log.epochs.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    # Every training forward above runs through ``functional_call`` on copies of the BN
    # buffers, so the full-width net's running statistics are still the initial ones:
    # estimate them on training batches (un-augmented) so ``supernet.net`` is usable as is.
    recalibrate_bn(
        supernet.net,
        _batches(
            data,
            "train",
            int(recipe.batch_size),
            -(-BN_CALIB_IMAGES // int(recipe.batch_size)),
            device,
            channels_last,
        ),
    )
    log.train_time = time.perf_counter() - t0
    supernet.eval()
    return log


def _call_sampler(
    sampler: Sampler, rng: np.random.Generator, n: int, *, epoch: int, step: int, steps: int
) -> np.ndarray:
    return sampler(rng, n, epoch, step, steps)


def _batches(
    data: DatasetSplits,
    split: str,
    batch_size: int,
    limit: int | None,
    device: Any,
    channels_last: bool,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = DeviceLoader(
        data.split(split),
        data,
        batch_size,
        train=False,
        device=device,
        channels_last=channels_last,
    )
    out = []
    for i, b in enumerate(loader):
        if limit is not None and i >= limit:
            break
        out.append(b)
    return out


@dataclass(frozen=True)
class Score:
    """A width configuration's supernet score: validation accuracy (%) and loss."""

    widths: tuple[int, ...]
    acc: float
    loss: float
    placement: Placement
    candidate_losses: tuple[float, ...]


class SupernetScorer:
    """Validation accuracy of width configurations under a trained supernet.

    Per configuration: up to ``num_placements`` candidate placements (seeded by the widths,
    so a configuration always gets the same candidates), the one with the lowest training
    loss on the selection batches (train-mode BN, as in training) is kept; its standalone
    copy gets BN statistics recomputed on ``calib_batches`` training batches, then its
    accuracy on ``split`` is the score. Scores are cached per configuration.
    """

    def __init__(
        self,
        supernet: SlimmableNetwork,
        sharing: Sharing,
        data: DatasetSplits,
        *,
        split: str = "valid",
        batch_size: int = 256,
        calib_batches: int = 2,
        select_batches: int = 1,
        num_placements: int = 3,
        seed: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool | None = None,
    ) -> None:
        if calib_batches < 1 or select_batches < 1:
            raise SearchError(
                f"calib_batches and select_batches must be >= 1, got "
                f"{calib_batches}, {select_batches}"
            )
        device = resolve_device(device, SearchError)
        self.supernet = supernet.to(device)
        self.sharing = sharing
        self.seed = int(seed)
        self.num_placements = int(num_placements)
        cl = default_channels_last(supernet, device) if channels_last is None else channels_last
        train = _batches(data, "train", batch_size, max(calib_batches, select_batches), device, cl)
        self.calib = train[:calib_batches]
        self.select = train[:select_batches]
        self.eval_loader = DeviceLoader(
            data.split(split), data, batch_size, train=False, device=device, channels_last=cl
        )
        self.cache: dict[tuple[int, ...], Score] = {}

    def candidates(self, widths: Sequence[int]) -> list[Placement]:
        key = zlib.crc32(np.asarray(widths, dtype=np.int64).tobytes())
        rng = np.random.default_rng([self.seed, key])
        return self.sharing.placements(tuple(int(w) for w in widths), rng, self.num_placements)

    @torch.no_grad()
    def best_placement(self, widths: Sequence[int]) -> tuple[Placement, list[float]]:
        """The candidate placement with the lowest mean loss on the selection batches."""
        cands = self.candidates(widths)
        if len(cands) == 1:
            return cands[0], [float("nan")]
        self.supernet.train()
        losses = np.zeros(len(cands))
        for x, y in self.select:
            _, ls = select_placement(self.supernet, cands, x, y)
            losses += np.asarray(ls)
        self.supernet.eval()
        return cands[int(np.argmin(losses))], (losses / len(self.select)).tolist()

    @torch.no_grad()
    def evaluate_placement(self, placement: Placement) -> tuple[float, float]:
        """(accuracy %, loss) of one placement after BN recalibration."""
        module = self.supernet.extract(placement)
        recalibrate_bn(module, self.calib)
        res = evaluate(module, self.eval_loader)
        return res["acc"], res["loss"]

    def score(self, widths: Sequence[int]) -> Score:
        key = tuple(int(w) for w in widths)
        if key not in self.cache:
            placement, losses = self.best_placement(key)
            acc, loss = self.evaluate_placement(placement)
            self.cache[key] = Score(key, acc, loss, placement, tuple(losses))
        return self.cache[key]


__all__ = [
    "Score",
    "SupernetLog",
    "SupernetScorer",
    "SupernetSettings",
    "sandwich_widths",
    "train_supernet",
]
