"""``nasforge search`` / ``nasforge compare`` end to end on small inputs."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest
from typer.testing import CliRunner

from nasforge.bench import ResultEntry, TableWriter, make_synthetic_table
from nasforge.cli import app
from nasforge.errors import SearchError
from nasforge.search import ONESHOT
from nasforge.spaces.nb201 import Arch

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("cli") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


def test_search_writes_trajectories_summary_and_plot(table, tmp_path):
    out = tmp_path / "rea"
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "rea",
            "--bench",
            str(table),
            "--dataset",
            "cifar10-valid",
            "--budget",
            "3000s",
            "--runs",
            "3",
            "--seed",
            "0",
            "-o",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    # --quiet means no progress: the result table and the written paths still print
    assert "search results" in res.output and "wrote " in res.output
    assert "synthetic table" in res.output  # made-up figures are labelled as such
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["evaluator"]["synthetic"] is True
    assert summary["runs"] == 3 and summary["algo"] == "rea" and summary["budget"] == "3000s"
    assert summary["meta"]["evaluator"]["hp"] == "12"
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 3
    run = json.loads(lines[0])
    assert set(run["trajectory"]) >= {"time", "valid", "test"}
    assert run["trajectory"]["time"][-1] <= 3000
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_search_default_budget_is_announced(table, tmp_path):
    res = runner.invoke(
        app, ["search", "--algo", "random", "--bench", str(table), "-o", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert "12000s" in res.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["budget"] == "12000s"


def test_compare_one_command_one_figure(table, tmp_path):
    out = tmp_path / "cmp"
    res = runner.invoke(
        app,
        [
            "compare",
            "--algos",
            "random,rea,reinforce,local-search,bohb",
            "--bench",
            str(table),
            "--budget",
            "1500s",
            "--runs",
            "2",
            "-o",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    md = (out / "comparison.md").read_text()
    for algo in ("random", "rea", "reinforce", "local-search", "bohb"):
        assert f"| {algo} |" in md
        assert (out / algo / "summary.json").exists()
    assert (out / "comparison.png").stat().st_size > 1000
    assert len(json.loads((out / "comparison.json").read_text())["summaries"]) == 5


def test_table_without_times_asks_for_evaluations(tmp_path):
    path = tmp_path / "notime"
    with TableWriter(path) as w:
        for i in range(5):
            w.append(
                ResultEntry(
                    Arch.from_index(i),
                    "cifar10-valid",
                    "final",
                    0,
                    final={"valid_acc": 50.0 + i, "test_acc": 40.0},
                )
            )
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "rea",
            "--bench",
            str(path),
            "-o",
            str(tmp_path / "o"),
            "--hp",
            "final",
        ],
    )
    assert isinstance(res.exception, SearchError)
    assert "evaluations" in str(res.exception)
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "rea",
            "--bench",
            str(path),
            "-o",
            str(tmp_path / "o"),
            "--hp",
            "final",
            "--budget",
            "100s",
        ],
    )
    assert isinstance(res.exception, SearchError) and "evaluations" in str(res.exception)


def test_unknown_algorithm_and_bad_budget(table, tmp_path):
    res = runner.invoke(
        app, ["search", "--algo", "nope", "--bench", str(table), "-o", str(tmp_path)]
    )
    assert res.exception is not None and "nope" in str(res.exception)
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "rea",
            "--bench",
            str(table),
            "-o",
            str(tmp_path),
            "--budget",
            "12000",
        ],
    )
    assert isinstance(res.exception, SearchError) and "unit" in str(res.exception)


def test_search_with_real_training(tmp_path):
    out = tmp_path / "train"
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "random",
            "--evaluator",
            "train",
            "--dataset",
            "digits",
            "--recipe",
            "nb201-12e",
            "--epochs",
            "1",
            "--limit",
            "32",
            "--channels",
            "4",
            "--cells",
            "1",
            "--budget",
            "1evals",
            "-o",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clock"] == "wall" and summary["evals_mean"] == 1
    assert summary["meta"]["evaluator"]["dataset"] == "digits"


def test_oneshot_algorithms_are_delegated(monkeypatch, tmp_path):
    calls = []

    class FakeOneShot:
        """A one-shot method: what makes it one is that ONESHOT holds it."""

    fake = types.ModuleType("nasforge.cli.oneshot")

    def run_oneshot(algo, dataset, out, **kwargs):
        calls.append((algo, dataset, out, kwargs))

    fake.run_oneshot = run_oneshot
    monkeypatch.setitem(sys.modules, "nasforge.cli.oneshot", fake)
    with ONESHOT.temporary("fake-oneshot", FakeOneShot):
        res = runner.invoke(
            app,
            [
                "search",
                "--algo",
                "fake-oneshot",
                "--dataset",
                "digits",
                "-o",
                str(tmp_path),
                "--epochs",
                "3",
                "--train-epochs",
                "2",
                "--limit",
                "16",
                "--seed",
                "4",
                "--quiet",
            ],
        )
        assert res.exit_code == 0, res.output
        ((algo, dataset, out, kw),) = calls
        assert (algo, dataset, out) == ("fake-oneshot", "digits", tmp_path)
        assert kw["epochs"] == 3 and kw["train_epochs"] == 2 and kw["limit"] == 16
        assert kw["seed"] == 4 and kw["quiet"] is True
        assert set(kw) == {
            "epochs",
            "device",
            "seed",
            "bench",
            "data_dir",
            "train_epochs",
            "limit",
            "quiet",
            "overrides",
            "space",
        }
        assert kw["space"] == "nb201"
        assert kw["overrides"] is None
        res = runner.invoke(
            app,
            [
                "search",
                "--algo",
                "fake-oneshot",
                "-o",
                str(tmp_path),
                "--recipe",
                "nb201-200e",
                "--param",
                "partial_k=8",
            ],
        )
        assert res.exit_code == 0, res.output
        assert calls[-1][3]["recipe"] == "nb201-200e"
        assert calls[-1][3]["overrides"] == {"partial_k": 8}


@pytest.mark.parametrize(
    ("param", "match"),
    [
        ("popsize=20", r"no setting 'popsize'.*population_size"),
        ("population_size=abc", "population_size 'abc' must be an integer"),
        ("population_size=0", "population_size 0 must be >= 1"),
    ],
)
def test_bad_algorithm_setting_is_a_clear_error(table, tmp_path, param, match):
    args = ["search", "--algo", "rea", "--bench", str(table), "--budget", "5evals"]
    args += ["-o", str(tmp_path / "o"), "--param", param, "--quiet"]
    res = runner.invoke(app, args)
    assert isinstance(res.exception, SearchError)
    assert re.search(match, str(res.exception))


def test_bad_algorithm_setting_exits_2_from_main(table, tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    args = ["nasforge", "search", "--algo", "rea", "--bench", str(table), "--budget", "5evals"]
    args += ["-o", str(tmp_path / "o"), "--param", "popsize=20", "--quiet"]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "popsize" in err and "population_size" in err


def test_workers_need_a_wall_clock_evaluator(table, tmp_path):
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "random",
            "--bench",
            str(table),
            "--budget",
            "3evals",
            "--workers",
            "2",
            "-o",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert res.exit_code != 0
    assert isinstance(res.exception, SearchError) and "--workers 2" in str(res.exception)
