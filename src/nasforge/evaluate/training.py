"""Evaluate an arch by really training it: :class:`TrainingEvaluator` (wall-clock costs).

The fidelity is a number of epochs: an evaluation at fidelity ``f`` trains the arch from
scratch with the recipe's schedule shortened to ``f`` epochs (``recipe.replace(epochs=f)``,
i.e. budgets-as-epochs as in BOHB), and reads the validation / test accuracy after the last
epoch (of a task other than classification: its primary metric, e.g. PSNR, in the
observation's ``valid_acc`` / ``test_acc`` fields, which searchers maximise). A
``resume_key`` keeps the training seed of that trial, but the training restarts from
scratch (a shorter schedule is not a prefix of a longer one, so there is no checkpoint to
continue from): the cost of every rung is its own full wall time, as in the original BOHB.

The network comes from the space: ``nasforge.nn.build_network(space, arch, ...)`` with the
builder's options (NB201: ``C``, ``N``), so any space that registered a network builder can
be searched by real training.

One evaluation is the pure function :func:`train_task` of picklable arguments, so a batch of
asked archs can be handed to an executor (``evaluate_batch(..., executor=...)``, any
:class:`nasforge.run.Executor`); without one it runs in-process, one after the other. When
the dataset was given by name, a task carries only that name (with its root and sample cap)
and each worker loads it once and keeps it (the benchmark builder's per-worker cache,
``nasforge.bench.build.load_task_data``), rather than every task pickling the tensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ArchError, SearchError
from nasforge.evaluate.base import Arch, Evaluator, NetworkSpec, Observation
from nasforge.spaces import SearchSpace, get_space

if TYPE_CHECKING:  # run/ sits below evaluate/: the executor is only called, never imported
    from nasforge.run import Executor

__all__ = ["DataSpec", "TrainingEvaluator", "train_task"]

#: A dataset by reference: ``(name, root or None, limit or None)`` for ``load_splits``.
DataSpec = tuple[str, str | None, int | None]


def _resolve_data(data: Any, recipe: Any, arch: str, seed: int) -> Any:
    """``data`` itself, or the dataset a :data:`DataSpec` names, loaded once per process."""
    if not isinstance(data, tuple):
        return data
    from nasforge.bench.build import TrainTask, load_task_data

    name, root, limit = data
    task = TrainTask(
        arch=arch, seed=seed, dataset=name, recipe=recipe.to_dict(), data_dir=root, limit=limit
    )
    return load_task_data(task)


def train_task(
    arch: str,
    data: Any,
    recipe: Any,
    fidelity: int,
    seed: int,
    network: dict[str, Any],
    device: str,
    valid_split: str,
    test_split: str | None,
    space: str = "nb201",
    task: Any = "classification",
) -> dict[str, Any]:
    """Train ``arch`` (a string of the registered space ``space``) for ``fidelity`` epochs
    on ``task`` (a registered task name or a Task) and return its primary metric
    (classification: accuracy) on the validation and test splits, and its wall time.

    ``network`` are the options of the space's network builder (NB201: ``C``, ``N``).
    ``data`` is a ``DatasetSplits`` or a :data:`DataSpec` (loaded in the worker, cached).
    Module-level and picklable so an executor can run it in a worker.
    """
    from nasforge.nn import build_network
    from nasforge.nn.registry import check_network
    from nasforge.tasks import get_task
    from nasforge.train import Trainer, set_seed

    tk = get_task(task)
    value = get_space(space).from_string(arch)
    data = _resolve_data(data, recipe, arch, seed)
    t0 = time.perf_counter()
    # seeded initialisation, then the one trainer (as nasforge.train.train_arch does)
    io = tk.network_io(data)
    check_network(space, io, network)  # a builder that cannot serve the task: the setting's error
    set_seed(seed)
    try:
        model = build_network(space, value, io=io, **network)
    except ArchError as exc:
        # an arch of the space that cannot serve this task (e.g. an upsampling network
        # asked to denoise): a failed evaluation the searcher learns from, not a crash
        return {
            "valid_acc": math.nan,
            "test_acc": math.nan,
            "wall": time.perf_counter() - t0,
            "status": "failed",
            "error": str(exc),
            "epochs": 0,
            "train_time": 0.0,
        }
    trainer = Trainer(
        recipe.replace(epochs=fidelity, warmup_epochs=min(recipe.warmup_epochs, fidelity - 1)),
        device=device,
        quiet=True,
        task=tk,
    )
    result = trainer.fit(model, data, seed=seed)
    wall = time.perf_counter() - t0
    valid = test = math.nan
    if result.epochs:
        last = result.epochs[-1].eval
        if valid_split in last:
            valid = float(last[valid_split][tk.primary])
        if test_split is not None and test_split in last:
            test = float(last[test_split][tk.primary])
    return {
        "valid_acc": valid,
        "test_acc": test,
        "wall": wall,
        "status": result.status,
        "error": result.error,
        "epochs": len(result.epochs),
        "train_time": float(getattr(result, "total_train_time", math.nan)),
    }


def _train_packed(args: tuple[Any, ...]) -> dict[str, Any]:
    """:func:`train_task` of one argument tuple (``Executor.map`` passes one task)."""
    return train_task(*args)


class TrainingEvaluator(Evaluator):
    """Train each asked arch for real with a recipe on a dataset; charge wall time.

    ``recipe`` is a :class:`nasforge.train.Recipe` or a registered recipe name; ``data`` a
    :class:`nasforge.data.DatasetSplits` or a dataset name for
    :func:`nasforge.data.load_splits` (with ``data_dir`` and ``limit``). The search sees the
    accuracy on the ``valid_split`` evaluation split; the ``test_split`` accuracy is kept for
    reporting only. ``space`` names the search space (a registered name or a space with a
    network builder registered under its name); ``C`` / ``N`` set the network size where
    given (NB201 defaults: 16 / 5) and ``network`` any other option of the space's builder.
    ``task`` (a registered name or a :class:`~nasforge.tasks.Task`) is what is trained:
    its data (``data`` a dataset name its :meth:`~nasforge.tasks.Task.load` reads, or its
    loaded data), loss and primary metric, which must be higher-is-better (searchers
    maximise it).
    """

    clock = "wall"

    def __init__(
        self,
        recipe: Any,
        data: Any,
        *,
        space: str | SearchSpace[Any] = "nb201",
        C: int | None = None,
        N: int | None = None,
        network: dict[str, Any] | None = None,
        device: str = "cpu",
        data_dir: str | Path | None = None,
        limit: int | None = None,
        valid_split: str = "valid",
        test_split: str | None = "test",
        recipe_overrides: dict[str, Any] | None = None,
        task: Any = "classification",
    ) -> None:
        from nasforge.data import DatasetSplits, load_splits
        from nasforge.nn import NETWORKS, network_options
        from nasforge.tasks import TaskData, get_task
        from nasforge.train import Recipe, get_recipe

        self.task = get_task(task)
        if not self.task.primary_metric.higher_is_better:
            raise SearchError(
                f"task {self.task.name!r}: its primary metric {self.task.primary!r} is "
                "lower-is-better, and searchers maximise what the evaluator reports"
            )
        classification = self.task.name == "classification"
        self._space = get_space(space)
        if self._space.name not in NETWORKS:
            raise SearchError(
                f"space {self._space.name!r} has no network builder, so it cannot be trained; "
                f"spaces with one: {NETWORKS.names()}"
            )
        options = network_options(self._space.name)
        given = {**(network or {}), **{k: v for k, v in (("C", C), ("N", N)) if v is not None}}
        unknown = sorted(set(given) - set(options))
        if unknown:
            raise SearchError(
                f"the {self._space.name} network has no option {', '.join(map(repr, unknown))}; "
                f"it accepts {sorted(options)}"
            )
        self.network = given
        #: every option of the builder, with the value this evaluator trains with
        self.network_config = {**options, **given}

        if isinstance(recipe, str):
            recipe = get_recipe(recipe, **(recipe_overrides or {}))
        elif recipe_overrides:
            recipe = recipe.replace(**recipe_overrides)
        if not isinstance(recipe, Recipe):
            raise SearchError(f"recipe {recipe!r} must be a Recipe or a registered recipe name")
        self.task.check_recipe(recipe)  # before the data: a loss the task lacks is one line
        self._data_spec: DataSpec | None = None
        if isinstance(data, str) and classification:
            self._data_spec = (data, None if data_dir is None else str(data_dir), limit)
            data = load_splits(data, data_dir, limit=limit)
        elif isinstance(data, str):
            # workers receive the loaded data: a DataSpec names classification datasets only
            data = self.task.load(data, data_dir, limit=limit)
        if not isinstance(data, DatasetSplits if classification else TaskData):
            raise SearchError(f"data {data!r} must be a DatasetSplits or a dataset name")
        if valid_split not in data.evals:
            raise SearchError(
                f"dataset {data.name!r} has no {valid_split!r} split (it has "
                f"{list(data.evals)}); a search must select on a validation split — for "
                "CIFAR-10 use the 'cifar10-valid' setting"
            )
        if test_split is not None and test_split not in data.evals:
            test_split = None
        self.recipe = recipe
        self.data = data
        self.device = str(device)
        self.valid_split = valid_split
        self.test_split = test_split
        self._rng = np.random.default_rng(0)
        self._trial_seed: dict[Hashable, int] = {}

    @property
    def space(self) -> SearchSpace[Any]:
        return self._space

    @property
    def C(self) -> Any:  # the network builder option (NB201 width)
        return self.network_config.get("C")

    @property
    def N(self) -> Any:  # the network builder option (NB201 depth)
        return self.network_config.get("N")

    @property
    def fidelities(self) -> Sequence[int]:
        return tuple(range(1, int(self.recipe.epochs) + 1))

    @property
    def default_fidelity(self) -> int:
        return int(self.recipe.epochs)

    def network_spec(self) -> NetworkSpec:
        """The trained networks: the space's builder with this evaluator's options, fed
        single images of the dataset, on the training device."""
        channels = int(self.data.train.images.shape[1])
        res = int(self.data.resolution)
        return NetworkSpec(
            self._space.name,
            {**self.task.network_io(self.data), **self.network},
            (1, channels, res, res),
            self.device,
        )

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed), 0x7EA1])
        self._trial_seed.clear()

    def _prepare(
        self,
        arch: Arch,
        fidelity: int | None,
        resume_key: Hashable | None,
        *,
        remote: bool = False,
    ) -> tuple[int, int, tuple[Any, ...]]:
        f = self.default_fidelity if fidelity is None else int(fidelity)
        if not 1 <= f <= self.default_fidelity:
            raise SearchError(
                f"fidelity {fidelity!r} epochs out of range; the recipe {self.recipe.name!r} "
                f"has 1..{self.default_fidelity} epochs"
            )
        if resume_key is not None and resume_key in self._trial_seed:
            seed = self._trial_seed[resume_key]
        else:
            seed = int(self._rng.integers(2**31 - 1))
            if resume_key is not None:
                self._trial_seed[resume_key] = seed
        args = (
            self._space.to_string(arch),
            # in-process: the loaded dataset; to a worker: its name, loaded there once
            self._data_spec if remote and self._data_spec is not None else self.data,
            self.recipe,
            f,
            seed,
            self.network,
            self.device,
            self.valid_split,
            self.test_split,
            self._space.name,
            self.task,
        )
        return f, seed, args

    @staticmethod
    def _observation(arch: Arch, f: int, seed: int, out: dict[str, Any]) -> Observation:
        status = out["status"] if out["status"] in ("ok", "diverged") else "failed"
        return Observation(
            arch=arch,
            valid_acc=out["valid_acc"],
            fidelity=f,
            cost=float(out["wall"]),
            test_acc=out["test_acc"],
            status=status,
            info={"seed": seed, "error": out.get("error"), "train_time": out.get("train_time")},
        )

    def evaluate(
        self, arch: Arch, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        f, seed, args = self._prepare(arch, fidelity, resume_key)
        return self._observation(arch, f, seed, train_task(*args))

    def evaluate_batch(
        self,
        requests: Sequence[tuple[Arch, int | None, Hashable | None]],
        *,
        executor: Executor | None = None,
    ) -> list[Observation]:
        """Evaluate independent requests, in parallel on ``executor`` when given.

        The executor yields outcomes as they finish; they are put back in request order by
        ``Outcome.index``. A task that raised in its worker becomes a "failed" observation.
        """
        prepared = [self._prepare(a, f, k, remote=executor is not None) for a, f, k in requests]
        if executor is None:
            outs: list[dict[str, Any]] = [train_task(*args) for _, _, args in prepared]
        else:
            by_index: dict[int, dict[str, Any]] = {}
            for outcome in executor.map(_train_packed, [args for _, _, args in prepared]):
                if outcome.ok:
                    by_index[outcome.index] = outcome.value
                else:
                    by_index[outcome.index] = {
                        "valid_acc": math.nan,
                        "test_acc": math.nan,
                        "wall": outcome.run_time if math.isfinite(outcome.run_time) else 0.0,
                        "status": "failed",
                        "error": outcome.error,
                    }
            missing = [i for i in range(len(prepared)) if i not in by_index]
            if missing:
                raise SearchError(f"the executor returned no result for requests {missing}")
            outs = [by_index[i] for i in range(len(prepared))]
        return [
            self._observation(a, f, seed, out)
            for (a, _, _), (f, seed, _), out in zip(requests, prepared, outs, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "name": "train",
            "clock": self.clock,
            # classification records stay as they were before tasks existed
            **({} if self.task.name == "classification" else {"task": self.task.name}),
            "dataset": self.data.name,
            "recipe": self.recipe.name,
            "epochs": int(self.recipe.epochs),
            "space": self._space.name,
            **self.network_config,
            "device": self.device,
            "valid_split": self.valid_split,
            "test_split": self.test_split,
        }
