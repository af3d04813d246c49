"""One trainer for every network: recipe-driven, on-device data, per-epoch records,
atomic checkpoints and bit-identical resume on CPU."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import CheckpointError, DataError, RecipeError
from nasforge.io import atomic_torch_save, atomic_write_json, to_jsonable
from nasforge.progress import report_epoch
from nasforge.tasks import Task, TaskData, evaluate_classifier, get_task
from nasforge.train.checkpoint import (
    check_identity,
    data_fingerprint,
    load_checkpoint,
    model_fingerprint,
    restoring,
    resume_path,
)
from nasforge.train.device import default_channels_last, resolve_device
from nasforge.train.recipe import Recipe, get_recipe

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
#: Format 2 stores the run's identity (format 1 checkpoints, without it, are refused).
_CKPT_FORMAT = "nasforge-checkpoint-2"


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators (model initialisation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class EpochRecord:
    """Metrics of one epoch, losses averaged per sample.

    ``eval`` maps each evaluated split to its task's metrics (classification:
    ``{"loss", "acc"}``, accuracies in percent); ``train_acc`` is the training accuracy of a
    classification run (None for tasks that report no training accuracy); ``epoch_time`` is
    the wall time of the training pass, ``eval_time`` of all evaluations, ``lr`` the rate at
    the epoch start.
    """

    epoch: int
    train_loss: float
    train_acc: float | None
    eval: dict[str, dict[str, float]]
    epoch_time: float
    eval_time: float
    lr: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            **({} if self.train_acc is None else {"train_acc": self.train_acc}),
            "eval": {k: dict(v) for k, v in self.eval.items()},
            "epoch_time": self.epoch_time,
            "eval_time": self.eval_time,
            "lr": self.lr,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        def num(x: Any) -> float:  # JSON stores non-finite values as null
            return math.nan if x is None else float(x)

        return cls(
            epoch=int(d["epoch"]),
            train_loss=num(d["train_loss"]),
            train_acc=num(d["train_acc"]) if "train_acc" in d else None,
            eval={k: {m: num(x) for m, x in v.items()} for k, v in d["eval"].items()},
            epoch_time=num(d["epoch_time"]),
            eval_time=num(d["eval_time"]),
            lr=num(d["lr"]),
        )


@dataclass
class TrainResult:
    """The record of one training run; a plain object that round-trips through JSON.

    ``status`` is ``"ok"`` or ``"diverged"`` (a non-finite loss stopped the run; ``error``
    says where, ``epochs`` holds the finite epochs before it).
    """

    epochs: list[EpochRecord]
    status: str
    error: str | None
    seed: int
    recipe: dict[str, Any]
    total_train_time: float
    total_eval_time: float = 0.0
    dataset: str = ""
    model: str = ""
    num_params: int = 0
    device: str = "cpu"
    resumed_from_epoch: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "seed": self.seed,
            "dataset": self.dataset,
            "model": self.model,
            "num_params": self.num_params,
            "device": self.device,
            "recipe": dict(self.recipe),
            "total_train_time": self.total_train_time,
            "total_eval_time": self.total_eval_time,
            "resumed_from_epoch": self.resumed_from_epoch,
            "meta": dict(self.meta),
            "epochs": [r.to_dict() for r in self.epochs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        return cls(
            epochs=[EpochRecord.from_dict(r) for r in d["epochs"]],
            status=str(d["status"]),
            error=d.get("error"),
            seed=int(d["seed"]),
            recipe=dict(d["recipe"]),
            total_train_time=float(d["total_train_time"]),
            total_eval_time=float(d.get("total_eval_time", 0.0)),
            dataset=str(d.get("dataset", "")),
            model=str(d.get("model", "")),
            num_params=int(d.get("num_params", 0)),
            device=str(d.get("device", "cpu")),
            resumed_from_epoch=d.get("resumed_from_epoch"),
            meta=dict(d.get("meta", {})),
        )

    def to_json(self, path: str | Path) -> Path:
        """Write the JSON atomically (temp file in the same directory, then rename)."""
        path = Path(path)
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> TrainResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def final(self, split: str = "test", metric: str = "acc") -> float:
        """``metric`` (``"acc"``/``"loss"``) of ``split`` (``"train"`` or an eval split) at the
        last recorded epoch."""
        if not self.epochs:
            raise DataError("the run has no finished epoch")
        last = self.epochs[-1]
        if split == "train":
            if metric == "loss":
                return last.train_loss
            if metric == "acc" and last.train_acc is not None:
                return last.train_acc
            raise DataError(f"the training split has no metric {metric!r}; expected 'loss'")
        if split not in last.eval:
            raise DataError(f"split {split!r} was not evaluated; have {sorted(last.eval)}")
        return last.eval[split][metric]


#: Mean cross-entropy and top-1 accuracy of a classifier (the classification task's
#: evaluation, kept under its old name for callers that evaluate logits directly).
evaluate = evaluate_classifier


class _Progress:
    """Rich progress bar (epoch, loss, the task's training metric, samples/s, ETA); no-op
    when quiet."""

    def __init__(
        self, quiet: bool, total_steps: int, done_steps: int, epochs: int, metric: str = "acc"
    ) -> None:
        self.bar = None
        if quiet:
            return
        from nasforge.progress import make_progress

        shown = f" {metric} {{task.fields[acc]}}" if metric else ""
        self.bar = make_progress(
            "epoch {task.fields[epoch]}/{task.fields[epochs]}",
            "loss {task.fields[loss]}" + shown,
            "{task.fields[ips]} samples/s",
        )
        self.task = self.bar.add_task(
            "train",
            total=total_steps,
            completed=done_steps,
            epoch=0,
            epochs=epochs,
            loss="-",
            acc="-",
            ips="-",
        )

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def step(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def epoch(self, epoch: int, **fields: Any) -> None:
        if self.bar is not None:
            self.bar.update(self.task, epoch=epoch, **fields)


class Trainer:
    """Trains any ``nn.Module`` with a :class:`Recipe` on the data of a
    :class:`~nasforge.tasks.Task` (default: image classification, the module returning
    logits). The task supplies the batches, the loss and the metrics; the Trainer owns the
    schedule, checkpoints and resume.

    ``amp`` (bf16 autocast) defaults to on for CUDA and off on CPU (exact float32,
    reproducible). ``channels_last=None`` picks the layout per model with
    :func:`nasforge.train.device.default_channels_last`: on for CUDA; on CPU on for x86-64
    models without a strided 1x1 conv (oneDNN's NHWC convolutions train NB201 networks
    about 1.5-2x faster there, see benchmarks/train_throughput.py), off otherwise, because
    oneDNN's NHWC weight gradient of a narrow 1x1 stride-2 conv corrupts memory on AVX2. ``compile=True`` wraps the model in ``torch.compile``.
    """

    def __init__(
        self,
        recipe: Recipe | str,
        *,
        device: str | torch.device = "cpu",
        quiet: bool = True,
        amp: bool | None = None,
        channels_last: bool | None = None,
        compile: bool = False,
        task: Task | str | None = None,
    ) -> None:
        self.recipe = get_recipe(recipe)
        self.task = get_task(task)
        self.task.check_recipe(self.recipe)
        self.device = resolve_device(device, RecipeError)
        cuda = self.device.type == "cuda"
        self.quiet = quiet
        self.amp = cuda if amp is None else bool(amp)
        self.channels_last = None if channels_last is None else bool(channels_last)
        self.compile = compile

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def fit(
        self,
        model: nn.Module,
        data: TaskData,
        *,
        seed: int,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        eval_splits: list[str] | None = None,
        callback: Callable[[EpochRecord], None] | None = None,
        identity: dict[str, Any] | None = None,
    ) -> TrainResult:
        """Train ``model`` on ``data.train`` for ``recipe.epochs`` epochs, evaluating every
        epoch on ``eval_splits`` (default: all of ``data.evals``; ``[]`` for none).

        ``seed`` fixes the data order, augmentation and any randomness inside the model
        (the model's initial weights are the caller's: see :func:`train_arch`). With
        ``checkpoint_dir`` a checkpoint is written atomically after every epoch; with
        ``resume=True`` training continues from it (on CPU bit-identically to a run that
        was never interrupted). ``callback(record)`` runs after each epoch's checkpoint.

        The checkpoint stores the run's identity: the model (its name -- the arch string of
        an NB201 network --, its ``C`` and ``N`` where it has them, its size and a hash of
        its parameter names and shapes), dataset, split sizes, a fingerprint of the data,
        recipe, seed, evaluated splits, plus the caller's ``identity`` fields (e.g. the
        ``limit``). Resuming refuses a checkpoint whose identity differs, or a missing one
        (:class:`~nasforge.errors.CheckpointError`).
        """
        recipe = self.recipe
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        if resume:
            resume_path(checkpoint_dir, CHECKPOINT_NAME)  # fail before any work
        names = self._eval_names(data, eval_splits)
        channels_last = self._place(model)
        optimizer = recipe.build_optimizer(model.parameters())
        train_loader, eval_loaders = self._loaders(data, names, seed, channels_last)
        result = self._new_result(model, data, seed, channels_last)
        run_identity: dict[str, Any] = {}
        if ckpt_path is not None:
            run_identity = self._run_identity(model, data, result, names, seed, identity)
        start_epoch = 0
        torch.manual_seed(seed)  # randomness inside the model (dropout, drop-path)
        if resume and ckpt_path is not None:
            start_epoch = self._load_checkpoint(ckpt_path, model, optimizer, result, run_identity)
            result.resumed_from_epoch = start_epoch
        forward = torch.compile(model) if self.compile else model
        steps = len(train_loader)
        shown = self.task.train_metrics[0] if self.task.train_metrics else ""
        with _Progress(
            self.quiet, recipe.epochs * steps, start_epoch * steps, recipe.epochs, shown
        ) as bar:
            report_epoch(start_epoch, recipe.epochs)  # a command's bar (nasforge.progress)
            for epoch in range(start_epoch, recipe.epochs):
                done = self._epoch(
                    forward, model, optimizer, train_loader, eval_loaders, epoch, result, bar
                )
                if done is None:  # diverged: the result says where
                    break
                record, train_metrics = done
                result.epochs.append(record)
                if ckpt_path is not None:
                    self._save_checkpoint(ckpt_path, model, optimizer, result, run_identity, epoch)
                bar.epoch(
                    epoch + 1,
                    loss=f"{record.train_loss:.3f}",
                    acc=f"{train_metrics[shown]:.1f}" if shown else "",
                    ips=f"{train_loader.num_samples / max(record.epoch_time, 1e-9):.0f}",
                )
                report_epoch(epoch + 1, recipe.epochs)
                if callback is not None:
                    callback(record)
        return result

    # -- the parts of fit ------------------------------------------------------------------
    @staticmethod
    def _eval_names(data: TaskData, eval_splits: list[str] | None) -> list[str]:
        """The evaluated splits (default: all of ``data.evals``), each checked."""
        names = list(data.evals) if eval_splits is None else list(eval_splits)
        for n in names:
            if n not in data.evals:
                raise DataError(
                    f"{data.name} has no eval split {n!r}; expected some of {list(data.evals)}"
                )
        return names

    def _place(self, model: nn.Module) -> bool:
        """Move ``model`` to the device, in channels_last where that is the layout to use
        (the trainer's setting, else the device's safe default); returns whether it is."""
        dev = self.device
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        model.to(dev)
        channels_last = (
            default_channels_last(model, dev) if self.channels_last is None else self.channels_last
        )
        if channels_last:
            model.to(memory_format=torch.channels_last)
        return channels_last

    def _loaders(
        self, data: TaskData, names: list[str], seed: int, channels_last: bool
    ) -> tuple[Any, dict[str, Any]]:
        """The task's training loader (seeded) and one evaluation loader per split."""
        task, recipe, dev = self.task, self.recipe, self.device
        train_loader = task.loader(
            data,
            "train",
            recipe.batch_size,
            train=True,
            seed=seed,
            device=dev,
            recipe=recipe,
            channels_last=channels_last,
        )
        eval_loaders = {
            n: task.loader(
                data,
                n,
                recipe.batch_size,
                train=False,
                device=dev,
                recipe=recipe,
                channels_last=channels_last,
            )
            for n in names
        }
        return train_loader, eval_loaders

    def _new_result(
        self, model: nn.Module, data: TaskData, seed: int, channels_last: bool
    ) -> TrainResult:
        """The empty result of a run: its settings, before any epoch."""
        result = TrainResult(
            epochs=[],
            status="ok",
            error=None,
            seed=seed,
            recipe=self.recipe.to_dict(),
            total_train_time=0.0,
            dataset=data.name,
            model=_model_name(model),
            num_params=sum(p.numel() for p in model.parameters()),
            device=str(self.device),
            meta={
                "amp": self.amp,
                "channels_last": channels_last,
                "compile": self.compile,
                "threads": torch.get_num_threads(),
            },
        )
        if self.task.name != "classification":
            result.meta["task"] = self.task.name
        return result

    def _run_identity(
        self,
        model: nn.Module,
        data: TaskData,
        result: TrainResult,
        names: list[str],
        seed: int,
        identity: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """What a checkpoint of this run must match to be resumed (see :meth:`fit`)."""
        task = self.task
        shape = {k: getattr(model, k, None) for k in ("C", "N")}  # NB201 networks have them
        return to_jsonable(  # type: ignore[no-any-return]
            {
                "model": result.model,
                **{k: v for k, v in shape.items() if isinstance(v, int)},
                "num_params": result.num_params,
                "structure": model_fingerprint(model),
                "dataset": data.name,
                **({} if task.name == "classification" else {"task": task.name}),
                "splits": data.summary(),
                "data": data_fingerprint(data),
                "eval_splits": names,
                "recipe": self.recipe.to_dict(),
                "seed": int(seed),
                **(identity or {}),
            }
        )

    def _epoch(
        self,
        forward: Callable[..., Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: Any,
        eval_loaders: dict[str, Any],
        epoch: int,
        result: TrainResult,
        bar: _Progress,
    ) -> tuple[EpochRecord, dict[str, float]] | None:
        """Train one epoch and evaluate it: its record and training metrics, or None when
        the training or an evaluation diverged (``result.status`` / ``result.error`` then
        say where)."""
        recipe, task = self.recipe, self.task
        steps, n_train = len(train_loader), train_loader.num_samples
        bar.epoch(epoch + 1)
        train_loader.set_epoch(epoch)
        if hasattr(model, "drop_path_prob"):
            # DARTS train.py:108: the rate ramps linearly from 0 over the run.
            model.drop_path_prob = recipe.drop_path_prob * epoch / recipe.epochs
        lr0 = recipe.lr_at(epoch, 0, steps)
        self._sync()
        t0 = time.perf_counter()
        loss_sum, counts = self._train_epoch(
            forward, model, optimizer, train_loader, epoch, steps, bar
        )
        train_loss = float(loss_sum) / n_train  # the one host sync of the epoch
        train_metrics = task.train_summary(counts, n_train)
        self._sync()
        epoch_time = time.perf_counter() - t0
        result.total_train_time += epoch_time
        if not math.isfinite(train_loss):
            result.status = "diverged"
            result.error = (
                f"non-finite training loss ({train_loss}) in epoch {epoch} "
                f"(lr {lr0:g}); stopped after {len(result.epochs)} finished epochs"
            )
            log.warning("%s", result.error)
            return None
        t1 = time.perf_counter()
        evals = {
            n: task.evaluate(forward, ld, autocast=self._autocast) for n, ld in eval_loaders.items()
        }
        self._sync()
        eval_time = time.perf_counter() - t1
        result.total_eval_time += eval_time
        bad = [n for n, m in evals.items() if not math.isfinite(m["loss"])]
        if bad:
            result.status = "diverged"
            result.error = f"non-finite {bad[0]} loss in epoch {epoch}"
            return None
        record = EpochRecord(
            epoch, train_loss, train_metrics.get("acc"), evals, epoch_time, eval_time, lr0
        )
        return record, train_metrics

    def _train_epoch(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: Any,
        epoch: int,
        steps: int,
        bar: _Progress,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        recipe = self.recipe
        model.train()
        warm = epoch < recipe.warmup_epochs
        lr = recipe.lr_at(epoch, 0, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        counts: dict[str, torch.Tensor] = {}
        # Metrics accumulate on the device; nothing in this loop waits for the device.
        for step, (x, y) in enumerate(loader):
            if warm and step:
                for group in optimizer.param_groups:
                    group["lr"] = recipe.lr_at(epoch, step, steps)
            self.train_step(forward, model, optimizer, x, y, loss_sum, counts)
            bar.step()
        return loss_sum, counts

    def train_step(
        self,
        forward: Callable[..., Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x: Any,
        y: Any,
        loss_sum: torch.Tensor,
        counts: dict[str, torch.Tensor],
    ) -> None:
        """One optimisation step on a batch; adds the batch's summed loss to the on-device
        accumulator ``loss_sum`` and the task's training counts (classification: correct
        predictions) to ``counts``.

        The loss is the task's (:meth:`Task.loss`): for classification ``ce(logits)``, plus
        ``auxiliary_weight * ce(logits_aux)`` when the model returns ``(logits,
        logits_aux)`` (DARTS train.py:132-136); that total is what ``loss_sum`` records.
        """
        task = self.task
        with self._autocast():
            out = task.forward(forward, x)
            loss = task.loss(out, y, self.recipe)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), self.recipe.grad_clip)
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach().double() * task.batch_size(y)
            for k, v in task.train_counts(out, y).items():
                if k in counts:
                    counts[k] += v
                else:
                    counts[k] = v.clone()

    def _save_checkpoint(
        self,
        path: Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        result: TrainResult,
        identity: dict[str, Any],
        epoch: int,
    ) -> None:
        state = {
            "format": _CKPT_FORMAT,
            "epoch": epoch,
            "identity": identity,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "result": json.dumps(result.to_dict()),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        atomic_torch_save(state, path)

    def _load_checkpoint(
        self,
        path: Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        result: TrainResult,
        identity: dict[str, Any],
    ) -> int:
        state = load_checkpoint(path)
        if state.get("format") != _CKPT_FORMAT:
            raise CheckpointError(
                f"{path} is not a training checkpoint of this nasforge (format "
                f"{state.get('format')!r}, expected {_CKPT_FORMAT!r}); delete it to start afresh"
            )
        check_identity(path, state.get("identity"), identity)
        with restoring(path):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            if "cuda_rng" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"], self.device)
            saved = TrainResult.from_dict(json.loads(state["result"]))
            epoch = int(state["epoch"])
        result.epochs = saved.epochs
        result.total_train_time = saved.total_train_time
        result.total_eval_time = saved.total_eval_time
        log.info("resumed from %s after epoch %d", path, epoch)
        return epoch + 1


def _model_name(model: nn.Module) -> str:
    arch = getattr(model, "arch", None)
    if arch is not None and hasattr(arch, "to_string"):
        return str(arch.to_string())
    return type(model).__name__


def train_arch(
    arch: Any,
    data: TaskData,
    recipe: Recipe | str,
    *,
    seed: int,
    C: int = 16,
    N: int = 5,
    device: str | torch.device = "cpu",
    quiet: bool = True,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    eval_splits: list[str] | None = None,
    identity: dict[str, Any] | None = None,
    **trainer_kwargs: Any,
) -> TrainResult:
    """Build the NB201 network of ``arch`` (seeded init) for ``data`` and train it.

    ``trainer_kwargs`` go to :class:`Trainer` (``amp``, ``channels_last``, ``compile``);
    ``identity`` adds fields to the checkpoint's run identity (see :meth:`Trainer.fit`).
    """
    from nasforge.nn.nb201 import NB201Network

    def build() -> nn.Module:
        return NB201Network(arch, C=C, N=N, num_classes=data.num_classes)

    result, _ = fit_fresh(
        build,
        data,
        recipe,
        seed=seed,
        device=device,
        quiet=quiet,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        eval_splits=eval_splits,
        identity=identity,
        **trainer_kwargs,
    )
    result.meta.update({"C": C, "N": N})
    return result


def fit_fresh(
    build: Callable[[], nn.Module],
    data: TaskData,
    recipe: Recipe | str,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    quiet: bool = True,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    eval_splits: list[str] | None = None,
    identity: dict[str, Any] | None = None,
    **trainer_kwargs: Any,
) -> tuple[TrainResult, nn.Module]:
    """Seed, build a fresh model with ``build()`` (so its initial weights follow ``seed``)
    and train it with :class:`Trainer`: the one path every ``train_*`` helper takes."""
    set_seed(seed)
    model = build()
    trainer = Trainer(recipe, device=device, quiet=quiet, **trainer_kwargs)
    result = trainer.fit(
        model,
        data,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        eval_splits=eval_splits,
        identity=identity,
    )
    return result, model
