"""Searches that own a whole run on a task's data: search, derive, write the arch.

The task families (restoration, video, detection, translation) bring search methods whose
loop is their own (HiNAS's hierarchical search, trilevel NAS, PV-NAS, reversible DARTS,
SM-NAS's two stages): each is a :class:`TaskSearch` registered in :data:`TASK_SEARCHES`
by name, in its own file, and listed once in :data:`TASK_SEARCH_MODULES`.
``nasforge search --task T --space S --algo A -o DIR`` builds a :class:`TaskSearchSpec`
and calls :func:`run_task_search`, which checks the combination before any work, runs the
search, and writes ``DIR/arch.json`` (read by ``nasforge train --task T --space S --arch
DIR/arch.json``) and ``DIR/summary.json``.
"""

from __future__ import annotations

import abc
import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.errors import SearchError
from nasforge.io import atomic_write_json, check_output_dir
from nasforge.registry import Registry
from nasforge.tasks import Task

#: Modules that register task searches (imported by :func:`task_searches`).
TASK_SEARCH_MODULES: list[str] = [
    "nasforge.search.video.pvnas",
    "nasforge.search.translation.rev_darts",
    "nasforge.search.restoration.hinas",
    "nasforge.search.restoration.trilevel",
    "nasforge.search.detection.smnas",
]


@dataclass(frozen=True)
class TaskSearchSpec:
    """Everything a task search is told by the caller; method settings are ``params``
    (``--param KEY=VALUE``), validated by the method before any work."""

    task: Task
    space: str
    seed: int = 0
    dataset: str | None = None
    data_dir: Path | None = None
    epochs: int | None = None
    limit: int | None = None
    recipe: str | None = None
    device: str = "cpu"
    quiet: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskSearchResult:
    """What a task search returns: the derived arch (its space's string form), the metrics
    of the derived arch the search measured (task metric names), the search's wall time and
    peak memory, and method-specific facts (JSON-able)."""

    arch: str
    metrics: dict[str, float] = field(default_factory=dict)
    search_time_s: float = 0.0
    peak_memory_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TaskSearch(abc.ABC):
    """A search method that runs on a task's data in one or more spaces."""

    #: Spaces the method searches; tasks it serves (task names).
    spaces: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()

    @abc.abstractmethod
    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        """Search and derive; may write method files (plots, logs) under ``out``."""


TASK_SEARCHES: Registry[TaskSearch] = Registry("task search method")


def task_searches() -> Registry[TaskSearch]:
    """The registry with every listed module imported (their registration lines run)."""
    for name in TASK_SEARCH_MODULES:
        importlib.import_module(name)
    return TASK_SEARCHES


def run_task_search(algo: str, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
    """Run the task search ``algo`` and write ``out/arch.json`` and ``out/summary.json``.

    The algorithm, the space and the task are checked against each other before any work.
    """
    registry = task_searches()
    if algo not in registry:
        names = ", ".join(registry.names()) or "(none)"
        raise SearchError(
            f"--algo {algo!r} is not a search method of task {spec.task.name!r}; expected "
            f"one of: {names}"
        )
    method = registry.create(algo)
    if spec.space not in method.spaces:
        raise SearchError(
            f"{algo} searches the space(s) {list(method.spaces)}, not --space {spec.space!r}"
        )
    if spec.task.name not in method.tasks:
        raise SearchError(
            f"{algo} serves the task(s) {list(method.tasks)}, not --task {spec.task.name!r}"
        )
    check_output_dir(out)
    t0 = time.perf_counter()
    result = method.run(spec, out)
    wall = time.perf_counter() - t0
    doc = {"task": spec.task.name, "space": spec.space, "algo": algo, "arch": result.arch}
    atomic_write_json(out / "arch.json", {**doc, "seed": spec.seed})
    atomic_write_json(
        out / "summary.json",
        {
            **doc,
            "seed": spec.seed,
            "params": spec.params,
            "metrics": result.metrics,
            "search_time_s": result.search_time_s or wall,
            "peak_memory_mb": result.peak_memory_mb,
            **result.extra,
        },
    )
    return result
