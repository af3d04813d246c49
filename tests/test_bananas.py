"""BANANAS and the zero-cost warm-started BANANAS on the synthetic table: budgets,
reproducibility (no test leak: tests/test_search.py covers every registered searcher), the
predictor, the warm start and its charged proxy cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.bench import make_synthetic_table
from nasforge.errors import SearchError
from nasforge.evaluate import TabularEvaluator
from nasforge.evaluate.zero_cost import WithZeroCost
from nasforge.search import ALGORITHMS
from nasforge.search.base import Budget, Searcher, run_search
from nasforge.search.blackbox.bananas import MLPEnsemble
from nasforge.search.protocol import run_protocol
from nasforge.spaces import get_space
from nasforge.spaces.nb201 import Arch

ALGOS = ["bananas", "zc-bananas", "zc-local-search"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("bananas") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


@pytest.fixture(scope="module")
def evaluator(table):
    return TabularEvaluator(table, "cifar10-valid")


@pytest.fixture(scope="module")
def with_proxy(evaluator, params_proxy):
    return WithZeroCost(evaluator, params_proxy)


def test_registered_as_blackbox_searchers():
    for name in ALGOS:
        cls = ALGORITHMS.get(name)
        assert cls.kind == "blackbox" and issubclass(cls, Searcher)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_budget_is_respected(evaluator, with_proxy, algo):
    for ev in (evaluator, with_proxy):
        (r,) = run_protocol(algo, ev, "3000s", runs=1, seed=3)
        assert r.num_evals > 10
        assert r.total_cost <= 3000 and 3000 - r.total_cost < 300
        assert r.times[-1] == pytest.approx(r.total_cost)
    (e,) = run_protocol(algo, evaluator, "13evals", runs=1, seed=3)
    assert e.num_evals == 13


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_run_and_no_repeated_archs(evaluator, algo):
    a = run_protocol(algo, evaluator, "1500s", runs=2, seed=11)
    b = run_protocol(algo, evaluator, "1500s", runs=2, seed=11)
    for x, y in zip(a, b, strict=True):
        assert x.history == y.history and x.final_arch == y.final_arch
        # on a table a repeat costs budget and teaches nothing: never asked twice
        assert len(set(x.history["arch_index"])) == x.num_evals
    assert a[0].history["arch_index"] != a[1].history["arch_index"]


@pytest.mark.slow
def test_bananas_beats_random_search_on_the_synthetic_table(evaluator):
    # averaged over runs: the predictor must find better archs than uniform sampling
    ban = run_protocol("bananas", evaluator, "3000s", runs=3, seed=0)
    rnd = run_protocol("random", evaluator, "3000s", runs=3, seed=0)
    assert np.mean([r.final_valid for r in ban]) > np.mean([r.final_valid for r in rnd])


def test_mlp_ensemble_learns_and_its_members_differ():
    rng = np.random.default_rng(0)
    x = (rng.random((32, 30)) < 0.3).astype(np.float32)
    y = x[:, :10].sum(1) * 2.0 + 50.0
    ens = MLPEnsemble(seed=0)
    ens.fit(x, y)
    pred = ens.predict(x)
    assert pred.shape == (5, 32)
    assert np.corrcoef(pred.mean(0), y)[0, 1] > 0.9
    assert pred.std(0).mean() > 0  # independently initialised members disagree somewhat
    again = MLPEnsemble(seed=0)
    again.fit(x, y)
    np.testing.assert_array_equal(again.predict(x), pred)


def test_zc_bananas_starts_from_the_top_of_the_proxy_ranked_pool(with_proxy):
    s = ALGORITHMS.create("zc-bananas", seed=0, zc_pool=50)
    r = run_search(s, with_proxy, "3000s", seed=0)
    fid = r.history["fidelity"]
    assert fid[:50] == [0] * 50 and 0 not in fid[50:]
    pool = r.history["arch_index"][:50]
    params = r.history["valid"][:50]
    top = [i for _, i in sorted(zip(params, pool, strict=True), key=lambda t: -t[0])[:10]]
    assert r.history["arch_index"][50:60] == top
    # each proxy query was charged on the clock: 50 x 0.5 s before the first real one
    assert r.history["cost"][:50] == [0.5] * 50
    assert r.times[49] == pytest.approx(25.0)
    assert s.config()["warm_start"] is True
    # the recommendation is a real evaluation, never a proxy score
    assert r.final_arch is not None and r.final_valid < 100


def test_zc_bananas_without_proxies_is_bananas(evaluator):
    a = run_search(ALGORITHMS.create("zc-bananas", seed=4), evaluator, "3000s", seed=4)
    b = run_search(ALGORITHMS.create("bananas", seed=4), evaluator, "3000s", seed=4)
    assert a.history == b.history
    assert a.config["searcher"]["warm_start"] is False


def test_bananas_uses_the_space_path_encoding():
    space = get_space("nb201")
    assert "path" in space.encodings()
    s = ALGORITHMS.create("bananas", encoding="nope")
    from nasforge.search.base import SearchContext

    with pytest.raises(SearchError, match="encoding 'nope'"):
        s.start(SearchContext(fidelities=(), default_fidelity=12, seed=0, space=space))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_init": 1}, "num_init"),
        ({"k": 0}, "k"),
        ({"lr": 0.0}, "lr"),
        ({"num_ensemble": "5"}, "num_ensemble"),
    ],
)
def test_settings_are_checked(kwargs, match):
    with pytest.raises(SearchError, match=match):
        ALGORITHMS.create("bananas", **kwargs)
    with pytest.raises(SearchError, match="zc_pool"):
        ALGORITHMS.create("zc-bananas", zc_pool=0)


def test_budget_object_is_accepted(evaluator):
    r = run_search(ALGORITHMS.create("bananas", seed=0), evaluator, Budget("evals", 12))
    assert r.num_evals == 12


def test_zc_local_search_climbs_from_the_best_proxy_arch(with_proxy):
    s = ALGORITHMS.create("zc-local-search", seed=0, zc_pool=40)
    r = run_search(s, with_proxy, "9000s", seed=0)
    h = r.history
    assert h["fidelity"][:40] == [0] * 40 and 0 not in h["fidelity"][40:]
    ranked = [i for _, i in sorted(zip(h["valid"][:40], h["arch_index"][:40], strict=True),
                                   key=lambda t: -t[0])]  # fmt: skip
    start = Arch.from_index(h["arch_index"][40])
    assert start.to_index() == ranked[0]
    # then its neighbours, as local search does
    neigh = {a.to_index() for a in start.neighbors()}
    assert len(h["arch_index"]) > 65 and set(h["arch_index"][41:65]) == neigh
    assert s.config()["restart"] == "best proxy-ranked pool arch"


def test_zc_local_search_without_proxies_is_local_search(evaluator):
    a = run_search(ALGORITHMS.create("zc-local-search", seed=2), evaluator, "3000s", seed=2)
    b = run_search(ALGORITHMS.create("local-search", seed=2), evaluator, "3000s", seed=2)
    assert a.history == b.history


def test_mlp_ensemble_gradient_equals_autograd():
    # the hand-written backward pass against torch autograd on the same flat parameters
    rng = np.random.default_rng(1)
    ens = MLPEnsemble(seed=3, num_members=3, num_layers=4, width=7)
    dims = ens._init(12)
    x = (rng.random((3, 9, 12)) < 0.3).astype(np.float32)
    y = rng.normal(size=(3, 9)).astype(np.float32)
    loss, grad = ens.loss_and_grad(x, y)
    theta = torch.tensor(ens.theta, dtype=torch.float64, requires_grad=True)
    ws, bs = ens._views(theta, dims)
    h = torch.tensor(x, dtype=torch.float64)
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = h @ w + b
        if i < len(ws) - 1:
            h = torch.relu(h)
    ref = (h[..., 0] - torch.tensor(y, dtype=torch.float64)).abs().mean(1).sum()
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-5)
    np.testing.assert_allclose(grad, theta.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_candidates_come_from_the_next_best_archs_once_the_best_are_spent(evaluator):
    # naszilla/bananas get_candidates (patience_factor 5): when every mutant of the two
    # best archs is known, the next-best are mutated, so a refit still has k candidates
    s = ALGORITHMS.create("bananas", seed=0)
    from nasforge.search.base import SearchContext

    space = get_space("nb201")
    s.start(SearchContext(fidelities=(), default_fidelity=12, seed=0, space=space))
    archs = [Arch.from_index(i) for i in range(30)]
    for rank, arch in enumerate(archs):
        s.data[arch] = float(rank)
    for parent in archs[-2:]:  # the two best: every neighbour already evaluated
        for n in parent.neighbors():
            s.data.setdefault(n, -1.0)
    cands = s._candidates()
    assert len(cands) >= s.k and not set(cands) & set(s.data)
    assert s.config()["patience_factor"] == 5
