"""Errors and files a user meets (issue 11, item 7): bad values are one clear line and exit
code 2, checked before any work; output paths are checked before training; result files
honour the umask; messages keep their brackets."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasforge.data
import nasforge.train
from nasforge import io as nio
from nasforge.cli import app
from nasforge.data import load_splits
from nasforge.errors import ArchError, DataError, OutputError, SearchError
from nasforge.nn.nb201 import NB201Network
from nasforge.search import base as search_base
from nasforge.search.base import Budget
from nasforge.search.protocol import compare, run_protocol
from nasforge.spaces.nb201 import Arch

runner = CliRunner(env={"COLUMNS": "250"})  # usage errors on one line, unwrapped
ARABIC_12 = "\u0661\u0662"  # "١٢": Arabic-Indic digits that int() reads as 12


@pytest.fixture
def no_work(monkeypatch):
    """Loading data or training fails the test: the checks under test must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the bad input was refused")

    monkeypatch.setattr(nasforge.data, "load_splits", forbidden)
    monkeypatch.setattr(nasforge.train, "train_arch", forbidden)


def _usage_error(res, option: str, text: str) -> None:
    assert res.exit_code == 2, res.output
    assert option in res.output and text in res.output


# -- values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("--channels", "--channels"),
        ("--cells", "--cells"),
        ("--C", "--channels"),
        ("--N", "--cells"),
    ],
)
def test_train_zero_channels_or_cells_is_a_usage_error(option, name, no_work):
    # the old spellings --C / --N are read as --channels / --cells, and errors name those
    res = runner.invoke(app, ["train", "--arch", "1", option, "0", "--quiet"])
    _usage_error(res, name, "0 is invalid; expected an integer >= 1")
    with pytest.raises(ArchError, match=r"C=0"):  # the library refuses it with our type too
        NB201Network(1, C=0)


@pytest.mark.parametrize(
    "command",
    [["width", "search", "-o", "x"], ["width", "compare", "-o", "x"], ["width", "retrain", "x"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_zero_threads_is_refused_not_raised_to_one(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, "--threads", "0"])
    _usage_error(res, "--threads", "0 is invalid; expected an integer >= 1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--arch", "1"],
        ["search", "--algo", "rea", "-o", "x"],
        ["compare", "-o", "x"],
        ["width", "search", "-o", "x"],
        ["width", "compare", "-o", "x"],
        ["width", "retrain", "x"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_negative_seed_is_refused_with_the_valid_range(command, no_work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, "--seed", "-1"])
    _usage_error(res, "--seed", "-1 is not a seed; expected an integer in 0..2**63-1")
    assert list(tmp_path.iterdir()) == []


def test_too_large_budget_is_a_clear_error(tmp_path, no_work):
    with pytest.raises(SearchError, match=r"budget '1e400s' is too large"):
        Budget.parse("1e400s")
    with pytest.raises(SearchError, match=r"too large"):
        Budget.parse("1e999evals")
    assert Budget.parse("1e3s").amount == 1000.0 and Budget.parse("2.5e1evals").amount == 25
    # Parsed before the evaluator loads any data.
    res = runner.invoke(app, ["search", "--algo", "rea", "--budget", "1e400s", "-o", str(tmp_path)])
    assert isinstance(res.exception, SearchError) and "1e400s" in str(res.exception)


def test_zero_max_evals_is_refused(no_work, tmp_path):
    res = runner.invoke(app, ["search", "--algo", "rea", "--max-evals", "0", "-o", str(tmp_path)])
    _usage_error(res, "--max-evals", "0 is invalid")
    with pytest.raises(SearchError, match=r"max_evals=0"):
        search_base.check_max_evals(0)
    # Refused before the first run touches the evaluator.
    with pytest.raises(SearchError, match=r"max_evals=0"):
        run_protocol("random", object(), "5evals", max_evals=0)  # type: ignore[arg-type]


def test_compare_refuses_an_algorithm_named_twice(tmp_path):
    res = runner.invoke(app, ["compare", "--algos", "rea,random,rea", "-o", str(tmp_path)])
    assert isinstance(res.exception, SearchError), res.output
    assert "'rea' named more than once" in str(res.exception)
    with pytest.raises(SearchError, match="more than once"):
        compare(["rea", "rea"], object(), "5evals")  # type: ignore[arg-type]


def test_width_parents_above_population_is_refused_not_clamped(tmp_path):
    args = ["width", "search", "--population", "4", "--parents", "6", "--epochs", "1"]
    res = runner.invoke(app, [*args, "--limit", "16", "-o", str(tmp_path / "w")])
    assert isinstance(res.exception, SearchError), res.output
    assert "population=4" in str(res.exception) and "parents=6" in str(res.exception)
    assert not (tmp_path / "w").exists()


def test_arch_index_takes_ascii_digits_only():
    assert Arch.parse("12") == Arch.from_index(12) == Arch.parse(" 12 ")
    with pytest.raises(ArchError):
        Arch.parse(ARABIC_12)
    res = runner.invoke(app, ["arch", "info", ARABIC_12])
    assert isinstance(res.exception, ArchError)


def test_data_dir_that_is_a_file_says_so(tmp_path):
    f = tmp_path / "cifar.tar"
    f.write_bytes(b"x")
    for name in ("cifar10", "ImageNet16-120"):
        with pytest.raises(DataError, match=r"is not a directory") as exc:
            load_splits(name, f)
        assert str(f) in str(exc.value) and "does not exist" not in str(exc.value)


# -- output paths -----------------------------------------------------------------------------
def _paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("keep me")
    return {"dir": tmp_path / "adir", "file": tmp_path / "afile"}


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--out", "dir", "is a directory"),
        ("--out", "under-file", "is a file, not a directory"),
        ("--checkpoint-dir", "file", "is a file; expected a directory"),
        ("--checkpoint-dir", "under-file", "is a file, not a directory"),
    ],
)
def test_train_outputs_are_checked_before_training(tmp_path, no_work, option, where, message):
    p = _paths(tmp_path)
    target = p["file"] / "sub" if where == "under-file" else p[where]
    res = runner.invoke(app, ["train", "--arch", "1", option, str(target), "--quiet"])
    assert isinstance(res.exception, OutputError), res.output
    named = target if where == "dir" else p["file"]
    assert message in str(res.exception) and str(named) in str(res.exception)
    assert p["file"].read_text() == "keep me" and list(p["dir"].iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--algo", "rea"],
        ["compare"],
        ["width", "search", "--epochs", "1", "--limit", "16"],
        ["width", "compare", "--epochs", "1", "--retrain-epochs", "1", "--limit", "16"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_output_directory_that_is_a_file_is_refused_first(tmp_path, command):
    p = _paths(tmp_path)
    res = runner.invoke(app, [*command, "-o", str(p["file"])])
    assert isinstance(res.exception, OutputError), res.output
    assert str(p["file"]) in str(res.exception)
    assert p["file"].read_text() == "keep me"


def test_width_retrain_checks_its_output_first(tmp_path):
    (tmp_path / "retrain.json").mkdir()
    res = runner.invoke(app, ["width", "retrain", str(tmp_path)])
    assert isinstance(res.exception, OutputError) and "is a directory" in str(res.exception)


def test_atomic_writer_reports_bad_paths_with_our_error(tmp_path):
    p = _paths(tmp_path)
    with pytest.raises(OutputError, match="is a directory"):
        nio.atomic_write_json(p["dir"], {})
    with pytest.raises(OutputError, match=r"cannot write .*afile"):
        nio.atomic_write_json(p["file"] / "x.json", {})
    assert isinstance(OutputError("x"), OSError)  # callers handling OSError keep working
    nio.check_output_file(tmp_path / "new" / "deeper" / "r.json")  # creatable: fine, not created
    nio.check_output_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()


def test_read_only_output_is_refused_before_any_work(tmp_path, no_work, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:
        # root writes through permission bits: show it the directory as any user sees it.
        real_access = os.access

        def access(path, mode, **kwargs):
            if Path(path) == ro and mode & os.W_OK:
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
    try:
        for option, target in (("--out", ro / "r.json"), ("--checkpoint-dir", ro / "ck")):
            res = runner.invoke(app, ["train", "--arch", "1", option, str(target), "--quiet"])
            assert isinstance(res.exception, OutputError), res.output
            assert f"directory {ro} is not writable" in str(res.exception)
    finally:
        ro.chmod(0o755)


# -- file modes -------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_result_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert nio.current_umask() == umask and nio.current_umask() == umask  # read, not changed
        path = nio.atomic_write_json(tmp_path / "r.json", {"a": 1})
        assert stat.S_IMODE(path.stat().st_mode) == mode
        nio.atomic_write_json(path, {"a": 2})  # a rewrite too
        assert stat.S_IMODE(path.stat().st_mode) == mode
    finally:
        os.umask(old)


# -- messages ---------------------------------------------------------------------------------
def test_error_messages_keep_their_brackets(monkeypatch, capsys):
    from nasforge.cli import main

    monkeypatch.setattr(sys, "argv", ["nasforge", "arch", "info", "pip install 'nasforge[ray]'"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "nasforge[ray]" in err and err.startswith("error: ")


def test_split_dir_that_is_a_file_is_named_as_such(tmp_path) -> None:
    from nasforge.data import load_splits
    from nasforge.errors import DataError

    f = tmp_path / "splits.txt"
    f.write_text("{}")
    with pytest.raises(DataError, match="is not a directory"):
        load_splits("cifar10-valid", tmp_path / "none", split_file_dir=f)


def test_build_archs_with_non_ascii_digits_are_refused(tmp_path) -> None:
    from nasforge.bench.build import resolve_archs

    f = tmp_path / "archs.txt"
    f.write_text("12\n\u0661\u0662\n")
    with pytest.raises(ArchError):
        resolve_archs(f)
    with pytest.raises(ArchError):
        resolve_archs("\u0661\u0662")
    assert [a.to_index() for a in resolve_archs(["12"])] == [12]
