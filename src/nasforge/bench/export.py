"""A table as one flat frame: one row per arch x dataset x hp x seed, for pandas, DuckDB,
Arrow, spreadsheets.

Columns, in order:

* ``index`` (official NB201 index), ``arch`` (official string), ``dataset``, ``hp``,
  ``seed``, ``aggregate``, ``status`` (``ok`` / ``failed`` / ``diverged``), ``epochs``
  (epochs trained; empty for a final-metrics-only group). A row of seed means (an NB201
  results export) has an empty ``seed`` and ``aggregate`` ``mean``; a per-seed run has its
  seed and an empty ``aggregate``;
* one column per metric of the table (:data:`~nasforge.bench.schema.ALL_METRICS` order):
  its value after the last epoch (``train_time``: total training seconds; the per-epoch
  ``epoch_time`` only as a curve, like :attr:`Record.final <nasforge.bench.Record>`); empty
  where the group does not record it or the run is not ok;
* one column per known cost (``params_m``, ``flops_m``, ``latency_s``, ...): per arch and
  dataset, repeated on each seed's row;
* with ``curves=True``, ``<metric>_curve``: the per-epoch values (entry ``e`` is the value
  after epoch ``e + 1``), a list column in Arrow / Parquet, a JSON array in CSV.

Groups are written one at a time (a row group each in Parquet), so exporting the full
15,625-arch table with curves needs memory for one group, not for the whole frame. Files
are written atomically (:mod:`nasforge.io`) and honour the umask.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.bench.schema import STATUS_NAMES, cost_order, metric_order
from nasforge.errors import BenchError
from nasforge.io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from nasforge.bench.query import Benchmark

#: Formats of :func:`export_table`.
EXPORT_FORMATS = ("parquet", "csv")
_KEYS = ("index", "arch", "dataset", "hp", "seed", "aggregate", "status", "epochs")
_CURVE = "_curve"


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise BenchError(
            "Arrow / Parquet output needs pyarrow: pip install 'nasforge[parquet]' "
            "(CSV export needs nothing extra)"
        ) from None
    return pa


def columns(bench: Benchmark, *, curves: bool = False) -> list[str]:
    """The column names of the flat frame of ``bench``, in order."""
    metrics, costs = _names(bench)
    out = [*_KEYS, *_finals(metrics), *costs]
    if curves:
        out += [m + _CURVE for m in metrics]
    return out


def _finals(metrics: list[str]) -> list[str]:
    return [m for m in metrics if m != "epoch_time"]


def _names(bench: Benchmark) -> tuple[list[str], list[str]]:
    metrics = metric_order({m for g in bench._g.values() for m in g.names})
    costs = cost_order({m for c in bench._state.costs.values() for m in c.metrics})
    return metrics, costs


def iter_batches(bench: Benchmark, *, curves: bool = False) -> Iterator[dict[str, Any]]:
    """One dict of column arrays per (dataset, hp) group, rows ordered by arch then seed."""
    metrics, cost_names = _names(bench)
    arch_str: dict[int, str] = {}
    for (ds, hp), g in sorted(bench._g.items()):
        status = np.asarray(g.status)
        r_idx, s_idx = np.nonzero(status)  # row-major: by arch row, then seed
        n = len(r_idx)
        if not n:
            continue
        rows = np.asarray(g.g.rows)
        index = rows[r_idx]
        agg = bench.aggregate(ds, hp)
        ok = status[r_idx, s_idx] == 1
        cols: dict[str, Any] = {
            "index": index.astype(np.int64),
            "arch": [
                arch_str.get(i) or arch_str.setdefault(i, bench.arch_string(i))
                for i in index.tolist()
            ],
            "dataset": [ds] * n,
            "hp": [hp] * n,
            # a group of seed means has no training seed: null, and `aggregate` says which
            "seed": [None] * n if agg else np.asarray(g.g.seeds, np.int64)[s_idx],
            "aggregate": [agg] * n,
            "status": [STATUS_NAMES.get(int(x), "missing") for x in status[r_idx, s_idx]],
            "epochs": [None if g.final_only else g.g.epochs] * n,
        }
        final = g.data[r_idx, s_idx, :, -1]  # [n, metrics]: this group's rows only
        for m in _finals(metrics):
            k = g.m_pos.get(m)
            if k is None:
                cols[m] = np.full(n, np.nan)
            else:
                cols[m] = np.where(ok, final[:, k].astype(np.float64), np.nan)
        cost = bench._cost_data(ds)
        for c in cost_names:
            if cost is None or c not in cost.metrics:
                cols[c] = np.full(n, np.nan)
            else:
                cols[c] = np.asarray(cost.values[index, cost.metrics.index(c)], np.float64)
        if curves:
            for m in metrics:
                k = g.m_pos.get(m)
                if k is None:
                    cols[m + _CURVE] = None  # no curve for this group
                else:
                    values = np.asarray(g.data[r_idx, s_idx, k, :], np.float64)
                    values[~ok] = np.nan
                    cols[m + _CURVE] = values
        yield cols


def _arrow_schema(bench: Benchmark, curves: bool) -> Any:
    pa = _pyarrow()
    metrics, costs = _names(bench)
    fields = [
        pa.field("index", pa.int64()),
        pa.field("arch", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("hp", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("aggregate", pa.string()),
        pa.field("status", pa.string()),
        pa.field("epochs", pa.int64()),
    ]
    fields += [pa.field(m, pa.float64()) for m in [*_finals(metrics), *costs]]
    if curves:
        fields += [pa.field(m + _CURVE, pa.list_(pa.float64())) for m in metrics]
    return pa.schema(fields)


def _record_batch(cols: dict[str, Any], schema: Any) -> Any:
    pa = _pyarrow()
    arrays = []
    n = len(cols["index"])
    for f in schema:
        v = cols[f.name]
        if f.name.endswith(_CURVE) and pa.types.is_list(f.type):
            if v is None:
                arrays.append(pa.nulls(n, f.type))
            else:
                E = v.shape[1]
                offsets = pa.array(np.arange(0, (n + 1) * E, E, dtype=np.int32))
                flat = pa.array(v.reshape(-1), type=pa.float64(), from_pandas=True)
                arrays.append(pa.ListArray.from_arrays(offsets, flat))
        elif pa.types.is_floating(f.type):
            arrays.append(pa.array(v, type=f.type, from_pandas=True))  # NaN -> null
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def to_arrow(bench: Benchmark, *, curves: bool = False) -> Any:
    """The flat frame as a ``pyarrow.Table`` (missing values are nulls)."""
    pa = _pyarrow()
    schema = _arrow_schema(bench, curves)
    batches = [_record_batch(c, schema) for c in iter_batches(bench, curves=curves)]
    return pa.Table.from_batches(batches, schema=schema)


def to_pandas(bench: Benchmark, *, curves: bool = False) -> Any:
    """The flat frame as a ``pandas.DataFrame`` (missing values are NaN / None)."""
    try:
        import pandas  # noqa: F401 - pyarrow's to_pandas needs it
    except ImportError:
        raise BenchError("to_pandas needs pandas: pip install pandas") from None
    return to_arrow(bench, curves=curves).to_pandas()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)  # repr: the float round-trips exactly
    return v


def _write_csv(bench: Benchmark, f: Any, curves: bool) -> None:
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    w = csv.writer(text)
    names = columns(bench, curves=curves)
    w.writerow(names)
    for cols in iter_batches(bench, curves=curves):
        lists = {}
        for name in names:
            v = cols[name]
            if name.endswith(_CURVE) and curves:
                lists[name] = (
                    [""] * len(cols["index"])
                    if v is None
                    else [json.dumps([None if x != x else x for x in row]) for row in v.tolist()]
                )
            else:
                lists[name] = v.tolist() if isinstance(v, np.ndarray) else v
        for row in zip(*(lists[n] for n in names), strict=True):
            w.writerow([_csv_cell(x) for x in row])
    text.flush()
    text.detach()  # atomic_write owns (and fsyncs, closes) the binary file


def _write_parquet(bench: Benchmark, f: Any, curves: bool) -> None:
    import pyarrow.parquet as pq

    schema = _arrow_schema(bench, curves)
    with pq.ParquetWriter(f, schema) as writer:
        for cols in iter_batches(bench, curves=curves):
            writer.write_batch(_record_batch(cols, schema))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Output suffixes and the export format each one names.
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_format(out: str | os.PathLike[str], format: str | None = None) -> str:
    """The format an export to ``out`` writes: ``format`` checked against ``out``'s suffix,
    or inferred from it (see :func:`export_table`)."""
    suffix = Path(out).suffix.lower()
    implied = SUFFIX_FORMATS.get(suffix)
    if format is None:
        if implied is not None:
            return implied
        if suffix:
            raise BenchError(
                f"output {str(out)!r}: suffix {suffix!r} names no export format; expected "
                f"{sorted(SUFFIX_FORMATS)} or --format {' | '.join(EXPORT_FORMATS)}"
            )
        return "parquet"
    if implied is not None and format != implied:
        raise BenchError(
            f"output {str(out)!r} ends in {suffix!r} (a {implied} file) but --format is "
            f"{format!r}; expected a matching suffix or no --format"
        )
    return format


def export_table(
    bench: Benchmark | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str | None = None,
    curves: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the flat frame of a table to ``out`` as Parquet or CSV, atomically.

    ``format`` None: the format of ``out``'s suffix (``.csv``; ``.parquet`` / ``.pq``, or
    no suffix: Parquet); a ``format`` that contradicts a known suffix, or an unknown suffix
    without ``format``, is refused (``x.csv`` once silently got Parquet bytes).
    Checks the format, pyarrow (Parquet) and ``out`` before reading anything."""
    format = export_format(out, format)
    if format not in EXPORT_FORMATS:
        raise BenchError(
            f"export format {format!r} unknown; expected one of {list(EXPORT_FORMATS)}"
        )
    if format == "parquet":
        _pyarrow()
    out = Path(out)
    if out.is_dir():
        raise BenchError(f"output {str(out)!r} is a directory; expected a file path")
    if out.exists() and not overwrite:
        raise BenchError(f"output {str(out)!r} exists; pass overwrite=True (--overwrite)")
    from nasforge.bench.query import Benchmark

    if not isinstance(bench, Benchmark):
        bench = Benchmark.open(bench)
    writer = _write_parquet if format == "parquet" else _write_csv
    atomic_write(out, lambda f: writer(bench, f, curves))
    os.chmod(out, 0o666 & ~_umask())  # the temporary file was private (mkstemp: 0600)
    return out


__all__ = [
    "EXPORT_FORMATS",
    "columns",
    "export_format",
    "export_table",
    "iter_batches",
    "to_arrow",
    "to_pandas",
]
