"""Training recipes and the one trainer.

``get_recipe("nb201-12e", epochs=2)`` gives a :class:`Recipe`; ``Trainer(recipe).fit(model,
data, seed=0)`` or ``train_arch(arch, data, recipe, seed=0)`` gives a :class:`TrainResult`.
"""

from nasforge.train.recipe import NB201_12E, NB201_200E, RECIPES, Recipe, get_recipe
from nasforge.train.trainer import (
    CHECKPOINT_NAME,
    EpochRecord,
    Trainer,
    TrainResult,
    evaluate,
    fit_fresh,
    set_seed,
    train_arch,
)

__all__ = [
    "CHECKPOINT_NAME",
    "NB201_12E",
    "NB201_200E",
    "RECIPES",
    "EpochRecord",
    "Recipe",
    "TrainResult",
    "Trainer",
    "evaluate",
    "fit_fresh",
    "get_recipe",
    "set_seed",
    "train_arch",
]
