"""Width search: evolution under a FLOPs budget, supernet training, protocol and CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from nasforge.data import DeviceLoader, load_splits
from nasforge.errors import SearchError
from nasforge.nn.slimmable import FixedSharing, LocallyFreeSharing, SlimmableNetwork
from nasforge.search import BLACKBOX, ONESHOT, WIDTH
from nasforge.search.width import (
    CafeNetSearch,
    EvolutionSettings,
    SupernetSettings,
    UniformWidth,
    evolve,
    sandwich_widths,
    train_supernet,
    uniform_for_budget,
)
from nasforge.search.width.protocol import read_json
from nasforge.spaces.width import make_space
from nasforge.train import get_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registered_as_width_algorithms() -> None:
    for name in ("cafenet", "fixed-width", "uniform-width", "aows"):
        assert name in WIDTH and name not in BLACKBOX and name not in ONESHOT


def test_evolution_respects_budget_and_climbs() -> None:
    """Every evaluated configuration fits the budget; with a score that rewards width, the
    search ends near the budget and beats its initial population."""
    space = make_space("resnet56")
    budget = space.parse_budget("40%")
    weights = np.random.default_rng(0).random(len(space.groups))

    def score(widths: tuple[int, ...]) -> float:
        return float(np.dot(weights, np.asarray(widths) / space.full))

    res = evolve(space, score, budget, rng=np.random.default_rng(1),
                 settings=EvolutionSettings(population=12, generations=8, parents=4))  # fmt: skip
    flops = np.array([h["flops_m"] for h in res.history])
    assert (flops <= budget + 1e-9).all()
    assert float(space.flops(res.best_widths)) <= budget
    assert float(space.flops(res.best_widths)) >= 0.8 * budget
    init = max(h["score"] for h in res.history if h["generation"] == 0)
    assert res.best_score >= init
    assert res.best_score == max(h["score"] for h in res.history)
    # Deterministic given the seed.
    again = evolve(space, score, budget, rng=np.random.default_rng(1),
                   settings=EvolutionSettings(population=12, generations=8, parents=4))  # fmt: skip
    assert again.best_widths == res.best_widths


def test_uniform_baseline_is_largest_fitting_ratio() -> None:
    space = make_space("resnet20")
    budget = space.parse_budget("50%")
    ratio, widths = uniform_for_budget(space, budget)
    assert float(space.flops(widths)) <= budget
    bigger = space.uniform(min(1.0, ratio + 0.01))
    assert float(space.flops(bigger)) > budget
    res = UniformWidth(space).search("50%")
    assert res.widths == list(widths) and res.algorithm == "uniform-width"
    with pytest.raises(SearchError, match="below the smallest"):
        UniformWidth(space).search("0.5%")


@pytest.fixture(scope="module")
def tiny_data():
    return load_splits("digits", limit=64)


def test_supernet_training_and_search_within_budget(tiny_data) -> None:
    space = make_space("resnet20", resolution=16, num_classes=10)
    search = CafeNetSearch(
        space,
        recipe=get_recipe("nb201-12e", epochs=1, batch_size=32),
        seed=0,
        supernet=SupernetSettings(num_random=1, num_placements=2),
        evolution=EvolutionSettings(population=3, generations=1, parents=2),
        calib_images=64,
        eval_batch_size=64,
    )
    with pytest.raises(SearchError, match="fit"):
        search.search("50%")
    log = search.fit(tiny_data)
    assert len(log.epochs) == 1 and log.selections > 0
    res = search.search("50%")
    assert res.flops_m <= res.budget_mflops
    assert all(e["flops_m"] <= res.budget_mflops for e in res.evaluated)
    assert 0.0 <= res.supernet_acc <= 100.0
    assert len(res.placement) == len(space.groups)
    # The winner's score is its cached supernet score (one evaluation per configuration).
    assert search.score(tuple(res.widths)) == res.supernet_acc


def test_train_supernet_is_seeded(tiny_data) -> None:
    space = make_space("resnet20", resolution=16, num_classes=10)
    recipe = get_recipe("nb201-12e", epochs=1, batch_size=32)
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        net = SlimmableNetwork(space.spec)
        train_supernet(net, LocallyFreeSharing(space), tiny_data, recipe, seed=3,
                       settings=SupernetSettings(num_random=1, num_placements=2))  # fmt: skip
        states.append(net.net.stem.conv.weight.detach().clone())
    torch.testing.assert_close(states[0], states[1], rtol=0, atol=0)


def test_train_step_applies_only_the_min_loss_placement(tiny_data) -> None:
    """One training step equals a manual min-min step: per sandwich width, back-propagate
    only the candidate placement with the lowest loss; any other choice changes the result."""
    space = make_space("resnet20", resolution=16, num_classes=10)
    sharing = LocallyFreeSharing(space)
    bs = len(tiny_data.train)  # one step per epoch
    recipe = get_recipe("nb201-12e", epochs=1, batch_size=bs)
    settings = SupernetSettings(num_random=1, num_placements=3)
    torch.manual_seed(0)
    net = SlimmableNetwork(space.spec)
    init = copy.deepcopy(net)
    log = train_supernet(net, sharing, tiny_data, recipe, seed=3, settings=settings)
    assert log.selections > 0
    loader = DeviceLoader(tiny_data.train, tiny_data, bs, train=True, seed=3)
    loader.set_epoch(0)
    (x, y), *rest = list(loader)
    assert not rest

    def manual(pick: Callable[[list[float]], int]) -> list[torch.Tensor]:
        ref = copy.deepcopy(init).train()
        opt = recipe.build_optimizer(ref.parameters())
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(0, 0, 1)
        rng = np.random.default_rng([3, 1])
        for w in sandwich_widths(space, rng, settings.num_random):
            cands = sharing.placements(w, rng, settings.num_placements)
            with torch.no_grad():
                losses = [float(F.cross_entropy(ref(x, p), y)) for p in cands]
            F.cross_entropy(ref(x, cands[pick(losses)]), y).backward()
        if recipe.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), recipe.grad_clip)
        opt.step()
        return [p.detach() for p in ref.parameters()]

    trained = [p.detach() for p in net.parameters()]
    for a, b in zip(trained, manual(lambda ls: int(np.argmin(ls))), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    worst = manual(lambda ls: int(np.argmax(ls)))
    assert any(
        not torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(trained, worst, strict=True)
    )


def test_train_supernet_estimates_full_width_bn_statistics(tiny_data, monkeypatch) -> None:
    # Training forwards use copies of the BN buffers, so without the final recalibration
    # supernet.net would keep (and supernet.pt save) the initial statistics.
    space = make_space("resnet20", resolution=16, num_classes=10)
    torch.manual_seed(0)
    net = SlimmableNetwork(space.spec)
    before = {k: v.clone() for k, v in net.net.state_dict().items() if "running" in k}
    train_supernet(net, FixedSharing(space), tiny_data,
                   get_recipe("nb201-12e", epochs=1, batch_size=32), seed=0,
                   settings=SupernetSettings(num_random=0))  # fmt: skip
    after = net.net.state_dict()
    assert before and all(not torch.equal(after[k], v) for k, v in before.items())
    # A CUDA device on a machine without CUDA is a clear error before any work.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SearchError, match="'cuda' requested but CUDA is not available"):
        train_supernet(net, FixedSharing(space), tiny_data, get_recipe("nb201-12e"), seed=0,
                       device="cuda")  # fmt: skip


def test_cli_search_then_retrain(tmp_path) -> None:
    from nasforge.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    common = ["--limit", "64", "--batch-size", "32", "--epochs", "1"]
    r = runner.invoke(app, ["width", "search", "--backbone", "resnet20", "--dataset", "digits",
                            "--flops", "50%", "--sharing", "fixed", "-o", str(out),
                            "--population", "3", "--generations", "1", "--parents", "2",
                            "--num-random", "1", *common])  # fmt: skip
    assert r.exit_code == 0, r.output
    rec = read_json(out / "search.json", "width-search")
    assert rec["result"]["flops_m"] <= rec["result"]["budget_mflops"]
    assert rec["settings"]["sharing"] == "fixed"
    assert rec["settings"]["supernet"]["distill"] is True  # AutoSlim / BigNAS baseline
    assert (out / "search_front.png").read_bytes()[:4] == b"\x89PNG"
    saved = torch.load(out / "supernet.pt", weights_only=True)["state_dict"]
    means = [v for k, v in saved.items() if k.endswith("running_mean")]
    assert means and all(bool(m.abs().sum() > 0) for m in means)  # not the initial zeros
    r = runner.invoke(app, ["width", "retrain", str(out), "--epochs", "1", "--batch-size", "32",
                            "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "% [ok]" in r.output  # the status survives rich markup
    ret = json.loads((out / "retrain.json").read_text())
    run = ret["runs"]["searched"]
    assert run["widths"] == rec["result"]["widths"] and run["status"] == "ok"
    assert run["test_acc"] is not None
    # A directory without a search record is a clear error.
    with pytest.raises(SearchError, match="does not exist"):
        read_json(tmp_path / "nothing" / "search.json", "width-search")
    r = runner.invoke(app, ["width", "space", "--backbone", "mobilenetv2", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["backbone"] == "mobilenetv2"


def test_compare_runs_all_methods_at_same_budgets(tmp_path) -> None:
    from nasforge.search.width.protocol import run_compare

    tiny = get_recipe("nb201-12e", epochs=1, batch_size=32)
    rec = run_compare(
        backbone="resnet20",
        dataset="digits",
        budgets=["40%", "60%"],
        out_dir=tmp_path,
        supernet_recipe=tiny,
        retrain_recipe=tiny,
        supernet=SupernetSettings(num_random=0, num_placements=2),
        evolution=EvolutionSettings(population=2, generations=0, parents=1),
        limit=32,
    )
    assert set(rec["methods"]) == {"cafenet", "fixed-width", "uniform-width"}
    for rows in rec["methods"].values():
        assert len(rows) == 2
        for row, budget in zip(rows, rec["budgets_mflops"], strict=True):
            assert row["flops_m"] <= budget and row["budget_mflops"] == budget
            assert row["status"] == "ok" and row["test_acc"] is not None
    assert (tmp_path / "compare.png").exists()
    assert read_json(tmp_path / "compare.json", "width-compare")["budgets"] == ["40%", "60%"]


@pytest.mark.slow  # two tiny supernet trainings
def test_baselines_settings_distillation_and_bn_calibration(tiny_data) -> None:
    """The fixed-sharing baseline trains as AutoSlim / BigNAS do (in-place distillation);
    every scorer recalibrates BN on >= 2,000 training images; CafeNet's zone is in bins."""
    from nasforge.search.width import FixedWidthSearch
    from nasforge.search.width.supernet import soft_cross_entropy

    space = make_space("resnet20", resolution=16, num_classes=10)
    recipe = get_recipe("nb201-12e", epochs=1, batch_size=32)
    fixed = FixedWidthSearch(space, recipe=recipe)
    cafe = CafeNetSearch(space, recipe=recipe)
    assert fixed.settings()["supernet"]["distill"] is True
    # ... also when the caller sets other supernet knobs, unless distill is set explicitly.
    given = SupernetSettings(num_random=1)
    assert FixedWidthSearch(space, recipe=recipe, supernet=given).supernet_settings.distill
    assert not FixedWidthSearch(space, recipe=recipe, distill=False).supernet_settings.distill
    assert cafe.settings()["supernet"]["distill"] is False
    assert cafe.settings()["zone_unit"] == "bins" and cafe.settings()["r_bins"] == 1
    for s in (fixed, cafe):
        assert s.calib_images >= 2000 and s.calib_batches * s.eval_batch_size >= 2000
    logits = torch.randn(4, 10)
    onehot = F.one_hot(torch.tensor([1, 2, 3, 4]), 10).float()
    torch.testing.assert_close(
        soft_cross_entropy(logits, onehot), F.cross_entropy(logits, torch.tensor([1, 2, 3, 4]))
    )
    # Distillation changes what the non-largest widths learn from.
    states = []
    for distill in (False, True):
        torch.manual_seed(0)
        net = SlimmableNetwork(space.spec)
        train_supernet(net, FixedSharing(space), tiny_data, recipe, seed=3,
                       settings=SupernetSettings(num_random=1, distill=distill))  # fmt: skip
        states.append(net.net.stem.conv.weight.detach().clone())
    assert not torch.equal(states[0], states[1])


@pytest.mark.slow  # a latency model, three one-epoch supernets and four tiny retrainings
def test_compare_at_equal_measured_latency(tmp_path) -> None:
    """`width compare --latency-target`: one measured latency model, every method (AOWS
    included) searched under each target, every winner's latency measured and retrained."""
    from nasforge.cli import app

    out = tmp_path / "cmp"
    args = ["width", "compare", "--latency-target", "1000", "--levels", "3",
            "--latency-samples", "20", "--latency-val", "4", "--latency-batch", "4",
            "--latency-warmup", "1", "--latency-repeats", "2", "--limit", "32",
            "--batch-size", "32", "--epochs", "1", "--retrain-epochs", "1",
            "--population", "2", "--generations", "0", "--parents", "1",
            "--num-random", "0", "--placements", "2", "-o", str(out)]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rec = read_json(out / "compare.json", "width-compare")
    assert rec["mode"] == "latency" and rec["latency_targets_ms"] == [1000.0]
    assert rec["budgets_mflops"] is None and rec["latency_model"]["val_rmse_ms"] >= 0
    assert set(rec["methods"]) == {"cafenet", "fixed-width", "aows", "uniform-width"}
    for rows in rec["methods"].values():
        assert [row["latency_target_ms"] for row in rows] == [1000.0]
        for row in rows:
            assert row["pred_latency_ms"] <= row["latency_target_ms"]
            assert row["measured_latency_ms"] > 0
            assert row["status"] == "ok" and row["test_acc"] is not None
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    r = CliRunner().invoke(app, ["width", "compare", "--latency-target", "0,1", "-o",
                                 str(tmp_path / "bad")])  # fmt: skip
    assert r.exit_code != 0 and "latency target" in str(r.exception or r.output)
