"""The plain CSV / Parquet importer refuses impossible numbers and missing keys, decides the
accuracy scale once per table, and honours --format."""

from __future__ import annotations

import sys

import pytest

from nasforge.bench import Benchmark
from nasforge.bench.importers import import_table
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import Arch

A, B, C = (Arch.from_index(i).to_string() for i in (11, 301, 4000))


def _csv(tmp_path, text, name="runs.csv"):
    src = tmp_path / name
    src.write_text(text)
    return src


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("150", r"row 2 \(line 3\), column 'valid_acc': accuracy 150 is outside \[0, 100\]"),
        ("-5", r"row 2 \(line 3\), column 'valid_acc': accuracy -5 is outside \[0, 100\]"),
        ("inf", r"row 2 \(line 3\), column 'valid_acc': 'inf' is not a finite number"),
        ("-inf", r"row 2 \(line 3\), column 'valid_acc': '-inf' is not a finite number"),
    ],
)
def test_impossible_accuracies_are_refused_with_file_row_and_column(tmp_path, value, match):
    src = _csv(tmp_path, f"arch,valid_acc\n{A},70\n{B},{value}\n{C},60\n")
    with pytest.raises(BenchError, match="runs.csv' " + match):
        import_table(src, tmp_path / "t", dataset="cifar10")
    assert not (tmp_path / "t").exists()


def test_negative_times_and_costs_are_refused(tmp_path):
    src = _csv(tmp_path, f"arch,valid_acc,train_time\n{A},70,-1\n")
    with pytest.raises(BenchError, match=r"column 'train_time': train_time -1 is negative"):
        import_table(src, tmp_path / "t", dataset="cifar10")


def test_the_accuracy_scale_is_decided_once_for_the_whole_table(tmp_path):
    # Fractions in one column, percent-looking in none: both columns are fractions.
    src = _csv(tmp_path, f"arch,valid_acc,test_acc\n{A},0.9,0.85\n{B},0.8,1.0\n")
    bench = Benchmark.open(import_table(src, tmp_path / "t", dataset="cifar10"))
    final = bench.query(A, "cifar10", hp="final").final
    assert (final["valid_acc"], final["test_acc"]) == pytest.approx((90.0, 85.0))
    # One typo (1.2 among fractions) used to flip its column alone to percent while the
    # row's other column stayed a fraction; now the table is ambiguous and says where.
    src = _csv(tmp_path, f"arch,valid_acc,test_acc\n{A},0.9,0.85\n{B},0.8,1.2\n{C},0.7,0.6\n")
    with pytest.raises(BenchError, match=r"row 2 \(line 3\), column 'test_acc' is 1.2.*acc-scale"):
        import_table(src, tmp_path / "t2", dataset="cifar10")
    # The user says fractions: the typo is out of range, with its place.
    with pytest.raises(BenchError, match=r"column 'test_acc': accuracy 1.2 is outside \[0, 1\]"):
        import_table(src, tmp_path / "t3", dataset="cifar10", acc_scale="fraction")
    # Percent with a few archs at chance level (< 1 %) is not mistaken for fractions.
    src = _csv(tmp_path, f"arch,valid_acc,test_acc\n{A},70.5,0.83\n{B},65.0,64.0\n")
    bench = Benchmark.open(import_table(src, tmp_path / "t4", dataset="ImageNet16-120"))
    assert bench.query(A, "ImageNet16-120", hp="final").final["test_acc"] == pytest.approx(0.83)
    # Wide tables: the scale spans every dataset's accuracy columns too.
    src = _csv(tmp_path, f"arch,cifar10_valid_acc,cifar100_valid_acc\n{A},0.9,45\n{B},0.8,50\n")
    bench = Benchmark.open(import_table(src, tmp_path / "t5"))
    assert bench.query(A, "cifar10", hp="final").final["valid_acc"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            f"arch,dataset,valid_acc\n{A},cifar10,70\n{B},,60\n",
            r"row 2 \(line 3\), column "
            "'dataset': the dataset is empty",
        ),
        (
            f"arch,dataset,seed,valid_acc\n{A},cifar10,1,70\n{B},cifar10,,60\n",
            r"row 2 \(line 3\), "
            "column 'seed': the seed is empty",
        ),
        (f"arch,seed,valid_acc\n{A},1.5,70\n", "seed '1.5' is not an integer"),
        (f"arch,valid_acc\n{A},70\n,60\n", r"row 2 \(line 3\), column 'arch': the arch is empty"),
        ("index,valid_acc\n3,70\n,60\n", "column 'index': the arch index is empty"),
        (f"arch,dataset,valid_acc\n{A},cifar/10,70\n", "column 'dataset': dataset 'cifar/10'"),
    ],
)
def test_empty_or_bad_keys_are_refused(tmp_path, text, match):
    with pytest.raises(BenchError, match=match):
        import_table(_csv(tmp_path, text), tmp_path / "t", dataset="cifar10")


def test_format_flag_is_honoured(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = _csv(tmp_path, f"arch,valid_acc\n{A},70\n")
    with pytest.raises(BenchError, match=r"not a Parquet file.*PAR1"):
        import_table(src, tmp_path / "t", format="parquet", dataset="cifar10")
    pq_src = tmp_path / "runs.csv.bak"  # a Parquet file under a misleading name
    pq.write_table(pa.table({"arch": [A], "valid_acc": [70.0]}), pq_src)
    with pytest.raises(BenchError, match=r"not a CSV file.*is a Parquet file"):
        import_table(pq_src, tmp_path / "t", format="csv", dataset="cifar10")
    bench = Benchmark.open(
        import_table(pq_src, tmp_path / "t", format="parquet", dataset="cifar10")
    )
    assert bench.meta["source_format"] == "parquet" and len(bench) == 1


def test_bad_dataset_or_hp_flags_are_refused_like_build_does(tmp_path):
    from nasforge.bench.build import BuildConfig

    src = _csv(tmp_path, f"arch,valid_acc\n{A},70\n")
    for kwargs in ({"dataset": " cifar10"}, {"dataset": "cifar10", "hp": "a/b"}):
        with pytest.raises(BenchError, match="must be a non-empty"):
            import_table(src, tmp_path / "t", **kwargs)
        with pytest.raises(BenchError, match="must be a non-empty"):
            BuildConfig(**kwargs)


def test_cli_import_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    src = _csv(tmp_path, f"arch,valid_acc\n{A},70\n{B},inf\n")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "nasforge",
            "bench",
            "import",
            str(src),
            "-o",
            str(tmp_path / "t"),
            "--dataset",
            "cifar10",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "not a finite number" in err and "Traceback" not in err
