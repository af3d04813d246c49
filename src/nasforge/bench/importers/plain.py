"""Import a plain table (CSV or Parquet) of final metrics into a final-only benchmark.

One row per run (or per arch). Column roles are recognised from common names, after
lower-casing and mapping ``-``, `` `` and ``.`` to ``_``:

* arch: ``arch``, ``arch_str``, ``architecture``, ``arch_string``, ``genotype`` (official
  string), or ``index``, ``arch_index``, ``idx`` (official index);
* ``dataset`` (long format, several datasets), ``seed`` (optional; default 0);
  ``aggregate`` (optional): ``mean`` on a row of seed means, whose ``seed`` is empty (as
  ``nasforge bench export`` writes an NB201 export's rows), empty on a per-seed run;
* metrics: ``valid_acc`` (``val_acc``, ``val_accuracy``, ``valid_accuracy``,
  ``validation_accuracy``), ``test_acc`` (``test_accuracy``), ``train_acc``, ``train_loss``,
  ``valid_loss`` (``val_loss``), ``test_loss``, ``train_time`` (``training_time``,
  ``train_seconds``, ``time``, ``runtime``, ``train_all_time``);
* costs: ``params_m`` (``params``, ``num_params_m``), ``flops_m`` (``flops``), ``latency_s``
  (``latency``), and ``latency_<device>`` / ``latency_<device>_ms`` per device.

A wide table names the dataset in the column instead: ``cifar100_valid_acc``,
``valid_acc_cifar100``, ``cifar10-valid/test_acc``... Any role can be given explicitly with
``columns={"valid_acc": "my column"}``. Whether accuracies are fractions or percent is decided
once for the whole table, over every accuracy column together (``acc_scale``); fractions are
scaled to percent. Latencies in columns ending ``_ms`` are converted to seconds.

Values are checked as they are read: accuracies must lie in [0, 100] (percent) or [0, 1]
(fractions), losses, times and costs must be >= 0, no value may be infinite, and the keys of a
row (arch, dataset, seed) must be present. Errors name the file, the line (CSV) or row
(Parquet), and the column. A missing metric value (empty cell, ``nan``) stays missing.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.schema import (
    AGGREGATE_KINDS,
    AGGREGATE_SEED,
    AGGREGATES_META,
    STATUS_CODES,
    check_dataset,
    check_hp,
    check_seed,
    metric_order,
)
from nasforge.bench.store import CostData, GroupData, write_table
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "arch": ("arch", "arch_str", "architecture", "arch_string", "genotype", "arch_name"),
    "index": ("index", "arch_index", "idx", "arch_idx", "uid"),
    "dataset": ("dataset", "data", "dataset_name", "task"),
    "seed": ("seed", "trial_seed", "run_seed"),
    "aggregate": ("aggregate",),
    "valid_acc": (
        "valid_acc",
        "val_acc",
        "val_accuracy",
        "valid_accuracy",
        "validation_accuracy",
        "valid_acc1",
        "val_acc1",
        "x_valid_acc",
        "valid_top1",
    ),
    "test_acc": ("test_acc", "test_accuracy", "test_acc1", "x_test_acc", "test_top1"),
    "train_acc": ("train_acc", "train_accuracy", "train_acc1"),
    "train_loss": ("train_loss",),
    "valid_loss": ("valid_loss", "val_loss", "validation_loss"),
    "test_loss": ("test_loss",),
    "train_time": (
        "train_time",
        "training_time",
        "train_seconds",
        "train_time_s",
        "time",
        "runtime",
        "train_all_time",
        "cost_time",
    ),
    "params_m": ("params_m", "params", "num_params_m", "param", "params_mb"),
    "flops_m": ("flops_m", "flops", "mflops"),
    "latency_s": ("latency_s", "latency"),
}
_METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc")
_COSTS = ("params_m", "flops_m", "latency_s")
_KNOWN_DATASETS = {
    "cifar10_valid": "cifar10-valid",
    "cifar10valid": "cifar10-valid",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet16_120": "ImageNet16-120",
    "imagenet16": "ImageNet16-120",
    "imagenet": "ImageNet16-120",
    "in16": "ImageNet16-120",
}


PARQUET_MAGIC = b"PAR1"
_FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet"}
#: Above this share of accuracies <= 1, a table that also holds larger values is ambiguous
#: (fractions with a typo, or percent of archs at chance level?): the user must say.
_AMBIGUOUS_SHARE = 0.5


def _norm(name: str) -> str:
    return re.sub(r"[-\s./@:]+", "_", name.strip().lower()).strip("_")


def sniff_format(src: Path) -> str:
    """``"parquet"`` if ``src`` starts with the Parquet magic bytes, else ``"csv"``."""
    with open(src, "rb") as f:
        return "parquet" if f.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC else "csv"


class _Source:
    """The columns of a plain table and how to name a cell of it in an error."""

    def __init__(self, src: Path, fmt: str, cols: dict[str, list[Any]], lines: list[int]):
        self.src, self.fmt, self.cols, self.lines = src, fmt, cols, lines

    def where(self, r: int, col: str) -> str:
        """``r`` is the 0-based data row."""
        pos = f"row {r + 1}" + (f" (line {self.lines[r]})" if self.fmt == "csv" else "")
        return f"{str(self.src)!r} {pos}, column {col!r}"


def _check_unique(src: Path, header: list[str]) -> None:
    """Refuse a header naming a column twice (which value would the row mean?)."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise BenchError(
                f"{str(src)!r}: column {name!r} appears twice in the header; expected "
                "distinct column names"
            )
        seen.add(name)


def _read(src: Path, fmt: str) -> _Source:
    """Columns of a CSV (stdlib) or Parquet (pyarrow) file as lists."""
    from nasforge.bench.safe_pickle import require_regular_file

    require_regular_file(src)
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BenchError(
                "reading Parquet needs pyarrow: pip install 'nasforge[parquet]'"
            ) from None
        try:
            table = pq.read_table(src)
        except Exception as exc:
            raise BenchError(f"cannot read {str(src)!r} as Parquet: {exc}") from None
        _check_unique(src, table.column_names)
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        return _Source(src, fmt, cols, list(range(2, table.num_rows + 2)))
    lines: list[int] = []
    try:
        with open(src, newline="", encoding="utf-8-sig") as f:
            sample = f.read(8192)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(f, dialect)
            header = next(reader, None)
            if not header:
                raise BenchError(f"{str(src)!r} is empty; expected a header row")
            _check_unique(src, header)
            cols: dict[str, list[Any]] = {h: [] for h in header}
            for line_no, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise BenchError(
                        f"{str(src)!r} line {line_no}: {len(row)} cells, header has {len(header)}"
                    )
                for h, cell in zip(header, row, strict=True):
                    cols[h].append(cell)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise BenchError(f"{str(src)!r} is not a UTF-8 text CSV: {exc}") from None
    except csv.Error as exc:
        raise BenchError(f"{str(src)!r} is not a readable CSV: {exc}") from None
    return _Source(src, fmt, cols, lines)


def _is_blank(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, str) and v.strip().lower() in _BLANK)
        or (isinstance(v, float) and math.isnan(v))
    )


_BLANK = ("", "nan", "na", "none", "null", "-")


def _number(v: Any, where: str) -> float:
    """A cell as a float; a blank cell is NaN (missing); infinities are refused."""
    if _is_blank(v):
        return math.nan
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise BenchError(f"{where}: {v!r} is not a number") from None
    if math.isinf(x):
        raise BenchError(f"{where}: {v!r} is not a finite number")
    return x


def _key_int(v: Any, where: str, what: str) -> int:
    """A key cell (seed, index) as an int: required, integral."""
    if _is_blank(v):
        raise BenchError(f"{where}: the {what} is empty; every row needs one")
    x = _number(v, where)
    if not x.is_integer():
        raise BenchError(f"{where}: {what} {v!r} is not an integer")
    return int(x)


def _acc_fraction(acc: list[tuple[float, str]], acc_scale: str) -> bool:
    """Whether the table's accuracies are fractions, decided once over all of them (every
    accuracy column of every dataset: a row must never mix scales), and range-checked."""
    finite = [(x, w) for x, w in acc if not math.isnan(x)]
    if acc_scale == "auto":
        big = [(x, w) for x, w in finite if x > 1.0]
        small = len(finite) - len(big)
        if big and small > _AMBIGUOUS_SHARE * len(finite):
            x, w = max(big)
            raise BenchError(
                f"cannot tell whether accuracies are fractions or percent: {small} of "
                f"{len(finite)} are <= 1 but {w} is {x:g}; fix that value or pass "
                "--acc-scale fraction / percent"
            )
        fraction = not big
    else:
        fraction = acc_scale == "fraction"
    hi = 1.0 if fraction else 100.0
    for x, w in finite:
        if not 0.0 <= x <= hi:
            scale = "fractions" if fraction else "percent"
            raise BenchError(
                f"{w}: accuracy {x:g} is outside [0, {hi:g}] (accuracies of this table are {scale})"
            )
    return fraction


def _dataset_in(norm: str) -> tuple[str | None, str]:
    """Split a wide column name into (dataset, rest) such that the rest names a role;
    longest dataset token first (``cifar10_valid_acc`` is cifar10's ``valid_acc``)."""
    for token in sorted(_KNOWN_DATASETS, key=len, reverse=True):
        for ds, rest in (
            (token, norm[len(token) + 1 :]) if norm.startswith(token + "_") else (None, ""),
            (token, norm[: -len(token) - 1]) if norm.endswith("_" + token) else (None, ""),
        ):
            if ds is not None and _role(rest) is not None:
                return _KNOWN_DATASETS[ds], rest
    return None, norm


def _role(norm: str) -> str | None:
    for role, names in _SYNONYMS.items():
        if norm in names:
            return role
    m = re.fullmatch(r"latency_([a-z0-9_]+?)(_ms|_s)?", norm)
    if m and m.group(1) not in ("s", "ms"):
        return f"latency_{m.group(1)}_s"
    if norm in ("latency_ms",):
        return "latency_s"
    return None


def import_plain(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    hp: str = "final",
    columns: dict[str, str] | None = None,
    acc_scale: str = "auto",
    overwrite: bool = False,
    format: str | None = None,
) -> Path:
    """Import a CSV / Parquet table of final metrics; returns the table path.

    ``dataset`` names the dataset of a single-dataset table without a dataset column;
    ``columns`` maps roles (``arch``, ``index``, ``dataset``, ``seed``, a metric or a cost) to
    column names; ``acc_scale`` is ``"auto"`` (fractions if every accuracy of the table is
    <= 1), ``"percent"`` or ``"fraction"``. ``format`` (``"csv"`` / ``"parquet"``) is checked
    against the file's content; ``None`` takes what the content says.
    """
    src = Path(src)
    actual = _check_request(src, dataset=dataset, hp=hp, acc_scale=acc_scale, format=format)
    source = _read(src, actual)
    cols = source.cols
    n_rows = len(next(iter(cols.values()), []))
    if n_rows == 0:
        raise BenchError(f"{str(src)!r} has no data rows")
    assigned, ignored = _assign_roles(source, src, columns)
    indices = _row_indices(source, assigned)
    row_ds, targets = _row_datasets(source, assigned, src, dataset, n_rows)
    aggregate_of_row = _aggregates(cols, assigned, source, n_rows)
    seeds_of_row = _row_seeds(source, assigned, aggregate_of_row, n_rows)
    nums_of = _numbers(source, assigned, acc_scale)
    values, cost_vals = _gather(
        source, src, assigned, nums_of, indices, seeds_of_row, row_ds, targets
    )
    meta = {
        "source_format": actual,
        "source": src.name,
        "columns": {f"{r}@{d}" if d else r: c for (r, d), c in assigned.items()},
        "ignored_columns": ignored,
    }
    aggregates = _group_aggregates(row_ds, targets, aggregate_of_row, str(src), hp)
    if aggregates:
        meta[AGGREGATES_META] = aggregates
    groups = _groups(values, hp)
    costs = _costs(cost_vals)
    return write_table(out, groups, costs, meta=meta, overwrite=overwrite)


#: (role, dataset or None) -> column name
Assigned = dict[tuple[str, str | None], str]


def _check_request(
    src: Path, *, dataset: str | None, hp: str, acc_scale: str, format: str | None
) -> str:
    """The options checked before anything is read; the file's format (by content)."""
    if not src.is_file():
        raise BenchError(f"plain table {str(src)!r} does not exist")
    if acc_scale not in ("auto", "percent", "fraction"):
        raise BenchError(f"acc_scale {acc_scale!r} invalid; expected auto, percent or fraction")
    if format not in (None, "csv", "parquet"):
        raise BenchError(f"plain table format {format!r} invalid; expected csv or parquet")
    if dataset is not None:
        check_dataset(dataset)
    check_hp(hp)
    actual = sniff_format(src)
    if format is not None and format != actual:
        raise BenchError(
            f"{str(src)!r} is not a {_FORMAT_NAMES[format]} file"
            + (
                f" (it lacks the Parquet magic bytes {PARQUET_MAGIC.decode()!r})"
                if format == "parquet"
                else " (it is a Parquet file)"
            )
            + f"; pass --format {actual} or --format auto"
        )
    return actual


def _assign_roles(
    source: _Source, src: Path, columns: dict[str, str] | None
) -> tuple[Assigned, list[str]]:
    """Each column's role (and the dataset a dataset-named column is of): the ones given in
    ``columns`` first, then the recognised names; the columns left over are ignored."""
    cols = source.cols
    assigned: Assigned = {}
    explicit = dict(columns or {})
    for role, col in explicit.items():
        base_role = _role(_norm(role)) or role
        if col not in cols:
            raise BenchError(f"column {col!r} (given for {role!r}) not in {list(cols)}")
        if base_role not in _SYNONYMS and not base_role.startswith("latency_"):
            raise BenchError(f"role {role!r} unknown; expected one of {list(_SYNONYMS)}")
        assigned[(base_role, None)] = col
    taken = set(assigned.values())
    ignored: list[str] = []
    for col in cols:
        if col in taken:
            continue
        norm = _norm(col)
        role = _role(norm)
        ds = None
        if role is None:
            ds, rest = _dataset_in(norm)
            role = _role(rest) if ds else None
        if role is None:
            ignored.append(col)
            continue
        key = (role, ds)
        if key in assigned:
            raise BenchError(
                f"columns {assigned[key]!r} and {col!r} both look like {role!r}"
                + (f" of {ds}" if ds else "")
                + "; name the one to use with --column"
            )
        assigned[key] = col
    if ("arch", None) not in assigned and ("index", None) not in assigned:
        raise BenchError(
            f"{str(src)!r}: no arch column found among {list(cols)}; expected one of "
            f"{list(_SYNONYMS['arch'] + _SYNONYMS['index'])} or --column arch=NAME"
        )
    metric_roles = [k for k in assigned if k[0] in _METRICS or k[0] == "train_time"]
    if not metric_roles:
        raise BenchError(
            f"{str(src)!r}: no metric column recognised among {list(cols)}; expected e.g. "
            "valid_acc, test_acc, train_time, or --column valid_acc=NAME"
        )
    return assigned, ignored


def _row_indices(source: _Source, assigned: Assigned) -> list[int]:
    """Per row, the official index of its arch (from the index or the arch column)."""
    cols = source.cols
    indices = []
    if ("index", None) in assigned and ("arch", None) not in assigned:
        col = assigned[("index", None)]
        for r, v in enumerate(cols[col]):
            where = source.where(r, col)
            try:
                indices.append(Arch.from_index(_key_int(v, where, "arch index")).to_index())
            except ArchError as exc:
                raise BenchError(f"{where}: {exc}") from None
        return indices
    col = assigned[("arch", None)]
    for r, v in enumerate(cols[col]):
        if _is_blank(v):
            raise BenchError(f"{source.where(r, col)}: the arch is empty; every row needs one")
        try:
            indices.append(Arch.parse(str(v).strip()).to_index())
        except ArchError as exc:
            raise BenchError(f"{source.where(r, col)}: {exc}") from None
    return indices


def _row_datasets(
    source: _Source, assigned: Assigned, src: Path, dataset: str | None, n_rows: int
) -> tuple[list[str], list[str]]:
    """Per row, its dataset (empty when dataset-named columns say it), and the datasets the
    table holds: from a dataset column, dataset-named columns, or ``dataset``."""
    wide_datasets = sorted({ds for _, ds in assigned if ds is not None})
    if wide_datasets and ("dataset", None) in assigned:
        raise BenchError("a table has either a dataset column or dataset-named columns, not both")
    if ("dataset", None) in assigned:
        ds_col = assigned[("dataset", None)]
        row_ds: list[str] = []
        for r, v in enumerate(source.cols[ds_col]):
            name = "" if _is_blank(v) else str(v).strip()
            if not name:
                raise BenchError(
                    f"{source.where(r, ds_col)}: the dataset is empty; every row needs one"
                )
            try:
                row_ds.append(check_dataset(name))
            except BenchError as exc:
                raise BenchError(f"{source.where(r, ds_col)}: {exc}") from None
        return row_ds, sorted(set(row_ds))
    if wide_datasets:
        return [], wide_datasets
    if dataset is not None:
        return [dataset] * n_rows, [dataset]
    raise BenchError(
        f"{str(src)!r} has no dataset column and no dataset-named columns; pass --dataset"
    )


def _row_seeds(
    source: _Source, assigned: Assigned, aggregate_of_row: list[str | None], n_rows: int
) -> list[int]:
    """Per row, its seed (:data:`AGGREGATE_SEED` for a seed mean without one; 0 without a
    seed column)."""
    if ("seed", None) not in assigned:
        return [0] * n_rows
    scol = assigned[("seed", None)]
    return [
        AGGREGATE_SEED
        if aggregate_of_row[r] is not None and _is_blank(v)
        else check_seed(_key_int(v, source.where(r, scol), "seed"), source.where(r, scol))
        for r, v in enumerate(source.cols[scol])
    ]


def _numbers(source: _Source, assigned: Assigned, acc_scale: str) -> dict[str, list[float]]:
    """The numbers of every metric and cost column, parsed and checked once, accuracies on
    one scale (percent) for the whole table."""
    nums_of: dict[str, list[float]] = {}
    for (role, _), col in assigned.items():
        if role in ("arch", "index", "dataset", "seed", "aggregate"):
            continue
        nums = [_number(v, source.where(r, col)) for r, v in enumerate(source.cols[col])]
        if not role.endswith("_acc"):
            for r, x in enumerate(nums):
                if x < 0:
                    raise BenchError(f"{source.where(r, col)}: {role} {x:g} is negative")
        nums_of[col] = nums
    acc_cols = [c for (role, _), c in assigned.items() if role.endswith("_acc")]
    acc = [(x, source.where(r, c)) for c in acc_cols for r, x in enumerate(nums_of[c])]
    if _acc_fraction(acc, acc_scale):
        for c in acc_cols:
            nums_of[c] = [x * 100.0 for x in nums_of[c]]
    return nums_of


def _gather(
    source: _Source,
    src: Path,
    assigned: Assigned,
    nums_of: dict[str, list[float]],
    indices: list[int],
    seeds_of_row: list[int],
    row_ds: list[str],
    targets: list[str],
) -> tuple[
    dict[str, dict[tuple[int, int], dict[str, float]]], dict[str, dict[int, dict[str, float]]]
]:
    """The values per dataset: ``{(index, seed): {metric: v}}`` and the costs
    ``{index: {cost: v}}`` (latencies in seconds)."""
    values: dict[str, dict[tuple[int, int], dict[str, float]]] = {}
    cost_vals: dict[str, dict[int, dict[str, float]]] = {}
    for (role, ds_of_col), col in assigned.items():
        if col not in nums_of:
            continue
        nums = nums_of[col]
        if role.startswith("latency") and _norm(col).endswith("_ms"):
            nums = [x / 1000.0 for x in nums]
        for r in range(len(indices)):
            for ds in [ds_of_col] if ds_of_col else ([row_ds[r]] if row_ds else targets):
                if role in _METRICS or role == "train_time":
                    key = (indices[r], seeds_of_row[r])
                    cell = values.setdefault(ds, {}).setdefault(key, {})
                    if role in cell:
                        raise BenchError(
                            f"{str(src)!r}: two rows give {role} of arch index {indices[r]}, "
                            f"seed {seeds_of_row[r]} on {ds} ({source.where(r, col)}); "
                            "add a seed column"
                        )
                    cell[role] = nums[r]
                else:
                    c = cost_vals.setdefault(ds, {}).setdefault(indices[r], {})
                    if not math.isnan(nums[r]):
                        c[role] = nums[r]
    return values, cost_vals


def _groups(values: dict[str, dict[tuple[int, int], dict[str, float]]], hp: str) -> list[GroupData]:
    """One final-metrics group per dataset."""
    groups = []
    for ds, entries in sorted(values.items()):
        seeds = sorted({s for _, s in entries})
        rows = np.array(sorted({i for i, _ in entries}), np.int64)
        metrics = metric_order({m for cell in entries.values() for m in cell})
        r_pos = {int(i): k for k, i in enumerate(rows)}
        data = np.full((len(rows), len(seeds), len(metrics), 1), np.nan)
        status = np.zeros((len(rows), len(seeds)), np.uint8)
        # position maps, not list.index: an import is linear in its rows (issue 23: 80k
        # seeds of one arch took 70 s through seeds.index)
        s_pos = {sd: k for k, sd in enumerate(seeds)}
        m_pos = {m: k for k, m in enumerate(metrics)}
        for (index, seed), cell in entries.items():
            r, s = r_pos[index], s_pos[seed]
            status[r, s] = STATUS_CODES["ok"]
            for m, v in cell.items():
                data[r, s, m_pos[m], 0] = v
        groups.append(GroupData(ds, hp, seeds, rows, metrics, 1, True, status, data))
    return groups


def _costs(cost_vals: dict[str, dict[int, dict[str, float]]]) -> list[CostData]:
    """One cost array per dataset that has any cost (known costs first, then by name)."""
    costs = []
    for ds, per_arch in sorted(cost_vals.items()):
        names = sorted(
            {n for c in per_arch.values() for n in c}, key=lambda n: (n not in _COSTS, n)
        )
        if not names:
            continue
        arr = np.full((NUM_ARCHS, len(names)), np.nan)
        for index, c in per_arch.items():
            for k, n in enumerate(names):
                arr[index, k] = c.get(n, math.nan)
        costs.append(CostData(ds, names, arr))
    return costs


def _aggregates(
    cols: dict[str, list[Any]], assigned: dict[tuple[str, str | None], str], source: Any, n: int
) -> list[str | None]:
    """Per row, the aggregate it holds (``"mean"``: a seed mean, as ``nasforge bench
    export`` writes it with an empty seed) or None (a per-seed run)."""
    if ("aggregate", None) not in assigned:
        return [None] * n
    col = assigned[("aggregate", None)]
    seed_col = assigned.get(("seed", None))
    out: list[str | None] = []
    for r, v in enumerate(cols[col]):
        if _is_blank(v):
            out.append(None)
            continue
        kind = str(v).strip()
        if kind not in AGGREGATE_KINDS:
            raise BenchError(
                f"{source.where(r, col)}: aggregate {kind!r} unknown; expected one of "
                f"{list(AGGREGATE_KINDS)} or empty (a per-seed run)"
            )
        if seed_col is not None and not _is_blank(cols[seed_col][r]):
            raise BenchError(
                f"{source.where(r, seed_col)}: a row of seed {kind}s has no seed; got "
                f"{cols[seed_col][r]!r} beside aggregate {kind!r}"
            )
        out.append(kind)
    return out


def _group_aggregates(
    row_ds: list[str], targets: list[str], aggregate_of_row: list[str | None], src: str, hp: str
) -> dict[str, str]:
    """``{"<dataset>/<hp>": kind}`` for the datasets whose rows are all aggregates; a
    dataset mixing aggregate and per-seed rows is refused (one group holds one kind)."""
    out: dict[str, str] = {}
    for ds in targets:
        kinds = {k for r, k in enumerate(aggregate_of_row) if not row_ds or row_ds[r] == ds}
        if len(kinds) > 1:
            raise BenchError(
                f"{src!r}: {ds} mixes per-seed rows and aggregate rows ({sorted(map(str, kinds))});"
                " import them as separate tables"
            )
        if kinds and None not in kinds:
            out[f"{ds}/{hp}"] = kinds.pop()  # type: ignore[assignment]
    return out
