"""Import the NAS-Bench-201 results export CSV (seed means of the real benchmark, one row per
architecture, in the layout of ``real_cifar100_imagenet16.csv``) into a table that runs the
NAS-Bench-201 / NATS-Bench search protocol.

Columns: ``index`` and ``arch`` (official index and string), then per dataset prefix
(``cifar100``, ``in16`` = ImageNet16-120, ``cifar10``) any of ``<p>_valid12`` (x-valid
accuracy after the 12-epoch schedule), ``<p>_valtest200`` (whole test set after 200 epochs),
``<p>_test200`` (x-test after 200 epochs) and ``<p>_train_time200`` (seconds of the 200-epoch
training). The plain importer cannot express this file (two recipes per dataset, a derived
time), hence this small importer; :func:`is_nb201_export` recognises the header, so
``nasforge bench import FILE.csv --format csv`` (or ``auto``, or ``nb201-export``) lands here.

Written per dataset:

* ``hp="12"``: ``valid_acc`` = ``<p>_valid12`` and ``train_time`` = 12/200 of
  ``<p>_train_time200``. The official protocol charges the 12-epoch run's
  ``train-all-time`` (``nats_bench`` ``api_utils.py`` ``simulate_train_eval``:
  ``info["train-all-time"] + info["valid-per-time"]``); the two recipes differ only in the
  number of epochs (``configs/nas-benchmark/hyper-opts/{12E,200E}.config``), so an epoch
  costs the same and the 12-epoch time is 12/200 of the 200-epoch one. The export has no
  validation times, so the ``valid-per-time`` term (one x-valid pass) is not charged.
* ``hp="200"``: ``test_acc`` = ``<p>_test200`` (x-test, what a search reports),
  ``valtest_acc`` = ``<p>_valtest200``, ``valid_acc`` = ``2 * valtest - test`` (x-valid and
  x-test are equal halves of the test set: 5,000 / 5,000 on CIFAR-100, 3,000 / 3,000 on
  ImageNet16-120, so the whole-set accuracy is their mean), ``train_time`` =
  ``<p>_train_time200``.

The export holds seed means, so each group is an aggregate (``Benchmark.aggregate`` says
``"mean"``; stored under the placeholder seed 0, exported with a null seed): a
search sees the seed-averaged 12-epoch accuracy, where the official ``simulate_train_eval``
draws one recorded seed per query (``is_random=True``). The table's metadata says so.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from nasforge.bench.schema import AGGREGATE_SEED, AGGREGATES_META, STATUS_CODES, metric_order
from nasforge.bench.store import CostData, GroupData, write_table
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

__all__ = ["EXPORT_DATASETS", "import_nb201_export", "is_nb201_export"]

#: Column prefix -> official dataset name.
EXPORT_DATASETS: dict[str, str] = {
    "cifar10": "cifar10-valid",
    "cifar100": "cifar100",
    "in16": "ImageNet16-120",
}
_SUFFIXES = ("valid12", "valtest200", "test200", "train_time200")
#: The proxy and full schedules (``configs/nas-benchmark/hyper-opts/12E.config`` /
#: ``200E.config``): same recipe, 12 vs 200 epochs.
PROXY_EPOCHS, FULL_EPOCHS = 12, 200


def _header(src: Path) -> list[str]:
    try:
        with open(src, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError):
        return []


def _prefixes(header: list[str]) -> list[str]:
    cols = set(header)
    return [p for p in EXPORT_DATASETS if f"{p}_valid12" in cols]


def is_nb201_export(src: str | os.PathLike[str]) -> bool:
    """True when ``src`` is a CSV with the export's header: ``index``, ``arch`` and at least
    one ``<prefix>_valid12`` column."""
    header = _header(Path(src))
    return "arch" in header and "index" in header and bool(_prefixes(header))


def _float(v: str, col: str, line: int, src: Path) -> float:
    v = v.strip()
    if v == "" or v.lower() in ("nan", "na", "none"):
        return math.nan
    try:
        x = float(v)
    except ValueError:
        raise BenchError(
            f"{str(src)!r} line {line}, column {col!r}: {v!r} is not a number"
        ) from None
    if not math.isfinite(x) or x < 0:
        raise BenchError(
            f"{str(src)!r} line {line}, column {col!r}: {v!r} must be a finite number >= 0"
        )
    return x


def import_nb201_export(
    src: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Import an NB201 results export CSV into a new table at ``out`` (see the module
    docstring for what is written); returns the table path."""
    src = Path(src)
    if not src.is_file():
        raise BenchError(f"NB201 export {str(src)!r} does not exist")
    header = _header(src)
    prefixes = _prefixes(header)
    if "arch" not in header or "index" not in header or not prefixes:
        raise BenchError(
            f"{str(src)!r} is not an NB201 results export: expected columns 'index', 'arch' and "
            f"'<p>_valid12' for p in {list(EXPORT_DATASETS)}; got {header[:8]}"
        )
    for p in prefixes:
        missing = [f"{p}_{s}" for s in _SUFFIXES if f"{p}_{s}" not in header]
        if missing:
            raise BenchError(f"{str(src)!r}: dataset prefix {p!r} lacks columns {missing}")
    cols: dict[str, list[float]] = {f"{p}_{s}": [] for p in prefixes for s in _SUFFIXES}
    indices: list[int] = []
    with open(src, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for line, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise BenchError(f"{str(src)!r} line {line}: cell count differs from the header")
            try:
                arch = Arch.parse(row["arch"].strip())
            except ArchError as exc:
                raise BenchError(f"{str(src)!r} line {line}: {exc}") from None
            if row["index"].strip() != str(arch.to_index()):
                raise BenchError(
                    f"{str(src)!r} line {line}: index {row['index']!r} is not the official "
                    f"index {arch.to_index()} of {row['arch']}"
                )
            indices.append(arch.to_index())
            for c in cols:
                cols[c].append(_float(row[c], c, line, src))
    if not indices:
        raise BenchError(f"{str(src)!r} has no data rows")
    if len(set(indices)) != len(indices):
        raise BenchError(f"{str(src)!r}: an architecture appears on two rows")
    order = np.argsort(indices)
    rows = np.asarray(indices, np.int64)[order]

    def column(name: str) -> np.ndarray:
        return np.asarray(cols[name], np.float64)[order]

    groups: list[GroupData] = []
    for p in prefixes:
        ds = EXPORT_DATASETS[p]
        t200 = column(f"{p}_train_time200")
        test, valtest = column(f"{p}_test200"), column(f"{p}_valtest200")
        per_hp = {
            str(PROXY_EPOCHS): {
                "valid_acc": column(f"{p}_valid12"),
                "train_time": t200 * (PROXY_EPOCHS / FULL_EPOCHS),
            },
            str(FULL_EPOCHS): {
                "valid_acc": 2.0 * valtest - test,
                "test_acc": test,
                "valtest_acc": valtest,
                "train_time": t200,
            },
        }
        for hp, values in per_hp.items():
            metrics = metric_order(list(values))
            data = np.stack([values[m] for m in metrics], axis=1)[:, None, :, None]
            # an arch whose every value is missing has no entry; otherwise ok (the invariant:
            # data is NaN wherever the status is not ok)
            present = ~np.all(np.isnan(data[:, 0, :, 0]), axis=1)
            status = np.where(present, STATUS_CODES["ok"], 0).astype(np.uint8)[:, None]
            groups.append(GroupData(ds, hp, [AGGREGATE_SEED], rows, metrics, 1, True, status, data))
    meta = {
        "source_format": "nb201-export",
        "costs": "params_m / flops_m counted by nasforge.cost.arch_cost (C=16, N=5; equal to "
        "the official fields); the export has none",
        "source": src.name,
        "seeds": "seed means of the official runs (the export has means), stored under the "
        "placeholder seed 0",
        AGGREGATES_META: {f"{g.dataset}/{g.hp}": "mean" for g in groups},
        "train_time_12": f"{PROXY_EPOCHS}/{FULL_EPOCHS} of the 200-epoch training time",
        "valid_acc_200": "2 * valtest - test (x-valid and x-test are equal halves)",
    }
    costs = [_counted_costs(EXPORT_DATASETS[p], rows) for p in prefixes]
    return write_table(out, groups, costs, meta=meta, overwrite=overwrite)


def _counted_costs(dataset: str, rows: np.ndarray) -> CostData:
    """Params and FLOPs (millions) of the archs ``rows`` on ``dataset``, from the analytic
    counter: the export carries no costs, but they are a function of the arch (the official
    ``params`` / ``flops`` fields, which :func:`nasforge.cost.arch_cost` reproduces for every
    published (arch, dataset) pair), so the compat facade's ``get_compute_costs`` and
    ``show`` have them as on an official file."""
    from nasforge.cost.nb201 import arch_cost

    values = np.full((NUM_ARCHS, 2), np.nan)
    for index in rows.tolist():
        c = arch_cost(int(index), dataset)
        values[index] = (c.params_m, c.flops_m)
    return CostData(dataset, ["params_m", "flops_m"], values)
