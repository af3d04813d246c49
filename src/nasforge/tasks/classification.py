"""Image classification: the task every NAS-Bench-201 / DARTS / width result is about.

Data are :class:`~nasforge.data.DatasetSplits` (uint8 images on the CPU plus the NB201
normalisation), batches come from :class:`~nasforge.data.DeviceLoader` (batched on-device
pad+crop, flip, cutout), the loss is cross-entropy (with label smoothing and a DARTS
auxiliary head when the recipe asks), metrics are top-1 accuracy in percent and the mean
cross-entropy. The computations are the ones the Trainer ran before tasks existed, op for
op, so histories and run records are unchanged (tests/test_tasks.py compares them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import DatasetSplits, DeviceLoader
from nasforge.tasks.base import LOSS, TASKS, Autocast, Metric, Task

ACCURACY = Metric("acc", "%", higher_is_better=True, fmt="{:.2f}", description="top-1 accuracy")


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    autocast: Autocast | None = None,
) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy (%) of ``model`` over eval batches ``(x, y)``.

    An ``nn.Module`` is put in eval mode (BN uses running statistics) and left in it; any
    other callable ``x -> logits`` is called as is, in the mode its caller set up (e.g. BN
    on batch statistics). An empty ``loader`` gives loss and accuracy 0.
    """
    if isinstance(model, nn.Module):
        model.eval()
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    n = 0
    ctx = autocast or contextlib.nullcontext
    for x, y in loader:
        if loss_sum is None or correct is None:
            # Accumulate on the batches' device: one host sync at the end, not per batch.
            loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
            correct = torch.zeros((), dtype=torch.int64, device=y.device)
        with ctx():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        n += int(y.shape[0])
    if loss_sum is None or correct is None:
        return {"loss": 0.0, "acc": 0.0}
    return {"loss": float(loss_sum) / n, "acc": 100.0 * int(correct) / n}


@TASKS.register("classification")
class ClassificationTask(Task):
    """Image classification on the NB201 settings and the embedded datasets."""

    name = "classification"
    description = "image classification (top-1 accuracy, cross-entropy)"
    metrics = (ACCURACY, LOSS)
    primary = "acc"
    train_metrics = ("acc",)
    datasets = ("digits", "synthetic", "cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
    default_dataset = "digits"
    default_recipe = "nb201-12e"
    losses = ("ce",)

    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> DatasetSplits:
        from nasforge.data import load_splits

        return load_splits(
            dataset or self.default_dataset, data_dir, seed=seed, limit=limit, **options
        )

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"num_classes": int(data.num_classes)}

    def loader(
        self,
        data: Any,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        recipe: Any = None,
        channels_last: bool = False,
    ) -> DeviceLoader:
        cutout = int(getattr(recipe, "cutout", 0)) if train and recipe is not None else 0
        return DeviceLoader(
            data.split(split),
            data,
            batch_size,
            train=train,
            seed=seed,
            device=device,
            channels_last=channels_last,
            cutout=cutout,
        )

    def loss(self, output: Any, y: torch.Tensor, recipe: Any) -> torch.Tensor:
        """Cross-entropy of the logits; a ``(logits, logits_aux)`` output (DARTS networks
        with their auxiliary head) adds ``auxiliary_weight * ce(logits_aux)`` as in DARTS
        train.py:132-136. Label smoothing applies to the training loss only."""
        smooth = float(getattr(recipe, "label_smoothing", 0.0))
        logits, aux = output if isinstance(output, tuple) else (output, None)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=smooth)
        aux_weight = float(getattr(recipe, "auxiliary_weight", 0.0))
        if aux is not None and aux_weight > 0:
            loss = loss + aux_weight * F.cross_entropy(aux.float(), y, label_smoothing=smooth)
        return loss

    def batch_size(self, y: torch.Tensor) -> int:
        return int(y.shape[0])

    def train_counts(self, output: Any, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = output[0] if isinstance(output, tuple) else output
        return {"correct": (logits.argmax(1) == y).sum()}

    def train_summary(self, counts: Mapping[str, torch.Tensor], n: int) -> dict[str, float]:
        return {"acc": 100.0 * int(counts["correct"]) / n}

    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        return evaluate_classifier(model, loader, autocast=autocast)
