"""The NB201 results-export importer: two recipes per dataset and the protocol's time charge."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nasforge.bench import Benchmark
from nasforge.bench.importers import detect_format, import_table
from nasforge.errors import BenchError
from nasforge.evaluate import TabularEvaluator
from nasforge.spaces.nb201 import Arch

REAL = Path(__file__).resolve().parents[2] / "shared" / "nb201" / "real_cifar100_imagenet16.csv"
HEADER = (
    "index,arch,cifar100_valid12,cifar100_valtest200,cifar100_test200,cifar100_train_time200,"
    "in16_valid12,in16_valtest200,in16_test200,in16_train_time200"
)
# The first two rows of the real export (official indices 0 and 1).
ROWS = [
    (0, 31.84, 52.8067, 52.9133, 2888.437, 18.4667, 27.4222, 26.6333, 8763.518),
    (1, 57.8, 70.06, 70.2933, 4339.283, 35.4333, 44.2611, 44.0333, 13165.384),
]


def write_export(path: Path, rows=ROWS) -> Path:
    lines = [HEADER]
    for i, *vals in rows:
        lines.append(",".join([str(i), Arch.from_index(i).to_string(), *map(str, vals)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_export_csv_imports_two_recipes_and_charges_12_of_200(tmp_path):
    src = write_export(tmp_path / "export.csv")
    assert detect_format(src) == "nb201-export"
    bench = Benchmark.open(import_table(src, tmp_path / "t", format="csv"))
    assert bench.datasets == ["ImageNet16-120", "cifar100"]
    assert bench.hps("cifar100") == ["12", "200"]
    rec = bench.query(Arch.from_index(1), "cifar100", hp="200")
    assert rec.final["test_acc"] == pytest.approx(70.2933)
    assert rec.final["valtest_acc"] == pytest.approx(70.06)
    # x-valid and x-test are equal halves: whole-set accuracy is their mean
    assert rec.final["valid_acc"] == pytest.approx(2 * 70.06 - 70.2933)
    assert rec.final["train_time"] == pytest.approx(4339.283)
    ev = TabularEvaluator(bench, "ImageNet16-120")  # hp 12 searched, hp 200 reported
    ev.reset(0)
    obs = ev.evaluate(Arch.from_index(0))
    assert obs.valid_acc == pytest.approx(18.4667)
    assert obs.cost == pytest.approx(8763.518 * 12 / 200)  # the 12-epoch run's time
    assert ev.report(Arch.from_index(0), obs).test_acc == pytest.approx(26.6333)
    assert ev.optimum() == pytest.approx(44.0333)
    # an explicit plain mapping still goes to the plain importer
    with pytest.raises(BenchError, match="no metric column"):
        import_table(src, tmp_path / "plain", format="csv", dataset="cifar100")


def test_export_rejects_bad_rows(tmp_path):
    bad = write_export(tmp_path / "bad.csv")
    text = bad.read_text().replace(",57.8,", ",oops,")
    bad.write_text(text)
    with pytest.raises(BenchError, match=r"line 3, column 'cifar100_valid12': 'oops'"):
        import_table(bad, tmp_path / "t", format="nb201-export")
    wrong = write_export(tmp_path / "wrong.csv")
    wrong.write_text(wrong.read_text().replace("\n1,", "\n7,"))
    with pytest.raises(BenchError, match="index '7' is not the official index 1"):
        import_table(wrong, tmp_path / "t2", format="nb201-export")
    assert not (tmp_path / "t").exists() and not (tmp_path / "t2").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL.is_file(), reason="../shared/nb201/real_cifar100_imagenet16.csv absent"
)
def test_real_export_has_the_published_optima(tmp_path):
    bench = Benchmark.open(import_table(REAL, tmp_path / "real", format="csv"))
    for ds, optimum in (("cifar100", 73.51), ("ImageNet16-120", 47.31)):
        ev = TabularEvaluator(bench, ds)
        assert math.isclose(ev.optimum(), optimum, abs_tol=0.005)
        t12 = bench.table(ds, "12")
        assert np.isfinite(np.asarray(t12.valid_acc)).all()  # all 15,625 archs searchable
