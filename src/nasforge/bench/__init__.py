"""The tabular benchmark: schema, store (memory-mapped read path, crash-safe write path),
query API, importers of the official files, and a NAS-Bench-201 compatibility facade.

    from nasforge.bench import Benchmark
    bench = Benchmark.open("nb201.table")
    rec = bench.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                      "nor_conv_3x3~1|nor_conv_3x3~2|", "cifar10-valid", hp="200")
"""

from nasforge.bench.query import Benchmark, Record, Sim, Table
from nasforge.bench.schema import (
    ALL_METRICS,
    COST_METRICS,
    CURVE_METRICS,
    FINAL_METRICS,
    OFFICIAL_DATASETS,
    ResultEntry,
)
from nasforge.bench.store import verify, write_table
from nasforge.bench.synthetic import SYNTHETIC_OPTIMUM, make_synthetic_table
from nasforge.bench.writer import TableWriter

__all__ = [
    "ALL_METRICS",
    "COST_METRICS",
    "CURVE_METRICS",
    "FINAL_METRICS",
    "OFFICIAL_DATASETS",
    "SYNTHETIC_OPTIMUM",
    "Benchmark",
    "Record",
    "ResultEntry",
    "Sim",
    "Table",
    "TableWriter",
    "make_synthetic_table",
    "verify",
    "write_table",
]
