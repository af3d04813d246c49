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
from nasforge.search import BLACKBOX
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
        cls = BLACKBOX.get(name)
        assert issubclass(cls, Searcher)


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
    s = BLACKBOX.create("zc-bananas", seed=0, zc_pool=50)
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
    a = run_search(BLACKBOX.create("zc-bananas", seed=4), evaluator, "3000s", seed=4)
    b = run_search(BLACKBOX.create("bananas", seed=4), evaluator, "3000s", seed=4)
    assert a.history == b.history
    assert a.config["searcher"]["warm_start"] is False


def test_bananas_uses_the_space_path_encoding():
    space = get_space("nb201")
    assert "path" in space.encodings()
    s = BLACKBOX.create("bananas", encoding="nope")
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
        BLACKBOX.create("bananas", **kwargs)
    with pytest.raises(SearchError, match="zc_pool"):
        BLACKBOX.create("zc-bananas", zc_pool=0)


def test_budget_object_is_accepted(evaluator):
    r = run_search(BLACKBOX.create("bananas", seed=0), evaluator, Budget("evals", 12))
    assert r.num_evals == 12


def test_zc_local_search_climbs_from_the_best_proxy_arch(with_proxy):
    s = BLACKBOX.create("zc-local-search", seed=0, zc_pool=40)
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
    a = run_search(BLACKBOX.create("zc-local-search", seed=2), evaluator, "3000s", seed=2)
    b = run_search(BLACKBOX.create("local-search", seed=2), evaluator, "3000s", seed=2)
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
    s = BLACKBOX.create("bananas", seed=0)
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


# -- the released code's settings (naszilla/naszilla) -------------------------------------------


def test_defaults_are_the_released_naszilla_settings():
    cfg = BLACKBOX.create("bananas").config()
    assert cfg["variant"] == "naszilla"
    assert (cfg["epochs"], cfg["beta2"], cfg["eps"], cfg["keras_adam"]) == (150, 0.99, 1e-7, True)
    assert (cfg["targets"], cfg["num_arches_to_mutate"], cfg["mutation"]) == (
        "loss",
        1,
        "per_position",
    )
    assert cfg["encoding"] == "trunc_path"
    old = BLACKBOX.create("bananas", variant="nasforge-v1").config()
    assert (old["epochs"], old["beta2"], old["targets"], old["num_arches_to_mutate"]) == (
        200,
        0.999,
        "standardised",
        2,
    )
    assert (old["mutation"], old["encoding"]) == ("one_position", "path")
    # an explicit setting wins over its variant's
    assert BLACKBOX.create("bananas", epochs=7, variant="nasforge-v1").config()["epochs"] == 7
    for kwargs, match in [
        ({"variant": "naslib"}, "variant 'naslib'"),
        ({"targets": "raw"}, "targets 'raw'"),
        ({"mutation": "two"}, "mutation 'two'"),
        ({"beta2": 1.0}, "beta2"),
    ]:
        with pytest.raises(SearchError, match=match):
            BLACKBOX.create("bananas", **kwargs)


def test_trunc_path_keeps_the_one_and_two_edge_paths():
    # naszilla cell_201.py get_path_indices: path 0->3 (edge 3) at its op, paths 0->1->3
    # (edges 0, 4) and 0->2->3 (edges 1, 5) at 5 + first op + 5 * second op; the 0->1->2->3
    # path (index >= 30) is cut
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        o = arch.op_ids
        want = {o[3], 5 + o[0] + 5 * o[4], 5 + o[1] + 5 * o[5]}
        enc = space.encode(arch, "trunc_path")
        assert enc.shape == (30,) and set(np.flatnonzero(enc)) == want
        np.testing.assert_array_equal(enc, space.encode(arch, "path")[:30])


def _started(**kwargs):
    from nasforge.search.base import SearchContext

    s = BLACKBOX.create("bananas", seed=0, **kwargs)
    s.start(SearchContext(fidelities=(), default_fidelity=12, seed=0, space=get_space("nb201")))
    return s


def test_mutation_changes_each_edge_with_probability_one_quarter():
    s = _started()
    assert s.encoding == "trunc_path"
    parent = Arch.from_index(1234)
    changed = np.array(
        [[a != b for a, b in zip(s._mutants(parent)[0].ops, parent.ops, strict=True)]
         for _ in range(3000)]
    )  # fmt: skip
    np.testing.assert_allclose(changed.mean(axis=0), 0.25, atol=0.04)
    counts = np.bincount(changed.sum(axis=1), minlength=7) / len(changed)
    # Binomial(6, 1/4): no change 17.8%, two or more edges 46.6%
    assert counts[0] == pytest.approx(0.75**6, abs=0.03)
    assert counts[2:].sum() == pytest.approx(1 - 0.75**6 - 6 * 0.25 * 0.75**5, abs=0.04)
    old = _started(variant="nasforge-v1")
    for _ in range(50):  # nasforge-v1: always exactly one edge
        (child,) = old._mutants(parent)
        assert sum(a != b for a, b in zip(child.ops, parent.ops, strict=True)) == 1


def test_ensemble_fits_raw_targets_with_kerass_adam():
    # one member, the whole set in one batch (order-free): 3 epochs of Keras' Adam
    # (lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + 1e-7), beta2 0.99) on the raw
    # targets, against torch autograd and that update written out
    rng = np.random.default_rng(2)
    x = (rng.random((8, 30)) < 0.2).astype(np.float32)
    y = 100.0 - rng.uniform(60, 90, size=8)
    ens = MLPEnsemble(seed=5, num_members=1, num_layers=3, width=6, epochs=3, batch_size=32)
    dims = ens._init(30)
    theta = torch.tensor(ens.theta, dtype=torch.float64)
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    for t in range(1, 4):
        th = theta.clone().requires_grad_(True)
        ws, bs = ens._views(th, dims)
        h = torch.tensor(x, dtype=torch.float64)[None]
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = h @ w + b
            if i < len(ws) - 1:
                h = torch.relu(h)
        (h[..., 0] - torch.tensor(y)[None]).abs().mean(1).sum().backward()
        g = th.grad
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        theta = theta - 0.01 * (1 - 0.99**t) ** 0.5 / (1 - 0.9**t) * m / (v.sqrt() + 1e-7)
    ens.rng = np.random.default_rng(5)
    ens.fit(x, y)  # fit re-draws the same initial weights from the same seed
    np.testing.assert_allclose(ens.theta, theta.numpy(), rtol=1e-4, atol=1e-5)
    assert (ens._mean, ens._std) == (0.0, 1.0)  # raw targets: predictions on their scale
