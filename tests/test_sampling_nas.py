"""The sampling / pruning one-shot methods: DDPNAS, FP-NAS, BN-NAS, DA-NAS."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data import load_splits
from nasforge.errors import SearchError
from nasforge.nn.supernet import SearchCell
from nasforge.search import ONESHOT
from nasforge.search.oneshot import run_search
from nasforge.search.oneshot.bnnas import bn_parameters
from nasforge.search.oneshot.danas import class_schedule, restrict, stage_ends
from nasforge.search.oneshot.ddpnas import schedule_epochs
from nasforge.search.oneshot.fpnas import sample_count
from nasforge.search.oneshot.spaces.nb201 import NODE_EDGES
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS, OPS, Arch

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NEW = ["ddpnas", "fp-nas", "bn-nas", "da-nas"]
TINY = {"C": 4, "N": 1, "batch_size": 16, "steps_per_epoch": 2, "eval_batch_size": 32}
TINY_EXTRA = {
    "ddpnas": {},
    "fp-nas": {"min_samples": 2, "samples_per_nat": 0.2},
    "bn-nas": {"generations": 2, "population": 10},
    "da-nas": {"eval_paths": 5, "warmup_epochs": 1},
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", limit=64)


def _no_net(name: str, **kw: object):
    """A method whose arch state is set up without building a supernet."""
    method = ONESHOT.create(name, **kw)
    method.rng = np.random.default_rng(0)
    method.generator = torch.Generator().manual_seed(0)
    method.setup_arch()
    return method


# -- DDPNAS ------------------------------------------------------------------------------------


def test_ddpnas_schedule_is_42_epochs_on_nb201() -> None:
    assert schedule_epochs(NUM_OPS, 3) == 3 * (5 + 4 + 3 + 2) == 42
    assert ONESHOT.create("ddpnas").config.epochs == 42


def test_ddpnas_prunes_one_op_per_edge_per_round_and_keeps_the_accurate_ones() -> None:
    m = _no_net("ddpnas")
    # The path's accuracy depends on edge 0's op alone (quality q), so edge 0's credits
    # are exact: its ops must go in increasing q. Crediting the error instead of the
    # accuracy would prune them in the opposite order.
    q = {0: 2, 1: 0, 2: 4, 3: 1, 4: 3}
    prune_epochs, pruned_on_edge0, drawn = [], [], [set() for _ in range(NUM_EDGES)]
    survivors = [NUM_OPS] * NUM_EDGES
    for epoch in range(60):
        if m.finished:
            break
        m.begin_epoch(epoch)
        for e, k in enumerate(m.path):
            assert m.alive[e, k]
            drawn[e].add(k)
        alive_before = m.alive[0].copy()
        m.credit(0.5 + 0.1 * q[m.path[0]])
        now = m.alive.sum(axis=1).tolist()
        if now != survivors:
            assert now == [s - 1 for s in survivors]  # exactly one op per edge
            # Within the rounds before a pruning every survivor was drawn.
            assert all(len(d) == s for d, s in zip(drawn, survivors, strict=True))
            prune_epochs.append(epoch + 1)
            pruned_on_edge0 += np.flatnonzero(alive_before & ~m.alive[0]).tolist()
            survivors, drawn = now, [set() for _ in range(NUM_EDGES)]
    assert prune_epochs == [15, 27, 36, 42]
    assert m.finished and survivors == [1] * NUM_EDGES
    assert pruned_on_edge0 == [1, 3, 0, 4]
    assert m.derive(None).op_ids[0] == 2
    np.testing.assert_allclose(m.probabilities().sum(axis=1), 1.0)


def test_ddpnas_reports_the_best_credited_path_before_its_first_pruning() -> None:
    m = _no_net("ddpnas")
    paths = []
    for epoch, acc in enumerate((0.3, 0.6, 0.4)):
        m.begin_epoch(epoch)
        paths.append(list(m.path))
        m.credit(acc)
    assert m.prunings == 0 and np.ptp(m.probabilities()) == 0  # theta still uniform
    # The paths of a round differ on every edge; the 0.6 one is the best seen so far
    # (the distribution alone would name op 0, ``none``, on every edge).
    assert list(m.derive(None).op_ids) == paths[1]


# -- FP-NAS ------------------------------------------------------------------------------------


def test_fpnas_sample_count_falls_with_entropy_to_a_floor() -> None:
    m = _no_net("fp-nas")
    m.device = torch.device("cpu")
    uniform = m.num_samples()
    assert uniform == math.ceil(NUM_EDGES * math.log(NUM_OPS))  # 1 sample per nat: 10
    counts = []
    for scale in (2.0, 4.0, 10.0, 100.0):
        with torch.no_grad():
            m.logits[0].zero_()
            m.logits[0][:, 2] = scale
        counts.append(m.num_samples())
    assert counts == sorted(counts, reverse=True) and counts[0] < uniform
    assert counts[-1] == m.config.min_samples == 2
    assert sample_count(0.0, 1.0, 3) == 3 and sample_count(4.2, 2.0, 1) == 9


def test_fpnas_switch_to_joint_keeps_the_marginals() -> None:
    m = _no_net("fp-nas")
    m.device = torch.device("cpu")
    with torch.no_grad():
        m.logits[0].copy_(
            torch.randn(NUM_EDGES, NUM_OPS, generator=torch.Generator().manual_seed(3))
        )
    before, h = m.probabilities(), m.total_entropy()
    m.switch_to_joint()
    assert m.fine and [p.numel() for p in m.logits] == [NUM_OPS ** len(e) for e in NODE_EDGES]
    np.testing.assert_allclose(m.probabilities(), before, atol=1e-6)
    # Entropy of a product = sum of the factors' entropies: the sample count is continuous.
    assert m.total_entropy() == pytest.approx(h, abs=1e-4)
    # The joint mode of a product is the product of the modes.
    assert m.derive(None).op_ids == tuple(np.argmax(before, axis=1).tolist())
    ops, _ = m.sample()
    assert len(ops) == NUM_EDGES and all(0 <= k < NUM_OPS for k in ops)


def test_fpnas_step_moves_the_distribution_towards_the_likely_sample(digits) -> None:
    m = ONESHOT.create("fp-nas", **TINY, min_samples=3, samples_per_nat=0.0, arch_lr=0.1)
    m.setup(digits.num_classes, seed=0)
    x, y = digits.train.images[:16].float() / 255, digits.train.labels[:16]
    before = m.probabilities()
    m.train_step((x, y), (x, y), 0)
    assert m.last_samples == 3
    assert not np.allclose(m.probabilities(), before)


# -- BN-NAS ------------------------------------------------------------------------------------


def test_bnnas_trains_only_bn_parameters(digits) -> None:
    m = ONESHOT.create("bn-nas", **TINY)
    m.setup(digits.num_classes, seed=0)
    net = m.supernet
    # The official rule: only the BN closing each candidate op (2 convs x 6 edges x 3 cells).
    bn_ids = {id(p) for bn in m.closing_bns() for p in bn.parameters()}
    assert len(m.closing_bns()) == 2 * NUM_EDGES * 3
    assert {id(p) for p in net.parameters() if p.requires_grad} == bn_ids
    assert bn_ids < {id(p) for p in bn_parameters(net)}  # the stem's BN stays frozen
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = digits.train.images[:16].float() / 255, digits.train.labels[:16]
    for _ in range(2):
        m.train_step((x, y), None, 0)
    changed = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(id(dict(net.named_parameters())[n]) in bn_ids for n in changed)
    # A path without convolutions has no trainable BN: the step changes nothing.
    after = {n: p.detach().clone() for n, p in net.named_parameters()}
    m.train_path((x, y), [OPS.index(o) for o in ("none", "skip_connect", "avg_pool_3x3") * 2])
    assert all(torch.equal(p, after[n]) for n, p in net.named_parameters())
    # A conv fed only through ``none`` edges gets all-zero gradients: dropped, no step.
    m.train_path((x, y), [0, 0, OPS.index("nor_conv_3x3"), 0, 0, 0])
    assert all(torch.equal(p, after[n]) for n, p in net.named_parameters())
    # The candidate ops' BNs are affine here (the indicator is their scale).
    edge_bn = net.cells[0].edges[0].ops[OPS.index("nor_conv_3x3")].op[-1]
    assert isinstance(edge_bn, nn.BatchNorm2d) and edge_bn.weight is not None


@pytest.mark.parametrize("no_bn", ["zero", "mean"])
def test_bnnas_indicator_equals_a_hand_computation(digits, no_bn: str) -> None:
    m = ONESHOT.create("bn-nas", **TINY, no_bn=no_bn)
    m.setup(digits.num_classes, seed=0)
    cells = [c for c in m.supernet.cells if isinstance(c, SearchCell)]
    conv1, conv3 = OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")
    value = {}
    with torch.no_grad():
        for c, cell in enumerate(cells):
            for e, edge in enumerate(cell.edges):
                for k in (conv1, conv3):
                    w = edge.ops[k].op[-1].weight
                    # Mixed signs: the indicator is the mean of |gamma|.
                    signs = torch.tensor([(-1) ** i for i in range(w.numel())], dtype=w.dtype)
                    v = 0.1 * (c + 1) + 0.01 * e + 0.5 * (k == conv3)
                    w.copy_(signs * v)
                    value[c, e, k] = v
    arch = Arch(
        ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3")
    )
    hand = 0.0
    for c in range(len(cells)):
        for e, k in enumerate(arch.op_ids):
            if k in (conv1, conv3):
                hand += value[c, e, k]
            elif OPS[k] != "none" and no_bn == "mean":
                hand += (value[c, e, conv1] + value[c, e, conv3]) / 2
    assert m.score(arch) == pytest.approx(hand, rel=1e-6)


def test_bnnas_evolution_respects_the_flops_budget(digits) -> None:
    m = ONESHOT.create("bn-nas", **TINY, generations=3)
    m.setup(digits.num_classes, seed=0)
    free = m.evolve(0)
    # All-conv archs score highest under "zero"; a budget below them forces cheaper ops.
    budget = m.flops(Arch(("nor_conv_1x1",) * NUM_EDGES))
    tight = ONESHOT.create("bn-nas", **TINY, generations=3, flops_limit=budget)
    tight.setup(digits.num_classes, seed=0)
    chosen = tight.evolve(0)
    assert tight.flops(chosen) <= budget < m.flops(free)
    with pytest.raises(SearchError, match="flops_limit"):
        low = ONESHOT.create("bn-nas", **TINY, generations=1, flops_limit=1e-6)
        low.setup(digits.num_classes, seed=0)
        low.evolve(0)


# -- DA-NAS ------------------------------------------------------------------------------------


def test_danas_class_schedule_grows_as_configured() -> None:
    order = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7]
    stages = class_schedule(order, 0.5)
    assert [len(s) for s in stages] == [5, 7, 9, 10]
    assert all(s == order[: len(s)] for s in stages)  # easy classes first, prefixes
    assert [len(s) for s in class_schedule(order, 0.2, stages=3)] == [2, 6, 10]
    assert stage_ends(50, 10) == [20, 30, 40, 50]
    x, y = torch.zeros(6, 3, 2, 2), torch.tensor([0, 1, 2, 3, 1, 0])
    assert restrict((x, y), torch.tensor([1, 3]))[1].tolist() == [1, 3, 1]


def test_danas_prunes_to_one_op_per_edge_on_the_staged_classes(digits, tmp_path: Path) -> None:
    tiny = {**TINY, "steps_per_epoch": 1, "epochs": 5, "warmup_epochs": 1, "eval_paths": 5}
    m = ONESHOT.create("da-nas", **tiny)
    res = run_search(m, digits, tmp_path, seed=0, plot=False)
    # Warm-up on all 10 classes, then one stage per epoch: 5, 7, 9, 10 classes.
    assert [r["classes"] for r in res.epochs] == [10, 5, 7, 9, 10]
    assert [r["survivors"][0] for r in res.epochs] == [5, 4, 3, 2, 1]
    assert res.epochs[-1]["survivors"] == [1] * NUM_EDGES
    assert m.alive[np.arange(NUM_EDGES), list(res.arch.op_ids)].all()


def test_danas_reports_its_best_scored_ops_before_the_first_pruning(digits) -> None:
    m = ONESHOT.create("da-nas", **TINY, eval_paths=5)
    m.setup(digits.num_classes, seed=0)
    favoured = np.full((NUM_EDGES, NUM_OPS), 0.2)
    favoured[:, 3] = 0.9

    def scores(ctx, classes, rng=None):
        (rng or m.rng).permutation(NUM_OPS)  # draws, as the real scoring does
        return favoured

    m.op_scores = scores
    state = m.rng.bit_generator.state
    assert m.derive(None).op_ids == (3,) * NUM_EDGES  # not ``none`` on every edge
    assert m.rng.bit_generator.state == state  # the search's own draws are untouched


# -- every method from the CLI -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("algo", NEW)
def test_method_runs_one_epoch_from_the_cli(algo: str, tmp_path: Path) -> None:
    params = {**TINY, "valid_batches": 1, **TINY_EXTRA[algo]}
    args = ["search", "--algo", algo, "--dataset", "digits", "--epochs", "1"]
    args += ["--train-epochs", "0", "--limit", "64", "-o", str(tmp_path), "--quiet"]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "search.json").read_text())
    assert record["status"] == "done" and record["algo"] == algo and len(record["epochs"]) == 1
    assert Arch.parse(record["arch"])
    assert (tmp_path / "search.png").exists() and (tmp_path / "checkpoint.pt").exists()


def _strip_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in records]


@pytest.mark.slow
@pytest.mark.parametrize("algo", NEW)
def test_resume_continues_identically(algo: str, digits, tmp_path: Path) -> None:
    # Two epochs: FP-NAS switches to the joint distribution and DA-NAS leaves its warm-up
    # at the epoch boundary the run is cut at.
    params = {**TINY, **TINY_EXTRA[algo], "epochs": 2, "valid_batches": 1}
    full = run_search(ONESHOT.create(algo, **params), digits, tmp_path / "full", plot=False)

    class Crash(RuntimeError):
        pass

    def crash(event: str, info: dict) -> None:
        if event == "epoch" and info["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        run_search(
            ONESHOT.create(algo, **params), digits, tmp_path / "cut", plot=False, callback=crash
        )
    resumed = run_search(ONESHOT.create(algo, **params), digits, tmp_path / "cut", plot=False)
    assert resumed.arch == full.arch
    assert _strip_time(resumed.epochs) == _strip_time(full.epochs)


# -- the weight-sharing ranking study ----------------------------------------------------------


def test_study_tau_and_rho_match_scipy() -> None:
    from scipy.stats import kendalltau, spearmanr

    from nasforge.study.ranking import kendall_tau, spearman_rho, top_k_truth_ranks

    x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    y = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0, 2.0, 8.0]
    assert kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau(x, x) == pytest.approx(1.0)
    assert math.isnan(kendall_tau(x, [1.0] * len(x)))
    assert top_k_truth_ranks([0.1, 0.9, 0.5], [30.0, 10.0, 20.0], 2) == [3, 2]


@pytest.mark.slow
def test_study_ranking_cli_writes_json_and_figure(tmp_path: Path) -> None:
    from nasforge.bench import make_synthetic_table

    table = make_synthetic_table(
        tmp_path / "t",
        datasets=("cifar10-valid",),
        hps={"12": 12},
        archs=list(range(0, 15625, 997)),
    )
    out = tmp_path / "study"
    args = ["study", "ranking", "--bench", str(table), "--dataset", "digits", "--limit", "64"]
    args += ["--epochs", "1", "--archs", "6", "--partition", "random", "--groups", "2"]
    args += ["--step-every", "1", "--eval-batches", "1", "-o", str(out), "--hp", "12"]
    for key, value in {**TINY, "steps_per_epoch": 3}.items():
        args += ["--param", f"{key}={value}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "ranking.json").read_text())
    assert len(result["archs"]) == 6 and result["groups"] == 2
    # Steps 1 and 2 of the (last) epoch, then its end.
    assert [s["label"] for s in result["snapshots"]] == ["e1s1", "e1s2", "e1"]
    assert set(result["parts"]) <= {0, 1}
    assert -1 <= result["snapshots"][-1]["tau"] <= 1
    assert (out / "ranking.png").exists()


def test_bnnas_official_decay_and_linear_per_iteration_schedule(digits) -> None:
    # BNNAS utils/nas_utils.py get_optimizer_schedule: decay only on 4-D weights and the
    # classifier, so the trained BN scales get none; LambdaLR 1 - step / delta stepped
    # before every iteration while the lr is above min_lr (supernet/train.py:20-21).
    m = ONESHOT.create("bn-nas", **{**TINY, "steps_per_epoch": 3}, epochs=4)
    m.setup(digits.num_classes, seed=0)
    wd = {id(p): g["weight_decay"] for g in m.w_optimizer.param_groups for p in g["params"]}
    for name, p in m.supernet.named_parameters():
        official = p.ndim == 4 or name.startswith("classifier.")
        assert wd[id(p)] == (4e-5 if official else 0.0), name
    assert all(wd[id(p)] == 0.0 for p in m.trainable())
    old = ONESHOT.create("bn-nas", **TINY, decay="all")
    old.setup(digits.num_classes, seed=0)
    assert {g["weight_decay"] for g in old.w_optimizer.param_groups} == {4e-5}
    # the official schedule, replayed with torch's LambdaLR
    cfg = m.config
    total = cfg.epochs * 3
    delta = total / (1 - cfg.eta_min / cfg.lr)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / delta)
    want = []
    for _ in range(total):
        if sched.get_last_lr()[0] > cfg.eta_min:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # stepped before optimizer.step(), as official
                sched.step()
        want.append(sched.get_last_lr()[0])
    got = [m.iteration_lr(k) for k in range(1, total + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[-1] == pytest.approx(cfg.eta_min)
    # each step sets its iteration's lr; an epoch starts where the last one ended
    x, y = digits.train.images[:16].float() / 255, digits.train.labels[:16]
    m.begin_epoch(2)
    m.train_step((x, y), None, 2)
    assert m.w_optimizer.param_groups[0]["lr"] == pytest.approx(want[2 * 3])
    assert m.epoch_lr(2) == pytest.approx(want[2 * 3])
    with pytest.raises(SearchError, match="schedule='step'"):
        ONESHOT.create("bn-nas", schedule="step")
