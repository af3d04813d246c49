"""``nasforge train --space nb201``: the NAS-Bench-201 network trained as the benchmark
trains it (:func:`nasforge.train.train_arch`, width C and N cells per stage, official 16 and
5), registered in :data:`nasforge.train.arch.ARCH_TRAINING`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge.errors import NetworkError
from nasforge.train.arch import ARCH_TRAINING, NetworkTraining
from nasforge.train.recipe import Recipe
from nasforge.train.trainer import TrainResult


@ARCH_TRAINING.register("nb201")
class NB201Training(NetworkTraining):
    """Classification trains :func:`~nasforge.train.train_arch` (the record's ``meta``
    holds C and N); other tasks take the space's network builder like any space."""

    def check(
        self, task: Any, channels: int | None, cells: int | None, options: Mapping[str, Any]
    ) -> None:
        if task.name != "classification":
            super().check(task, channels, cells, options)
        elif options:
            raise NetworkError("the nb201 network takes --channels / --cells, not --network")

    def fit_classification(
        self,
        arch: Any,
        data: Any,
        recipe: Recipe,
        *,
        channels: int | None,
        cells: int | None,
        seed: int,
        **fit_kwargs: Any,
    ) -> TrainResult:
        from nasforge.train import train_arch  # the package's, as callers may replace it

        return train_arch(
            arch, data, recipe, C=channels or 16, N=cells or 5, seed=seed, **fit_kwargs
        )
