"""A table as one flat frame (columns, record batches, Arrow / pandas), in memory.

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

Rows come in batches of one group (:func:`iter_batches`); :mod:`nasforge.bench.export`
writes them to Parquet / CSV files. This module needs nothing of the query API beyond the
:class:`~nasforge.bench.query.Benchmark` it is handed, so the query API can offer
``to_arrow`` / ``to_pandas`` without an import circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.bench.schema import STATUS_NAMES, cost_order, metric_order
from nasforge.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    from nasforge.bench.query import Benchmark

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


__all__ = ["columns", "iter_batches", "to_arrow", "to_pandas"]
