"""AOWS: exact MRF inference, the Lagrangian bisection, the latency model, the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.cost.latency_model import LatencyModel, sample_configurations
from nasforge.errors import SearchError
from nasforge.search import WIDTH
from nasforge.search.width.aows import (
    AOWSSettings,
    OWSSolver,
    UnaryHistory,
    aows_temperature,
    parse_latency_target,
)
from nasforge.search.width.mrf import PairwiseMRF
from nasforge.search.width.protocol import read_json
from nasforge.spaces import get_space
from nasforge.spaces.width import make_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _chain(rng: np.random.Generator, states: list[int]):
    unary = [rng.normal(size=s) for s in states]
    pair = {(i, i + 1): rng.normal(size=(states[i], states[i + 1])) for i in range(len(states) - 1)}
    return unary, pair


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_equals_brute_force_on_a_4_layer_chain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    states = [3, 4, 2, 5]
    mrf = PairwiseMRF(states, [(0, 1), (1, 2), (2, 3)])
    unary, pair = _chain(rng, states)
    score, x = mrf.decode(unary, pair)
    best, bx = mrf.brute_force(unary, pair)
    assert x == bx and score == pytest.approx(best)
    assert mrf.score(x, unary, pair) == pytest.approx(score)


def test_decode_and_marginals_exact_on_a_residual_width_graph() -> None:
    """ResNet width groups are no chain (a stream touches all its blocks): elimination
    stays exact there too, for decoding and for the sum-product marginals."""
    rng = np.random.default_rng(3)
    # stream0 - block - stream1 triangle plus a leaf: like a ResNet stage boundary.
    states = [3, 2, 3, 2]
    edges = [(0, 1), (1, 2), (0, 2), (2, 3)]
    mrf = PairwiseMRF(states, edges)
    unary = [rng.normal(size=s) for s in states]
    pair = {e: rng.normal(size=(states[e[0]], states[e[1]])) for e in edges}
    assert mrf.decode(unary, pair)[1] == mrf.brute_force(unary, pair)[1]
    xs = list(itertools.product(*(range(s) for s in states)))
    p = np.exp([mrf.score(x, unary, pair) for x in xs])
    p /= p.sum()
    for v, lm in enumerate(mrf.log_marginals(unary, pair)):
        want = [sum(pi for pi, x in zip(p, xs, strict=True) if x[v] == k) for k in range(states[v])]
        np.testing.assert_allclose(np.exp(lm), want, rtol=1e-9)


def _synthetic_model(space, seed: int = 0) -> LatencyModel:
    """A known monotone latency table (cumulative sums of positive increments), as the
    free per-group-pair tables of ``keying="group-pair"``."""
    rng = np.random.default_rng(seed)
    shell = LatencyModel(space, keying="group-pair")
    tables = {}
    for term, shape in zip(shell.terms, shell.shapes, strict=True):
        t = rng.random(shape) * 0.05
        for ax in range(len(shape)):
            t = np.cumsum(t, axis=ax)
        tables[term] = t
    return LatencyModel(space, tables, keying="group-pair")


def test_latency_model_recovers_a_synthetic_table_with_noise() -> None:
    space = make_space("resnet20", levels=3)
    truth = _synthetic_model(space)
    model = LatencyModel(space, keying="group-pair")
    train = sample_configurations(model, np.random.default_rng(1), 500, biased=True)
    held = sample_configurations(model, np.random.default_rng(2), 200, biased=False)
    noise = 0.01
    y = truth.predict_indices(train) + np.random.default_rng(3).normal(0, noise, len(train))
    model.fit(train, y, penalty=100.0)
    yv = truth.predict_indices(held)
    # Held-out error at the noise level, far below the spread of latencies.
    assert model.rmse(held, yv) < 1.5 * noise < 0.02 * yv.std()
    # Tables are identified up to moving mass between terms sharing a group; their sums
    # over all configurations (what search uses) are recovered. Check every config of a
    # random slice exactly: full/smallest and the extremes.
    for w in (space.smallest(), space.largest()):
        assert float(model.predict(w)) == pytest.approx(float(truth.predict(w)), abs=3 * noise)
    assert (model.x >= 0).all()
    # Monotone: a wider configuration is never predicted faster than a narrower one.
    assert (model.monotonicity() @ model.x <= 1e-3).all()


def test_monotonicity_penalty_repairs_a_noisy_sparse_fit() -> None:
    space = make_space("resnet20", levels=3)
    truth = _synthetic_model(space, seed=4)
    train = sample_configurations(truth, np.random.default_rng(5), 120, biased=True)
    y = truth.predict_indices(train) + np.random.default_rng(6).normal(0, 0.05, len(train))
    plain = LatencyModel(space, keying="group-pair")
    penal = LatencyModel(space, keying="group-pair")
    plain.fit(train, y, penalty=0.0)
    penal.fit(train, y, penalty=100.0)
    d = penal.monotonicity()
    assert np.maximum(d @ penal.x, 0).sum() < np.maximum(d @ plain.x, 0).sum()


def test_bisection_meets_the_target_and_is_tight() -> None:
    space = make_space("resnet20", levels=4)
    lat = _synthetic_model(space, seed=7)
    solver = OWSSolver(lat)
    rng = np.random.default_rng(8)
    # Unaries that reward width (as accuracy does): the target binds.
    unary = [np.sort(rng.random(int(n))) for n in space.num_bins]
    lo = float(lat.predict(space.smallest()))
    hi = float(lat.predict(space.largest()))
    for frac in (0.3, 0.6, 0.9):
        target = lo + frac * (hi - lo)
        sol = solver.solve(unary, target)
        assert sol.latency_ms <= target
        # The multiplier is tight: a slightly smaller one breaks the target.
        assert solver.decode(unary, sol.gamma * (1 - 2**-10)).latency_ms >= sol.latency_ms
        # And the decoded configuration is optimal for its multiplier.
        un, pa = solver.potentials(unary, sol.gamma)
        assert solver.mrf.score(sol.indices, un, pa) == pytest.approx(solver.mrf.decode(un, pa)[0])
    with pytest.raises(SearchError, match="below the predicted latency of the smallest"):
        solver.solve(unary, 0.5 * lo)


def test_temperature_schedule_is_the_official_one() -> None:
    # train_nas.py:285-301 with warmup 5, 20 epochs, min 5e-4.
    kw = {"epochs": 20, "warmup": 5, "min_temp": 0.0005}
    assert aows_temperature(0, 100, 0, **kw) == 1.0
    assert aows_temperature(5, 100, 0, **kw) == pytest.approx(1.0)
    assert aows_temperature(5, 100, 50, **kw) == pytest.approx(0.1)  # log-midway to 0.01
    assert aows_temperature(6, 100, 0, **kw) == pytest.approx(0.01)
    assert aows_temperature(10, 100, 0, **kw) == pytest.approx(0.001)
    assert aows_temperature(19, 100, 99, **kw) == pytest.approx(0.0005, rel=0.01)
    # Short runs keep a monotone schedule.
    temps = [aows_temperature(e, 4, s, epochs=3, warmup=1, min_temp=5e-4)
             for e in range(3) for s in range(4)]  # fmt: skip
    assert all(a >= b for a, b in itertools.pairwise(temps))


def test_unary_history_is_a_windowed_average() -> None:
    h = UnaryHistory([2, 3], window=4)
    h.update([0, 2], np.array([1.0, 1.0]))
    h.update([0, 1], np.array([3.0, 3.0]))
    h.update([0, 1], np.array([5.0, 5.0]))  # the first chunk of group 0 / bin 0 drops out
    u = h.unaries()
    assert u[0][0] == pytest.approx(4.0) and u[1][2] == 1.0 and u[1][1] == 4.0
    assert u[0][1] == 0.0  # never sampled


def test_bad_latency_targets_are_one_line_errors() -> None:
    assert parse_latency_target("2.5ms") == 2.5
    for bad in ("fast", "0", "-1"):
        with pytest.raises(SearchError, match="latency target"):
            parse_latency_target(bad)
    with pytest.raises(SearchError):
        AOWSSettings(solve_every=0)
    assert "aows" in WIDTH


@pytest.mark.slow
def test_width_cli_trains_aows_with_its_official_recipe() -> None:
    # bermanmaxim/AOWS train_nas.py:36-46, 82-87: 20 epochs, lr 0.1 x batch / 256, momentum
    # 0.9, wd 1e-5, no scheduler; the other methods keep NB201's recipe for 10 epochs.
    from nasforge.cli.width import _supernet_recipe

    aows = _supernet_recipe("aows", None, None, 64, None)
    assert (aows.name, aows.epochs, aows.batch_size) == ("aows-20e", 20, 64)
    assert (aows.lr, aows.weight_decay, aows.momentum, aows.nesterov) == (0.025, 1e-5, 0.9, False)
    assert {aows.lr_at(e) for e in range(20)} == {0.025}
    assert _supernet_recipe("aows", None, 3, 512, None).lr == pytest.approx(0.2)
    other = _supernet_recipe("cafenet", None, None, 64, None)
    assert other.name.startswith("nb201-200e") and other.epochs == 10
    assert _supernet_recipe("aows", "nb201-12e", None, 64, None).name.startswith("nb201-12e")


def test_cli_aows_end_to_end_at_tiny_size(tmp_path) -> None:
    """`width search --method aows` measures, fits, trains, decodes and measures the result;
    uniform scaling is reported under the same latency model. Tiny: a 3-level space,
    a handful of timed configurations, one epoch on 64 digits."""
    from nasforge.cli import app

    out = tmp_path / "aows"
    args = ["width", "search", "--method", "aows", "--latency-target", "1000", "--levels", "3",
            "--latency-samples", "20", "--latency-val", "4", "--latency-batch", "4",
            "--latency-warmup", "1", "--latency-repeats", "2", "--limit", "64",
            "--batch-size", "32", "--epochs", "1", "-o", str(out),
            "--latency-model", str(out / "latency.json")]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rec = read_json(out / "search.json", "width-search")
    res = rec["result"]
    assert res["algorithm"] == "aows" and rec["method"] == "aows"
    assert res["pred_latency_ms"] <= res["latency_target_ms"] == 1000.0
    assert res["measured_latency_ms"] > 0 and rec["uniform"]["measured_latency_ms"] > 0
    assert rec["latency_model"]["val_rmse_ms"] >= 0
    assert rec["settings"]["supernet"]["distill"] is True
    assert rec["settings"]["supernet"]["num_random"] == 1
    # AOWS's own supernet recipe (train_nas.py): constant lr 0.1 x batch / 256, wd 1e-5
    recipe = rec["recipe"]
    assert recipe["name"].startswith("aows-20e") and recipe["epochs"] == 1
    assert recipe["scheduler"] == "constant"
    assert recipe["lr"] == pytest.approx(0.1 * 32 / 256) and recipe["weight_decay"] == 1e-5
    assert recipe["nesterov"] is False
    saved = json.loads((out / "latency.json").read_text())
    assert saved["info"]["measure"]["batch_size"] == 4
    # Another method under the same target reuses the saved model: equal-latency comparison.
    uni_out = tmp_path / "uniform"
    r = CliRunner().invoke(app, ["width", "search", "--method", "uniform", "--latency-target",
                                 "1000", "--levels", "3", "--limit", "64", "-o", str(uni_out),
                                 "--latency-model", str(out / "latency.json"),
                                 "--latency-batch", "4", "--latency-warmup", "1",
                                 "--latency-repeats", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    uni = read_json(uni_out / "search.json", "width-search")
    assert uni["latency_model"] == rec["latency_model"]  # the same fitted tables
    assert uni["result"]["algorithm"] == "uniform-width"
    assert uni["result"]["pred_latency_ms"] <= 1000.0 < float("inf")
    assert uni["result"]["measured_latency_ms"] > 0
    # aows without a target and an unknown method: one line, exit 2, before any work.
    for bad, msg in (
        (["--method", "aows"], "latency target"),
        (["--method", "slim"], "unknown width method"),
    ):
        r = CliRunner().invoke(app, ["width", "search", "-o", str(tmp_path / "x"), *bad])
        assert r.exit_code != 0 and msg in str(r.exception or r.output)


@pytest.mark.slow  # a latency model of the real network and a one-epoch supernet
def test_aows_on_nats_sss_meets_the_target_under_the_fitted_model(tmp_path) -> None:
    """`width search --backbone nats-sss --method aows`: the official candidates of every
    layer, a latency model of the NATS-Bench network measured on this CPU, and a decoded
    configuration that meets a binding target under that model."""
    from nasforge.cli import app
    from nasforge.cost.latency_model import LatencyFitSettings, MeasureSettings
    from nasforge.search.width.protocol import LatencySetup, load_data, space_for

    space = space_for("nats-sss", load_data("digits", limit=32))
    assert [c.tolist() for c in space.candidates] == [[8, 16, 24, 32, 40, 48, 56, 64]] * 5
    path = tmp_path / "latency.json"
    timing = MeasureSettings(batch_size=4, warmup=1, repeats=2)
    model = LatencySetup(path, LatencyFitSettings(samples=24, val_samples=4), timing).model(
        space, device="cpu", seed=0
    )
    lo, hi = (float(model.predict(w)) for w in (space.smallest(), space.largest()))
    target = lo + 0.4 * (hi - lo)  # binding: the largest configuration does not fit
    out = tmp_path / "aows"
    r = CliRunner().invoke(app, ["width", "search", "--backbone", "nats-sss", "--dataset",
                                 "digits", "--method", "aows", "--latency-target", str(target),
                                 "--latency-model", str(path), "--latency-batch", "4",
                                 "--latency-warmup", "1", "--latency-repeats", "2",
                                 "--limit", "32", "--batch-size", "16", "--epochs", "1",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    rec = read_json(out / "search.json", "width-search")
    res = rec["result"]
    assert rec["space"]["backbone"] == "nats-sss" and res["algorithm"] == "aows"
    assert all(w in range(8, 65, 8) for w in res["widths"])
    assert res["pred_latency_ms"] == pytest.approx(float(model.predict(res["widths"])))
    assert res["pred_latency_ms"] <= target < hi
    assert res["measured_latency_ms"] > 0
    assert get_space("nats-sss").to_string(tuple(res["widths"]))  # a nats-sss arch
