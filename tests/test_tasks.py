"""The task interface: classification through the task equals the plain loop it replaced,
and a new task + space registered through the registries' own API trains end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data import DeviceLoader, make_synthetic
from nasforge.errors import SearchError, TaskError
from nasforge.nn import NETWORKS
from nasforge.spaces import SPACES
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.tasks import LOSS, TASKS, Metric, Task, evaluate_classifier, get_task
from nasforge.train import Trainer, get_recipe, set_seed


def test_registry_lists_classification_and_refuses_unknown_tasks() -> None:
    assert "classification" in TASKS.names()
    task = get_task()
    assert task.name == "classification" and task.primary == "acc"
    assert task.primary_metric.higher_is_better
    with pytest.raises(TaskError, match=r"unknown task 'nope'; expected one of: .*classification"):
        get_task("nope")
    with pytest.raises(TaskError, match="no metric 'psnr'"):
        task.metric("psnr")


def test_recipe_loss_must_be_one_the_task_implements() -> None:
    with pytest.raises(TaskError, match=r"loss 'l1'.*expected one of \['ce'\]"):
        Trainer(get_recipe("nb201-12e", loss="l1"))


def test_adam_recipes_build_adam() -> None:
    r = get_recipe("nb201-12e", optimizer="adam", nesterov=False, betas=(0.9, 0.99))
    opt = r.build_optimizer([nn.Parameter(torch.zeros(2))])
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["betas"] == (0.9, 0.99)
    assert get_recipe(r.from_dict(json.loads(json.dumps(r.to_dict())))) == r


def _reference_history(model: nn.Module, data: Any, recipe: Any, seed: int) -> list[tuple]:
    """The classification loop as the Trainer ran it before tasks existed, written out."""
    torch.manual_seed(seed)
    opt = recipe.build_optimizer(model.parameters())
    train = DeviceLoader(data.train, data, recipe.batch_size, train=True, seed=seed)
    evals = {
        n: DeviceLoader(s, data, recipe.batch_size, train=False) for n, s in data.evals.items()
    }
    history = []
    for epoch in range(recipe.epochs):
        train.set_epoch(epoch)
        model.train()
        for g in opt.param_groups:
            g["lr"] = recipe.lr_at(epoch, 0, len(train))
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for x, y in train:
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
        n = train.num_samples
        ev = {k: evaluate_classifier(model, ld) for k, ld in evals.items()}
        history.append((float(loss_sum) / n, 100.0 * int(correct) / n, ev))
    return history


def test_classification_through_the_task_equals_the_plain_loop(one_torch_thread: None) -> None:
    from nasforge.nn.nb201 import NB201Network
    from nasforge.spaces.nb201 import Arch

    data = make_synthetic(num_classes=4, resolution=8, n_train=96, n_valid=32, n_test=32, seed=0)
    recipe = get_recipe("nb201-12e", epochs=2, batch_size=32)
    arch = Arch.from_index(123)

    def build() -> nn.Module:
        set_seed(5)
        return NB201Network(arch, C=4, N=1, num_classes=4)

    want = _reference_history(build(), data, recipe, seed=3)
    got = Trainer(recipe, channels_last=False, task="classification").fit(build(), data, seed=3)
    assert [(r.train_loss, r.train_acc, r.eval) for r in got.epochs] == want
    assert "task" not in got.meta  # classification records are what they were


# -- a toy task and a toy space, registered for one test through the registries' API --------


@dataclass
class _Pairs:
    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    evals: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train[0]), **{k: len(v[0]) for k, v in self.evals.items()}}


class _PairLoader:
    def __init__(self, pair: tuple[torch.Tensor, torch.Tensor], bs: int, train: bool, seed: int):
        self.x, self.y, self.bs, self.train, self.seed, self.epoch = *pair, bs, train, seed, 0

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        return -(-len(self.x) // self.bs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = (
            torch.randperm(len(self.x), generator=g) if self.train else torch.arange(len(self.x))
        )
        for s in range(0, len(order), self.bs):
            i = order[s : s + self.bs]
            yield self.x[i], self.y[i]


class _Smoothing(Task):
    """Learn a fixed 3x3 blur of random images (mean squared error, lower is better)."""

    name = "toy-smoothing"
    metrics = (Metric("mse", higher_is_better=False), Metric("psnr", "dB"), LOSS)
    primary = "mse"
    datasets = ("noise",)
    default_dataset = "noise"
    losses = ("mse",)

    def load(self, dataset=None, data_dir=None, *, seed=0, limit=None, **options):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(80, 1, 8, 8, generator=g)
        y = F.avg_pool2d(x, 3, 1, 1)
        return _Pairs("noise", (x[:64], y[:64]), {"valid": (x[64:], y[64:])})

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"in_channels": 1}

    def loader(
        self,
        data,
        split,
        batch_size,
        *,
        train,
        seed=0,
        device="cpu",
        recipe=None,
        channels_last=False,
    ):
        pair = data.train if split == "train" else data.evals[split]
        return _PairLoader(pair, batch_size, train, seed)

    def loss(self, output: Any, y: Any, recipe: Any) -> torch.Tensor:
        return F.mse_loss(output, y)

    def evaluate(
        self, model: Callable[..., Any], loader: Iterable[Any], *, autocast=None
    ) -> dict[str, float]:
        if isinstance(model, nn.Module):  # the protocol: another callable is called as is
            model.eval()
        with torch.no_grad():
            se = sum(float(F.mse_loss(model(x), y, reduction="sum")) for x, y in loader)
            n = sum(y.numel() for _, y in loader)
        return {"mse": se / n, "loss": se / n, "psnr": -10.0 * float(np.log10(se / n))}


class _SmoothingPSNR(_Smoothing):
    """The toy task scored by PSNR (higher is better): what searchers maximise."""

    metrics = (Metric("psnr", "dB"), Metric("mse", higher_is_better=False), LOSS)
    primary = "psnr"


class _KernelSpace(CategoricalBase):
    name = "toy-kernel"

    def choices(self) -> tuple[Choice, ...]:
        return (Choice("kernel", ("1", "3", "5")),)

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        return (("1", "3", "5").index(arch),)

    def from_choices(self, picks: Any) -> Any:
        return ("1", "3", "5")[int(picks[0])]


def _kernel_net(arch: str, *, in_channels: int) -> nn.Module:
    k = int(arch)
    return nn.Conv2d(in_channels, in_channels, k, padding=k // 2)


def test_a_new_task_and_space_train_end_to_end_from_the_cli(tmp_path: Any) -> None:
    from nasforge.train import RECIPES, Recipe

    out = tmp_path / "run.json"
    args = ["train", "--task", "toy-smoothing", "--space", "toy-kernel", "--arch", "kernel=3"]
    with (
        TASKS.temporary("toy-smoothing", _Smoothing),
        SPACES.temporary("toy-kernel", _KernelSpace),
        NETWORKS.temporary("toy-kernel", _kernel_net),
        RECIPES.temporary(
            "toy-mse", lambda: Recipe("toy-mse", 30, batch_size=16, lr=0.05, loss="mse")
        ),
    ):
        # The recipe's loss is checked against the task before any data is read.
        res = CliRunner().invoke(app, [*args, "--recipe", "nb201-12e", "--quiet"])
        assert res.exit_code != 0 and "loss 'ce'" in str(res.exception)
        # The toy task's default recipe is the registered one.
        res = CliRunner().invoke(app, [*args, "--recipe", "toy-mse", "--out", str(out), "--quiet"])
        assert res.exit_code == 0, res.output
    assert "toy-smoothing" not in TASKS and "toy-kernel" not in SPACES and "toy-mse" not in RECIPES
    rec = json.loads(out.read_text())
    first, last = rec["epochs"][0], rec["epochs"][-1]
    assert "train_acc" not in last and set(last["eval"]["valid"]) == {"mse", "psnr", "loss"}
    assert rec["meta"]["task"] == "toy-smoothing"
    # A 3x3 conv can represent the blur: the error falls by an order of magnitude.
    assert last["eval"]["valid"]["mse"] < first["eval"]["valid"]["mse"] / 10
    assert np.isfinite(last["train_loss"])


class _TryEveryKernel:
    """A toy task search: train each kernel size briefly, keep the best valid mse."""

    spaces = ("toy-kernel",)
    tasks = ("toy-smoothing",)

    def run(self, spec: Any, out: Any) -> Any:
        from nasforge.nn import build_network
        from nasforge.search.task_search import TaskSearchResult
        from nasforge.spaces import get_space
        from nasforge.train import fit_fresh

        space, task = get_space(spec.space), spec.task
        data = task.load(seed=spec.seed)
        scores = {}
        for arch in space.enumerate():
            res, _ = fit_fresh(
                lambda a=arch: build_network(spec.space, a, io=task.network_io(data)),
                data,
                "toy-mse",
                seed=spec.seed,
                task=task,
            )
            scores[space.to_string(arch)] = res.final("valid", "mse")
        best = min(scores, key=scores.__getitem__)
        return TaskSearchResult(best, {"mse": scores[best]}, extra={"scores": scores})


def test_a_task_search_writes_an_arch_that_train_reads(tmp_path: Any) -> None:
    from nasforge.search.task_search import TASK_SEARCHES
    from nasforge.train import RECIPES, Recipe

    out = tmp_path / "search"
    with (
        TASKS.temporary("toy-smoothing", _Smoothing),
        SPACES.temporary("toy-kernel", _KernelSpace),
        NETWORKS.temporary("toy-kernel", _kernel_net),
        RECIPES.temporary(
            "toy-mse", lambda: Recipe("toy-mse", 8, batch_size=16, lr=0.05, loss="mse")
        ),
        TASK_SEARCHES.temporary("try-every-kernel", _TryEveryKernel),
    ):
        base = ["--task", "toy-smoothing", "--space", "toy-kernel"]
        bad = CliRunner().invoke(
            app,
            ["search", *base[:2], "--space", "nb201", "--algo", "try-every-kernel", "-o", str(out)],
        )
        assert bad.exit_code != 0 and "not --space 'nb201'" in str(bad.exception)
        res = CliRunner().invoke(
            app, ["search", *base, "--algo", "try-every-kernel", "-o", str(out)]
        )
        assert res.exit_code == 0, res.output
        doc = json.loads((out / "arch.json").read_text())
        summary = json.loads((out / "summary.json").read_text())
        assert doc["arch"] == min(summary["scores"], key=summary["scores"].get)
        assert doc["task"] == "toy-smoothing" and doc["space"] == "toy-kernel"
        res = CliRunner().invoke(
            app,
            ["train", *base, "--arch", str(out / "arch.json"), "--recipe", "toy-mse", "--quiet"],
        )
        assert res.exit_code == 0, res.output
        assert doc["arch"] in res.output


def test_task_list_prints_every_task_with_its_units_on_one_line_when_piped() -> None:
    res = CliRunner().invoke(app, ["task", "list"])
    assert res.exit_code == 0, res.output
    for name in TASKS.names():
        task = get_task(name)
        row = next(line for line in res.output.splitlines() if f" {name} " in line)
        for m in task.metrics:
            assert m.name in row
            if m.unit.strip():
                assert f"{m.name} [{m.unit.strip()}]" in row  # units are text, not markup


# -- a one-shot search on the toy task: a supernet adapter registered for one test ---------
_BLUR_OPS = ("none", "skip_connect", "conv_3x3")


class _BlurChain(nn.Module):
    """Two choice rows (none / skip / 3x3 conv) on 1-channel images and a 1x1 conv head
    (every path has weights, as every NB201 path has its stem and classifier)."""

    def __init__(self, rows: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(1, 1, 1)
        self.rows = nn.ModuleList(
            nn.ModuleList([nn.Identity(), nn.Identity(), nn.Conv2d(1, 1, 3, padding=1)])
            for _ in range(rows)
        )

    def _op(self, r: int, k: int, h: torch.Tensor) -> torch.Tensor:
        return h.mul(0.0) if k == 0 else self.rows[r][k](h)

    def forward(self, x, weights=None, index=None, edge_weights=None):
        h = x
        for r in range(len(self.rows)):
            if index is not None:
                k = int(index[r])
                h = self._op(r, k, h) if weights is None else weights[r, k] * self._op(r, k, h)
            else:
                h = sum(weights[r, k] * self._op(r, k, h) for k in range(len(_BLUR_OPS)))
        return self.head(h)

    def forward_arch(self, x, arch):
        return self.forward(x, index=[_BLUR_OPS.index(op) for op in arch])

    def path_parameters(self, index):
        return [p for r, k in enumerate(index) for p in self.rows[r][int(k)].parameters()]


def _blur_adapter() -> Any:
    from nasforge.search.oneshot import SupernetAdapter

    class BlurChainAdapter(SupernetAdapter):
        name = "toy-blur-chain"
        rows = 2
        ops = _BLUR_OPS
        provides = frozenset({"path-archs"})

        def build_supernet(self, config, num_classes, **_: Any) -> nn.Module:
            raise AssertionError("a classifier is never asked of this space")

        def build_task_supernet(self, config, io, **_: Any) -> nn.Module:
            assert io == {"in_channels": 1}
            return _BlurChain(self.rows)

        def derive(self, weights, edge_weights=None, *, rule="edges", tie_break=None):
            return self.path_arch(np.argmax(weights, axis=1).tolist())

        def path_arch(self, path):
            return tuple(_BLUR_OPS[int(k)] for k in path)

        def arch_path(self, arch):
            return [_BLUR_OPS.index(op) for op in arch]

        def arch_fields(self, arch):
            return {"arch": "-".join(arch)}

        def write_arch(self, arch, out_dir):
            return {}

        def plot(self, records, path, title="", **_: Any):
            return None

    return BlurChainAdapter


@pytest.mark.parametrize("algo", ["darts-v1", "gdas", "rsps", "enas"])
def test_one_shot_methods_search_a_toy_task_with_its_loss_and_metric(
    algo: str, tmp_path: Any, one_torch_thread: None
) -> None:
    from nasforge.search import ONESHOT
    from nasforge.search.oneshot import run_search
    from nasforge.search.registry import ONESHOT_SPACES

    tiny = {"epochs": 3, "batch_size": 16, "lr": 0.05, "eval_batch_size": 16}
    extra = {"select_num": 3} if algo == "rsps" else {}
    with (
        TASKS.temporary("toy-smoothing", _Smoothing),
        ONESHOT_SPACES.temporary("toy-blur-chain", _blur_adapter()),
    ):
        task = get_task("toy-smoothing")
        data = task.load(seed=0)
        method = ONESHOT.create(algo, space="toy-blur-chain", **tiny, **extra)
        result = run_search(method, data, tmp_path, seed=0, task=task)
        with pytest.raises(SearchError, match="searches image classification only"):
            run_search(ONESHOT.create("fp-nas"), data, tmp_path / "fp", task=task, plot=False)
    first, last = result.epochs[0], result.epochs[-1]
    # the task's metrics, not accuracies: mse on the valid split, for the supernet's forward
    # and for the derived arch
    assert {"valid_mse", "valid_loss", "derived_valid_mse"} <= set(last)
    assert not any(k.endswith("_acc") for k in last)
    assert last["valid_mse"] == pytest.approx(last["valid_loss"])
    # the loss is the task's mse: the supernet learns the blur
    assert last["train_loss"] < first["train_loss"]
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["task"] == "toy-smoothing" and saved["final_valid_mse"] == result.final_valid_acc
    assert "final_valid_acc" not in saved and saved["status"] == "done"
    # the figure of a task search: any space's op map and the task's metric per epoch
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert set(result.arch) <= set(_BLUR_OPS)
    # scoring the derived arch by the task's metric: its mse, recomputed by hand
    assert np.isfinite(saved["final_valid_mse"]) and saved["final_valid_mse"] >= 0


def test_search_cli_runs_black_box_and_one_shot_methods_on_a_toy_task(
    tmp_path: Any, one_torch_thread: None
) -> None:
    from nasforge.search.registry import ONESHOT_SPACES
    from nasforge.train import RECIPES, Recipe

    with (
        TASKS.temporary("toy-smoothing", _SmoothingPSNR),
        SPACES.temporary("toy-kernel", _KernelSpace),
        NETWORKS.temporary("toy-kernel", _kernel_net),
        RECIPES.temporary(
            "toy-mse", lambda: Recipe("toy-mse", 3, batch_size=16, lr=0.05, loss="mse")
        ),
        ONESHOT_SPACES.temporary("toy-blur-chain", _blur_adapter()),
    ):
        common = ["search", "--task", "toy-smoothing", "--quiet", "--seed", "0"]
        # black-box: real training of each asked arch with the task's loss and metric
        bb = CliRunner().invoke(
            app,
            [*common, "--space", "toy-kernel", "--algo", "random", "--evaluator", "train",
             "--recipe", "toy-mse", "--budget", "3evals", "-o", str(tmp_path / "bb")],
        )  # fmt: skip
        assert bb.exit_code == 0, bb.output
        assert "values: toy-smoothing psnr in dB" in " ".join(bb.output.split())
        # one-shot: the supernet trains on the task's loss, records its metric
        os_ = CliRunner().invoke(
            app,
            [*common, "--space", "toy-blur-chain", "--algo", "darts-v1", "--epochs", "2",
             "--param", "batch_size=16", "-o", str(tmp_path / "os")],
        )  # fmt: skip
        assert os_.exit_code == 0, os_.output
        bad = CliRunner().invoke(
            app,
            [*common, "--space", "nb201", "--algo", "bn-nas", "-o", str(tmp_path / "x")],
        )
        assert isinstance(bad.exception, SearchError)
        assert "searches image classification only" in str(bad.exception)
    summary = json.loads((tmp_path / "bb" / "summary.json").read_text())
    assert summary["meta"]["evaluator"]["task"] == "toy-smoothing"
    # the report says what the values are: the task's primary metric and its unit
    assert summary["metric"] == {"task": "toy-smoothing", "name": "psnr", "unit": "dB"}
    runs = [json.loads(line) for line in (tmp_path / "bb" / "trajectories.jsonl").open()]
    # the searcher saw the task's primary metric (PSNR in dB), not an accuracy
    assert runs and all(r["final_arch"] in {"kernel=1", "kernel=3", "kernel=5"} for r in runs)
    assert all(0 < r["final_valid"] < 100 and r["final_test"] is None for r in runs)
    oneshot = json.loads((tmp_path / "os" / "summary.json").read_text())
    assert oneshot["task"] == "toy-smoothing" and "oneshot_valid_psnr" in oneshot
    assert Path(oneshot["png"]).read_bytes()[:4] == b"\x89PNG"
    arch = json.loads((tmp_path / "os" / "arch.json").read_text())
    assert arch["task"] == "toy-smoothing" and arch["arch"].count("-") == 1


def test_an_arch_the_task_cannot_use_is_a_failed_evaluation_not_a_crash(
    one_torch_thread: None,
) -> None:
    from nasforge.errors import ArchError
    from nasforge.evaluate import TrainingEvaluator
    from nasforge.train import RECIPES, Recipe

    def picky_net(arch: str, *, in_channels: int) -> nn.Module:
        if arch == "5":  # as an upsampling network asked to denoise
            raise ArchError("kernel 5 does not serve this task")
        return _kernel_net(arch, in_channels=in_channels)

    with (
        TASKS.temporary("toy-smoothing", _SmoothingPSNR),
        SPACES.temporary("toy-kernel", _KernelSpace),
        NETWORKS.temporary("toy-kernel", picky_net),
        RECIPES.temporary("toy-mse", lambda: Recipe("toy-mse", 2, batch_size=16, loss="mse")),
    ):
        ev = TrainingEvaluator("toy-mse", "noise", space="toy-kernel", task="toy-smoothing")
        bad, good = ev.evaluate("5"), ev.evaluate("3")
    assert bad.status == "failed" and not bad.ok and "kernel 5" in bad.info.get("error", "")
    assert good.ok and good.valid_acc > 0
