"""The evaluator factory (nasforge.evaluate.spec) and the thin CLI over it (issue 25 item 3):
bad spec values are one line (exit 2 from the shell) before any data is read; the spec
builds what `search` / `compare` run; `compare --task` trains another task's metric."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nasforge.data
from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.evaluate.spec import (
    EvaluatorSpec,
    SpecError,
    TableSettings,
    TrainingSettings,
    ZeroCostSettings,
    build_evaluator,
)
from nasforge.nn import NETWORKS
from nasforge.spaces import SPACES, CategoricalBase, Choice
from nasforge.tasks import LOSS, TASKS, Metric, Task


def _no_data(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("data loaded before the bad value was refused")


def _one_line(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """Run ``nasforge ARGS`` as the console script does; the one error line (exit 2)."""
    monkeypatch.setattr(sys, "argv", ["nasforge", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: ZeroCostSettings(proxy="synflow", batch_size=1), "--zc-batch-size 1"),
        (lambda: ZeroCostSettings(proxy="synflow", charge=-1.0), "--zc-charge -1.0"),
        (lambda: ZeroCostSettings(proxy="no-such-proxy"), "'no-such-proxy'"),
        (lambda: TrainingSettings(channels=0), "--channels 0"),
        (lambda: TrainingSettings(cells=True), "--cells True"),
        (lambda: EvaluatorSpec(budget="12"), "cannot parse budget '12'"),
        (lambda: EvaluatorSpec(objectives="valid_acc,nope"), "nope"),
        (lambda: EvaluatorSpec(evaluator="oracle"), "--evaluator 'oracle' unknown"),
        (lambda: EvaluatorSpec(task="no-such-task"), "'no-such-task'"),
    ],
)
def test_bad_spec_values_are_one_line_when_the_spec_is_made(make: Callable, says: str) -> None:
    with pytest.raises(NasforgeError) as info:
        make()
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("spec", "error", "says"),
    [
        (EvaluatorSpec(evaluator="table"), SpecError, "needs --bench"),
        (EvaluatorSpec(space="no-such-space"), NasforgeError, "'no-such-space'"),
        (EvaluatorSpec(space="darts", bench=Path("t")), SpecError, "--space 'darts'"),
        (EvaluatorSpec(task="sr-x2", bench=Path("t")), SpecError, "--task 'sr-x2'"),
    ],
)
def test_bad_combinations_are_refused_before_any_data(
    spec: EvaluatorSpec, error: type, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nasforge.data, "load_splits", _no_data)
    with pytest.raises(error) as info:
        build_evaluator(spec)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_spec_is_frozen_and_picks_its_evaluator() -> None:
    spec = EvaluatorSpec(bench=Path("t"))
    with pytest.raises(FrozenInstanceError):
        spec.dataset = "cifar100"  # type: ignore[misc]
    assert spec.kind == "table" and EvaluatorSpec().kind == "train"
    assert EvaluatorSpec(evaluator="tabular").kind == "table"
    assert EvaluatorSpec(dataset=None, task="sr-x2").resolved_dataset() != "cifar10-valid"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--task", "sr-x2", "--bench", "absent"], "--task 'sr-x2' cannot be answered by a"),
        (["--evaluator", "oracle"], "--evaluator 'oracle' unknown"),
        (["--budget", "12"], "cannot parse budget '12'"),
        (["--task", "no-such-task", "--evaluator", "train"], "unknown task 'no-such-task'"),
    ],
)
def test_compare_refuses_bad_evaluator_values_in_one_line(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(nasforge.data, "load_splits", _no_data)
    err = _one_line(["compare", "--algos", "random", *args, "-o", str(tmp_path / "o")],
                    monkeypatch, capsys)  # fmt: skip
    assert says in err


def test_search_refuses_a_bad_proxy_batch_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(nasforge.data, "load_splits", _no_data)
    args = ["search", "--algo", "zc-bananas", "--zc-proxy", "synflow", "--zc-batch-size", "1"]
    err = _one_line([*args, "-o", str(tmp_path / "o")], monkeypatch, capsys)
    assert "--zc-batch-size 1 must be >= 2" in err


def test_bench_build_takes_task_classification_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(nasforge.data, "load_splits", _no_data)
    base = ["bench", "build", "-d", "digits", "-o", str(tmp_path / "t"), "--archs", "1"]
    err = _one_line([*base, "--task", "sr-x2"], monkeypatch, capsys)
    assert "--task 'sr-x2' cannot be built into a benchmark table" in err
    assert not (tmp_path / "t").exists()


def test_the_spec_builds_the_training_evaluator_the_cli_describes(tmp_path: Path) -> None:
    spec = EvaluatorSpec(
        dataset="digits",
        evaluator="train",
        budget="2evals",
        training=TrainingSettings(epochs=1, limit=40, channels=4, cells=1),
        table=TableSettings(hp="200"),  # ignored by training
    )
    notes: list[str] = []
    ev, budget = build_evaluator(spec, note=notes.append)
    assert str(budget) == "2evals" and notes == []
    d = ev.describe()
    got = (d["name"], d["recipe"], d["epochs"], d["C"], d["N"])
    assert got == ("train", "nb201-12e[epochs=1]", 1, 4, 1)
    assert "task" not in d  # classification records are what they were


# -- a task other than classification, through compare ---------------------------------------


@dataclass
class _Pairs:
    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    evals: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train[0]), **{k: len(v[0]) for k, v in self.evals.items()}}


class _Loader:
    def __init__(self, pair: tuple[torch.Tensor, torch.Tensor], bs: int) -> None:
        self.x, self.y, self.bs = *pair, bs

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        return -(-len(self.x) // self.bs)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for s in range(0, len(self.x), self.bs):
            yield self.x[s : s + self.bs], self.y[s : s + self.bs]


class _Deblur(Task):
    """Undo nothing: reproduce a 3x3 blur of random images, scored by PSNR (higher is
    better), so a 3x3 kernel can reach it and a 1x1 one cannot."""

    name = "toy-blur-psnr"
    metrics = (Metric("psnr", "dB", fmt="{:.2f}"), LOSS)
    primary = "psnr"
    default_dataset = "noise"
    default_recipe = "toy-mse-spec"
    losses = ("mse",)

    def load(self, dataset=None, data_dir=None, *, seed=0, limit=None, **options):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(48, 1, 8, 8, generator=g)
        y = F.avg_pool2d(x, 3, 1, 1)
        return _Pairs("noise", (x[:32], y[:32]), {"valid": (x[32:40], y[32:40]),
                                                  "test": (x[40:], y[40:])})  # fmt: skip

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"in_channels": 1}

    def loader(self, data, split, batch_size, *, train, seed=0, device="cpu", recipe=None,
               channels_last=False):  # fmt: skip
        return _Loader(data.train if split == "train" else data.evals[split], batch_size)

    def loss(self, output: Any, y: Any, recipe: Any) -> torch.Tensor:
        return F.mse_loss(output, y)

    def evaluate(self, model: Callable[..., Any], loader: Iterable[Any], *, autocast=None):
        model.eval()
        with torch.no_grad():
            se = sum(float(F.mse_loss(model(x), y, reduction="sum")) for x, y in loader)
            n = sum(y.numel() for _, y in loader)
        mse = se / n
        return {"psnr": float(10 * torch.log10(torch.tensor(1.0 / mse))), "loss": mse}


class _KernelSpace(CategoricalBase):
    name = "toy-kernel-spec"

    def choices(self) -> tuple[Choice, ...]:
        return (Choice("kernel", ("1", "3")),)

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        return (("1", "3").index(arch),)

    def from_choices(self, picks: Any) -> Any:
        return ("1", "3")[int(picks[0])]


def _kernel_net(arch: str, *, in_channels: int) -> nn.Module:
    k = int(arch)
    return nn.Conv2d(in_channels, in_channels, k, padding=k // 2)


def test_compare_task_trains_with_the_tasks_primary_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, one_torch_thread: None
) -> None:
    from nasforge.train import RECIPES, Recipe

    out = tmp_path / "cmp"
    args = ["compare", "--task", "toy-blur-psnr", "--space", "toy-kernel-spec", "--algos",
            "random", "--budget", "4evals", "--epochs", "15", "-o", str(out), "--quiet"]  # fmt: skip
    with (
        TASKS.temporary("toy-blur-psnr", _Deblur),
        SPACES.temporary("toy-kernel-spec", _KernelSpace),
        NETWORKS.temporary("toy-kernel-spec", _kernel_net),
        RECIPES.temporary(
            "toy-mse-spec", lambda: Recipe("toy-mse-spec", 15, batch_size=8, lr=0.1, loss="mse")
        ),
    ):
        # a table answers classification accuracy only: one line, before the table is read
        err = _one_line([*args, "--bench", str(tmp_path / "absent")], monkeypatch, capsys)
        assert "--task 'toy-blur-psnr' cannot be answered by a benchmark table" in err
        monkeypatch.setattr(sys, "argv", ["nasforge", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code in (0, None), capsys.readouterr().err
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["meta"]["evaluator"]["task"] == "toy-blur-psnr"
    assert doc["meta"]["evaluator"]["dataset"] == "noise"  # the task's default dataset
    (summary,) = doc["summaries"] if "summaries" in doc else doc["results"]
    # the searched value is the task's PSNR in dB: the blur is learnable to well above
    # the 1x1 kernel's, which cannot blur at all
    assert 15 < summary["search_valid_mean"] < 100
