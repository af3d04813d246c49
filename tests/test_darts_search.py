"""One-shot search in the DARTS cell space: the partial-channel mixed op, edge normalisation
and genotype derivation, resume, and every method from the CLI at tiny width."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli.darts import read_genotype
from nasforge.data import load_splits
from nasforge.errors import SearchError
from nasforge.nn.darts_supernet import DartsMixedOp, DartsSupernet
from nasforge.search import ONESHOT
from nasforge.search.oneshot.spaces.darts import (
    derive_genotype,
    gdas_parse_cell,
    normalise_cell_edges,
)
from nasforge.spaces.darts import DARTS_CONCAT, PRIMITIVES, Genotype

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METHODS = ["darts-v1", "darts-v2", "gdas", "pc-darts"]
TINY = {
    "epochs": 2,
    "C": 4,
    "N": 2,
    "batch_size": 8,
    "steps_per_epoch": 2,
    "eval_batch_size": 16,
    "valid_batches": 1,
}
TINY_EXTRA = {"pc-darts": {"partial_k": 2, "warmup_epochs": 1}}
OP = {name: k for k, name in enumerate(PRIMITIVES)}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", limit=32)


def _tiny(name: str, **kw: object):
    return ONESHOT.create(name, space="darts", **{**TINY, **TINY_EXTRA.get(name, {}), **kw})


# -- the partial-channel mixed op ---------------------------------------------------------------


def _one_hot(op: str, value: float = 1.0) -> torch.Tensor:
    w = torch.zeros(len(PRIMITIVES))
    w[OP[op]] = value
    return w


def test_partial_channel_mixed_op_matches_hand_computation() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    # K=2, stride 1: channels 0-1 through the ops (here skip_connect weighted 0.7), 2-3
    # bypass; the shuffle with 2 groups interleaves them: [op0, by0, op1, by1]; the edge
    # weight 0.5 scales all of it.
    edge = DartsMixedOp(4, 1, partial_k=2).eval()
    y = edge(x, _one_hot("skip_connect", 0.7), scale=torch.tensor(0.5))
    expected = torch.stack([0.35 * x[:, 0], 0.5 * x[:, 2], 0.35 * x[:, 1], 0.5 * x[:, 3]], 1)
    torch.testing.assert_close(y, expected)
    # K=2, stride 2: the ops stride; the bypass is max-pooled 2x2 (PC-DARTS
    # model_search.py:46-49). max_pool_3x3 alone (its BN dropped), weight 1.
    edge = DartsMixedOp(4, 2, partial_k=2, pool_bn=False).eval()
    y = edge(x, _one_hot("max_pool_3x3"))
    op = F.max_pool2d(x[:, :2], 3, stride=2, padding=1)
    by = F.max_pool2d(x[:, 2:], 2, stride=2)
    torch.testing.assert_close(y, torch.stack([op[:, 0], by[:, 0], op[:, 1], by[:, 1]], 1))
    # K=1 is DARTS' mixed op: the weighted sum of all 8 ops on every channel.
    edge = DartsMixedOp(4, 1).eval()
    w = torch.softmax(torch.randn(8), 0)
    total = sum(w[k] * op(x) for k, op in enumerate(edge.ops))
    torch.testing.assert_close(edge(x, w), total)
    # Pooling ops are followed by BN(affine=False) by default (model_search.py:34-35).
    pool = edge.ops[OP["avg_pool_3x3"]]
    assert isinstance(pool[1], torch.nn.BatchNorm2d) and not pool[1].affine


def test_supernet_shape_and_official_layout() -> None:
    net = DartsSupernet(8, 8, 10, partial_k=4)
    assert [c.reduction for c in net.cells] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    cell = net.cells[0]
    assert len(cell.edges) == 14 and all(e.op_channels == 2 for e in cell.edges)
    # BN affine=False in every cell; convolutions bias-free (official operations.py).
    for m in net.cells.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert not m.affine
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias is None
    x = torch.randn(2, 3, 8, 8)
    w = torch.softmax(torch.randn(28, 8), -1)
    assert net(x, weights=w, edge_weights=torch.ones(28)).shape == (2, 10)


# -- edge normalisation and derivation ----------------------------------------------------------


def _set_alpha(alphas: torch.Tensor, row: int, op: str, logit: float) -> None:
    alphas[row, OP[op]] = logit


def test_edge_normalisation_and_pc_darts_derivation_on_hand_set_weights() -> None:
    method = ONESHOT.create("pc-darts", space="darts", C=4, N=3)
    method.setup(10, seed=0)
    alphas = torch.zeros(28, 8)
    betas = torch.zeros(28)
    # Normal cell. Node 2 (edges 0, 1): both kept; edge 1's strongest op is none, which is
    # never picked, so its second op (dil_conv_5x5) is.
    _set_alpha(alphas, 0, "sep_conv_3x3", 3.0)
    _set_alpha(alphas, 1, "none", 5.0)
    _set_alpha(alphas, 1, "dil_conv_5x5", 1.0)
    # Node 3 (edges 2, 3, 4 from nodes 0, 1, 2): edge 2 has the strongest op (max_pool) but
    # a tiny beta, so the edge-weighted ranking keeps edge 4 (from node 2) first, then 3.
    _set_alpha(alphas, 2, "max_pool_3x3", 6.0)
    _set_alpha(alphas, 3, "skip_connect", 2.0)
    _set_alpha(alphas, 4, "sep_conv_5x5", 3.0)
    betas[2] = -10.0
    # Reduction cell, node 2: edge 14 (from node 0) avg_pool, edge 15 (node 1) skip.
    _set_alpha(alphas, 14, "avg_pool_3x3", 2.0)
    _set_alpha(alphas, 15, "skip_connect", 2.0)
    with torch.no_grad():
        method.alphas.copy_(alphas)
        method.betas.copy_(betas)
    ew = method.edge_weights(detach=True)
    # Per cell and node the normalised betas sum to 1 (node 2: 2 edges, node 3: 3, ...).
    sums = [float(ew[a:b].sum()) for a, b in ((0, 2), (2, 5), (5, 9), (9, 14), (14, 16))]
    assert sums == pytest.approx([1.0] * 5)
    assert float(ew[0]) == pytest.approx(0.5) and float(ew[2]) < 1e-4
    g = method.derive(None)
    # Nodes 4 and 5 of the normal cell and 3..5 of the reduction cell: all edges uniform
    # (alpha 0 -> every non-none op equal), so the first inputs and the first non-none op
    # (max_pool_3x3) win, as the official stable sort and strict '>' pick them.
    expected = Genotype(
        [
            ("sep_conv_3x3", 0),
            ("dil_conv_5x5", 1),
            ("sep_conv_5x5", 2),
            ("skip_connect", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
        ],
        DARTS_CONCAT,
        [
            ("avg_pool_3x3", 0),
            ("skip_connect", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
        ],
        DARTS_CONCAT,
    )
    assert g == expected
    # Without the betas (DARTS' rule) edge 2's max_pool (prob ~0.98) outranks the others.
    plain = derive_genotype(torch.softmax(alphas, -1).numpy())
    assert plain.normal[2:4] == (("max_pool_3x3", 0), ("sep_conv_5x5", 2))


def test_gdas_rule_may_take_two_ops_of_one_edge() -> None:
    w = np.full((14, 8), 0.01)
    w[0, OP["sep_conv_3x3"]] = 0.9
    w[0, OP["dil_conv_3x3"]] = 0.8  # same edge (0 -> 2) as the strongest: both kept
    w[1, OP["none"]] = 0.99  # none never counts
    gene = gdas_parse_cell(w)
    assert gene[:2] == [("sep_conv_3x3", 0), ("dil_conv_3x3", 0)]


def test_normalise_cell_edges_is_a_per_node_softmax() -> None:
    betas = torch.arange(28, dtype=torch.float64)
    out = normalise_cell_edges(betas)
    torch.testing.assert_close(out[2:5], torch.softmax(betas[2:5], 0))
    torch.testing.assert_close(out[23:28], torch.softmax(betas[23:28], 0))


# -- schedule, resume ---------------------------------------------------------------------------


def test_official_configs_and_shifted_cosine() -> None:
    pc = ONESHOT.create("pc-darts", space="darts").config
    assert (pc.batch_size, pc.lr, pc.eta_min, pc.weight_decay, pc.arch_lr) == (
        256,
        0.1,
        0.0,
        3e-4,
        6e-4,
    )
    assert (pc.epochs, pc.warmup_epochs, pc.partial_k, pc.C, pc.N, pc.nesterov) == (
        50,
        15,
        4,
        16,
        8,
        False,
    )
    dv = ONESHOT.create("darts-v2", space="darts").config
    assert (dv.batch_size, dv.lr, dv.eta_min, dv.arch_lr, dv.weight_decay) == (
        64,
        0.025,
        0.001,
        3e-4,
        3e-4,
    )
    # The official loop on PyTorch 0.3.1 (no shift): epoch e trains at cosine(e).
    method = ONESHOT.create("pc-darts", space="darts")
    assert method.epoch_lr(0) == pytest.approx(0.1)
    assert method.epoch_lr(49) == pytest.approx(0.05 * (1 + math.cos(math.pi * 49 / 50)))
    gdas = ONESHOT.create("gdas", space="darts")
    assert gdas.config.N == 6 and gdas.epoch_lr(0) == pytest.approx(0.025)


class _Torch031Cosine:
    """PyTorch 0.3.1's ``_LRScheduler`` + ``CosineAnnealingLR`` semantics (closed-form
    cosine; ``__init__`` steps to ``last_epoch + 1`` and then resets ``last_epoch``)."""

    def __init__(self, base_lr: float, t_max: int, eta_min: float) -> None:
        self.base_lr, self.t_max, self.eta_min = base_lr, t_max, eta_min
        self.step(0)
        self.last_epoch = -1

    def step(self, epoch: int | None = None) -> None:
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        cos = 1 + math.cos(math.pi * self.last_epoch / self.t_max)
        self.lr = self.eta_min + (self.base_lr - self.eta_min) * cos / 2


@pytest.mark.parametrize("name", ["pc-darts", "darts-v1", "darts-v2"])
def test_schedule_matches_the_official_loop_on_its_pytorch(name: str) -> None:
    # train_search.py: ``for epoch in range(epochs): scheduler.step(); lr = get_lr()[0]``.
    method = ONESHOT.create(name, space="darts")
    cfg = method.config
    old = _Torch031Cosine(cfg.lr, cfg.epochs, cfg.eta_min)
    new_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    new = torch.optim.lr_scheduler.CosineAnnealingLR(new_opt, cfg.epochs, eta_min=cfg.eta_min)
    shifted = ONESHOT.create(name, space="darts", scheduler_first=True)
    for epoch in range(cfg.epochs):
        old.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step() before optimizer.step(), as official
            new.step()
        assert method.epoch_lr(epoch) == pytest.approx(old.lr, abs=1e-12)
        # scheduler_first=True is the same loop on PyTorch >= 1.1.
        assert shifted.epoch_lr(epoch) == pytest.approx(new.get_last_lr()[0], abs=1e-12)
    assert method.epoch_lr(cfg.epochs - 1) > cfg.eta_min


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pc-darts", "gdas", "ddpnas"])
def test_resume_after_kill_equals_uninterrupted(name: str, digits, tmp_path: Path) -> None:
    from test_oneshot import assert_resume_identical

    full = assert_resume_identical(lambda: _tiny(name), digits, tmp_path)
    assert isinstance(full.arch, Genotype) and full.epochs[-1]["arch_index"] is None
    assert len(full.epochs[-1]["probs"]) == 28


# -- CLI ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_cli_search_darts_space_one_epoch(name: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["search", "--space", "darts", "--algo", name, "--dataset", "digits", "--epochs", "1"]
    args += ["--limit", "8", "--param", "C=4", "--param", "N=1", "--quiet", "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    g = read_genotype(str(out / "genotype.json"))  # what `nasforge train --space darts` reads
    assert (out / "genotype.txt").read_text().strip() == g.to_string()
    search = json.loads((out / "search.json").read_text())
    assert search["space"] == "darts" and search["arch"] == g.to_string()
    assert search["config"]["C"] == 4 and search["config"]["N"] == 1
    assert len(search["epochs"]) == 1 and (out / "search.png").exists()


def test_cli_rejects_unknown_space_and_retraining_before_work(tmp_path: Path) -> None:
    from nasforge.cli.oneshot import run_oneshot

    with pytest.raises(SearchError, match="no one-shot supernet for space 'width'"):
        run_oneshot("pc-darts", "digits", tmp_path / "a", space="width", quiet=True)
    with pytest.raises(SearchError, match="--train-epochs 3"):
        run_oneshot("pc-darts", "digits", tmp_path / "b", space="darts", train_epochs=3, quiet=True)
    assert not (tmp_path / "b").exists()


# -- data: the official halves and a fresh arch batch per step ---------------------------------


def test_pc_darts_searches_the_official_halves_with_a_fresh_arch_batch_per_step(
    digits, tmp_path: Path, monkeypatch
) -> None:
    import dataclasses

    from nasforge.data import DeviceLoader
    from nasforge.search.oneshot.loop import _CYCLE_STRIDE, run_search, search_splits

    # a setting without a valid split (as ``cifar10``): the official train_search.py halves it
    data = dataclasses.replace(digits, evals={"test": digits.evals["test"]})
    n = len(data.train)
    weights, arch = search_splits(data, 0, "prefix")
    assert torch.equal(weights.images, data.train.images[: n // 2])
    assert torch.equal(arch.images, data.train.images[n // 2 :])
    method = _tiny("pc-darts", epochs=1, batch_size=4, steps_per_epoch=3)
    assert (method.split_rule(), method.arch_batch_rule()) == ("prefix", "fresh")
    seen: list[torch.Tensor] = []
    step = type(method).train_step

    def spy(self, base, arch_batch, epoch):
        seen.append(arch_batch[0].clone())
        return step(self, base, arch_batch, epoch)

    monkeypatch.setattr(type(method), "train_step", spy)
    run_search(method, data, tmp_path, seed=3, plot=False)
    # each step's batch is the first of its own permutation: next(iter(valid_queue))
    replica = DeviceLoader(arch, data, 4, train=True, seed=4, drop_last=True)
    for s, got in enumerate(seen):
        replica.set_epoch(s)
        torch.testing.assert_close(got, next(iter(replica))[0])
    replica.set_epoch(_CYCLE_STRIDE)  # not one cycled permutation
    assert not torch.equal(seen[1], list(replica)[1][0])
    # GDAS keeps the NB201 rules
    assert ONESHOT.create("gdas", space="darts").arch_batch_rule() == "cycle"
    with pytest.raises(SearchError, match="split='halves'"):
        ONESHOT.create("pc-darts", space="darts", split="halves")
