"""The benchmark builder: train every (arch, seed) of a search space into a table.

The driver enumerates the work, skips what the table already holds, and submits one task
per (arch, seed) through a :mod:`nasforge.run` executor (in-process, a local process pool,
or Ray). Each result streams back as soon as it is finished and the driver alone appends it
to the table (the store's journal makes each append all-or-nothing), so a build killed at
any moment loses at most the trainings that were in flight, and re-running the same
command resumes: finished entries are skipped, none is trained twice.

A training that raises or diverges is recorded as ``failed`` / ``diverged`` with its error
and resubmitted, up to ``max_retries`` more times; it never stops the build. Costs (params,
FLOPs in the NB201 convention, latency at batch 1 measured on the worker's device, stored
as ``latency_s`` with ``latency_batch: 1`` in the build metadata) are recorded once per arch, measured by the task that trains the
arch's first pending seed.

Which archs (``archs``):

- ``"all"``: the 15,625 archs in official index order;
- ``"unique"``: one representative per isomorphism class (6,466, :func:`unique_archs`,
  the class member of lowest official index); the table records ``unique=True`` in its
  metadata and answers for every arch through :meth:`Arch.canonical`;
- an int ``N``: the first ``N`` archs of a random permutation of the official index order
  drawn with ``numpy.random.default_rng(order_seed)`` -- a uniform sample of the space that
  is the same on every run (so resuming finds the same archs), and whose first ``N`` are a
  prefix of the first ``N + k`` (so a bigger build extends a smaller one);
- a path: a file with one arch per line (official string or index; ``#`` starts a
  comment), or a JSON list of them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.bench.query import ANSWER_BY_CLASS, Benchmark
from nasforge.bench.schema import ResultEntry, check_dataset, check_hp
from nasforge.bench.store import MANIFEST, read_manifest
from nasforge.bench.writer import TableWriter
from nasforge.errors import ArchError, BenchError, NasforgeError
from nasforge.inputs import check_int_text, excerpt, parse_json, read_text
from nasforge.spaces.nb201 import NUM_ARCHS, Arch, all_archs, unique_archs

if TYPE_CHECKING:  # the executors sit below bench in the layering; imported at run time
    from nasforge.run import Executor, Outcome

SPACES: tuple[str, ...] = ("nb201",)
#: Batch size of the builder's latency measurement.
LATENCY_BATCH = 1
#: Cost column of that measurement: ``latency_s``, the one latency name of every table (the
#: batch it was measured at is in the table's metadata, :meth:`Benchmark.latency_batch`:
#: official tables measured at batch 256, nas_201_api api_utils.py ``get_latency``).
#: Tables built before that name was unified hold ``latency_b1_s``, read as ``latency_s``.
LATENCY_COST = "latency_s"


# ---------------------------------------------------------------------------------------
# Which archs
# ---------------------------------------------------------------------------------------
def resolve_archs(spec: str | int | Sequence[Any], *, order_seed: int = 0) -> list[Arch]:
    """The archs a build trains, in the order it trains them (see the module docstring)."""
    if isinstance(spec, (list, tuple)):
        return _dedup(Arch.parse(a) for a in spec)
    if isinstance(spec, bool):
        raise ArchError(f"archs {spec!r} invalid; expected 'all', 'unique', N or a file")
    if isinstance(spec, (int, np.integer)) or (
        isinstance(spec, str) and spec.strip().isascii() and spec.strip().isdigit()
    ):
        if isinstance(spec, str):
            check_int_text(spec, "archs N", ArchError)
        n = int(spec)
        if not 1 <= n <= NUM_ARCHS:
            raise ArchError(f"archs N={n} out of range; expected 1..{NUM_ARCHS}")
        perm = np.random.default_rng(order_seed).permutation(NUM_ARCHS)
        return [Arch.from_index(int(i)) for i in perm[:n]]
    if not isinstance(spec, (str, os.PathLike)):
        raise ArchError(f"archs {spec!r} invalid; expected 'all', 'unique', N or a file")
    if spec == "all":
        return list(all_archs())
    if spec == "unique":
        return unique_archs()
    path = Path(spec)
    if not path.is_file():
        raise ArchError(
            f"archs {str(spec)!r} is neither 'all', 'unique', a number nor an existing file"
        )
    text = read_text(path, "arch file", ArchError)
    if text.lstrip().startswith("["):
        items = parse_json(text, f"arch file {excerpt(str(path), 256)}", ArchError)
        if not isinstance(items, list):
            raise ArchError(f"arch file {excerpt(str(path), 256)} holds JSON that is not a list")
    else:
        items = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        for s in items:
            check_int_text(s, f"arch file {excerpt(str(path), 256)}", ArchError)
        # ASCII digits only: int() also reads other scripts' digits ("١٢").
        items = [int(s) if s.isascii() and s.isdigit() else s for s in items if s]
    if not items:
        raise ArchError(f"arch file {str(path)!r} lists no architecture")
    return _dedup(Arch.parse(a) for a in items)


def _dedup(archs: Any) -> list[Arch]:
    seen: dict[Arch, None] = {}
    for a in archs:
        seen.setdefault(a, None)
    return list(seen)


# ---------------------------------------------------------------------------------------
# The task (runs in a worker)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainTask:
    """One unit of work, picklable: train ``arch`` with ``seed`` (and maybe measure costs)."""

    arch: str
    seed: int
    dataset: str
    recipe: dict[str, Any]
    data_dir: str | None = None
    limit: int | None = None
    data_seed: int = 0
    C: int = 16
    N: int = 5
    device: str = "auto"
    with_cost: bool = False
    attempt: int = 1
    earlier_errors: tuple[str, ...] = ()


_DATA_CACHE: dict[tuple[Any, ...], Any] = {}


def load_task_data(task: TrainTask) -> Any:
    """Load the dataset once per worker process: workers are reused across tasks."""
    from nasforge.data import load_splits

    key = (task.dataset, task.data_dir, task.limit, task.data_seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one dataset at a time per worker keeps memory bounded
        _DATA_CACHE[key] = load_splits(
            task.dataset, task.data_dir, seed=task.data_seed, limit=task.limit
        )
    return _DATA_CACHE[key]


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        # Under Ray, CUDA_VISIBLE_DEVICES is set to the task's GPU share, or to nothing.
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


#: Forward passes of the builder's latency measurement: untimed warm-up (the first pass
#: creates the oneDNN primitives of every shape), then timed (the median is stored). Fewer
#: than :func:`nasforge.cost.latency`'s defaults (5, 20): at batch 1 the median of 5 is
#: within the run-to-run spread of the reference measurement itself
#: (``benchmarks/build_cost_overhead.py`` measures both), and the cost is paid per key.
LATENCY_WARMUP, LATENCY_REPEATS = 1, 5
#: Latencies measured by this worker, by :func:`latency_key`: archs with the same key run
#: the same kernels on the same shapes.
_LATENCY_CACHE: dict[tuple[Any, ...], float] = {}


def latency_key(arch: Arch, *, C: int, N: int, data: Any, device: str) -> tuple[Any, ...]:
    """What an NB201 network's forward latency depends on: the *multiset* of the cell's ops.

    Every edge of a cell runs its op at the cell's shape, ``none`` included (a zero of the
    input's shape), and a node adds its inputs in a fixed count (0, 1, 2 additions), so two
    archs with the same ops on different edges call the same kernels on the same shapes, in
    another order. 210 keys cover the 15,625 archs; params and FLOPs are sums over the same
    multiset (:func:`nasforge.cost.nb201.shape_cost`).
    """
    return (tuple(sorted(arch.ops)), C, N, data.resolution, data.num_classes, device)


def measure_cost(arch: Arch, data: Any, *, C: int, N: int, device: str) -> dict[str, float]:
    """Params (M), FLOPs (M, NB201 convention) and latency (s per batch of
    :data:`LATENCY_BATCH`, key :data:`LATENCY_COST`) of ``arch`` built for ``data``, the
    latency on ``device``: the median of :data:`LATENCY_REPEATS` passes, measured once per
    :func:`latency_key` in a worker (later archs with that key reuse it). Params and FLOPs
    are the analytic :func:`~nasforge.cost.nb201.shape_cost` (the same floats as counting
    the built network, ``tests/test_zero_cost.py``)."""
    from nasforge.cost import latency
    from nasforge.cost.nb201 import shape_cost

    cost = shape_cost(arch, data.resolution, data.num_classes, C=C, N=N)
    key = latency_key(arch, C=C, N=N, data=data, device=device)
    lat = _LATENCY_CACHE.get(key)
    if lat is None:
        from nasforge.nn.nb201 import NB201Network

        net = NB201Network(arch, C=C, N=N, num_classes=data.num_classes)
        res = data.resolution
        lat = latency(
            net,
            (LATENCY_BATCH, 3, res, res),
            device=device,
            warmup=LATENCY_WARMUP,
            repeats=LATENCY_REPEATS,
        )
        _LATENCY_CACHE[key] = lat
    return {"params_m": float(cost.params_m), "flops_m": float(cost.flops_m), LATENCY_COST: lat}


def run_train_task(task: TrainTask) -> dict[str, Any]:
    """Worker side: train one (arch, seed); return a JSON-able result.

    A training that raises is returned as ``status="failed"`` with its traceback rather
    than raised, so costs measured before it still come back.
    """
    import traceback

    from nasforge.train import Recipe, train_arch

    arch = Arch.from_string(task.arch)
    device = _resolve_device(task.device)
    data = load_task_data(task)
    out: dict[str, Any] = {"device": device, "host": socket.gethostname(), "cost": None}
    # Process CPU seconds of the cost measurement and of the training (the builder's
    # overhead per arch, benchmarks/build_cost_overhead.py); the driver ignores them.
    cpu0 = time.process_time()
    if task.with_cost:
        out["cost"] = measure_cost(arch, data, C=task.C, N=task.N, device=device)
    cpu1 = time.process_time()
    out["cpu_s"] = {"cost": cpu1 - cpu0}
    try:
        recipe = Recipe.from_dict(task.recipe)
        result = train_arch(
            arch, data, recipe, seed=task.seed, C=task.C, N=task.N, device=device, quiet=True
        )
        out["result"] = result.to_dict()
        out["status"] = result.status
        out["error"] = result.error
    except Exception:
        out["result"] = None
        out["status"] = "failed"
        out["error"] = traceback.format_exc()
    out["cpu_s"]["train"] = time.process_time() - cpu1
    return out


# ---------------------------------------------------------------------------------------
# Result -> table entry
# ---------------------------------------------------------------------------------------
_EVAL_NAMES = ("valid", "test", "valtest")


def entry_curves(result: dict[str, Any]) -> dict[str, list[float]]:
    """Per-epoch curves in the table schema from a ``TrainResult.to_dict()``.

    The trainer times all evaluations of an epoch together, so the per-split evaluation
    times of the schema (``valid_time``, ...) are left missing rather than guessed.
    """
    epochs = result.get("epochs") or []
    curves: dict[str, list[float]] = {}
    if not epochs:
        return curves

    def col(name: str, values: list[Any]) -> None:
        curves[name] = [float("nan") if v is None else float(v) for v in values]

    col("train_loss", [e.get("train_loss") for e in epochs])
    col("train_acc", [e.get("train_acc") for e in epochs])
    col("epoch_time", [e.get("epoch_time") for e in epochs])
    for s in _EVAL_NAMES:
        if any(s in e["eval"] for e in epochs):
            for m in ("loss", "acc"):
                col(f"{s}_{m}", [e["eval"].get(s, {}).get(m) for e in epochs])
    # An all-missing column carries no information; the schema reports it as missing.
    return {k: v for k, v in curves.items() if not all(math.isnan(x) for x in v)}


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildConfig:
    """What to build; identical configs resume the same table.

    ``recipe`` is a registered recipe name; ``epochs`` overrides its epoch count (tiny runs).
    ``hp`` is the table's key for the recipe (default: its epoch count as a string, the
    official API's naming: ``"12"``, ``"200"``). ``limit`` caps every data split's size;
    ``C``/``N`` are the network's channels and cells per stage (NB201: 16 and 5).
    """

    dataset: str
    space: str = "nb201"
    recipe: str = "nb201-12e"
    seeds: tuple[int, ...] = (777,)
    archs: str | int | tuple[Any, ...] = "all"
    order_seed: int = 0
    epochs: int | None = None
    hp: str | None = None
    data_dir: str | None = None
    limit: int | None = None
    data_seed: int = 0
    C: int = 16
    N: int = 5
    device: str = "auto"
    max_retries: int = 2
    retry_failed: bool = True

    def __post_init__(self) -> None:
        # The same name rules as the importers and the table itself: one validation.
        check_dataset(self.dataset)
        if self.hp is not None:
            check_hp(self.hp)
        if self.space not in SPACES:
            raise NasforgeError(f"unknown space {self.space!r}; expected one of {list(SPACES)}")
        if not self.seeds:
            raise NasforgeError("seeds must name at least one seed, e.g. 777 888 999")
        if len(set(self.seeds)) != len(self.seeds):
            raise NasforgeError(f"seeds must be distinct, got {list(self.seeds)}")
        for name, v, lo in (
            ("C", self.C, 1),
            ("N", self.N, 1),
            ("max_retries", self.max_retries, 0),
        ):
            if not isinstance(v, int) or v < lo:
                raise NasforgeError(f"{name} must be an int >= {lo}, got {v!r}")
        if self.limit is not None and self.limit < 1:
            raise NasforgeError(f"limit must be >= 1, got {self.limit}")

    def get_recipe(self) -> Any:
        from nasforge.train import get_recipe

        overrides = {} if self.epochs is None else {"epochs": self.epochs}
        return get_recipe(self.recipe, **overrides)

    def hp_key(self) -> str:
        return self.hp if self.hp is not None else str(self.get_recipe().epochs)


@dataclass
class BuildReport:
    """What a build (or one resumed part of it) did."""

    path: str
    dataset: str
    hp: str
    total: int  # (arch, seed) pairs the build covers
    skipped: int  # already in the table at start
    trained: int  # finished this run (ok or not)
    ok: int
    failed: int  # ended failed or diverged after all retries
    attempts: int  # trainings started this run, retries included
    elapsed_s: float
    trainings_per_min: float  # finished trainings (arch x seed) per minute this run
    executor: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def archs_per_min(self) -> float:
        """The old name of :attr:`trainings_per_min` (one unit everywhere: trainings)."""
        return self.trainings_per_min

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build(
    config: BuildConfig,
    path: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    executor_name: str = "local",
    executor_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> BuildReport:
    """Build (or resume) the table at ``path`` for ``config``.

    ``executor`` is a ready :class:`nasforge.run.Executor` (left open); otherwise one is
    created with ``create_executor(executor_name, **executor_kwargs)`` and shut down at the
    end. Returns a :class:`BuildReport`.
    """
    from nasforge.run import create_executor

    # Everything that can be wrong with the request is checked before the table is touched
    # or anything trained: a bad dataset or device must not become a table of failures.
    recipe = config.get_recipe()
    hp = check_hp(config.hp_key())
    archs = resolve_archs(config.archs, order_seed=config.order_seed)
    path = Path(path)
    check_output_path(path)
    engine = executor.name if executor is not None else executor_name
    check_device(config.device, here=engine == "local")
    base = dict(
        dataset=config.dataset,
        recipe=recipe.to_dict(),
        data_dir=None if config.data_dir is None else str(config.data_dir),
        limit=config.limit,
        data_seed=config.data_seed,
        C=config.C,
        N=config.N,
        device=config.device,
    )
    # Unknown dataset, missing data files: they fail here, once, not in every task.
    load_task_data(TrainTask(arch=Arch.from_index(0).to_string(), seed=config.seeds[0], **base))
    owns_executor = executor is None
    costed = _archs_with_cost(path, config.dataset)
    t_start = time.perf_counter()
    with TableWriter(path, space=config.space, create=True) as writer:
        _record_meta(writer, config, recipe, hp)
        pending: deque[TrainTask] = deque()
        skipped = 0
        for arch in archs:
            need_cost = arch.to_index() not in costed
            for seed in config.seeds:
                status = writer.status(arch, config.dataset, hp, seed)
                if status == "ok" or (status is not None and not config.retry_failed):
                    skipped += 1
                    continue
                pending.append(
                    TrainTask(arch=arch.to_string(), seed=seed, with_cost=need_cost, **base)
                )
                need_cost = False  # one measurement per arch: the first pending seed's task
        total = len(archs) * len(config.seeds)
        if owns_executor:
            executor = create_executor(executor_name, **(executor_kwargs or {}))
        if not executor.in_process:
            _DATA_CACHE.clear()  # the workers load their own copy; free the driver's
        try:
            report = _drive(executor, writer, pending, config, hp, total, skipped, progress)
        finally:
            if owns_executor:
                executor.shutdown()
    report.path = str(path)
    report.elapsed_s = time.perf_counter() - t_start
    report.executor = repr(executor)
    return report


def check_output_path(path: Path) -> None:
    """Refuse a table path that cannot be written, before any work: a file, a path under a
    file, a directory holding something else than a table, or a foreign / corrupt table."""
    if path.exists() and not path.is_dir():
        raise BenchError(f"output {str(path)!r} is a file; expected a table directory")
    if (path / MANIFEST).exists():
        read_manifest(path)
        return
    if path.is_dir() and any(path.iterdir()):
        raise BenchError(
            f"output {str(path)!r} exists and is not empty but holds no table; "
            "refusing to write into it"
        )
    parent = path if path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BenchError(f"output {str(path)!r} lies under {str(parent)!r}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BenchError(f"output {str(path)!r} cannot be created: {str(parent)!r} is read-only")


def check_device(device: str, *, here: bool) -> None:
    """Refuse a malformed device name; when tasks run on this machine (``here``), also one
    it does not have (``cuda`` without CUDA)."""
    if device == "auto":
        return
    import torch

    from nasforge.train.device import resolve_device

    if here:
        resolve_device(device, BenchError)
        return
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BenchError(
            f"device {device!r} invalid ({exc}); expected auto, cpu, cuda or cuda:N"
        ) from None


def _drive(
    executor: Executor,
    writer: TableWriter,
    pending: deque[TrainTask],
    config: BuildConfig,
    hp: str,
    total: int,
    skipped: int,
    show: bool,
) -> BuildReport:
    """Keep the executor busy, append each result as it lands, resubmit failures."""
    report = BuildReport(
        path="",
        dataset=config.dataset,
        hp=hp,
        total=total,
        skipped=skipped,
        trained=0,
        ok=0,
        failed=0,
        attempts=0,
        elapsed_s=0.0,
        trainings_per_min=0.0,
        executor="",
    )
    window = max(1, executor.default_in_flight)
    in_flight: dict[int, tuple[TrainTask, Any]] = {}
    bar = _Progress(total, skipped, show)
    t0 = time.perf_counter()
    try:
        with bar:
            while pending or in_flight:
                while pending and len(in_flight) < window:
                    task = pending.popleft()
                    job = executor.submit(run_train_task, task)
                    in_flight[id(job)] = (task, job)
                    report.attempts += 1
                for job in executor.wait([j for _, j in in_flight.values()], None):
                    task, _ = in_flight.pop(id(job))
                    out = job.outcome(0, task)
                    retry = _record(writer, config, hp, task, out, report)
                    if retry is not None:
                        pending.appendleft(retry)  # retried next, before new work
                    else:
                        report.trained += 1
                    elapsed = time.perf_counter() - t0
                    report.trainings_per_min = 60.0 * report.trained / max(elapsed, 1e-9)
                    bar.update(report)
    finally:
        for _, job in in_flight.values():
            executor.cancel(job)
    return report


def _record(
    writer: TableWriter,
    config: BuildConfig,
    hp: str,
    task: TrainTask,
    out: Outcome,
    report: BuildReport,
) -> TrainTask | None:
    """Append one finished attempt; return the task to retry, or None when it is final."""
    arch = Arch.from_string(task.arch)
    value = out.value if out.ok else None
    if value is None:  # the worker itself failed (died, lost): no result, no cost
        status, error, curves = "failed", out.error, {}
    else:
        status, error = value["status"], value.get("error")
        curves = entry_curves(value["result"]) if value.get("result") else {}
        if value.get("cost"):
            writer.set_cost(arch, config.dataset, **value["cost"])
    if status == "ok" and not curves:
        status, error = "failed", "training finished without recording any epoch"
    if status != "ok" and error is None:
        error = f"training {status}"
    message = None
    if status != "ok":
        # The table keeps one error per (arch, seed): the last attempt's full traceback,
        # followed by the last line of each earlier attempt's.
        tries = config.max_retries + 1
        message = f"attempt {task.attempt}/{tries}: {error}"
        if task.earlier_errors:
            message += "\nearlier attempts:\n" + "\n".join(task.earlier_errors)
    entry = ResultEntry(
        arch=arch,
        dataset=config.dataset,
        hp=hp,
        seed=task.seed,
        curves=curves if status == "ok" else {},  # non-ok entries are never served
        status=status,
        error=message,
    )
    writer.append(entry)
    if status == "ok":
        report.ok += 1
        return None
    if task.attempt <= config.max_retries:
        # Costs came back with this attempt unless the worker died; keep asking otherwise.
        with_cost = task.with_cost and not (value and value.get("cost"))
        last_line = (error or "").strip().splitlines()[-1:] or [status]
        return dataclasses.replace(
            task,
            attempt=task.attempt + 1,
            with_cost=with_cost,
            earlier_errors=(*task.earlier_errors, f"attempt {task.attempt}: {last_line[0]}"),
        )
    report.failed += 1
    report.errors.append({"arch": task.arch, "seed": task.seed, "status": status, "error": message})
    return None


# ---------------------------------------------------------------------------------------
# Table helpers
# ---------------------------------------------------------------------------------------
#: Sidecar in the table directory recording how each (dataset, hp) group was built.
#: Key of the build settings in the table manifest's metadata.
BUILD_META = "build"


def _archs_with_cost(path: Path, dataset: str) -> set[int]:
    """Official indices of the archs whose costs on ``dataset`` the table already holds."""
    if not (path / "manifest.json").exists():
        return set()
    known = Benchmark.open(path).cost_known(dataset)
    return set(np.flatnonzero(known).tolist())


def read_build_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """How the groups of the table at ``path`` were built: ``{"dataset/hp": settings}``
    (recipe, archs spec, ``unique``, C, N, limit, ...); empty for tables not built here.
    Kept in the table manifest's metadata under ``"build"``."""
    if not (Path(path) / "manifest.json").exists():
        return {}
    return dict(Benchmark.open(path).meta.get(BUILD_META) or {})


def _record_meta(writer: TableWriter, config: BuildConfig, recipe: Any, hp: str) -> None:
    """Record what built the group; a resumed build must train with the same settings."""
    import nasforge

    meta = {
        "space": config.space,
        "dataset": config.dataset,
        "hp": hp,
        "recipe": recipe.to_dict(),
        "seeds": list(config.seeds),
        "archs": config.archs if isinstance(config.archs, (str, int)) else "list",
        "unique": config.archs == "unique",
        "order_seed": config.order_seed,
        "C": config.C,
        "N": config.N,
        "limit": config.limit,
        "data_seed": config.data_seed,
        "latency_batch": LATENCY_BATCH,
        "nasforge": getattr(nasforge, "__version__", "unknown"),
    }
    key = f"{config.dataset}/{hp}"
    all_meta = dict(writer.meta.get(BUILD_META) or {})
    old = all_meta.get(key)
    if old is not None:
        same = ("recipe", "C", "N", "limit", "data_seed")
        diff = {k: [old.get(k), meta[k]] for k in same if old.get(k) != meta[k]}
        if diff:
            raise BenchError(
                f"group {key} of {str(writer.path)!r} was built with other settings "
                f"(table, now: {diff}); write to another table (-o) or use another --hp key"
            )
        # Seeds and archs may grow across runs (a bigger build extends a smaller one).
        meta["seeds"] = sorted(set(old.get("seeds", [])) | set(meta["seeds"]))
        if old.get("archs") != meta["archs"]:
            meta["archs"] = "mixed"
            meta["unique"] = bool(old.get("unique")) or meta["unique"]
    all_meta[key] = meta
    writer.set_meta(BUILD_META, all_meta)
    if meta["unique"]:
        writer.set_meta(ANSWER_BY_CLASS, True)


# ---------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------
class _Progress:
    """Rich bar: done/total, failures, throughput, ETA; silent when ``show`` is False."""

    def __init__(self, total: int, done: int, show: bool) -> None:
        self.show = show
        if not show:
            return
        from nasforge.progress import make_progress, output_console

        self.progress = make_progress(
            "[bold]build",
            "[red]{task.fields[failed]} failed",
            "{task.fields[rate]:.1f} trainings/min",
            console=output_console(stderr=True),  # stdout stays clean for --json reports
        )
        self.task = self.progress.add_task("build", total=total, completed=done, failed=0, rate=0.0)
        self.done = done

    def __enter__(self) -> _Progress:
        if self.show:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self.progress.stop()

    def update(self, report: BuildReport) -> None:
        if not self.show:
            return
        self.progress.update(
            self.task,
            completed=report.skipped + report.trained,
            failed=report.failed,
            rate=report.trainings_per_min,
        )
