"""Write a table's flat frame (:mod:`nasforge.bench.frame`) to a Parquet or CSV file.

Groups are written one at a time (a row group each in Parquet), so exporting the full
15,625-arch table with curves needs memory for one group, not for the whole frame. Files
are written atomically (:mod:`nasforge.io`) and honour the umask. The columns are those of
:func:`nasforge.bench.frame.columns`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.frame import (
    _CURVE,
    _arrow_schema,
    _pyarrow,
    _record_batch,
    columns,
    iter_batches,
    to_arrow,
    to_pandas,
)
from nasforge.bench.query import Benchmark
from nasforge.errors import BenchError
from nasforge.io import atomic_write

#: Formats of :func:`export_table`.
EXPORT_FORMATS = ("parquet", "csv")


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
