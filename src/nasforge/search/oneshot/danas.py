"""DA-NAS: data-adapted pruning (Dai et al., "DA-NAS: Data Adapted Pruning for Efficient
Neural Architecture Search", ECCV 2020), on the NAS-Bench-201 space.

What the paper fixes and we keep: a short warm-up ranks the classes by difficulty; the
supernet is then trained on a growing subset of the classes, easy ones first, and after
each stage the weakest candidate ops are pruned, so that the last pruning happens on the
full data and leaves one op per edge. The paper's exact stage lengths, class schedule and
pruning criterion for this space are not public in full; ours, and why:

* Warm-up (``warmup_epochs``, default 10 of 50; 0 ranks after the first epoch): uniform single paths on all classes. At
  its end each class's difficulty is its validation accuracy over ``eval_paths`` random
  paths (one validation batch each); classes are ordered easy (high accuracy) first, ties
  by class id.
* Stages: ``ops - 1`` (NB201: 4) stages share the remaining epochs equally (stage ``s`` ends
  after epoch ``warmup + round((s + 1) * (epochs - warmup) / 4)``), one pruning per edge at
  the end of each, so one op per edge remains after the last. Stage ``s`` trains on the
  easiest ``ceil(f_s * classes)`` classes with ``f_s`` linear from ``start_fraction`` (0.5)
  to 1: the last stage, and so the last pruning, sees the full data.
* Training: a uniform single path over each edge's surviving ops per step (SPOS-style, as
  DA-NAS' sampled-path training), on the batch's images of the stage's classes only.
* Pruning score: the mean validation accuracy, on the stage's classes, of ``eval_paths``
  paths through the op (each edge draws its survivors in shuffled turns, so every survivor
  is scored about equally often); the weakest survivor of each edge goes. This is the
  path-credit score of DDPNAS rather than DA-NAS' learned block weights: it needs no
  architecture optimizer and scores ops exactly as the trained paths are used.

Runs shorter than the schedule prune what is left at the end, on the full data.
``probabilities()`` is the sampling distribution (uniform over the survivors); the derived
arch is each edge's best-scored survivor. Before the first pruning no op has a score yet:
each epoch's arch is then that of a scoring done for the purpose (:meth:`op_scores` on the
stage's classes, drawn from a copy of the method's generator so the search itself is
unchanged; ``eval_paths`` validation batches per epoch until the first pruning) rather
than op 0 (``none``) everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import Batch, SearchContext, StepStats, top1_correct
from nasforge.search.oneshot.config import OneShotConfig, check_float
from nasforge.search.oneshot.sampling import SinglePathSearch, check_int
from nasforge.search.registry import ONESHOT

#: One pruning per edge per stage: NB201's five ops down to one (a space with ``n`` ops
#: has ``n - 1`` stages).
NUM_STAGES = 4


@dataclass(frozen=True)
class DANASConfig(OneShotConfig):
    """DA-NAS' settings on NB201 (see the module docstring)."""

    epochs: int = 50
    warmup_epochs: int = 10
    start_fraction: float = 0.5
    eval_paths: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "warmup_epochs", 0, self.epochs)
        check_float(self, "start_fraction", positive=True)
        if self.start_fraction > 1:
            raise SearchError(
                f"config field start_fraction={self.start_fraction!r} invalid; expected in (0, 1]"
            )
        check_int(self, "eval_paths", 1)


def stage_ends(epochs: int, warmup: int, stages: int = NUM_STAGES) -> list[int]:
    """The (1-based) epoch after which each stage's pruning happens."""
    span = epochs - warmup
    return [warmup + round((s + 1) * span / stages) for s in range(stages)]


def class_schedule(
    order: list[int], start_fraction: float, stages: int = NUM_STAGES
) -> list[list[int]]:
    """The classes each stage trains on: the easiest ``ceil(f_s * n)`` of ``order`` (easy
    first), ``f_s`` linear from ``start_fraction`` to 1."""
    n = len(order)
    fractions = np.linspace(start_fraction, 1.0, stages) if stages > 1 else np.ones(1)
    return [list(order[: max(1, math.ceil(f * n - 1e-9))]) for f in fractions]


def restrict(batch: Batch, classes: torch.Tensor | None) -> Batch:
    """The part of ``batch`` whose labels are in ``classes`` (None = all)."""
    x, y = batch
    if classes is None:
        return x, y
    keep = torch.isin(y, classes.to(y.device))
    return x[keep], y[keep]


@ONESHOT.register("da-nas")
class DANAS(SinglePathSearch):
    """Easy-to-hard class curriculum; weakest survivors pruned at the end of each stage (a
    space whose paths are archs)."""

    name = "da-nas"
    config_class = DANASConfig
    classification_only = True
    needs = frozenset({"path-archs"})

    def __init__(self, config: OneShotConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # Every op must be scored before the first pruning: one path per op at least.
        check_int(self.config, "eval_paths", self.space.shape[1], why="every op must be scored")
        #: One pruning per edge per stage: the space's ops down to one.
        self.num_stages = self.space.shape[1] - 1

    def setup_arch(self) -> None:
        self.alive = np.ones(self.space.shape, dtype=bool)
        self.scores = np.zeros(self.space.shape)
        self.class_order: list[int] | None = None
        self.num_classes = int(self.supernet.num_classes)  # type: ignore[union-attr]
        self.stage = -1  # -1: warm-up
        self.prunings = 0

    # -- schedule --------------------------------------------------------------------------
    def stage_of(self, epoch: int) -> int:
        """The stage (0-based; -1 = warm-up) that 0-based ``epoch`` belongs to."""
        cfg = self.config
        if epoch < cfg.warmup_epochs:  # type: ignore[attr-defined]
            return -1
        ends = stage_ends(cfg.epochs, cfg.warmup_epochs, self.num_stages)  # type: ignore[attr-defined]
        return next((s for s, end in enumerate(ends) if epoch < end), self.num_stages - 1)

    def stage_classes(self, stage: int) -> list[int] | None:
        """The classes stage ``stage`` trains on (None = all: warm-up or unranked)."""
        if stage < 0 or self.class_order is None:
            return None
        fraction = self.config.start_fraction  # type: ignore[attr-defined]
        return class_schedule(self.class_order, fraction, self.num_stages)[stage]

    def _class_tensor(self, stage: int) -> torch.Tensor | None:
        classes = self.stage_classes(stage)
        return None if classes is None else torch.tensor(classes, dtype=torch.int64)

    def random_path(self) -> list[int]:
        """One op per edge, uniform over the edge's survivors."""
        return [int(self.rng.choice(np.flatnonzero(alive))) for alive in self.alive]

    def begin_epoch(self, epoch: int) -> None:
        self.stage = self.stage_of(epoch)

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        x, y = restrict(base, self._class_tensor(self.stage))
        path = self.random_path()
        if y.numel() == 0:
            zero = torch.zeros((), dtype=torch.float64, device=y.device)
            return zero, zero.long(), 0
        return self.path_step((x, y), path)

    # -- class ranking and pruning ---------------------------------------------------------
    def rank_classes(self, ctx: SearchContext) -> list[int]:
        """Classes ordered easy (high valid accuracy over random paths) to hard."""
        assert self.supernet is not None
        correct = np.zeros(self.num_classes)
        total = np.zeros(self.num_classes)
        batches = ctx.valid_batches()
        with self.scoring_statistics(), torch.no_grad():
            for _ in range(self.config.eval_paths):  # type: ignore[attr-defined]
                x, y = next(batches)
                hit = self.supernet(x, index=self.random_path()).argmax(dim=1) == y
                correct += np.bincount(y.cpu().numpy(), hit.cpu().numpy(), self.num_classes)
                total += np.bincount(y.cpu().numpy(), minlength=self.num_classes)
        acc = np.where(total > 0, correct / np.maximum(total, 1), 0.0)
        # Stable sort on -acc: ties keep class-id order.
        return [int(c) for c in np.argsort(-acc, kind="stable")]

    def op_scores(
        self,
        ctx: SearchContext,
        classes: torch.Tensor | None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Mean valid accuracy (fraction) of the scored paths through each surviving op
        (paths drawn from ``rng``, default the method's generator)."""
        assert self.supernet is not None
        rng = self.rng if rng is None else rng
        total = np.zeros(self.alive.shape)
        count = np.zeros(self.alive.shape)
        turns = [rng.permutation(np.flatnonzero(alive)) for alive in self.alive]
        batches = ctx.valid_batches()
        with self.scoring_statistics(), torch.no_grad():
            for i in range(self.config.eval_paths):  # type: ignore[attr-defined]
                path = [int(t[i % len(t)]) for t in turns]
                x, y = restrict(next(batches), classes)
                if y.numel() == 0:
                    continue
                acc = top1_correct(self.supernet(x, index=path), y) / int(y.shape[0])
                for e, k in enumerate(path):
                    total[e, k] += acc
                    count[e, k] += 1
        return np.where(count > 0, total / np.maximum(count, 1), -np.inf)

    def prune(self, ctx: SearchContext, classes: torch.Tensor | None) -> None:
        """Score the survivors on ``classes`` and drop each edge's weakest (first on ties)."""
        scores = self.op_scores(ctx, classes)
        self.scores = np.where(self.alive, scores, 0.0)
        for e in range(len(self.alive)):
            survivors = np.flatnonzero(self.alive[e])
            if len(survivors) > 1:
                self.alive[e, survivors[int(np.argmin(scores[e, survivors]))]] = False
        self.prunings += 1

    def end_epoch(self, epoch: int, ctx: SearchContext) -> None:
        cfg = self.config
        done = epoch + 1
        if self.class_order is None and done >= max(cfg.warmup_epochs, 1):  # type: ignore[attr-defined]
            # Until the classes are ranked every class trains (warmup_epochs=0, a smoke
            # run: the first epoch is the warm-up).
            self.class_order = self.rank_classes(ctx)
        ends = stage_ends(cfg.epochs, cfg.warmup_epochs, self.num_stages)  # type: ignore[attr-defined]
        for s, end in enumerate(ends):
            if end == done and self.prunings <= s:
                self.prune(ctx, self._class_tensor(s))

    def finalize(self, ctx: SearchContext) -> Any:
        while (self.alive.sum(axis=1) > 1).any():
            self.prune(ctx, None)
        return self.derive(ctx)

    def derive(self, ctx: SearchContext) -> Any:
        """Each edge's best-scored survivor (scored now if no pruning has scored yet)."""
        scores = self.scores
        if self.prunings == 0:
            # A copy of the generator: the scoring leaves the search's draws untouched.
            rng = np.random.default_rng()
            rng.bit_generator.state = self.rng.bit_generator.state
            scores = self.op_scores(ctx, self._class_tensor(self.stage), rng)
        masked = np.where(self.alive, scores, -np.inf)
        return self.space.path_arch(np.argmax(masked, axis=1).tolist())

    def probabilities(self) -> np.ndarray:
        return self.alive / self.alive.sum(axis=1, keepdims=True)

    def extra_record(self) -> dict[str, Any]:
        classes = self.stage_classes(self.stage)
        return {
            "stage": self.stage,
            "classes": self.num_classes if classes is None else len(classes),
            "survivors": self.alive.sum(axis=1).tolist(),
            "op_scores": self.scores.tolist(),
        }

    def arch_state(self) -> dict[str, Any]:
        return {
            "alive": self.alive.tolist(),
            "scores": self.scores.tolist(),
            "class_order": self.class_order,
            "stage": self.stage,
            "prunings": self.prunings,
        }

    def load_arch_state(self, state: dict[str, Any]) -> None:
        self.alive = np.asarray(state["alive"], dtype=bool)
        self.scores = np.asarray(state["scores"], dtype=np.float64)
        order = state["class_order"]
        self.class_order = None if order is None else [int(c) for c in order]
        self.stage = int(state["stage"])
        self.prunings = int(state["prunings"])
