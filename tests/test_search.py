"""Black-box search: budgets, the ask/tell loop, the five algorithms and the protocol.

Everything runs against a synthetic table with a known optimum (``make_synthetic_table``),
12-epoch curves only, so the whole module takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from nasforge.bench import SYNTHETIC_OPTIMUM, make_synthetic_table
from nasforge.errors import SearchError
from nasforge.evaluate import Observation, Reported, TabularEvaluator
from nasforge.report.search import load_runs, save_comparison, save_search
from nasforge.search import BLACKBOX as BLACKBOX_REGISTRY
from nasforge.search.base import Ask, Budget, SearchContext, Searcher, Told, run_search
from nasforge.search.blackbox.bohb import rung_budgets
from nasforge.search.protocol import (
    DEFAULT_BUDGETS,
    build_searcher,
    curve_on_grid,
    default_budget,
    run_protocol,
    summarize,
)
from nasforge.spaces.nb201 import Arch

ALGOS = ["random", "rea", "reinforce", "local-search", "bohb"]
BUDGET = "12000s"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("search") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


@pytest.fixture(scope="module")
def evaluator(table):
    return TabularEvaluator(table, "cifar10-valid")


@pytest.fixture(scope="module")
def best_test(evaluator):
    _, rt = evaluator._report_arrays()
    return float(np.nanmax(rt))


# ---------------------------------------------------------------------------------------
# budgets
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("12000s", "seconds", 12000.0),
        ("30m", "seconds", 1800.0),
        ("1h", "seconds", 3600.0),
        ("2.5h", "seconds", 9000.0),
        ("20evals", "evals", 20.0),
        ("1e4s", "seconds", 10000.0),
    ],
)
def test_budget_parse(text, kind, amount):
    b = Budget.parse(text)
    assert (b.kind, b.amount) == (kind, amount)
    assert Budget.parse(str(b)) == b


@pytest.mark.parametrize("text", ["12000", "abc", "-5s", "0evals", "3.5evals", "10parsecs", ""])
def test_budget_parse_rejects(text):
    with pytest.raises(SearchError):
        Budget.parse(text)


def test_default_budgets_are_the_published_ones():
    assert default_budget("cifar10-valid") == Budget("seconds", 12000.0)
    assert DEFAULT_BUDGETS["cifar100"] == "40000s"
    assert DEFAULT_BUDGETS["ImageNet16-120"] == "120000s"
    with pytest.raises(SearchError, match="no default budget"):
        default_budget("digits")
    with pytest.raises(SearchError, match="evaluations"):
        default_budget("cifar10-valid", has_time=False)


# ---------------------------------------------------------------------------------------
# registry, loop, budget accounting, reproducibility
# ---------------------------------------------------------------------------------------
def test_all_algorithms_registered_as_blackbox():
    for name in ALGOS:
        cls = BLACKBOX_REGISTRY.get(name)
        assert issubclass(cls, Searcher)


@pytest.mark.parametrize("algo", ALGOS)
def test_budget_is_respected(evaluator, algo):
    budget = "3000s" if algo == "bohb" else BUDGET
    (r,) = run_protocol(algo, evaluator, budget, runs=1, seed=3)
    limit = Budget.parse(budget).amount
    assert r.num_evals > 10
    assert r.total_cost <= limit
    assert np.all(np.diff(r.times) > 0)
    assert r.times[-1] == pytest.approx(r.total_cost)
    # the NB201 rule: the next evaluation could not have been paid for, so at most one
    # evaluation's cost (< 300 s on this table) is left unused
    assert limit - r.total_cost < 300
    (e,) = run_protocol(algo, evaluator, "17evals", runs=1, seed=3)
    assert e.num_evals == 17


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_trajectory(evaluator, algo):
    budget = "2000s" if algo == "bohb" else "6000s"
    a = run_protocol(algo, evaluator, budget, runs=2, seed=11)
    b = run_protocol(algo, evaluator, budget, runs=2, seed=11)
    for x, y in zip(a, b, strict=True):
        assert x.history == y.history
        np.testing.assert_array_equal(x.times, y.times)
        np.testing.assert_array_equal(x.test, y.test)
        assert x.final_arch == y.final_arch
    # and another seed gives another run
    assert a[0].history["arch_index"] != a[1].history["arch_index"]


def test_shorter_budget_is_a_prefix(evaluator):
    """Searchers never see the budget, so a shorter run is the prefix of a longer one."""
    (long,) = run_protocol("rea", evaluator, "12000s", runs=1, seed=5)
    (short,) = run_protocol("rea", evaluator, "4000s", runs=1, seed=5)
    n = short.num_evals
    assert long.history["arch_index"][:n] == short.history["arch_index"]
    np.testing.assert_array_equal(long.times[:n], short.times)


def test_run_result_round_trip(evaluator, tmp_path):
    runs = run_protocol("random", evaluator, "20evals", runs=3, seed=0)
    paths = save_search(tmp_path, runs)
    back = load_runs(paths["trajectories"])
    for x, y in zip(runs, back, strict=True):
        assert x.history == y.history
        np.testing.assert_array_equal(x.test, y.test)
        assert x.final_test == y.final_test
    summary = json.loads(paths["summary"].read_text())
    assert summary["runs"] == 3
    assert summary["test_mean"] == pytest.approx(np.mean([r.final_test for r in runs]))
    assert summary["test_std"] == pytest.approx(np.std([r.final_test for r in runs]))
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------
# search quality on a table with a known optimum
# ---------------------------------------------------------------------------------------
def _regret_at(runs, t, best):
    ys = curve_on_grid(runs, np.array([t]))[:, 0]
    return best - ys


@pytest.mark.parametrize("algo", ALGOS)
def test_regret_falls_with_budget(evaluator, best_test, algo):
    budget = 4000.0 if algo == "bohb" else 12000.0
    runs = run_protocol(algo, evaluator, f"{budget:g}s", runs=4 if algo == "bohb" else 20, seed=0)
    early = _regret_at(runs, budget / 8, best_test)
    late = _regret_at(runs, budget, best_test)
    assert np.all(np.isfinite(early)) and np.all(late >= -1e-9)
    assert late.mean() < early.mean() - 0.3
    if algo != "bohb":
        # at one fidelity the selected valid accuracy is best-so-far: never decreasing
        # (its test accuracy may drop: selection is on valid only)
        ys = curve_on_grid(runs, np.linspace(budget / 8, budget, 50), metric="valid")
        assert np.all(np.diff(ys, axis=1) >= 0)


def _mann_whitney_greater(x, y):
    """One-sided p-value that ``x`` tends to exceed ``y`` (scipy's Mann-Whitney U; scipy
    comes with scikit-learn, a permutation test on the mean difference otherwise)."""
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        rng = np.random.default_rng(0)
        both = np.concatenate([x, y])
        obs = x.mean() - y.mean()
        hits = 0
        for _ in range(20000):
            p = rng.permutation(both)
            hits += p[: len(x)].mean() - p[len(x) :].mean() >= obs
        return (hits + 1) / 20001
    return mannwhitneyu(x, y, alternative="greater").pvalue


@pytest.mark.parametrize("algo", ["rea", "local-search"])
def test_beats_random_search(evaluator, algo):
    rs = run_protocol("random", evaluator, BUDGET, runs=20, seed=100)
    other = run_protocol(algo, evaluator, BUDGET, runs=20, seed=100)
    x = np.array([r.final_test for r in other])
    y = np.array([r.final_test for r in rs])
    assert x.mean() > y.mean() + 2.0  # a clear margin, in accuracy points
    assert _mann_whitney_greater(x, y) < 1e-3


def test_local_search_and_rea_find_the_optimum_often(evaluator):
    runs = run_protocol("local-search", evaluator, BUDGET, runs=10, seed=1)
    hits = sum(r.final_arch == SYNTHETIC_OPTIMUM.to_string() for r in runs)
    assert hits >= 5


# ---------------------------------------------------------------------------------------
# test accuracies never leak into decisions
# ---------------------------------------------------------------------------------------
class ReversedTest(TabularEvaluator):
    """The same table, but test accuracies in the opposite order of the valid ones."""

    def evaluate(self, arch, fidelity=None, *, resume_key=None):
        obs = super().evaluate(arch, fidelity, resume_key=resume_key)
        return dataclasses.replace(obs, test_acc=200.0 - obs.valid_acc)

    def report(self, arch, observation):
        rep = super().report(arch, observation)
        return Reported(rep.valid_acc, 200.0 - rep.valid_acc)


def test_told_carries_no_test_accuracy():
    names = {f.name for f in dataclasses.fields(Told)}
    # objectives: the values of the evaluator's objectives (valid_acc and costs; no test)
    assert names == {"arch", "valid_acc", "fidelity", "cost", "resume_key", "ok", "objectives"}
    assert not any("test" in n for n in names)


#: every registered black-box searcher (a one-shot or width search owns its supernet and
#: asks no evaluator): a new one is covered by the no-leak test without being listed here
BLACKBOX = BLACKBOX_REGISTRY.names()
#: the predictor-guided searchers refit an ensemble every k evaluations: a smaller budget
_LEAK_BUDGETS = {"bohb": "2500s", "bananas": "3000s", "zc-bananas": "3000s"}


def test_every_registered_blackbox_searcher_is_leak_tested():
    assert {"random", "rea", "bohb", "bananas", "zc-bananas", "zc-local-search"} <= set(BLACKBOX)


@pytest.mark.parametrize("algo", BLACKBOX)
def test_no_test_leak(table, evaluator, params_proxy, algo):
    from nasforge.evaluate.zero_cost import WithZeroCost
    from nasforge.search.blackbox.zc_warm import ZeroCostPool

    budget = _LEAK_BUDGETS.get(algo, "8000s")
    rev = ReversedTest(table, "cifar10-valid")
    if issubclass(BLACKBOX_REGISTRY.get(algo), ZeroCostPool):
        # a zero-cost warm-started searcher is checked with its proxies answered
        evaluator = WithZeroCost(evaluator, params_proxy)
        rev = WithZeroCost(rev, params_proxy)
    if getattr(BLACKBOX_REGISTRY.get(algo), "multi_objective", False):
        from nasforge.evaluate.objectives import ObjectiveEvaluator

        # a multi-objective searcher is checked with the objectives it is told
        evaluator = ObjectiveEvaluator(evaluator, "valid_acc,params_m")
        rev = ObjectiveEvaluator(rev, "valid_acc,params_m")
    (a,) = run_protocol(algo, evaluator, budget, runs=1, seed=7)
    (b,) = run_protocol(algo, rev, budget, runs=1, seed=7)
    # identical decisions although the test order is reversed
    assert a.history == b.history
    assert a.final_arch == b.final_arch
    np.testing.assert_array_equal(a.valid, b.valid)
    # the returned arch is the best *valid* one at the top fidelity, which under the
    # reversed table has the *worst* reported test accuracy among the top-fidelity ones
    h = b.history
    top = max(h["fidelity"])
    vals = [
        (v, i)
        for v, i, f in zip(h["valid"], h["arch_index"], h["fidelity"], strict=True)
        if f == top
    ]
    best_valid = max(v for v, _ in vals)
    assert b.final_valid == best_valid
    assert Arch.from_string(b.final_arch).to_index() in {i for v, i in vals if v == best_valid}
    assert b.final_test == pytest.approx(200.0 - b.report_valid[-1])
    # and the reported numbers do differ: test values were kept apart, not ignored
    assert not np.allclose(a.test, b.test)


class Spy(Searcher):
    """Records what a searcher is given."""

    name = "spy"

    def __init__(self, *, seed=0):
        super().__init__(seed=seed)
        self.seen: list[Told] = []

    def _ask(self):
        return Ask(Arch.sample(self.rng))

    def _tell(self, told):
        self.seen.append(told)


def test_searcher_sees_only_told(evaluator):
    spy = Spy(seed=0)
    r = run_search(spy, evaluator, "15evals", seed=0)
    assert len(spy.seen) == 15 == r.num_evals
    for t in spy.seen:
        assert type(t) is Told
        assert not isinstance(t, Observation)
        assert t.fidelity == 12 and t.cost > 0 and 0 < t.valid_acc < 100


# ---------------------------------------------------------------------------------------
# algorithm details
# ---------------------------------------------------------------------------------------
def _ctx(fids=tuple(range(1, 13))):
    return SearchContext(fidelities=fids, default_fidelity=12, seed=0)


def test_rea_population_ages_and_mutates_one_edge():
    s = BLACKBOX_REGISTRY.create("rea", seed=0)
    s.start(_ctx())
    for i in range(10):
        a = s.ask().arch
        s.tell(Told(a, float(i), 12, 1.0))
    child = s.ask().arch
    parent = s.last_parent  # the tournament winner the child was mutated from
    assert parent in [m[0] for m in s.population]
    assert sum(x != y for x, y in zip(child.ops, parent.ops, strict=True)) == 1
    first = s.population[0]
    s.tell(Told(child, 50.0, 12, 1.0))
    assert len(s.population) == 10 and s.population[0] != first  # oldest removed


def test_reinforce_learns_a_rewarded_op():
    s = BLACKBOX_REGISTRY.create("reinforce", seed=0)
    s.start(_ctx())
    for _ in range(300):
        a = s.ask().arch
        s.tell(Told(a, 90.0 if a.ops[0] == "nor_conv_3x3" else 10.0, 12, 1.0))
    assert s.probs()[0, 3] > 0.75
    assert s.policy_arch().ops[0] == "nor_conv_3x3"


def test_reinforce_step_matches_torch_autograd_and_adam():
    """One REINFORCE step equals the official torch formulation (softmax policy, EMA baseline
    updated before the advantage, Adam on -log_prob * advantage)."""
    torch = pytest.importorskip("torch")
    s = BLACKBOX_REGISTRY.create("reinforce", seed=3)
    s.start(_ctx())
    theta = torch.nn.Parameter(torch.tensor(s.theta.copy()))
    opt = torch.optim.Adam([theta], lr=0.01)
    ema_num = ema_den = 0.0
    for reward in (70.0, 75.0, 60.0, 80.0):
        a = s.ask().arch
        actions = torch.tensor(a.op_ids)
        ema_num = 0.9 * ema_num + 0.1 * reward
        ema_den = 0.9 * ema_den + 0.1
        logp = torch.log_softmax(theta, dim=-1)[torch.arange(6), actions].sum()
        loss = -logp * (reward - ema_num / ema_den)
        opt.zero_grad()
        loss.backward()
        opt.step()
        s.tell(Told(a, reward, 12, 1.0))
        np.testing.assert_allclose(s.theta, theta.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_reinforce_validates_settings():
    with pytest.raises(SearchError):
        BLACKBOX_REGISTRY.create("reinforce", learning_rate=0.0)


def test_local_search_climbs_to_a_local_optimum():
    target = SYNTHETIC_OPTIMUM
    s = BLACKBOX_REGISTRY.create("local-search", seed=0)
    s.start(_ctx())
    for _ in range(600):
        a = s.ask().arch
        score = 100.0 - sum(x != y for x, y in zip(a.ops, target.ops, strict=True))
        s.tell(Told(a, score, 12, 1.0))
    assert s.recommend().arch == target
    assert s.moves > 0


def test_bohb_rungs_and_refusal_at_one_fidelity():
    # hpbandster: 12 * 3^-[2, 1, 0] = 1.33, 4, 12 -> int(budget) epochs (NB201 BOHB worker)
    assert rung_budgets(1, 12, 3) == [1, 4, 12]
    # 200 * 3^-[4..0] = 2.47, 7.4, 22.2, 66.7, 200
    assert rung_budgets(1, 200, 3) == [2, 7, 22, 66, 200]
    s = BLACKBOX_REGISTRY.create("bohb", seed=0)
    assert s.n_startup_trials == 7  # hpbandster min_points_in_model = 6 dims + 1
    with pytest.raises(SearchError, match="several epoch budgets"):
        s.start(SearchContext(fidelities=(), default_fidelity=0, seed=0))


def _bohb_trials(history):
    """Per trial (consecutive evaluations of one arch at rising fidelity), its fidelities."""
    trials: list[list[int]] = []
    for i, f in enumerate(history["fidelity"]):
        cont = (
            trials
            and f > trials[-1][-1]
            and history["arch_index"][i] == history["arch_index"][i - 1]
        )
        if cont:
            trials[-1].append(f)
        else:
            trials.append([f])
    return trials


def test_bohb_resume_charges_only_extra_epochs(evaluator):
    searcher = BLACKBOX_REGISTRY.create("bohb", seed=0)
    r = run_search(searcher, evaluator, "60evals", seed=0)
    (f,) = run_protocol("bohb", evaluator, "60evals", runs=1, seed=0, algo_kwargs={"resume": False})
    h = r.history
    assert set(h["fidelity"]) <= {1, 4, 12}
    assert 12 in h["fidelity"]
    # successive halving really happens: some trials stop early, some reach 12 epochs
    assert searcher.num_pruned > 0
    assert 0 < sum(f == 12 for f in h["fidelity"]) < searcher.num_trials
    # a trial promoted from 1 to 4 epochs pays for 3 more epochs when resumed, for 4 from
    # scratch otherwise
    assert r.total_cost < f.total_cost
    # a promoted trial continues the same arch at the next rung
    for t in _bohb_trials(h):
        rungs = searcher.rungs
        start = rungs.index(t[0])
        assert t == rungs[start : start + len(t)]


def test_bohb_evaluates_only_the_rungs_of_each_trials_bracket(evaluator):
    """Hyperband bracket s first compares trials at eta**s epochs: nothing below is paid for."""
    searcher = BLACKBOX_REGISTRY.create("bohb", seed=0, resume=False)
    asks = []
    searcher.start(
        SearchContext(fidelities=tuple(evaluator.fidelities), default_fidelity=12, seed=0)
    )
    evaluator.reset(0)
    for _ in range(150):
        ask = searcher.ask()
        trial = searcher._trial
        bracket = searcher.study.pruner._get_bracket_id(searcher.study, trial)
        asks.append((trial.number, bracket, ask.fidelity))
        obs = evaluator.evaluate(ask.arch, ask.fidelity)
        searcher.tell(Told(obs.arch, obs.valid_acc, obs.fidelity, obs.cost))
    brackets = {b for _, b, _ in asks}
    assert brackets == {0, 1, 2}  # every bracket is exercised
    firsts: dict[int, tuple[int, int]] = {}
    for number, bracket, fid in asks:
        assert fid >= 3**bracket, (number, bracket, fid)  # no rung below the bracket's min
        firsts.setdefault(number, (bracket, fid))
    # and each trial starts exactly at its bracket's first rung: 1, 4 or 12 epochs
    assert all(fid == {0: 1, 1: 4, 2: 12}[b] for b, fid in firsts.values())
    # trials of bracket 1 can still be stopped at their first rung
    stopped = [n for n, (b, _) in firsts.items() if b == 1 and sum(a[0] == n for a in asks) == 1]
    assert stopped and searcher.num_pruned > 0


@pytest.mark.parametrize("algo", ALGOS)
def test_reused_searcher_repeats_its_run(evaluator, algo):
    s = build_searcher(algo, 4)
    a = run_search(s, evaluator, "40evals", seed=4)
    state = (getattr(s, "moves", None), getattr(s, "num_trials", None))
    b = run_search(s, evaluator, "40evals", seed=4)
    assert a.history == b.history
    assert a.final_arch == b.final_arch
    assert (getattr(s, "moves", None), getattr(s, "num_trials", None)) == state
    fresh = run_search(build_searcher(algo, 4), evaluator, "40evals", seed=4)
    assert fresh.history == a.history


def test_failed_evaluation_is_never_recommended():
    s = BLACKBOX_REGISTRY.create("random", seed=0)
    s.start(_ctx())
    bad = Arch.sample(s.rng)
    s.tell(Told(bad, 0.0, 12, 0.0, ok=False))
    assert s.recommend() is None  # every top-fidelity evaluation failed: nothing to return
    s.tell(Told(bad, 30.0, 4, 1.0))
    assert s.recommend() is None  # a lower fidelity does not stand in for the top one
    good = bad.mutate(s.rng)
    s.tell(Told(good, 0.0, 12, 1.0))  # a real (if useless) 0% result counts
    assert s.recommend().arch == good


@pytest.mark.parametrize(
    ("algo", "kwargs", "match"),
    [
        ("rea", {"popsize": 20}, r"no setting 'popsize'.*population_size.*sample_size"),
        ("rea", {"population_size": "abc"}, "population_size 'abc' must be an integer"),
        ("rea", {"sample_size": 0}, "sample_size 0 must be >= 1"),
        ("rea", {"population_size": 2.5}, "must be an integer"),
        ("bohb", {"eta": 1}, "eta 1 must be >= 2"),
        ("bohb", {"resume": "yes"}, "resume 'yes' must be true or false"),
        ("reinforce", {"learning_rate": "fast"}, "learning_rate 'fast' must be a number"),
        ("reinforce", {"ema_momentum": 1.0}, r"ema_momentum 1.0 must be .* \[0, 1\)"),
        ("random", {"x": 1}, "accepts no settings"),
    ],
)
def test_algorithm_settings_are_checked(algo, kwargs, match):
    with pytest.raises(SearchError, match=match):
        build_searcher(algo, 0, **kwargs)


def test_default_budget_refuses_wall_clock():
    with pytest.raises(SearchError, match="explicit --budget"):
        default_budget("cifar10-valid", clock="wall")


def test_compare_writes_one_figure_and_table(evaluator, tmp_path):
    results = {a: run_protocol(a, evaluator, "3000s", runs=3, seed=0) for a in ("random", "rea")}
    paths = save_comparison(tmp_path, results, meta={"x": 1})
    md = paths["markdown"].read_text()
    assert "| random |" in md and "| rea |" in md
    js = json.loads(paths["json"].read_text())
    assert [s["algo"] for s in js["summaries"]] == ["random", "rea"]
    assert paths["plot"].stat().st_size > 1000
    assert (tmp_path / "rea" / "summary.json").exists()
    assert summarize(results["rea"])["runs"] == 3
    assert math.isfinite(js["summaries"][1]["test_mean"])


def test_comparison_plot_reads_well(evaluator, best_test, tmp_path, monkeypatch):
    """The figure a researcher reads: y zoomed to where the algorithms differ, the table's
    optimum dashed, the band explained, "synthetic" in the title of a synthetic table."""
    import nasforge.report.search as protocol

    figs = []

    def keep(fig, path, **kwargs):
        figs.append(fig)
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr(protocol, "atomic_save_figure", keep)
    results = {a: run_protocol(a, evaluator, "6000s", runs=4, seed=0) for a in ("random", "rea")}
    facts = protocol.plot_facts(evaluator)
    assert facts == {"optimum": pytest.approx(best_test), "synthetic": True}
    save_comparison(tmp_path, results, title="cmp", **facts)
    ax = figs[-1].axes[0]
    finals = [float(np.mean([r.final_test for r in runs])) for runs in results.values()]
    low, high = ax.get_ylim()
    # zoomed: the axis starts within a few points of the curves' end values, not at 20%
    assert min(finals) - 15 < low < min(finals) and best_test < high < best_test + 5
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(best_test)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("95% CI of the mean, 4 runs" in t for t in legend)
    assert any(t.startswith("table optimum") for t in legend)
    assert ax.get_title() == "cmp (synthetic table)"
    # a budget in evaluations counts something: integer ticks
    counted = {"rea": run_protocol("rea", evaluator, "7evals", runs=2, seed=0)}
    protocol.plot_curves(counted, tmp_path / "evals.png")
    ticks = figs[-1].axes[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))


def test_oneshot_search_plot_marks_warmup_and_trained_accuracy(tmp_path, monkeypatch):
    import nasforge.report.oneshot as loop

    figs = []
    monkeypatch.setattr(loop, "atomic_save_figure", lambda fig, path, **kw: figs.append(fig))
    probs = np.full((6, 5), 0.2).tolist()
    records = [
        {
            "epoch": e,
            "probs": probs,
            "derived_valid_acc": 40.0 + e,
            "valid_acc": 30.0 + e,
            "skip_share": 0.2,
            "entropy": [1.5] * 6,
        }
        for e in range(1, 9)
    ]
    loop.plot_search(records, tmp_path / "s.png", warmup=3, trained={"trained test": 91.5})
    acc_ax = next(a for a in figs[0].axes if a.get_title() == "derived architecture accuracy")
    legend = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert "warm-up (3 ep.)" in legend and "final arch, trained test: 91.50%" in legend
    spans = [p for p in acc_ax.patches if p.get_label() == "warm-up (3 ep.)"]
    assert len(spans) == 1 and spans[0].get_x() == 0.5 and spans[0].get_width() == 3
    ticks = acc_ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # epochs are counted
