"""Query API on synthetic tables, the plain CSV / Parquet importer, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.bench import SYNTHETIC_OPTIMUM, Benchmark, make_synthetic_table
from nasforge.bench.importers import import_table
from nasforge.cli import app
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """All 15,625 archs, two datasets, short recipes (fast to build)."""
    path = tmp_path_factory.mktemp("syn") / "t"
    return Benchmark.open(
        make_synthetic_table(
            path, datasets=("cifar10-valid", "ImageNet16-120"), hps={"4": 4, "20": 20}
        )
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("syn") / "s"
    archs = [0, 11, 301, SYNTHETIC_OPTIMUM.to_string()]
    return Benchmark.open(make_synthetic_table(path, datasets=("cifar100",), archs=archs, seed=3))


def test_shape_of_the_table(full):
    assert len(full) == NUM_ARCHS
    assert full.datasets == ["ImageNet16-120", "cifar10-valid"]
    assert full.hps("cifar10-valid") == ["4", "20"]
    assert full.seeds("cifar10-valid", "20") == [777, 888, 999]
    assert full.num_epochs("cifar10-valid", "20") == 20
    assert full.has_time("cifar10-valid", "20")
    arch = next(iter(full))
    assert isinstance(arch, Arch) and arch.to_index() == 0


def test_known_optimum_and_realistic_shape(full):
    for ds in full.datasets:
        for hp in full.hps(ds):
            best, value = full.best(ds, hp=hp)
            assert best == SYNTHETIC_OPTIMUM
            assert full.best(ds, "test_acc", hp=hp)[0] == SYNTHETIC_OPTIMUM
            assert value == pytest.approx(full.query(best, ds, hp=hp).final["valid_acc"])
    t = full.table("cifar10-valid", "20")
    final = t.mean_final("valid_acc")
    # conv3x3 everywhere beats pooling everywhere; a disconnected cell sits at chance
    conv = Arch(("nor_conv_3x3",) * 6).to_index()
    pool = Arch(("avg_pool_3x3",) * 6).to_index()
    dead = Arch(("none",) * 6).to_index()
    assert final[conv] > final[pool] + 5 and abs(final[dead] - 10) < 1
    # valid and test are correlated but not identical; curves rise then saturate
    v, te = t.valid_acc[:, :, -1].ravel(), t.test_acc[:, :, -1].ravel()
    assert 0.95 < np.corrcoef(v, te)[0, 1] < 1 and not np.allclose(v, te)
    curve = full.query(SYNTHETIC_OPTIMUM, "cifar10-valid", hp="20").curves["valid_acc"]
    assert curve[-1] > curve[0] + 20 and curve[-1] - curve[-3] < 2
    # epoch time grows with FLOPs; the 4-epoch recipe ends lower than the 20-epoch one
    flops = np.array([full.cost(i, "cifar10-valid")["flops_m"] for i in range(200)])
    et = t.metric("epoch_time")[0, :200, 0]
    assert np.corrcoef(flops, et)[0, 1] > 0.95
    assert full.best("cifar10-valid", hp="4")[1] < full.best("cifar10-valid", hp="20")[1]


def test_query_record(full):
    rec = full.query(SYNTHETIC_OPTIMUM.to_string(), "cifar10-valid", hp="20")
    assert rec.arch == SYNTHETIC_OPTIMUM and rec.seeds == (777, 888, 999)
    per_seed = [full.query(SYNTHETIC_OPTIMUM, "cifar10-valid", hp="20", seed=s) for s in rec.seeds]
    assert rec.final["valid_acc"] == pytest.approx(
        np.mean([r.final["valid_acc"] for r in per_seed])
    )
    assert set(rec.curves) >= {"train_loss", "train_acc", "valid_acc", "test_acc", "epoch_time"}
    assert rec.curves["valid_acc"].shape == (20,)
    assert rec.final["train_time"] == pytest.approx(
        np.mean([r.curves["epoch_time"].sum() for r in per_seed]), rel=1e-5
    )
    assert rec.cost["latency_s"] > 0 and rec.cost["flops_m"] > 100
    # arch as Arch, string or index; epochs truncates
    index = SYNTHETIC_OPTIMUM.to_index()
    assert full.query(index, "cifar10-valid", hp="20").final == rec.final
    short = full.query(SYNTHETIC_OPTIMUM, "cifar10-valid", hp="20", epochs=5)
    assert short.curves["valid_acc"].shape == (5,)
    assert short.final["valid_acc"] == pytest.approx(rec.curves["valid_acc"][4])
    # 'cifar10' (the full-train-set run) is a separate training: no silent fallback to the
    # cifar10-valid runs outside simulate() (the official simulate_train_eval convention)
    for call in (
        lambda: full.query(index, "cifar10", hp="20"),
        lambda: full.top("cifar10", hp="20"),
        lambda: full.best("cifar10", hp="20"),
        lambda: full.table("cifar10", "20"),
        lambda: full.hps("cifar10"),
    ):
        with pytest.raises(BenchError, match="separate training on the full train set"):
            call()
    assert full.simulate(index, "cifar10", hp="20") == full.simulate(
        index, "cifar10-valid", hp="20"
    )
    # costs: the same network on both, so the cost fallback stays
    assert full.cost(index, "cifar10") == full.cost(index, "cifar10-valid")
    with pytest.raises(BenchError, match="seed"):
        full.query(index, "cifar10-valid", hp="20", seed=1)
    with pytest.raises(BenchError, match="epochs"):
        full.query(index, "cifar10-valid", hp="20", epochs=21)
    with pytest.raises(ArchError):
        full.query("|nope~0|", "cifar10-valid", hp="20")
    with pytest.raises(ArchError):
        full.query(NUM_ARCHS, "cifar10-valid", hp="20")


# Official NB201 params / FLOPs (millions) of three archs, from the published benchmark.
_OFFICIAL_COSTS = [
    (
        "cifar10-valid",
        "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|",
        0.615386,
        86.42625,
    ),
    (
        "ImageNet16-120",
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|none~2|",
        0.566536,
        19.64812,
    ),
]


def test_synthetic_costs_are_the_official_ones(full):
    for ds, arch, params, flops in _OFFICIAL_COSTS:
        cost = full.cost(arch, ds)
        assert cost["params_m"] == pytest.approx(params, abs=1e-6)
        assert cost["flops_m"] == pytest.approx(flops, abs=1e-5)


def test_simulate_and_bulk_table(full):
    sim = full.simulate(301, "ImageNet16-120", epoch=3, seed=888, hp="20")
    rec = full.query(301, "ImageNet16-120", hp="20", seed=888, epochs=3)
    assert (sim.epoch, sim.seed) == (3, 888)
    assert sim.valid_acc == rec.final["valid_acc"] and sim.test_acc == rec.final["test_acc"]
    assert sim.train_time == pytest.approx(rec.curves["epoch_time"].sum(), rel=1e-5)
    assert full.simulate(301, "ImageNet16-120", hp="20").epoch == 20
    draws = {
        full.simulate(301, "ImageNet16-120", hp="20", rng=np.random.default_rng(s)).seed
        for s in range(30)
    }
    assert draws == {777, 888, 999}
    a = [full.simulate(5, "cifar10", hp="4", rng=np.random.default_rng(1)) for _ in range(2)]
    assert a[0] == a[1]
    with pytest.raises(BenchError, match="epoch"):
        full.simulate(301, "ImageNet16-120", epoch=0, hp="20")
    t = full.table("ImageNet16-120", "20")
    assert t.valid_acc.shape == (3, NUM_ARCHS, 20) and t.ok.all()
    assert t.cum_time[1, 301, 2] == pytest.approx(sim.train_time)
    assert t.valid_acc[1, 301, 2] == sim.valid_acc
    top = full.top("ImageNet16-120", "valid_acc", hp="20", k=5)
    assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)
    assert full.top("ImageNet16-120", "train_loss", hp="20", k=1)[0][1] == np.nanmin(
        t.mean_final("train_loss")
    )


def test_sparse_table_reports_missing(small):
    assert len(small) == 4
    assert 5 not in small and 11 in small
    with pytest.raises(BenchError, match="no entry"):
        small.query(5, "cifar100", hp="200")
    t = small.table("cifar100", "200")
    assert math.isnan(t.valid_acc[0, 5, -1]) and not t.ok[:, 5].any()
    assert small.best("cifar100", hp="200")[0] == SYNTHETIC_OPTIMUM
    assert small.cost(5, "cifar100") == {}  # unknown costs are absent, never 0
    info = small.info()
    assert info["archs"] == 4 and info["groups"][0]["archs_by_num_seeds"] == {"3": 4}


def test_final_only_synthetic(tmp_path):
    b = Benchmark.open(
        make_synthetic_table(tmp_path / "f", datasets=("cifar100",), final_only=True, archs=[1, 2])
    )
    assert b.hps("cifar100") == ["final"] and b.num_epochs("cifar100", "final") is None
    sim = b.simulate(1, "cifar100", hp="final", seed=777)
    assert sim.epoch == 1 and sim.train_time > 0


# -- plain tables ---------------------------------------------------------------------------
def _write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")


def test_csv_long_format_import(tmp_path):
    a, b = Arch.from_index(11), Arch.from_index(301)
    src = tmp_path / "runs.csv"
    _write_csv(
        src,
        ["arch", "dataset", "seed", "val_acc", "test-accuracy", "train_time", "latency_gpu_ms"],
        [
            (a, "cifar100", 1, 70.5, 70.1, 1000, 12),
            (a, "cifar100", 2, 71.5, 70.9, 1100, 12),
            (b, "cifar100", 1, 60.0, "", 900, 10),
            (b, "ImageNet16-120", 1, 40.0, 41.0, 3000, ""),
        ],
    )
    bench = Benchmark.open(import_table(src, tmp_path / "t"))
    assert bench.datasets == ["ImageNet16-120", "cifar100"]
    assert bench.hps("cifar100") == ["final"] and bench.num_epochs("cifar100", "final") is None
    rec = bench.query(a, "cifar100", hp="final")
    assert rec.final["valid_acc"] == pytest.approx(71.0) and rec.seeds == (1, 2)
    assert rec.cost == {"latency_gpu_s": pytest.approx(0.012)}
    assert math.isnan(bench.query(b, "cifar100", hp="final").final["test_acc"])  # missing
    sim = bench.simulate(a, "cifar100", hp="final", seed=2)
    assert (sim.valid_acc, sim.test_acc, sim.train_time) == (71.5, 70.9, 1100)
    assert bench.best("cifar100", hp="final")[0] == a
    with pytest.raises(BenchError, match="no entry"):
        bench.query(a, "ImageNet16-120", hp="final")


def test_csv_wide_fractions_index_and_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    cols = {
        "idx": [0, 1, 2],
        "cifar10_valid_acc": [0.9, 0.8, 0.7],
        "cifar100_valid_acc": [0.7, 0.6, 0.5],
        "cifar100_time": [10.0, 20.0, 30.0],
        "notes": ["a", "b", "c"],
    }
    src = tmp_path / "wide.parquet"
    pq.write_table(pa.table(cols), src)
    bench = Benchmark.open(import_table(src, tmp_path / "t"))
    assert sorted(bench.datasets) == ["cifar10", "cifar100"]
    assert bench.query(1, "cifar100", hp="final").final["valid_acc"] == pytest.approx(60.0)
    assert bench.has_time("cifar100", "final") and not bench.has_time("cifar10", "final")
    assert bench.meta["ignored_columns"] == ["notes"]
    # explicit roles and a single dataset via flags
    src2 = tmp_path / "plain.csv"
    _write_csv(src2, ["genome", "top1"], [(Arch.from_index(7), 93.1)])
    with pytest.raises(BenchError, match="arch column"):
        import_table(src2, tmp_path / "x", dataset="cifar10")
    b2 = Benchmark.open(
        import_table(
            src2, tmp_path / "y", dataset="cifar10", columns={"arch": "genome", "test_acc": "top1"}
        )
    )
    assert b2.query(7, "cifar10", hp="final").final["test_acc"] == pytest.approx(93.1)
    _write_csv(src2, ["arch", "valid_acc"], [(Arch.from_index(7), 1), (Arch.from_index(7), 2)])
    with pytest.raises(BenchError, match="two rows"):
        import_table(src2, tmp_path / "z", dataset="cifar10")
    _write_csv(src2, ["arch", "valid_acc"], [("|nope~0|", 1)])
    with pytest.raises(BenchError, match="row 1"):
        import_table(src2, tmp_path / "w", dataset="cifar10")


# -- CLI ---------------------------------------------------------------------------------------
def test_cli(small, tmp_path):
    runner = CliRunner()
    path = str(small.path)
    r = runner.invoke(app, ["bench", "info", path, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["archs"] == 4
    r = runner.invoke(app, ["bench", "info", path])
    assert r.exit_code == 0 and "cifar100" in r.output
    r = runner.invoke(
        app,
        [
            "bench",
            "query",
            path,
            SYNTHETIC_OPTIMUM.to_string(),
            "--dataset",
            "cifar100",
            "--epoch",
            "12",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["hp"] == "200" and out["epochs"] == 12
    assert out["final"]["valid_acc"] == pytest.approx(
        small.query(SYNTHETIC_OPTIMUM, "cifar100", epochs=12).final["valid_acc"]
    )
    r = runner.invoke(app, ["bench", "top", path, "--dataset", "cifar100", "-k", "2", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["arch"] == SYNTHETIC_OPTIMUM.to_string()
    r = runner.invoke(app, ["bench", "verify", path])
    assert r.exit_code == 0 and r.output.startswith("ok")
    src = tmp_path / "t.csv"
    _write_csv(src, ["index", "valid_acc"], [(3, 50.0)])
    r = runner.invoke(
        app, ["bench", "import", str(src), "-o", str(tmp_path / "o"), "--dataset", "cifar10"]
    )
    assert r.exit_code == 0 and "imported 1 archs" in r.output
    r = runner.invoke(app, ["bench", "import", str(src), "-o", str(tmp_path / "o")])
    assert isinstance(r.exception, BenchError)  # exists, and main() turns it into one line


def _builder_like_table(path):
    """Like a `nasforge bench build` table: no per-split evaluation times, a seed with a
    missing value, costs only for cifar100."""
    from nasforge.bench import ResultEntry, TableWriter

    with TableWriter(path) as w:
        for index, accs in ((5, (80.0, 82.0)), (9, (85.0, 70.0))):
            for seed, acc in zip((777, 888), accs, strict=True):
                curves = {
                    "train_loss": [1.0, 0.5],
                    "train_acc": [60.0, 70.0],
                    "valid_acc": [acc - 5, acc],
                    "test_acc": [acc - 4, acc + 1],
                    "valid_loss": [0.9, float("nan") if (index, seed) == (5, 888) else 0.4],
                    "epoch_time": [2.0, 3.0],
                }
                w.append(ResultEntry(index, "cifar10-valid", "12", seed, curves=curves))
        w.set_cost(5, "cifar100", flops_m=10.0)
    return path


def test_compat_on_a_builder_table(tmp_path):
    import random

    from nasforge.bench.compat import NASBench201API

    api = NASBench201API(_builder_like_table(tmp_path / "b"), rng=random.Random(0))
    # no valid_time recorded: the evaluation is charged 0 s, not a TypeError
    acc, latency, time_cost, used = api.simulate_train_eval(5, "cifar10", hp="12")
    assert acc in (80.0, 82.0) and latency is None
    assert time_cost == pytest.approx(5.0) and used == pytest.approx(5.0)
    # a seed with a missing value: the mean is missing, not a TypeError (first seed is fine)
    info = api.get_more_info(5, "cifar10-valid", hp="12", is_random=False)
    assert info["valid-loss"] is None and info["valid-accuracy"] == pytest.approx(81.0)
    assert api.get_more_info(9, "cifar10-valid", hp="12", is_random=False)["valid-loss"] == 0.4
    # caps on costs the table does not have for the dataset are refused, never ignored
    assert api.find_best("cifar10-valid", "x-valid", hp="12") == (5, pytest.approx(81.0))
    for kw in ({"FLOP_max": 50.0}, {"Param_max": 1.0}):
        with pytest.raises(BenchError, match=r"no (flops|params)_m"):
            api.find_best("cifar10-valid", "x-valid", hp="12", **kw)
