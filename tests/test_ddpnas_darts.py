"""DDPNAS in the DARTS cell space: schedule, XNAS' two-group pruning, CLI outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli.darts import read_genotype
from nasforge.nn.darts_supernet import NUM_ARCH_ROWS, NUM_DARTS_OPS
from nasforge.search import ONESHOT
from nasforge.search.oneshot.spaces.darts import DDPNAS_PRUNE_GROUPS, genotype_path
from nasforge.spaces.darts import PRIMITIVES, Genotype

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OP = {name: k for k, name in enumerate(PRIMITIVES)}
PARAM_FREE = {OP[o] for o in ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect")}


def _no_net(**kw: object):
    """The DARTS-space DDPNAS with its arch state set up, no supernet built."""
    m = ONESHOT.create("ddpnas", space="darts", **kw)
    m.rng = np.random.default_rng(0)
    m.generator = torch.Generator().manual_seed(0)
    m.setup_arch()
    return m


def test_ddpnas_darts_schedule_and_groups() -> None:
    # XNAS stops after 3 parameter-free + 3 parametric prunings: 2 of 8 ops survive,
    # 3 rounds at each survivor count 8..3.
    assert (
        ONESHOT.create("ddpnas", space="darts").config.epochs == 3 * (8 + 7 + 6 + 5 + 4 + 3) == 99
    )
    assert set(DDPNAS_PRUNE_GROUPS[0]) == PARAM_FREE
    assert sorted(DDPNAS_PRUNE_GROUPS[0] + DDPNAS_PRUNE_GROUPS[1]) == list(range(8))


def test_ddpnas_darts_prunes_one_op_per_edge_and_keeps_one_of_each_group() -> None:
    m = _no_net()
    # The path's accuracy depends on edge 0's op alone: the four convolutions score worst,
    # so without XNAS' constraint edge 0 would lose all four of them first.
    q = {OP["sep_conv_3x3"]: 0, OP["sep_conv_5x5"]: 1, OP["dil_conv_3x3"]: 2}
    q |= {OP["dil_conv_5x5"]: 3, OP["none"]: 4, OP["max_pool_3x3"]: 5}
    q |= {OP["avg_pool_3x3"]: 6, OP["skip_connect"]: 7}
    survivors, prune_epochs, pruned0 = [8] * NUM_ARCH_ROWS, [], []
    for epoch in range(200):
        if m.finished:
            break
        m.begin_epoch(epoch)
        assert all(m.alive[e, k] for e, k in enumerate(m.path))
        before = m.alive[0].copy()
        m.credit(0.1 + 0.1 * q[m.path[0]])
        now = m.alive.sum(axis=1).tolist()
        if now != survivors:
            assert now == [s - 1 for s in survivors]  # exactly one op on every one of 28 rows
            prune_epochs.append(epoch + 1)
            pruned0 += np.flatnonzero(before & ~m.alive[0]).tolist()
            survivors = now
    assert prune_epochs == [24, 45, 63, 78, 90, 99] and survivors == [2] * NUM_ARCH_ROWS
    # Three convolutions, then (the last one protected) the weakest parameter-free ops.
    assert [PRIMITIVES[k] for k in pruned0] == [
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
    ]
    for alive in m.alive:  # one survivor of each group on every edge
        assert len(set(np.flatnonzero(alive)) & PARAM_FREE) == 1
    p = m.probabilities()
    assert p.shape == (NUM_ARCH_ROWS, NUM_DARTS_OPS)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    g = m.derive(None)
    assert isinstance(g, Genotype) and ("skip_connect", 0) in g.normal
    # Once finished, the derived genotype's own path is trained.
    m.begin_epoch(99)
    assert m.path == genotype_path(g)
    assert sum(k != OP["none"] for k in m.path) <= 16


@pytest.mark.slow
def test_cli_search_darts_space_ddpnas(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["search", "--space", "darts", "--algo", "ddpnas", "--dataset", "digits"]
    args += ["--epochs", "2", "--limit", "8", "--param", "C=4", "--param", "N=2"]
    args += ["--quiet", "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    g = read_genotype(str(out / "genotype.json"))  # what `nasforge train --space darts` reads
    assert isinstance(g, Genotype) and len(g.normal) == len(g.reduce) == 8
    search = json.loads((out / "search.json").read_text())
    assert search["space"] == "darts" and search["arch"] == g.to_string()
    epochs = search["epochs"]
    assert len(epochs) == 2 and len(epochs[-1]["probs"]) == NUM_ARCH_ROWS
    # Two epochs of the first round: two different ops drawn on every edge.
    paths = [e["path"].split() for e in epochs]
    assert all(a != b for a, b in zip(*paths, strict=True))


def test_ddpnas_trains_a_random_path_and_credits_the_distributions_draw() -> None:
    # XNAS' released configs: RANDOM_SAMPLE True (search.py:77-83 trains random_sampling's
    # path; record_information credits the distribution's draw), BIGMODEL_SAMPLE_PROB 0.5
    # in the DARTS space (0 for NB201), Nesterov off (_C.OPTIM.NESTEROV).
    from types import SimpleNamespace

    from nasforge.errors import SearchError

    nb = ONESHOT.create("ddpnas").config
    assert (nb.random_sample, nb.bigmodel_sample_prob, nb.nesterov) == (True, 0.0, False)
    m = _no_net()
    cfg = m.config
    assert (cfg.random_sample, cfg.bigmodel_sample_prob, cfg.nesterov) == (True, 0.5, False)
    big, differs = 0, 0
    for epoch in range(400):
        m.begin_epoch(epoch)
        normal = m.train_path[:14]
        free = sum(k in PARAM_FREE for k in normal)
        big += OP["none"] not in normal and free <= 2
        differs += m.train_path != m.path
    # half the draws are "big models"; a uniform path is one with probability ~4e-3
    assert 0.42 < big / 400 < 0.58 and differs == 400
    # the trained path is scored, and its result credited to the distribution's draw
    scored = []
    m.evaluate_arch = lambda arch, batches: scored.append(list(arch)) or 50.0
    m.end_epoch(400, SimpleNamespace(full_valid=lambda: []))
    assert scored == [m.train_path]
    assert all(m.rounds[-1][e, k] == 0.5 for e, k in enumerate(m.path))
    # random_sample=False: the paper's DDPNAS, which trains the path it credits
    own = _no_net(random_sample=False)
    own.begin_epoch(0)
    assert own.train_path == own.path
    with pytest.raises(SearchError, match="bigmodel_sample_prob"):
        nb201 = ONESHOT.create("ddpnas", bigmodel_sample_prob=0.5)
        nb201.rng = np.random.default_rng(0)
        nb201.setup_arch()
