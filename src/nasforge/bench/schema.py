"""The schema of a benchmark table: metric names, entry statuses, dataset naming.

A table holds, per *group* ``(dataset, hp)`` (``hp`` is the recipe key the official API uses:
``"12"``, ``"200"``; a plain final-metrics table uses e.g. ``"final"``), for every
``(seed, arch)`` the per-epoch curves of the recorded metrics, and per ``(arch, dataset)`` the
costs. A group whose source only had final metrics stores them as a one-epoch curve and is
flagged ``final_only``.

Dataset names are the official NAS-Bench-201 ones: ``cifar10-valid`` (trained on the
CIFAR-10 train half, evaluated on the valid half ``x-valid`` and the test set ``ori-test``),
``cifar10`` (train+valid, evaluated on ``ori-test``), ``cifar100`` and ``ImageNet16-120``
(evaluated on ``x-valid`` / ``x-test``, the two halves of the official test set, and on the
whole of it, ``ori-test``, which we call ``valtest``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nasforge.errors import BenchError

#: Per-epoch metrics, in their canonical column order. Accuracies are in percent, times in
#: seconds. ``epoch_time`` is the training time of that epoch; ``valid_time`` / ``test_time``
#: / ``valtest_time`` the evaluation time of that epoch on that set.
CURVE_METRICS: tuple[str, ...] = (
    "train_loss",
    "train_acc",
    "valid_loss",
    "valid_acc",
    "test_loss",
    "test_acc",
    "valtest_loss",
    "valtest_acc",
    "epoch_time",
    "valid_time",
    "test_time",
    "valtest_time",
)
#: Derived column stored next to the curves: cumulative training seconds after each epoch
#: (the running sum of ``epoch_time``; for a final-metrics table, the total training time).
TRAIN_TIME = "train_time"
ALL_METRICS: tuple[str, ...] = (*CURVE_METRICS, TRAIN_TIME)
#: The metrics a final-metrics-only table may carry.
FINAL_METRICS: tuple[str, ...] = tuple(m for m in ALL_METRICS if m != "epoch_time")
#: Per (arch, dataset) costs. ``latency_s`` is seconds per batch as the official files give
#: it; tables imported from community files may add ``latency_<device>_s`` columns.
COST_METRICS: tuple[str, ...] = ("params_m", "flops_m", "latency_s")
#: Old cost names still read, as the current one: tables built before the latency name was
#: unified stored the builder's batch-1 latency as ``latency_b1_s``; every table now calls
#: it ``latency_s`` and states the batch in its metadata (``Benchmark.latency_batch``).
LEGACY_COST_NAMES: dict[str, str] = {"latency_b1_s": "latency_s"}


def current_cost_names(names: list[str]) -> list[str]:
    """``names`` with old spellings replaced (one that would collide with a current name
    present too is kept as it is: no value is dropped)."""
    return [
        LEGACY_COST_NAMES[n] if n in LEGACY_COST_NAMES and LEGACY_COST_NAMES[n] not in names else n
        for n in names
    ]


#: Entry status codes stored per (seed, arch) of a group; 0 means "no entry".
#: Table metadata key naming the groups that hold seed aggregates, not per-seed runs:
#: ``{"<dataset>/<hp>": "mean"}``; such a group stores its one entry per arch under
#: :data:`AGGREGATE_SEED`, a placeholder that is never shown or exported as a seed.
AGGREGATES_META = "aggregates"
AGGREGATE_SEED = 0
#: The aggregates a table can hold (an ``aggregate`` column of a plain import names one).
AGGREGATE_KINDS = ("mean",)

STATUS_MISSING = 0
STATUS_CODES: dict[str, int] = {"ok": 1, "failed": 2, "diverged": 3}
STATUS_NAMES: dict[int, str] = {v: k for k, v in STATUS_CODES.items()}

#: The official dataset names, in the official order.
OFFICIAL_DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")


def metric_order(names: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """Known metrics in canonical order, then any extra names sorted."""
    known = [m for m in ALL_METRICS if m in names]
    extra = sorted(n for n in names if n not in ALL_METRICS)
    return known + extra


def cost_order(names: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    known = [m for m in COST_METRICS if m in names]
    return known + sorted(n for n in names if n not in COST_METRICS)


def check_metric_name(name: str, *, final_only: bool) -> None:
    """Refuse a metric name the schema does not know."""
    allowed = FINAL_METRICS if final_only else CURVE_METRICS
    if name not in allowed:
        kind = "final metric" if final_only else "per-epoch metric"
        raise BenchError(f"unknown {kind} {name!r}; expected one of {list(allowed)}")


def check_cost_name(name: str) -> None:
    if name in COST_METRICS or (name.startswith("latency_") and name.endswith("_s")):
        return
    raise BenchError(
        f"unknown cost {name!r}; expected one of {list(COST_METRICS)} or 'latency_<device>_s'"
    )


#: Seeds a table stores (int64, as its columns and exports hold them).
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


def check_seed(seed: object, where: str = "seed") -> int:
    """``seed`` as an int within int64 (what a table and its exports hold), else a
    :class:`BenchError` naming ``where``: every importer checks seeds alike."""
    prefix = "" if where == "seed" else f"{where}: "
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BenchError(f"{prefix}seed {str(seed)[:40]!r} must be an int")
    if not SEED_MIN <= int(seed) <= SEED_MAX:
        raise BenchError(
            f"{prefix}seed {str(seed)[:40]} is outside the int64 range a table holds "
            f"({SEED_MIN}..{SEED_MAX})"
        )
    return int(seed)


def check_curve(name: str, values: np.ndarray, where: str) -> None:
    """The value rules every importer applies (the plain importer's, see
    :mod:`nasforge.bench.importers.plain`): no infinity; accuracies (``*_acc``, percent) in
    [0, 100]; losses, times and costs >= 0. NaN is a missing value and passes."""
    v = np.asarray(values, dtype=float)
    if np.isinf(v).any():
        raise BenchError(f"{where}: {name} holds an infinite value; expected finite numbers")
    ok = ~np.isnan(v)
    if name.endswith("_acc") and ((v[ok] < 0) | (v[ok] > 100)).any():
        bad = v[ok][((v[ok] < 0) | (v[ok] > 100))][0]
        raise BenchError(f"{where}: {name} {bad:g} is outside [0, 100] (percent)")
    if not name.endswith("_acc") and (v[ok] < 0).any():
        raise BenchError(f"{where}: {name} {v[ok][v[ok] < 0][0]:g} is negative; expected >= 0")


def check_hp(hp: object) -> str:
    if not isinstance(hp, str) or not hp or "/" in hp or hp != hp.strip():
        raise BenchError(f"hp {hp!r} must be a non-empty string key such as '12' or '200'")
    return hp


def check_dataset(dataset: object) -> str:
    if not isinstance(dataset, str) or not dataset or "/" in dataset or dataset != dataset.strip():
        raise BenchError(
            f"dataset {dataset!r} must be a non-empty name such as {list(OFFICIAL_DATASETS)}"
        )
    return dataset


@dataclass(frozen=True)
class ResultEntry:
    """One training run: an arch trained on a dataset with a recipe (``hp``) and a seed.

    ``curves`` maps per-epoch metric names (:data:`CURVE_METRICS`) to one value per epoch;
    a final-metrics-only entry gives ``final`` (names from :data:`FINAL_METRICS`) instead.
    ``status`` is ``"ok"``, ``"failed"`` or ``"diverged"``; a non-ok entry is recorded (so a
    builder does not retry it blindly) but never served as a result. Missing values are NaN.
    """

    arch: object  # Arch | str | int; normalised by the writer
    dataset: str
    hp: str
    seed: int
    curves: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None

    def validate(self) -> None:
        """Raise :class:`BenchError` naming whatever is malformed."""
        check_dataset(self.dataset)
        check_hp(self.hp)
        check_seed(self.seed)
        if self.status not in STATUS_CODES:
            raise BenchError(
                f"status {self.status!r} invalid; expected one of {list(STATUS_CODES)}"
            )
        if self.curves and self.final:
            raise BenchError(
                "an entry carries either per-epoch `curves` or final-only `final` metrics, "
                f"not both (got curves {sorted(self.curves)} and final {sorted(self.final)})"
            )
        if self.status == "ok" and not self.curves and not self.final:
            raise BenchError(
                f"ok entry for {self.dataset}/{self.hp}/seed {self.seed} has no metrics"
            )
        lengths = set()
        for name, values in self.curves.items():
            check_metric_name(name, final_only=False)
            try:
                n = len(values)
            except TypeError:
                raise BenchError(f"curve {name!r} must be a sequence of floats") from None
            lengths.add(n)
        if len(lengths) > 1:
            raise BenchError(
                f"curves of one entry must have equal lengths, got "
                f"{ {k: len(v) for k, v in self.curves.items()} }"
            )
        if lengths and 0 in lengths:
            raise BenchError("curves must have at least one epoch")
        for name, value in self.final.items():
            check_metric_name(name, final_only=True)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                try:
                    float(value)  # numpy scalars
                except (TypeError, ValueError):
                    raise BenchError(f"final metric {name!r}={value!r} is not a number") from None


def is_missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
