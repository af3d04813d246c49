"""One name per concept across commands (issue 18, "One vocabulary"): ``--channels`` /
``--cells`` everywhere (the old ``--C`` / ``--N`` still read, not shown), ``--threads`` on
every CPU-heavy command through one shared option, one latency name (``latency_s``, its batch
in the table's metadata; the old ``latency_b1_s`` still read), one throughput unit
(trainings/min), and epochs counted from 1 in printed tables as in progress bars."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasforge.bench import Benchmark
from nasforge.bench.store import CostData, GroupData, write_table
from nasforge.cli import app

runner = CliRunner(env={"COLUMNS": "250"})

# Every command that trains or scores networks on the CPU.
CPU_HEAVY = [
    ["bench", "build"],
    ["train"],
    ["search"],
    ["compare"],
    ["zc"],
    ["study", "ranking"],
    ["width", "search"],
]


def _flags(command: list[str]) -> set[str]:
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", res.output))


@pytest.mark.parametrize("command", CPU_HEAVY, ids=" ".join)
def test_cpu_heavy_commands_take_threads(command):
    assert "--threads" in _flags(command)


@pytest.mark.parametrize(
    "command", [["bench", "build"], ["train"], ["zc"], ["search"]], ids=" ".join
)
def test_help_shows_channels_and_cells_not_the_old_spellings(command):
    flags = _flags(command)
    assert {"--channels", "--cells"} <= flags
    assert not {"--C", "--N"} & flags


@pytest.mark.parametrize("command", [["bench", "build", "-o", "x"], ["train"], ["zc", "-o", "x"]])
@pytest.mark.parametrize(("old", "new"), [("--C", "--channels"), ("--N", "--cells")])
def test_old_spellings_are_read_as_the_new_names(command, old, new, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, old, "0"])
    assert res.exit_code == 2 and new in res.output, res.output
    assert "0 is invalid; expected an integer >= 1" in res.output
    res = runner.invoke(app, [*command, f"{old}=0"])  # the --opt=value form too
    assert res.exit_code == 2 and new in res.output, res.output


def test_threads_is_checked_and_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["bench", "build", "-o", "x", "--threads", "0"])
    assert res.exit_code == 2 and "--threads" in res.output and ">= 1" in res.output
    assert list(tmp_path.iterdir()) == []
    before = torch.get_num_threads()
    try:
        res = runner.invoke(app, ["zc", "--threads", "1", "-o", "x", "--space", "nope"])
        assert res.exit_code != 0  # refused after the option was read
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow  # a real (tiny) build: imports torch and the digits data when run alone
def test_build_with_the_new_names_reports_trainings_per_minute(tmp_path):
    args = ["bench", "build", "--dataset", "digits", "--archs", "1", "--epochs", "1"]
    args += ["--limit", "64", "--channels", "4", "--cells", "1", "--no-progress"]
    res = runner.invoke(app, [*args, "--threads", "1", "-o", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "trainings/min" in res.output and "archs/min" not in res.output
    bench = Benchmark.open(tmp_path / "t")
    build = bench.meta["build"]["digits/1"]
    assert build["C"] == 4 and build["N"] == 1
    (index,) = [bench.arch_index(a) for a in bench]
    assert bench.cost(index, "digits")["latency_s"] > 0 and bench.latency_batch("digits") == 1
    res = runner.invoke(app, ["bench", "info", str(tmp_path / "t")])
    assert "latency_s batch" in res.output
    from nasforge.bench.build import BuildReport

    report = BuildReport("p", "d", "1", 1, 0, 1, 1, 0, 1, 1.0, 60.0, "local")
    assert report.archs_per_min == report.trainings_per_min == 60.0  # the old name is read


def test_old_latency_column_is_read_as_latency_s(tmp_path):
    """A table built before the name was unified holds ``latency_b1_s``: it reads as
    ``latency_s`` (batch 1, from its build metadata), and the official-API facade still
    reports no official latency for it."""
    from nasforge.bench.compat import NASBench201API

    status = np.ones((1, 1), np.uint8)
    data = np.full((1, 1, 1, 1), 50.0)
    group = GroupData("digits", "1", [777], np.array([7]), ["valid_acc"], 1, False, status, data)
    costs = np.full((15625, 2), np.nan)
    costs[7] = [0.5, 0.002]
    meta = {"build": {"digits/1": {"C": 4, "N": 1}}}  # no latency_batch: an old build
    path = write_table(
        tmp_path / "old",
        [group],
        [CostData("digits", ["params_m", "latency_b1_s"], costs)],
        meta=meta,
    )
    bench = Benchmark.open(path)
    assert bench.cost(7, "digits") == {"params_m": 0.5, "latency_s": 0.002}
    assert bench.latency_batch("digits") == 1
    assert NASBench201API(bench).get_cost_info(7, "digits", hp="1")["latency"] is None


def test_train_table_counts_epochs_from_one(tmp_path):
    args = ["train", "--arch", "1", "--dataset", "digits", "--epochs", "2", "--limit", "64"]
    res = runner.invoke(app, [*args, "--C", "4", "--N", "1", "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    rows = [line.split("│")[1].strip() for line in res.output.splitlines() if line.count("│") > 4]
    epochs = [r for r in rows if r.isdigit()]
    assert epochs == ["1", "2"], res.output
