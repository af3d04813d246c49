"""Adversarial probes of every value / file input (issue 23, items 3, 4, 5, 7): each hostile
value ends in one bounded line and exit code 2 from ``nasforge``, before any work starts —
never a traceback, a MemoryError or a silent multi-gigabyte allocation.

The limits checked here are documented in README.md, "Input limits".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import nasforge.data
from nasforge.bench.build import resolve_archs
from nasforge.bench.synthetic import make_synthetic_table
from nasforge.cli import main
from nasforge.cli.options import key_value_pairs
from nasforge.errors import ArchError, NasforgeError, bound_message
from nasforge.inputs import excerpt, parse_json, read_text
from nasforge.spaces.darts import PUBLISHED, Genotype, GenotypeError

BIG_INT = "7" * 5000  # past Python's 4,300-digit int() guard
DEEP = "[" * 50_000 + "]" * 50_000  # past the JSON scanner's recursion limit
LINE_MAX = 600  # a "one line" error is short whatever the input's size


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("adv") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


@pytest.fixture
def no_data(monkeypatch):
    """Loading data fails the test: the checks under test must come before any work."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the bad input was refused")

    monkeypatch.setattr(nasforge.data, "load_splits", forbidden)


def _nasforge(args: list[str], monkeypatch, capsys) -> str:
    """Run ``nasforge ARGS`` as the console script does; the error line it printed (exit 2)."""
    monkeypatch.setattr(sys, "argv", ["nasforge", *args])
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main()
    assert time.perf_counter() - start < 20, "refused only after long work"
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error:") and "\n" not in err, err
    assert len(err) < LINE_MAX, f"{len(err)}-character error: {err[:200]}"
    return err


# -- KEY=VALUE settings (--param, --network) --------------------------------------------------
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (BIG_INT, "5000 digits"),
        (DEEP, "50000 levels deep"),
        ("NaN", "NaN"),
        ("-Infinity", "Infinity"),
        ("1e400", "finite"),
        ("100000000000", "NASFORGE_MAX_SETTING"),  # item 4: 745 GiB tournament
    ],
)
def test_search_param_values_are_bounded(value, says, table, tmp_path, monkeypatch, capsys):
    args = ["search", "--algo", "rea", "--bench", str(table), "--budget", "5evals", "--quiet"]
    err = _nasforge(
        [*args, "-o", str(tmp_path / "o"), "--param", f"sample_size={value}"], monkeypatch, capsys
    )
    assert says in err and "sample_size" in err
    assert not (tmp_path / "o").exists()


def test_plain_words_and_json_values_still_read():
    got = key_value_pairs(["a=sgd", "b=3", "c=[1, 2]", "d=0.5", "e=true"], "--param", "x=1")
    assert got == {"a": "sgd", "b": 3, "c": [1, 2], "d": 0.5, "e": True}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (BIG_INT, "5000 digits"),
        ("NaN", "NaN"),
        ("[1,2]", "expected an integer"),
        ("2.5", "expected an integer"),
        ("100000000", "NASFORGE_MAX"),  # item 4: 10.8 GB network
        ("5000", "1..1024"),
        ("true", "expected an integer"),
        (DEEP, "levels deep"),
    ],
)
def test_zc_network_values_are_bounded(value, says, tmp_path, monkeypatch, capsys, no_data):
    err = _nasforge(
        ["zc", "--archs", "2", "-o", str(tmp_path / "z.csv"), "--network", f"C={value}"],
        monkeypatch,
        capsys,
    )
    assert says in err
    assert not (tmp_path / "z.csv").exists()


def test_settings_limit_can_be_raised(monkeypatch):
    with pytest.raises(NasforgeError, match="NASFORGE_MAX_SETTING"):
        key_value_pairs(["n=2000000"], "--param", "x=1")
    monkeypatch.setenv("NASFORGE_MAX_SETTING", "3000000")
    assert key_value_pairs(["n=2000000"], "--param", "x=1") == {"n": 2000000}


# -- arch files (zc --archs, bench build --archs, study ranking --arch-set) -------------------
def _hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    files = {
        "binary": (b"\x80\x81\xfe\xff" * 64, "not a text file"),
        "nul": (b"|none~0|\x00\n", "not a text file"),
        "deep": (DEEP.encode(), "levels deep"),
        "digits": (BIG_INT.encode() + b"\n", "5000 digits"),
        "json-digits": (f"[{BIG_INT}]".encode(), "5000 digits"),
        "nan": (b"[NaN]", "NaN"),
        "object": (b'[{"arch": [1, 2]}]', "arch"),
    }
    out = {}
    for name, (body, says) in files.items():
        p = tmp_path / f"{name}.txt"
        p.write_bytes(body)
        out[name] = (p, says)
    return out


def test_zc_arch_files_are_checked(tmp_path, monkeypatch, capsys, no_data):
    for name, (path, says) in _hostile_files(tmp_path).items():
        if name == "object":  # a dict entry's non-string arch
            says = "not an arch string"
        err = _nasforge(
            ["zc", "--archs", str(path), "-o", str(tmp_path / "z.csv")], monkeypatch, capsys
        )
        assert says in err, (name, err)


def test_zc_archs_count_with_5000_digits(tmp_path, monkeypatch, capsys, no_data):
    err = _nasforge(["zc", "--archs", BIG_INT, "-o", str(tmp_path / "z.csv")], monkeypatch, capsys)
    assert "5000 digits" in err


def test_build_and_study_arch_files_are_checked(tmp_path, monkeypatch, capsys, no_data):
    for name, (path, says) in _hostile_files(tmp_path).items():
        if name == "object":
            continue  # bench build reads arch strings / indices; a dict is an Arch error
        with pytest.raises(ArchError, match=says.split()[0]):
            resolve_archs(str(path))
        err = _nasforge(
            [
                "study",
                "ranking",
                "--bench",
                str(tmp_path / "t"),
                "-o",
                str(tmp_path / "o"),
                "--arch-set",
                str(path),
            ],
            monkeypatch,
            capsys,
        )
        assert says in err, (name, err)
    with pytest.raises(ArchError, match="5000 digits"):
        resolve_archs(BIG_INT)


def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "archs.fifo"
    os.mkfifo(fifo)
    with pytest.raises(NasforgeError, match="not a regular file"):
        read_text(fifo, "arch file")


def test_file_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.txt"
    p.write_text("0\n" * 1000)
    monkeypatch.setenv("NASFORGE_MAX_FILE_BYTES", "100")
    with pytest.raises(ArchError, match="2000 bytes; expected at most 100"):
        resolve_archs(str(p))


# -- DARTS genotypes (item 3) -----------------------------------------------------------------
DARTS_V2 = PUBLISHED["DARTS_V2"].to_string()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=range(0, 1000000000)"),
            "10 digits",
        ),
        (
            DARTS_V2.replace("normal_concat=range(2, 6)", f"normal_concat=range(0, {BIG_INT})"),
            "5000 digits",
        ),
        (
            DARTS_V2.replace(
                "normal_concat=range(2, 6)", "normal_concat=[" + "2, " * 100000 + "3]"
            ),
            "at most",
        ),
        (DARTS_V2.replace("1)", f"{BIG_INT})", 1), "5000 digits"),
        (DARTS_V2.replace("1)", "99999)", 1), "not available"),
        ('{"normal": ' + "[" * 5000 + "]" * 5000 + "}", "levels deep"),
        ('{"normal": ' + DEEP + "}", "expected at most"),
        ('{"normal": [["sep_conv_3x3", ' + BIG_INT + "]]}", "5000 digits"),
        ('{"normal": [["sep_conv_3x3", NaN]]}', "NaN"),
    ],
)
def test_hostile_genotypes_are_one_line(text, says, tmp_path, monkeypatch, capsys, no_data):
    start = time.perf_counter()
    with pytest.raises(GenotypeError) as info:
        Genotype.parse(text)
    assert time.perf_counter() - start < 5
    assert says in str(info.value) and len(str(info.value)) < LINE_MAX
    f = tmp_path / "g.txt"
    f.write_text(text)
    err = _nasforge(
        ["train", "--space", "darts", "--arch", str(f), "--out", str(tmp_path / "o.json")],
        monkeypatch,
        capsys,
    )
    assert says in err


def test_genotype_value_with_a_huge_range_is_refused_before_listing():
    g = PUBLISHED["DARTS_V2"]
    with pytest.raises(GenotypeError, match="1000000000 node ids"):
        Genotype(g.normal, range(0, 10**9), g.reduce, g.reduce_concat)
    with pytest.raises(GenotypeError, match="at most 128"):
        Genotype([("skip_connect", 0)] * 10**6, g.normal_concat, g.reduce, g.reduce_concat)


# -- bounded messages (item 7) ----------------------------------------------------------------
def test_a_megabyte_value_makes_a_short_message(tmp_path, monkeypatch, capsys, no_data):
    f = tmp_path / "archs.txt"
    f.write_text("|" + "x" * 2**20 + "|\n")
    err = _nasforge(["zc", "--archs", str(f), "-o", str(tmp_path / "z.csv")], monkeypatch, capsys)
    assert "…" in err
    assert len(bound_message("bad '" + "y" * 2**20 + "'; expected z")) < 400
    assert excerpt("q" * 1000).endswith("…'") and len(excerpt("q" * 1000)) == 83
    with pytest.raises(NasforgeError) as info:
        parse_json("[" + "1," * 10 + "x]", "probe")
    assert "probe" in str(info.value) and "expected" in str(info.value)


# -- numeric options (item 4) -----------------------------------------------------------------
def test_threads_beyond_the_cores_are_refused_unless_raised(monkeypatch):
    import torch
    import typer

    from nasforge.cli.options import _set_threads, available_cores

    before = torch.get_num_threads()
    with pytest.raises(typer.BadParameter, match="NASFORGE_MAX_THREADS"):
        _set_threads(100_000)
    assert torch.get_num_threads() == before  # refused before torch was touched
    monkeypatch.setenv("NASFORGE_MAX_THREADS", str(available_cores() + 1))
    try:
        assert _set_threads(available_cores() + 1) == available_cores() + 1
    finally:
        torch.set_num_threads(before)


def test_search_runs_and_threads_have_maxima(table, tmp_path):
    from typer.testing import CliRunner

    from nasforge.cli import app

    runner = CliRunner(env={"COLUMNS": "250"})
    base = ["search", "--algo", "random", "--bench", str(table), "-o", str(tmp_path / "o")]
    res = runner.invoke(app, [*base, "--runs", "1000000000000"])
    assert res.exit_code == 2 and "NASFORGE_MAX_RUNS" in res.output
    res = runner.invoke(app, [*base, "--threads", "100000"])
    assert res.exit_code == 2 and "NASFORGE_MAX_THREADS" in res.output
    res = runner.invoke(app, ["zc", "-o", str(tmp_path / "z.csv"), "--batch-size", "10000000"])
    assert res.exit_code == 2 and "NASFORGE_MAX_BATCH" in res.output
    res = runner.invoke(app, ["train", "--arch", "1", "--channels", "100000000"])
    assert res.exit_code == 2 and "NASFORGE_MAX_NETWORK_INT" in res.output
    assert not (tmp_path / "o").exists()


def test_searcher_settings_have_a_maximum_in_the_library_too(monkeypatch):
    from nasforge.errors import SearchError
    from nasforge.search.blackbox.rea import RegularizedEvolution as REA

    with pytest.raises(SearchError, match="sample_size 100000000000 must be <= 1000000"):
        REA(sample_size=10**11)
    monkeypatch.setenv("NASFORGE_MAX_SETTING", str(10**12))
    assert REA(sample_size=10**11).sample_size == 10**11


# -- bench export (item 10) -------------------------------------------------------------------
def test_export_format_follows_the_suffix(table, tmp_path):
    from typer.testing import CliRunner

    from nasforge.bench.export import export_format
    from nasforge.cli import app
    from nasforge.errors import BenchError

    runner = CliRunner()
    out = tmp_path / "x.csv"
    res = runner.invoke(app, ["bench", "export", str(table), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:4] != b"PAR1" and out.read_text().startswith("index,arch")
    res = runner.invoke(
        app,
        ["bench", "export", str(table), "-o", str(tmp_path / "y.csv"), "--format", "parquet"],
    )
    assert isinstance(res.exception, BenchError) and "'.csv'" in str(res.exception)
    assert not (tmp_path / "y.csv").exists()
    assert export_format("t.pq") == "parquet" and export_format("t") == "parquet"
    with pytest.raises(BenchError, match=r"'\.txt' names no export format"):
        export_format("t.txt")
    assert export_format("t.txt", "csv") == "csv"
