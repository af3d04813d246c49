"""Training a DARTS genotype's evaluation network with the one :class:`Trainer`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nasforge.data import DatasetSplits
from nasforge.errors import NetworkError, RecipeError
from nasforge.spaces.darts import Genotype
from nasforge.train.arch import ARCH_TRAINING, NetworkOptionError, NetworkTraining
from nasforge.train.recipe import Recipe, get_recipe
from nasforge.train.trainer import TrainResult, fit_fresh

#: Inputs from this size up get the ImageNet network (two-stage stem); smaller ones CIFAR's.
IMAGENET_MIN_RESOLUTION = 128


def aux_head_fits(resolution: int) -> bool:
    """Whether NetworkCIFAR's auxiliary head (5x5 pool stride 3, then a 2x2 conv, built for
    an 8x8 map after two reductions) yields a 1x1 map for inputs of ``resolution``."""
    side = resolution // 4
    return side >= 5 and (side - 5) // 3 + 1 == 2


def build_darts_network(
    genotype: Genotype | str,
    data: DatasetSplits,
    *,
    C: int | None = None,
    layers: int | None = None,
    auxiliary: bool = True,
) -> torch.nn.Module:
    """The evaluation network of ``genotype`` for ``data``'s resolution and classes.

    Inputs of :data:`IMAGENET_MIN_RESOLUTION` px or more get ``NetworkImageNet`` (default
    C=48, 14 cells), smaller ones ``NetworkCIFAR`` (C=36, 20 cells). An auxiliary head that
    cannot fit the input size is refused here, before any training starts.
    """
    from nasforge.nn.darts import darts_network

    g = Genotype.parse(genotype)
    n = data.num_classes
    if data.resolution >= IMAGENET_MIN_RESOLUTION:
        return darts_network(
            g, num_classes=n, C=C or 48, layers=layers or 14, auxiliary=auxiliary, imagenet=True
        )
    if auxiliary and not aux_head_fits(data.resolution):
        raise RecipeError(
            f"the DARTS CIFAR auxiliary head needs 32..43 px inputs, {data.name} has "
            f"{data.resolution} px; use a recipe with auxiliary_weight=0"
        )
    return darts_network(g, num_classes=n, C=C or 36, layers=layers or 20, auxiliary=auxiliary)


def train_genotype(
    genotype: Genotype | str,
    data: DatasetSplits,
    recipe: Recipe | str,
    *,
    seed: int,
    C: int | None = None,
    layers: int | None = None,
    device: str | torch.device = "cpu",
    quiet: bool = True,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    eval_splits: list[str] | None = None,
    identity: dict[str, Any] | None = None,
    **trainer_kwargs: Any,
) -> TrainResult:
    """Build ``genotype``'s evaluation network (seeded init) and train it with ``recipe``.

    The auxiliary head is built when the recipe weights its loss (``auxiliary_weight >
    0``), as DARTS's ``--auxiliary`` does. ``trainer_kwargs`` go to :class:`Trainer`.
    """
    rec = get_recipe(recipe)
    g = Genotype.parse(genotype)
    result, model = fit_fresh(
        lambda: build_darts_network(
            g, data, C=C, layers=layers, auxiliary=rec.auxiliary_weight > 0
        ),
        data,
        rec,
        seed=seed,
        device=device,
        quiet=quiet,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        eval_splits=eval_splits,
        # The genotype is the run's identity: a checkpoint of another genotype is refused.
        identity={"genotype": g.to_string(), **(identity or {})},
        **trainer_kwargs,
    )
    result.model = g.to_string()
    result.meta.update({"space": "darts", "C": model.init_channels, "layers": len(model.cells)})
    return result


@ARCH_TRAINING.register("darts")
class DartsTraining(NetworkTraining):
    """``nasforge train --space darts``: classification trains :func:`train_genotype`
    (the ImageNet or CIFAR network by input size, the auxiliary head when the recipe weights
    it; ``cells`` is the total number of cells, ``layers``); other tasks take the space's
    network builder like any space."""

    def check(
        self, task: Any, channels: int | None, cells: int | None, options: Mapping[str, Any]
    ) -> None:
        if task.name != "classification":
            super().check(task, channels, cells, options)
            return
        from nasforge.nn.darts import check_cells

        if options:
            raise NetworkError("the darts network takes --channels / --cells, not --network")
        if cells is not None:
            try:
                check_cells(cells)
            except NetworkError as exc:
                raise NetworkOptionError("--cells", cells, str(exc)) from None

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
        return train_genotype(arch, data, recipe, seed=seed, C=channels, layers=cells, **fit_kwargs)
