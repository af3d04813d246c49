"""What a task is: its data, its loss, its metrics, and how a network's output meets them.

A :class:`Task` is the one object the Trainer, the evaluators, the one-shot loops and the
reports consult instead of assuming image classification. Image classification is one task
(:mod:`nasforge.tasks.classification`); restoration, video, detection and translation are
others. Adding a task is one module with a :class:`Task` subclass and one
``@TASKS.register("name")`` line (see docs/DESIGN.md, "Add a task").

The contract, in the order a training run uses it:

- :meth:`Task.load` reads the task's data (a :class:`TaskData`: a train split and ordered
  evaluation splits, whatever a split holds) from a dataset name and an optional directory;
- :meth:`Task.network_io` says what a network builder needs to know about the data
  (classification: ``num_classes``; super-resolution: channels and scale);
- :meth:`Task.loader` turns a split into batches ``(x, y)`` on the device (training batches
  augmented and shuffled from a seed, evaluation batches in split order);
- :meth:`Task.forward` meets the network with ``x``; :meth:`Task.loss` turns the output and
  ``y`` into the training loss; :meth:`Task.train_counts` accumulates what the training
  epoch reports besides the loss;
- :meth:`Task.evaluate` computes every metric of a split (``"loss"`` included);
  :attr:`Task.primary` names the metric searchers maximise (or minimise, by its
  :attr:`Metric.higher_is_better`) and tables and reports show first.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from nasforge.errors import TaskError
from nasforge.registry import Registry


@dataclass(frozen=True)
class Metric:
    """One metric of a task: its name (a key of :meth:`Task.evaluate`'s dict), unit,
    direction and display format (a ``str.format`` spec applied to the value)."""

    name: str
    unit: str = ""
    higher_is_better: bool = True
    fmt: str = "{:.4f}"
    description: str = ""

    def format(self, value: float) -> str:
        """The value as tables and reports print it (``nan`` for a missing value)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "nan"
        return self.fmt.format(value)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.higher_is_better else a < b

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
        }


#: The loss every task reports (mean per sample of the training criterion); lower is better.
LOSS = Metric("loss", "", higher_is_better=False, fmt="{:.4f}", description="mean loss")


@runtime_checkable
class TaskData(Protocol):
    """What :meth:`Task.load` returns: a named train split and ordered evaluation splits.

    ``evals`` keys follow NAS-Bench-201's semantics where they apply: ``"valid"`` is what a
    search may look at, ``"test"`` what is reported at the end.
    """

    name: str
    train: Any
    evals: Mapping[str, Any]

    def summary(self) -> dict[str, int]:
        """Number of samples per split, train first."""
        ...


@runtime_checkable
class Loader(Protocol):
    """Batches of one split: ``(x, y)`` pairs, ``len()`` batches, ``num_samples`` samples,
    :meth:`set_epoch` selects the permutation and augmentation of the next pass."""

    @property
    def num_samples(self) -> int: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[Any, Any]]: ...

    def set_epoch(self, epoch: int) -> None: ...


Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


class Task(abc.ABC):
    """One learning task. Subclasses set :attr:`name`, :attr:`metrics`, :attr:`primary`,
    :attr:`datasets` and :attr:`default_dataset` and implement the abstract methods.

    ``metrics`` lists what :meth:`evaluate` returns (``LOSS`` included), primary first by
    convention; ``train_metrics`` what :meth:`train_summary` returns per training epoch
    besides the loss (classification: accuracy; restoration reports only the loss while
    training, as BasicSR does).
    """

    name: str = ""
    description: str = ""
    metrics: tuple[Metric, ...] = (LOSS,)
    primary: str = "loss"
    train_metrics: tuple[str, ...] = ()
    #: Dataset names :meth:`load` accepts (documentation and CLI help; ``load`` validates).
    datasets: tuple[str, ...] = ()
    default_dataset: str = ""
    #: The recipe ``nasforge train`` uses when none is given.
    default_recipe: str = "nb201-12e"
    #: Training losses (:attr:`Recipe.loss` values) this task implements.
    losses: tuple[str, ...] = ("ce",)

    # -- metadata -----------------------------------------------------------------------

    def metric(self, name: str) -> Metric:
        """The metric called ``name`` (:class:`TaskError` naming the known ones otherwise)."""
        for m in self.metrics:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.metrics)
        raise TaskError(f"task {self.name!r} has no metric {name!r}; expected one of: {known}")

    @property
    def primary_metric(self) -> Metric:
        return self.metric(self.primary)

    def check_recipe(self, recipe: Any) -> None:
        """Refuse a recipe whose loss this task does not implement (before any work)."""
        if recipe.loss not in self.losses:
            raise TaskError(
                f"recipe {recipe.name!r} trains with loss {recipe.loss!r}, which task "
                f"{self.name!r} does not implement; expected one of {list(self.losses)}"
            )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (``nasforge task list`` / ``task info``)."""
        return {
            "name": self.name,
            "description": self.description,
            "primary": self.primary,
            "metrics": [m.to_dict() for m in self.metrics],
            "train_metrics": list(self.train_metrics),
            "datasets": list(self.datasets),
            "default_dataset": self.default_dataset,
            "default_recipe": self.default_recipe,
            "losses": list(self.losses),
        }

    # -- data ---------------------------------------------------------------------------

    @abc.abstractmethod
    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> TaskData:
        """The task's data for ``dataset`` (default :attr:`default_dataset`); ``seed`` is
        the data seed (splits without an official rule, generated data), ``limit`` keeps
        at most that many samples per split (tiny runs)."""

    @abc.abstractmethod
    def network_io(self, data: TaskData) -> dict[str, Any]:
        """Keyword arguments every network builder of this task receives (classification:
        ``{"num_classes": K}``)."""

    @abc.abstractmethod
    def loader(
        self,
        data: TaskData,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        recipe: Any = None,
        channels_last: bool = False,
    ) -> Loader:
        """Batches of ``split`` (``"train"`` or a key of ``data.evals``) on ``device``."""

    # -- the step -----------------------------------------------------------------------

    def forward(self, model: Callable[..., Any], x: Any) -> Any:
        """The network's output for the input batch ``x`` (default ``model(x)``)."""
        return model(x)

    @abc.abstractmethod
    def loss(self, output: Any, y: Any, recipe: Any) -> torch.Tensor:
        """The scalar training loss of a batch (mean over its samples)."""

    def batch_size(self, y: Any) -> int:
        """Samples in a batch whose targets are ``y``."""
        return len(y)

    def train_counts(self, output: Any, y: Any) -> dict[str, torch.Tensor]:
        """On-device sums a training epoch accumulates besides the loss (no host sync)."""
        return {}

    def train_summary(self, counts: Mapping[str, torch.Tensor], n: int) -> dict[str, float]:
        """The training metrics (:attr:`train_metrics`) of an epoch from its summed counts."""
        return {}

    @abc.abstractmethod
    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        """Every metric of :attr:`metrics` over the batches of ``loader`` (``"loss"``
        included). An ``nn.Module`` is put in eval mode; another callable is called as is."""


TASKS: Registry[Task] = Registry("task")


def get_task(task: str | Task | None = None) -> Task:
    """The registered task ``task`` (``None``: image classification), or a Task as is."""
    if isinstance(task, Task):
        return task
    name = "classification" if task is None else task
    if name not in TASKS:
        # Task modules register on import; load the built-in ones before giving up.
        import nasforge.tasks  # noqa: F401
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; expected one of: {', '.join(TASKS.names())}")
    return TASKS.create(name)
