"""Tables everywhere: Benchmark.to_arrow / to_pandas and `nasforge bench export`, round
trips through pyarrow (what DuckDB reads) and pandas."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.bench import SYNTHETIC_OPTIMUM, Benchmark, ResultEntry, TableWriter
from nasforge.bench import make_synthetic_table as make
from nasforge.bench.export import export_table
from nasforge.cli import app
from nasforge.errors import BenchError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

ARCHS = [0, 11, 301, SYNTHETIC_OPTIMUM.to_string()]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Two datasets x two recipes from the synthetic generator, plus a failed run and a
    group without evaluation times (as `nasforge bench build` writes)."""
    path = make(
        tmp_path_factory.mktemp("x") / "t",
        datasets=("cifar10-valid", "cifar100"),
        hps={"3": 3, "5": 5},
        archs=ARCHS,
    )
    with TableWriter(path) as w:
        curves = {"train_acc": [50.0, 60.0], "valid_acc": [40.0, 45.5], "epoch_time": [1.0, 2.0]}
        w.append(ResultEntry(7, "digits", "2", 0, curves=curves))
        w.append(ResultEntry(7, "digits", "2", 1, status="failed", error="OOM"))
    return Benchmark.open(path)


def _expected_rows(bench):
    rows = 0
    for ds in bench.datasets:
        for hp in bench.hps(ds):
            st = np.asarray(bench._group(ds, hp).status)
            rows += int((st != 0).sum())
    return rows


def test_to_arrow_is_one_row_per_run_with_the_queried_values(bench):
    t = bench.to_arrow()
    assert t.num_rows == _expected_rows(bench) == 4 * 3 * 4 + 2
    assert t.column_names[:8] == [
        "index",
        "arch",
        "dataset",
        "hp",
        "seed",
        "aggregate",
        "status",
        "epochs",
    ]
    assert {"valid_acc", "train_time", "params_m", "flops_m", "latency_s"} <= set(t.column_names)
    assert "epoch_time" not in t.column_names  # a per-epoch figure: only as a curve
    df = t.to_pandas()
    for _, r in df[df["status"] == "ok"].sample(12, random_state=0).iterrows():
        rec = bench.query(int(r["index"]), r["dataset"], hp=r["hp"], seed=int(r["seed"]))
        assert r["arch"] == rec.arch.to_string() and r["epochs"] == bench.num_epochs(
            r["dataset"], r["hp"]
        )
        for m, v in rec.final.items():
            assert r[m] == pytest.approx(v, rel=1e-6, nan_ok=True), m
        for c, v in rec.cost.items():
            assert r[c] == v
    # a failed run is a row with its status and no metrics; missing values are nulls
    failed = df[df["status"] == "failed"]
    assert (
        len(failed) == 1 and failed["seed"].item() == 1 and math.isnan(failed["valid_acc"].item())
    )
    digits = t.filter(pa.compute.equal(t["dataset"], "digits"))
    assert digits["valid_loss"].null_count == 2 and digits["params_m"].null_count == 2
    # to_pandas is the same frame
    pd.testing.assert_frame_equal(bench.to_pandas(), df)


def test_export_parquet_round_trips_with_curves(bench, tmp_path):
    out = export_table(bench, tmp_path / "t.parquet", curves=True)
    back = pq.read_table(out)
    assert back.equals(bench.to_arrow(curves=True))
    df = back.to_pandas()
    r = df[(df["index"] == 301) & (df["dataset"] == "cifar100") & (df["hp"] == "5")].iloc[1]
    rec = bench.query(301, "cifar100", hp="5", seed=int(r["seed"]))
    assert list(r["valid_acc_curve"]) == pytest.approx(rec.curves["valid_acc"].tolist(), rel=1e-6)
    assert list(r["epoch_time_curve"]) == pytest.approx(rec.curves["epoch_time"].tolist())
    # a group without a metric has a null curve, not an empty one
    assert df[df["dataset"] == "digits"]["test_acc_curve"].isna().all()
    # the file honours the umask and nothing half-written stays next to it
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_export_csv_round_trips_through_pandas(bench, tmp_path):
    out = export_table(bench, tmp_path / "t.csv", format="csv", curves=True)
    back = pd.read_csv(out, dtype={"hp": str})
    want = bench.to_pandas()
    assert list(back.columns) == list(want.columns) + [
        c for c in back.columns if c.endswith("_curve")
    ]
    assert back[list(want.columns)].shape == want.shape
    for c in ("valid_acc", "train_time", "flops_m", "seed", "index"):
        # floats are written with repr: they come back bit for bit
        np.testing.assert_array_equal(back[c].to_numpy(float), want[c].to_numpy(float))
    assert (back["arch"] == want["arch"]).all() and (back["status"] == want["status"]).all()
    curve = json.loads(back["valid_acc_curve"].iloc[0])
    rec = bench.query(int(back["index"].iloc[0]), back["dataset"].iloc[0], hp="3", seed=777)
    assert curve == rec.curves["valid_acc"].astype(float).tolist()


def test_export_cli_and_bad_input(bench, tmp_path):
    runner = CliRunner()
    out = tmp_path / "t.parquet"
    r = runner.invoke(app, ["bench", "export", str(bench.path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert pq.read_table(out).num_rows == _expected_rows(bench)
    # an existing output is kept unless --overwrite
    r = runner.invoke(app, ["bench", "export", str(bench.path), "-o", str(out)])
    assert isinstance(r.exception, BenchError) and "exists" in str(r.exception)
    # the format follows the suffix; a --format contradicting it is refused (issue 23, item 10)
    r = runner.invoke(
        app, ["bench", "export", str(bench.path), "-o", str(out), "--format", "csv", "--overwrite"]
    )
    assert isinstance(r.exception, BenchError) and "'.parquet'" in str(r.exception)
    assert pq.read_table(out).num_rows == _expected_rows(bench)  # untouched
    csv_out = tmp_path / "t.csv"
    r = runner.invoke(app, ["bench", "export", str(bench.path), "-o", str(csv_out)])
    assert r.exit_code == 0 and csv_out.read_text().startswith("index,arch,dataset,hp,seed")
    # a bad format is refused before any work, naming the value and the choices
    with pytest.raises(BenchError, match=r"'xlsx' unknown; expected one of \['parquet', 'csv'\]"):
        export_table(bench, tmp_path / "t.xlsx", format="xlsx")
    assert not (tmp_path / "t.xlsx").exists()


def test_synthetic_tables_say_so(bench):
    assert bench.meta["synthetic"] is True
    assert bench.info()["meta"]["synthetic"] is True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bench_info_says_a_table_is_synthetic(tmp_path) -> None:
    from typer.testing import CliRunner

    from nasforge.bench import make_synthetic_table
    from nasforge.cli import app

    path = make_synthetic_table(tmp_path / "s.table", datasets=("cifar10-valid",))
    res = CliRunner().invoke(app, ["bench", "info", str(path)])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC table" in res.output
