"""One-shot search: the DARTS second-order gradient, every method end to end on the
embedded digits in a tiny configuration, determinism, resume, and ``run_oneshot``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from nasforge.data import load_splits
from nasforge.errors import CheckpointError, SearchError
from nasforge.nn.supernet import NB201Supernet
from nasforge.search import ONESHOT as METHODS
from nasforge.search.oneshot import OneShotConfig, SearchContext, cosine_lr, run_search
from nasforge.search.oneshot.darts import finite_difference_hvp, unrolled_arch_gradients
from nasforge.search.oneshot.spaces.nb201 import normalise_edges, top_k_archs
from nasforge.spaces.nb201 import Arch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ONESHOT = ["darts-v1", "darts-v2", "gdas", "setn", "enas", "rsps", "pc-darts", "single-darts"]
RESUME_METHODS = ONESHOT
TINY = {
    "epochs": 2,
    "C": 4,
    "N": 1,
    "batch_size": 16,
    "steps_per_epoch": 3,
    "eval_batch_size": 32,
    "valid_batches": 1,
}
TINY_EXTRA = {
    "setn": {"select_num": 4},
    "rsps": {"select_num": 4},
    "enas": {
        "controller_train_steps": 2,
        "controller_num_aggregate": 2,
        "controller_num_samples": 3,
        "derive_samples": 2,
    },
    "pc-darts": {"partial_k": 2, "warmup_epochs": 1},
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", limit=64)


def _tiny(name: str, **kw: object):
    return METHODS.create(name, **{**TINY, **TINY_EXTRA.get(name, {}), **kw})


# -- DARTS second order ------------------------------------------------------------------------


def _tiny_problem():
    torch.manual_seed(0)
    net = NB201Supernet(2, 1, 3).double().train()
    alphas = (1e-1 * torch.randn(6, 5, dtype=torch.float64)).requires_grad_()
    xt, yt = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    xv, yv = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    return net, alphas, (xt, yt), (xv, yv)


def test_finite_difference_hvp_matches_double_backward() -> None:
    net, alphas, (x, y), _ = _tiny_problem()
    weights = list(net.parameters())

    def loss() -> torch.Tensor:
        return nn.functional.cross_entropy(net(x, weights=torch.softmax(alphas, -1)), y)

    vector = [torch.randn_like(w) for w in weights]
    # Exact mixed second derivative d/d alpha (grad_w L . v) by double backward.
    grads = torch.autograd.grad(loss(), weights, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector, strict=True))
    (exact,) = torch.autograd.grad(dot, [alphas])
    assert float(exact.norm()) > 1e-3  # a non-trivial check
    # A central difference: the error falls as r^2 (this tiny net's ReLU/BN curvature makes
    # DARTS' r = 0.01 too coarse for a tight check, so smaller radii are compared).
    errors = []
    for r in (1e-3, 1e-4):
        approx = finite_difference_hvp(loss, weights, [alphas], vector, r=r)[0]
        errors.append(float((approx - exact).norm() / exact.norm()))
    assert errors[1] < 1e-5
    assert errors[1] < errors[0] / 30
    # The weights are restored exactly.
    net2, *_ = _tiny_problem()
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_unrolled_gradient_matches_exact_unrolled_derivative() -> None:
    net, alphas, (xt, yt), (xv, yv) = _tiny_problem()
    names = [n for n, _ in net.named_parameters()]
    weights = list(net.parameters())
    lr, wd, mom = 0.1, 5e-4, 0.9
    buffers = [torch.randn_like(w) * 0.01 for w in weights]

    def loss_at(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(net, params, (x,), {"weights": torch.softmax(alphas, -1)})
        return nn.functional.cross_entropy(logits, y)

    approx, _ = unrolled_arch_gradients(
        weights,
        [alphas],
        lambda: nn.functional.cross_entropy(net(xt, weights=torch.softmax(alphas, -1)), yt),
        lambda: nn.functional.cross_entropy(net(xv, weights=torch.softmax(alphas, -1)), yv),
        lr=lr,
        weight_decay=wd,
        momentum=mom,
        momentum_buffers=buffers,
        r=1e-4,
    )
    # Exact: differentiate L_val(w'(alpha), alpha) through the virtual SGD step.
    params = dict(zip(names, weights, strict=True))
    grads = torch.autograd.grad(loss_at(params, xt, yt), weights, create_graph=True)
    stepped = {
        n: w - lr * (mom * b + g + wd * w)
        for n, w, g, b in zip(names, weights, grads, buffers, strict=True)
    }
    (exact,) = torch.autograd.grad(loss_at(stepped, xv, yv), [alphas])
    torch.testing.assert_close(approx[0], exact, rtol=1e-5, atol=1e-8)


# -- every method end to end --------------------------------------------------------------------


@pytest.mark.parametrize("name", ONESHOT)
def test_method_runs_end_to_end(name: str, digits, tmp_path: Path) -> None:
    method = _tiny(name)
    assert METHODS.get(name) is type(method)  # held by the one-shot registry
    result = run_search(method, digits, tmp_path, seed=0, plot=False)
    assert isinstance(result.arch, Arch)
    assert len(result.epochs) == TINY["epochs"]
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["status"] == "done" and saved["arch"] == result.arch.to_string()
    for i, rec in enumerate(saved["epochs"]):
        assert rec["epoch"] == i + 1
        Arch.from_string(rec["arch"])
        assert 0 <= rec["train_acc"] <= 100 and 0 <= rec["valid_acc"] <= 100
        assert math.isfinite(rec["train_loss"]) and math.isfinite(rec["valid_loss"])
        assert len(rec["entropy"]) == 6
        assert all(0 <= h <= math.log(5) + 1e-9 for h in rec["entropy"])
        probs = np.asarray(rec["probs"])
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
        assert rec["skip_share"] == Arch.from_string(rec["arch"]).ops.count("skip_connect") / 6
    assert 0 <= result.final_valid_acc <= 100


def test_alpha_methods_move_their_distribution(digits, tmp_path: Path) -> None:
    # The architecture state must actually be trained (not just initialised).
    for name in ("darts-v1", "gdas", "single-darts"):
        method = _tiny(name, arch_lr=0.05)
        result = run_search(method, digits, tmp_path / name, seed=0, plot=False)
        first, last = np.asarray(result.epochs[0]["probs"]), np.asarray(result.epochs[-1]["probs"])
        assert np.abs(last - 0.2).max() > 1e-3, name
        assert not np.allclose(first, last), name


def test_pc_darts_warmup_keeps_alphas(digits, tmp_path: Path) -> None:
    method = _tiny("pc-darts", warmup_epochs=2)
    result = run_search(method, digits, tmp_path, seed=0, plot=False)
    init = method.alphas.detach()
    # No architecture step during the warm-up: the distribution is still the initial one.
    assert np.allclose(result.epochs[-1]["probs"], torch.softmax(init, -1).numpy())
    assert result.epochs[-1]["edge_weights"][0] == pytest.approx(1.0)  # node 1 has one edge


def test_normalise_edges_per_node() -> None:
    w = normalise_edges(torch.tensor([3.0, 0.0, 1.0, 0.5, -1.0, 2.0]))
    assert float(w[0]) == pytest.approx(1.0)
    assert float(w[1:3].sum()) == pytest.approx(1.0)
    assert float(w[3:].sum()) == pytest.approx(1.0)


def test_top_k_archs_orders_by_probability() -> None:
    logp = np.log(np.full((6, 5), 0.05))
    logp[:, 3] = np.log(0.8)
    logp[0, 1] = np.log(0.7)
    logp[0, 3] = np.log(0.1)
    top = top_k_archs(logp, 3)
    assert top[0].ops == ("skip_connect",) + ("nor_conv_3x3",) * 5
    assert top[1].ops == ("nor_conv_3x3",) * 6
    assert len(set(top)) == 3


# -- candidate scoring ---------------------------------------------------------------------------


class _Batches:
    """A validation stream that counts the batches drawn from it."""

    def __init__(self, batches: list) -> None:
        self.batches, self.drawn = batches, 0

    def __call__(self):
        for batch in self.batches:
            self.drawn += 1
            yield batch


def _trained_method(name: str, **kw: object):
    method = _tiny(name, **kw)
    method.setup(10, seed=0)
    g = torch.Generator().manual_seed(0)
    base = (torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g))
    for _ in range(3):  # move the BN running statistics away from their initial values
        method.train_step(base, base, epoch=0)
    return method, base


def test_candidates_are_scored_with_running_statistics_by_default() -> None:
    # SETN.py:119, RANDOM-NAS.py:109, ENAS.py:123,206: network.eval() when scoring.
    method, (x, y) = _trained_method("rsps")
    arch = Arch.from_op_ids([3, 2, 1, 3, 2, 3])
    net = method.supernet
    before = [b.clone() for b in net.buffers()]
    acc = method.evaluate_arch(arch, [(x, y)])
    net.eval()
    with torch.no_grad():
        expected = 100.0 * float((net.forward_arch(x, arch).argmax(1) == y).float().mean())
        net.train()
        batch_mode = 100.0 * float((net.forward_arch(x, arch).argmax(1) == y).float().mean())
    for a, b in zip(before, net.buffers(), strict=False):
        b.copy_(a)
    assert acc == pytest.approx(expected)
    # The option: the scored batch's own statistics, buffers untouched.
    method_b, _ = _trained_method("rsps", score_bn="batch")
    saved = [b.clone() for b in method_b.supernet.buffers()]
    assert method_b.evaluate_arch(arch, [(x, y)]) == pytest.approx(batch_mode)
    for a, b in zip(saved, method_b.supernet.buffers(), strict=True):
        assert torch.equal(a, b)
    assert method.supernet.training  # the train/eval flag is restored


def test_rsps_scores_select_num_random_archs_one_batch_each() -> None:
    # RANDOM-NAS.py:107-131 search_find_best: select_num archs, each on the next valid batch,
    # every epoch (derive) and at the end (finalize).
    method, base = _trained_method("rsps", select_num=5)
    stream = _Batches([base] * 50)
    ctx = SearchContext(stream, lambda: iter(()))
    scored: list[Arch] = []
    real = method.evaluate_arch
    method.evaluate_arch = lambda arch, batches: (scored.append(arch), real(arch, batches))[1]
    method.derive(ctx)
    assert len(scored) == 5 and stream.drawn == 5
    method.finalize(ctx)
    assert len(scored) == 10


def test_enas_baseline_is_carried_per_epoch() -> None:
    # ENAS.py:145-150,199,411: within an epoch each sample's baseline is
    # B - (1 - bl_dec) * (B - reward) with B fixed; the last one becomes the next epoch's B.
    method = _tiny("enas", controller_train_steps=2, controller_num_aggregate=2)
    method.setup(10, seed=0)
    g = torch.Generator().manual_seed(1)
    valid = [(torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g))]
    ctx = SearchContext(lambda: iter(()), lambda: iter(valid * 8))
    method.end_epoch(0, ctx)
    first = method.baseline
    # First epoch: no baseline yet, each sample's baseline is its own accuracy.
    assert first is not None and 0.0 <= first <= 1.0
    rewards: list[float] = []
    last = method.train_controller(iter(valid * 8), 4, 2, first, rewards, [])
    assert len(rewards) == 4 and len(set(rewards)) > 1  # the samples differ
    # Only the last sample's reward matters: B itself did not move within the epoch.
    assert last == pytest.approx(first - 0.01 * (first - rewards[-1]), rel=1e-6)


# -- determinism, resume ------------------------------------------------------------------------


def _strip_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in records]


@pytest.mark.parametrize("name", ["gdas", "enas"])
def test_same_seed_same_result_and_foreign_checkpoint_rejected(
    name: str, digits, tmp_path: Path
) -> None:
    a = run_search(_tiny(name), digits, tmp_path / "a", seed=3, plot=False)
    b = run_search(_tiny(name), digits, tmp_path / "b", seed=3, plot=False)
    assert a.arch == b.arch
    assert _strip_time(a.epochs) == _strip_time(b.epochs)
    # A run stopped after epoch 1 (its config says 1 epoch) cannot be resumed as a 2-epoch
    # run: the checkpoint belongs to another config.
    run_search(_tiny(name, epochs=1), digits, tmp_path / "c", seed=3, plot=False)
    with pytest.raises(CheckpointError, match="another run"):
        run_search(_tiny(name), digits, tmp_path / "c", seed=3, plot=False)


@pytest.mark.parametrize("name", RESUME_METHODS)
def test_resume_continues_identically(name: str, digits, tmp_path: Path) -> None:
    assert_resume_identical(lambda: _tiny(name), digits, tmp_path)


def assert_resume_identical(make, digits, tmp_path: Path):
    """A run killed after its first epoch and resumed equals an uninterrupted one (``make``
    builds the method; also used by the DARTS-space tests). Returns the full run."""
    full = run_search(make(), digits, tmp_path / "full", seed=1, plot=False)

    class Crash(RuntimeError):
        pass

    def crash_after_first_epoch(event: str, info: dict) -> None:
        if event == "epoch" and info["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        run_search(
            make(),
            digits,
            tmp_path / "cut",
            seed=1,
            plot=False,
            callback=crash_after_first_epoch,
        )
    partial = json.loads((tmp_path / "cut" / "search.json").read_text())
    assert partial["status"] == "running" and len(partial["epochs"]) == 1
    events: list[str] = []
    resumed = run_search(
        make(),
        digits,
        tmp_path / "cut",
        seed=1,
        plot=False,
        callback=lambda e, i: events.append(e),
    )
    assert events.count("epoch") == 1  # only the second epoch ran again
    assert resumed.arch == full.arch
    assert _strip_time(resumed.epochs) == _strip_time(full.epochs)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cut").iterdir())
    return full


# -- configs, registry, CLI ---------------------------------------------------------------------


def test_lr_is_set_once_per_epoch_with_t_max(digits, tmp_path: Path) -> None:
    cfg = OneShotConfig(epochs=20, lr=0.1, eta_min=0.001)
    for e in (0, 7, 19):
        expected = 0.001 + 0.099 * (1 + math.cos(math.pi * e / 20)) / 2
        assert cosine_lr(cfg, e) == pytest.approx(expected, rel=1e-12)
    # T_max < epochs (ENAS' config): the official schedule is periodic in the epoch.
    short = cfg.replace(t_max=4)
    assert cosine_lr(short, 4) == pytest.approx(0.001) and cosine_lr(short, 8) == 0.1
    assert cosine_lr(short, 2) == pytest.approx(0.0505)
    assert METHODS.create("enas").config.t_max == 10  # ENAS.config "T_max": 10
    assert METHODS.create("darts-v1").config.t_max is None
    with pytest.raises(SearchError, match="t_max=0"):
        cfg.replace(t_max=0)
    # The loop sets that rate for every step of an epoch (not a per-step cosine).
    method = _tiny("enas", epochs=3, t_max=2)
    seen: list[tuple[int, float]] = []
    result = run_search(
        method,
        digits,
        tmp_path,
        seed=0,
        plot=False,
        callback=lambda e, i: (
            seen.append((i["epoch"], method.w_optimizer.param_groups[0]["lr"]))
            if e == "step"
            else None
        ),
    )
    assert len(seen) == 3 * TINY["steps_per_epoch"]
    for epoch, lr in seen:
        assert lr == cosine_lr(method.config, epoch)
    assert [r["lr"] for r in result.epochs] == [cosine_lr(method.config, e) for e in range(3)]
    assert result.epochs[2]["lr"] == pytest.approx(method.config.eta_min)  # e = T_max


def test_config_fields_are_validated() -> None:
    for name, field, value in [
        ("setn", "score_bn", "moving"),
        ("rsps", "select_batches", None),
        ("pc-darts", "pool_bn", 1),
        ("gdas", "tau_min", "a"),
        ("gdas", "tau_max", float("nan")),
        ("enas", "arch_eps", 0.0),
        ("enas", "arch_eps", "x"),
        ("enas", "controller_entropy_weight", -1.0),
        ("enas", "controller_entropy_weight", None),
        ("pc-darts", "edge_norm", "yes"),
        ("darts-v1", "nesterov", 1),
    ]:
        with pytest.raises(SearchError, match=f"{field}={value!r}"):
            METHODS.create(name, **{field: value})


def test_divergence_and_bad_device_are_clear_errors(digits, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(SearchError, match="diverged in epoch 1"):
        run_search(_tiny("rsps", lr=1e30, grad_clip=0.0), digits, tmp_path / "a", plot=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SearchError, match="'cuda' requested but CUDA is not available"):
        run_search(_tiny("gdas"), digits, tmp_path / "b", device="cuda", plot=False)


def test_configs_are_published_and_overridable() -> None:
    darts = METHODS.create("darts-v1")
    assert (darts.config.epochs, darts.config.lr, darts.config.batch_size) == (50, 0.025, 64)
    assert darts.config.arch_lr == 3e-4 and darts.config.arch_betas == (0.5, 0.999)
    pc = METHODS.create("pc-darts")
    assert (pc.config.partial_k, pc.config.warmup_epochs, pc.config.arch_lr) == (4, 15, 6e-4)
    assert METHODS.create("gdas").config.tau_max == 10.0
    # configs/nas-benchmark/algos/{GDAS,ENAS}.config: 250 epochs each.
    assert METHODS.create("gdas").config.epochs == 250
    assert METHODS.create("enas").config.epochs == 250
    assert METHODS.create("enas").config.controller_train_steps == 50
    # PC-DARTS train_search.py: learning_rate_min 0, BN after the pooling op.
    assert (pc.config.eta_min, pc.config.pool_bn) == (0.0, True)
    assert METHODS.create("rsps").config.select_batches == 1
    assert METHODS.create("setn", epochs=3).config.epochs == 3
    with pytest.raises(SearchError, match="unknown config field"):
        METHODS.create("darts-v1", epoch=3)
    with pytest.raises(SearchError, match="epochs=0"):
        METHODS.create("gdas", epochs=0)
    with pytest.raises(SearchError, match="partial_k=3"):
        METHODS.create("pc-darts", partial_k=3)


def test_run_oneshot_with_table_and_training(tmp_path: Path) -> None:
    from nasforge.bench import make_synthetic_table
    from nasforge.cli.oneshot import run_oneshot

    table = tmp_path / "t.table"
    make_synthetic_table(
        table, datasets=("cifar10-valid",), hps={"200": 200}, seeds=(777,), final_only=True
    )
    summary = run_oneshot(
        "pc-darts",
        "digits",
        tmp_path / "out",
        epochs=2,
        bench=table,
        train_epochs=1,
        limit=48,
        quiet=True,
        overrides={"C": 4, "N": 1, "batch_size": 16, "partial_k": 2, "steps_per_epoch": 2},
    )
    arch = Arch.from_string(summary["arch"])
    assert summary["config"]["warmup_epochs"] == 1  # 30% of 2 epochs, rounded
    assert summary["table"]["dataset"] == "cifar10-valid"
    assert 0 < summary["table"]["test_acc"] <= 100
    assert summary["train"]["epochs"] == 1 and "test" in summary["train"]["eval"]
    saved = json.loads((tmp_path / "out" / "search.json").read_text())
    assert saved["epochs"][-1]["table_acc"] is not None
    assert (tmp_path / "out" / "search.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["arch"] == arch.to_string()
    with pytest.raises(SearchError, match="not a one-shot method"):
        run_oneshot("rea", "digits", tmp_path / "x", quiet=True)


def test_search_splits_halve_a_setting_without_valid(digits) -> None:
    from nasforge.data import DatasetSplits
    from nasforge.search.oneshot import search_splits

    train, valid = search_splits(digits, seed=0)
    assert train is digits.train and valid is digits.evals["valid"]
    no_valid = DatasetSplits(
        "cifar10-like",
        digits.train,
        {"test": digits.evals["test"]},
        digits.num_classes,
        digits.resolution,
        digits.mean,
        digits.std,
        digits.pad,
        digits.flip,
    )
    a, b = search_splits(no_valid, seed=0)
    assert len(a) + len(b) == len(digits.train) and abs(len(a) - len(b)) <= 1
    merged = torch.cat([a.labels, b.labels]).sort().values
    assert torch.equal(merged, digits.train.labels.sort().values)
    a2, _ = search_splits(no_valid, seed=0)
    assert torch.equal(a.images, a2.images)
