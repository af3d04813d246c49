"""Evaluators and budgets from a typed spec: what ``nasforge search`` and ``compare`` run.

:class:`EvaluatorSpec` is a frozen description of a black-box evaluation setup -- the space,
dataset and task, which evaluator answers (a benchmark table or real training) with its
settings, an optional zero-cost proxy beside it, the objectives of a multi-objective search
and the budget. :func:`build_evaluator` turns it into ``(evaluator, budget)``::

    spec = EvaluatorSpec(dataset="digits", evaluator="train", budget="20evals",
                         training=TrainingSettings(recipe="nb201-12e", epochs=1, limit=64))
    ev, budget = build_evaluator(spec)

A library caller and the command line build the same evaluator from the same fields. A
spec checks its values when it is made (:class:`SpecError`, one line naming the value and
what was expected); what needs a file or a registry lookup (the table, the space's network
builder) is checked by :func:`build_evaluator`, still before any data is loaded or network
trained. Messages name values by their ``nasforge search`` option (``--zc-batch-size``),
since that is where users meet them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import SearchError

if TYPE_CHECKING:  # search/ sits above evaluate/: imported where used, never at import time
    from nasforge.evaluate.base import Evaluator
    from nasforge.search.base import Budget

__all__ = [
    "EVALUATOR_KINDS",
    "EvaluatorSpec",
    "SpecError",
    "TableSettings",
    "TrainingSettings",
    "ZeroCostSettings",
    "build_evaluator",
    "with_proxy",
]

#: Evaluator names a spec accepts (``tabular`` is the registry's name of ``table``).
EVALUATOR_KINDS = ("table", "tabular", "train")

_EVALUATOR_EXPECTED = (
    "'table' (needs --bench; simulated clock) or 'train' (real training; wall clock)."
)


class SpecError(SearchError):
    """A value of an :class:`EvaluatorSpec` that cannot be used (a :class:`SearchError`, so
    the command line prints it as one line and exits with code 2)."""


def _check_int(name: str, value: Any, low: int) -> None:
    """``value`` None, or an integer (not a bool) of at least ``low``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{name} {value!r} is invalid; expected an integer >= {low}")


@dataclass(frozen=True)
class TableSettings:
    """How a benchmark table answers (``--evaluator table``): ``hp`` the table recipe the
    search sees (NB201's 12-epoch proxy), ``seed_policy`` which recorded seed answers
    (``random``, the official protocol; ``mean``; or a seed), ``report_hp`` the recipe
    reported at the end (None: the table's ``200``)."""

    hp: str = "12"
    seed_policy: str = "random"
    report_hp: str | None = None


@dataclass(frozen=True)
class TrainingSettings:
    """How real training answers (``--evaluator train``): the recipe (None: the task's
    default, classification ``nb201-12e``) with ``epochs`` overriding its epochs, the dataset
    root and per-split sample cap, the network width / depth (``channels`` / ``cells``, the
    builder's ``C`` / ``N``; None: the space's defaults) and the device."""

    recipe: str | None = None
    epochs: int | None = None
    data_dir: Path | None = None
    limit: int | None = None
    channels: int | None = None
    cells: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        # epochs and limit are checked where they are used (the recipe, the data loader),
        # with the messages those give everywhere else
        _check_int("--channels", self.channels, 1)
        _check_int("--cells", self.cells, 1)


@dataclass(frozen=True)
class ZeroCostSettings:
    """A zero-cost proxy answering fidelity 0 beside the evaluator (``--zc-proxy``): the
    proxy's batch of ``batch_size`` images from ``dataset`` (None: the search's), each
    query charged its measured seconds or ``charge`` seconds; ``scores`` a rows file of
    ``nasforge zc`` made with the same settings, reused instead of recomputed."""

    proxy: str
    dataset: str | None = None
    batch_size: int = 64
    charge: float | None = None
    scores: Path | None = None

    def __post_init__(self) -> None:
        from nasforge.evaluate.zero_cost import parse_proxies

        parse_proxies([self.proxy])  # an unknown proxy is one line, listing the known ones
        bad_batch = isinstance(self.batch_size, bool) or self.batch_size < 2
        if bad_batch or (self.charge is not None and self.charge < 0):
            raise SpecError(
                f"--zc-batch-size {self.batch_size} must be >= 2 and --zc-charge {self.charge} >= 0"
            )


@dataclass(frozen=True)
class EvaluatorSpec:
    """Everything that fixes the evaluator and budget of a black-box search.

    ``evaluator`` is ``"table"`` (needs ``bench``), ``"train"``, or None: a table when
    ``bench`` is given, else training. ``dataset`` None is the task's default dataset.
    ``task`` names a registered task (:mod:`nasforge.tasks`): a table answers only
    classification; training trains with the task's loss and reports its primary metric.
    ``seed`` seeds the zero-cost proxy batch. ``budget`` is a budget string
    (``12000s``, ``30m``, ``20evals``) or None for the documented per-dataset default.
    """

    space: str = "nb201"
    dataset: str | None = "cifar10-valid"
    task: str = "classification"
    evaluator: str | None = None
    bench: Path | None = None
    table: TableSettings = field(default_factory=TableSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    zero_cost: ZeroCostSettings | None = None
    objectives: str | None = None
    budget: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        from nasforge.search.base import Budget

        if self.budget is not None:
            Budget.parse(self.budget)  # a malformed budget fails before any data is loaded
        if self.objectives is not None:
            from nasforge.evaluate.objectives import parse_objectives

            parse_objectives(self.objectives)
        if self.evaluator is not None and self.evaluator not in EVALUATOR_KINDS:
            raise SpecError(
                f"--evaluator {self.evaluator!r} unknown; expected {_EVALUATOR_EXPECTED}"
            )
        from nasforge.tasks import get_task

        get_task(self.task)  # an unknown task fails here, listing the tasks

    @property
    def kind(self) -> str:
        """The evaluator that answers: ``"table"`` or ``"train"``."""
        kind = self.evaluator or ("table" if self.bench is not None else "train")
        return "table" if kind == "tabular" else kind

    def resolved_dataset(self) -> str:
        """The dataset: as given, else the task's default."""
        if self.dataset is not None:
            return self.dataset
        from nasforge.tasks import get_task

        return get_task(self.task).default_dataset


def _table_evaluator(spec: EvaluatorSpec, space: str, dataset: str) -> Evaluator:
    from nasforge.bench import Benchmark
    from nasforge.bench.spaces import table_space_names
    from nasforge.evaluate import EVALUATORS

    if spec.task != "classification":
        raise SpecError(
            f"--task {spec.task!r} cannot be answered by a benchmark table (tables record "
            "classification accuracy); use --evaluator train"
        )
    if spec.bench is None:
        raise SpecError("--evaluator table needs --bench PATH (a benchmark table)")
    names = table_space_names()
    if space not in names:  # before the table is opened: the space is the first check
        raise SpecError(
            f"--space {space!r} cannot be searched on a benchmark table (tables answer "
            f"for {' or '.join(map(repr, names))} archs); use --evaluator train"
        )
    table_space = Benchmark.open(spec.bench).space
    if space != table_space:
        raise SpecError(
            f"--space {space!r} cannot be searched on the table {str(spec.bench)!r} (it "
            f"answers for {table_space!r} archs: pass --space {table_space}, or --evaluator "
            "train)"
        )
    t = spec.table
    return EVALUATORS.create(
        "tabular", spec.bench, dataset, hp=t.hp, seed_policy=t.seed_policy, report_hp=t.report_hp
    )


def _training_evaluator(spec: EvaluatorSpec, space: str, dataset: str) -> Evaluator:
    from nasforge.evaluate import EVALUATORS
    from nasforge.tasks import get_task

    task = get_task(spec.task)
    t = spec.training
    return EVALUATORS.create(
        "train",
        t.recipe or task.default_recipe,
        dataset,
        data_dir=t.data_dir,
        limit=t.limit,
        space=space,
        C=t.channels,
        N=t.cells,
        device=t.device,
        recipe_overrides=None if t.epochs is None else {"epochs": t.epochs},
        task=task,
    )


def build_evaluator(
    spec: EvaluatorSpec, *, note: Callable[[str], None] | None = None
) -> tuple[Evaluator, Budget]:
    """The evaluator and checked budget ``spec`` describes.

    The evaluator is the table or training evaluator, wrapped with the zero-cost proxy
    (:func:`with_proxy`) and the objectives (:func:`~nasforge.evaluate.objectives.
    with_objectives`) where the spec names them. Without a budget the documented default
    for the dataset is used and announced through ``note`` (a line of text). Every check
    that needs no training runs before the first evaluation.
    """
    from nasforge.evaluate.objectives import with_objectives
    from nasforge.search.base import check_budget
    from nasforge.search.protocol import default_budget
    from nasforge.spaces import get_space

    space = get_space(spec.space).name  # an unknown name fails here, listing the spaces
    dataset = spec.resolved_dataset()
    if spec.kind == "table":
        ev = _table_evaluator(spec, space, dataset)
    else:
        ev = _training_evaluator(spec, space, dataset)
    if spec.budget is not None:
        budget = check_budget(spec.budget, ev)
    else:
        budget = default_budget(dataset, has_time=ev.has_cost, clock=ev.clock)
        if note is not None:
            note(f"budget: {budget} simulated (default for {dataset})")
    if spec.zero_cost is not None:
        t = spec.training
        ev = with_proxy(
            ev,
            spec.zero_cost,
            dataset=spec.zero_cost.dataset or dataset,
            data_dir=t.data_dir,
            seed=spec.seed,
            C=t.channels,
            N=t.cells,
            device=t.device,
            task=spec.task,
        )
    if spec.objectives is not None:
        ev = with_objectives(ev, spec.objectives)
    return ev, budget


def with_proxy(
    evaluator: Evaluator,
    settings: ZeroCostSettings,
    *,
    dataset: str,
    data_dir: Path | None,
    seed: int,
    C: int | None,
    N: int | None,
    device: str,
    task: str = "classification",
) -> Evaluator:
    """``evaluator`` with the zero-cost proxy of ``settings`` answering fidelity 0 on the
    same clock (what ``nasforge search --zc-proxy`` runs): each proxy query is charged its
    measured compute seconds, or ``settings.charge`` seconds when given. The batch is drawn
    lazily from ``dataset`` (under ``data_dir``) with ``seed``; the network is the space's
    at C / N (default the space's published size). ``settings.scores``: rows of
    ``nasforge zc`` made with the same settings, answered without recomputing (each run
    still charged their seconds, or the fixed charge). ``task``: the proxy scores the
    networks of that task on its data (see :class:`~nasforge.evaluate.zero_cost.
    ZeroCostEvaluator`)."""
    from nasforge.evaluate.zero_cost import (
        WithZeroCost,
        ZeroCostEvaluator,
        cached_scores,
        network_config,
        proxy_settings,
    )

    space = evaluator.space.name
    known = None
    if settings.scores is not None:
        expected = proxy_settings(
            space, dataset, settings.batch_size, 1, seed, network_config(space, C, N), task=task
        )
        known = cached_scores(
            settings.scores, settings.proxy, expected, charged=settings.charge is not None
        )
    zc_ev = ZeroCostEvaluator(
        settings.proxy,
        dataset,
        data_dir=data_dir,
        batch_size=settings.batch_size,
        seed=seed,
        C=C,
        N=N,
        device=device,
        charge=settings.charge,
        space=space,
        scores=known,
        **({} if task == "classification" else {"task": task}),
    )
    return WithZeroCost(evaluator, zc_ev)
