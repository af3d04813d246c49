"""Evaluators: how a black-box search gets (valid accuracy, cost) for an arch.

``EVALUATORS`` maps names to implementations: ``"tabular"`` (a benchmark table, simulated
clock) and ``"train"`` (real training, wall clock). A search never knows which it talks to.
"""

from __future__ import annotations

from typing import Any

from nasforge.evaluate.base import Evaluator, Observation, Reported
from nasforge.evaluate.tabular import TabularEvaluator
from nasforge.evaluate.training import TrainingEvaluator, train_task
from nasforge.registry import Registry

EVALUATORS: Registry[Any] = Registry("evaluator")
EVALUATORS.register("tabular")(TabularEvaluator)
EVALUATORS.register("train")(TrainingEvaluator)

__all__ = [
    "EVALUATORS",
    "Evaluator",
    "Observation",
    "Reported",
    "TabularEvaluator",
    "TrainingEvaluator",
    "train_task",
]
