"""Zero-cost proxies of networks of another task than classification: the task's batch,
loss and network keywords reach every proxy, and label-based proxies are refused."""

from __future__ import annotations

import csv

import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import NasforgeError, SearchError
from nasforge.evaluate.proxies import scored_layers
from nasforge.evaluate.zero_cost import (
    ProxyBatch,
    ZeroCostEvaluator,
    compute_proxies,
    read_meta,
    task_proxy_batch,
)
from nasforge.nn.registry import build_network
from nasforge.spaces import get_space
from nasforge.tasks import get_task

TASK = "denoise-g25"
SPACE = "restoration-baseline"
NET = {"C": 8, "depth": 3}


@pytest.fixture(scope="module")
def batch() -> ProxyBatch:
    return task_proxy_batch(TASK, batch_size=4, seed=0, limit=6)


def test_task_batch_is_the_task_training_batch_with_its_loss(batch: ProxyBatch) -> None:
    assert batch.task == TASK and batch.io == {"in_channels": 1, "out_channels": 1, "scale": 1}
    # noisy input, clean target: a restoration pair, not images and labels
    assert batch.inputs.shape == batch.targets.shape and batch.inputs.shape[0] == 4
    assert not torch.equal(batch.inputs, batch.targets)
    again = task_proxy_batch(TASK, batch_size=4, seed=0, limit=6)
    assert torch.equal(again.inputs, batch.inputs) and torch.equal(again.targets, batch.targets)
    other = task_proxy_batch(TASK, batch_size=4, seed=1, limit=6)
    assert not torch.equal(other.inputs, batch.inputs)
    out = torch.zeros_like(batch.targets)
    task = get_task(TASK)
    assert torch.allclose(batch.loss(out, batch.targets), task.loss(out, batch.targets, None))


def test_snip_back_propagates_the_task_loss(batch: ProxyBatch) -> None:
    arch = get_space(SPACE).from_string("net=dncnn")
    scores, _ = compute_proxies(arch, ["snip", "grad_norm"], batch, space=SPACE, network=NET)
    # the same network, by hand: sum |w * dL/dw| with L the task's loss
    torch.manual_seed(0)
    net = build_network(SPACE, arch, io=batch.io, **NET)
    batch.loss(net(batch.inputs), batch.targets).backward()
    want = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in scored_layers(net))
    assert scores["snip"] == pytest.approx(want, rel=1e-5)
    # cross-entropy cannot even be computed on image targets: the task loss is what ran
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(net(batch.inputs), batch.targets.long())


def test_label_proxies_are_refused_for_tasks_without_labels(batch: ProxyBatch) -> None:
    arch = get_space(SPACE).from_string("net=dncnn")
    with pytest.raises(NasforgeError, match="proxy 'epe_nas' reads class labels; task"):
        compute_proxies(arch, ["snip", "epe_nas"], batch, space=SPACE, network=NET)
    with pytest.raises(SearchError, match="'epe_nas' reads class labels"):
        ZeroCostEvaluator("epe_nas", task=TASK, space=SPACE)


def test_evaluator_scores_a_task_network_and_ranks_two_archs() -> None:
    ev = ZeroCostEvaluator(
        "grad_norm", task=TASK, space=SPACE, network=NET, batch_size=2, charge=0.1, seed=3
    )
    sp = get_space(SPACE)
    a = ev.evaluate(sp.from_string("net=dncnn"))
    b = ev.evaluate(sp.from_string("net=edsr"))
    assert a.ok and b.ok and a.valid_acc != b.valid_acc and a.cost == 0.1
    assert ev.describe()["task"] == TASK and ev.batch().task == TASK


def test_zc_cli_scores_a_restoration_space(tmp_path) -> None:
    out = tmp_path / "zc.csv"
    archs = tmp_path / "archs.txt"
    archs.write_text("net=dncnn\nnet=edsr\n")  # fsrcnn upsamples: not a denoiser
    args = ["zc", "--task", TASK, "--space", SPACE, "--archs", str(archs), "--batch-size", "2"]
    args += ["--network", "C=8", "--network", "depth=3", "--proxies", "all", "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["arch"] for r in rows) == ["net=dncnn", "net=edsr"]
    assert "epe_nas" not in rows[0] and "snip" in rows[0]  # 'all' means all that apply
    meta = read_meta(out)
    assert meta is not None
    assert meta["task"] == TASK and meta["dataset"] == get_task(TASK).default_dataset
    bad = CliRunner().invoke(app, [*args[:-4], "--proxies", "epe_nas", "-o", str(out)])
    # a library error: the console entry point prints it as one line with exit code 2
    assert isinstance(bad.exception, NasforgeError) and "read class labels" in str(bad.exception)
