"""Multi-objective search (issue 29): Pareto arithmetic against hand computations, the
objectives an evaluator gives, NSGA-II / MO-REA / scalarised REA on a small table, and
``nasforge search|compare --objectives`` end to end."""

from __future__ import annotations

import itertools
import json
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from nasforge.bench import make_synthetic_table
from nasforge.cli import app
from nasforge.errors import SearchError
from nasforge.evaluate import TabularEvaluator
from nasforge.evaluate.base import Evaluator, NetworkSpec, Objective, Observation
from nasforge.evaluate.objectives import ObjectiveEvaluator, parse_objectives
from nasforge.search import BLACKBOX
from nasforge.search.base import SearchContext, Told
from nasforge.search.fronts import HypervolumeBox, hv_trajectory, make_box, run_front, run_values
from nasforge.search.pareto import (
    crowding_distance,
    hypervolume,
    nondominated_fronts,
    to_minimisation,
)
from nasforge.search.protocol import run_protocol
from nasforge.spaces import get_space

runner = CliRunner()
MO_ALGOS = ["nsga2", "mo-rea", "rea-scalar"]


# -- Pareto arithmetic ------------------------------------------------------------------------
def test_nondominated_sorting_hand_case():
    F = np.array(
        [
            [1, 5],  # 0: front 0
            [2, 3],  # 1: front 0
            [4, 1],  # 2: front 0
            [3, 4],  # 3: dominated by 1 only -> front 1
            [5, 5],  # 4: dominated by 3 -> front 2
            [2, 3],  # 5: equal to 1: neither dominates, same front
            [np.inf, np.inf],  # 6: a failed evaluation: behind everything
        ],
        dtype=float,
    )
    fronts = [f.tolist() for f in nondominated_fronts(F)]
    assert fronts == [[0, 1, 2, 5], [3], [4], [6]]


def test_to_minimisation_negates_maximised_and_sinks_failures():
    F = to_minimisation([[70.0, 1.5], [math.nan, 0.1]], [True, False])
    assert F[0].tolist() == [-70.0, 1.5]
    assert np.isinf(F[1]).all()


def test_crowding_distance_hand_cases():
    # three points: the middle one spans (4-1)/3 in f1 and (5-1)/4 in f2
    d = crowding_distance(np.array([[1, 5], [2, 3], [4, 1]], dtype=float))
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx(2.0)
    # four points: (1,2) gets 3/4 + 3/4, (3,1) gets 3/4 + 2/4
    d = crowding_distance(np.array([[0, 4], [1, 2], [3, 1], [4, 0]], dtype=float))
    assert np.isinf(d[[0, 3]]).all()
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.25)
    # two points are both boundary points; a constant objective adds nothing
    assert np.isinf(crowding_distance(np.array([[0, 1], [1, 0]], dtype=float))).all()
    d = crowding_distance(np.array([[0, 7], [1, 7], [3, 7]], dtype=float))
    assert d[1] == pytest.approx(3 / 3)


def test_hypervolume_2d_hand_computation():
    # [1,3]x[2,3] (area 2) union [2,3]x[1,3] (area 2) minus their overlap [2,3]x[2,3] (1)
    pts = np.array([[1, 2], [2, 1]], dtype=float)
    assert hypervolume(pts, [3, 3]) == pytest.approx(3.0)
    # a dominated point, a point outside the reference box and a failure add nothing
    more = np.vstack([pts, [[2.5, 2.5], [4.0, 0.0], [np.inf, np.inf]]])
    assert hypervolume(more, [3, 3]) == pytest.approx(3.0)
    assert hypervolume(np.zeros((0, 2)), [3, 3]) == 0.0


def test_hypervolume_3d_hand_computation():
    # boxes 2*2*1 = 4 and 1*1*2 = 2 overlapping in [2,3]^3 (volume 1): 5
    pts = np.array([[1, 1, 2], [2, 2, 1]], dtype=float)
    assert hypervolume(pts, [3, 3, 3]) == pytest.approx(5.0)
    # one point at the origin: the whole box
    assert hypervolume(np.zeros((1, 3)), [2, 3, 4]) == pytest.approx(24.0)


_points = st.integers(2, 3).flatmap(
    lambda m: st.lists(st.lists(st.integers(0, 4), min_size=m, max_size=m), min_size=1, max_size=12)
)


@given(_points)
def test_fronts_equal_brute_force_peeling(pts):
    F = np.asarray(pts, dtype=float)

    def dominates(a, b):
        return (a <= b).all() and (a < b).any()

    left, want = list(range(len(F))), []
    while left:
        front = [i for i in left if not any(dominates(F[j], F[i]) for j in left)]
        want.append(front)
        left = [i for i in left if i not in front]
    assert [f.tolist() for f in nondominated_fronts(F)] == want


@given(_points)
def test_hypervolume_equals_counted_unit_cells(pts):
    # integer points, reference 5 in every objective: the dominated region is a union of
    # unit cells, and a cell [c, c+1) is dominated iff some point is <= its corner c
    F = np.asarray(pts, dtype=float)
    m = F.shape[1]
    cells = sum(
        1 for c in itertools.product(range(5), repeat=m) if (np.asarray(c) >= F).all(axis=1).any()
    )
    assert hypervolume(F, [5.0] * m) == pytest.approx(cells)


def test_box_normalises_each_direction_and_traces_hypervolume():
    box = HypervolumeBox(
        ("acc", "cost"), (True, False), (0.0, 10.0), (100.0, 20.0), ("given", "given"), 1.1
    )
    z = box.normalised(np.array([[100.0, 10.0], [0.0, 20.0], [50.0, 15.0]]))
    assert z.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]
    # the ideal point alone fills the reference box
    assert box.hypervolume(np.array([[100.0, 10.0]])) == pytest.approx(1.21)
    assert box.max_hypervolume == pytest.approx(1.21)


# -- objectives ---------------------------------------------------------------------------------
def test_parse_objectives_directions_and_errors():
    objs = parse_objectives("valid_acc,latency_s")
    assert objs == (Objective("valid_acc", True), Objective("latency_s", False))
    assert parse_objectives("valid_acc:min, madds_m:max") == (
        Objective("valid_acc", False),
        Objective("flops_m", True),
    )
    with pytest.raises(SearchError, match=r"'bogus' unknown; valid objectives: .*latency_s"):
        parse_objectives("valid_acc,bogus")
    with pytest.raises(SearchError, match=r"'up'.*expected 'max' or 'min'"):
        parse_objectives("valid_acc:up")
    with pytest.raises(SearchError, match="more than once"):
        parse_objectives("flops_m,madds_m")
    with pytest.raises(SearchError, match="comma-separated"):
        parse_objectives("valid_acc,,params_m")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("mo") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


def test_objectives_from_a_table(table):
    base = TabularEvaluator(table, "cifar10-valid")
    ev = ObjectiveEvaluator(base, "valid_acc,latency_s,params_m,train_time_s")
    src = {o["name"]: o["source"] for o in ev.describe()["objectives"]}
    assert src["latency_s"].startswith("table column latency_s")
    arch = ev.space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    ev.reset(0)
    obs = ev.evaluate(arch)
    costs = base.bench.cost(arch, "cifar10-valid")
    assert obs.objectives == (
        obs.valid_acc,
        pytest.approx(costs["latency_s"]),
        pytest.approx(costs["params_m"]),
        obs.cost,
    )
    lo, hi = ev.objective_range("params_m")
    assert lo < costs["params_m"] < hi


class _FakeTraining(Evaluator):
    """A tiny-network 'trainer' with no known costs: costs must be counted / measured."""

    clock = "simulated"

    def evaluate(self, arch, fidelity=None, *, resume_key=None):
        return Observation(arch, 50.0, 1, 1.0)

    def network_spec(self):
        return NetworkSpec("nb201", {"num_classes": 10, "C": 4, "N": 1}, (1, 3, 8, 8))


def test_objectives_counted_and_measured_on_the_built_network(one_torch_thread):
    from nasforge.cost import module_cost
    from nasforge.nn import build_network

    ev = ObjectiveEvaluator(_FakeTraining(), "params_m,flops_m,latency_s")
    src = {o["name"]: o["source"] for o in ev.describe()["objectives"]}
    assert src["params_m"] == "counted on the built network"
    assert src["latency_s"].startswith("measured on cpu")
    arch = get_space("nb201").from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    )
    params, flops, lat = ev.evaluate(arch).objectives
    want = module_cost(build_network("nb201", arch, num_classes=10, C=4, N=1), (1, 3, 8, 8))
    assert (params, flops) == (pytest.approx(want.params_m), pytest.approx(want.flops_m))
    assert 0 < lat < 1.0


def test_objective_the_evaluator_cannot_give_is_refused(table):
    class NoCost(_FakeTraining):
        has_cost = False

        def network_spec(self):
            return None

    with pytest.raises(SearchError, match="train_time_s"):
        ObjectiveEvaluator(NoCost(), "valid_acc,train_time_s")
    with pytest.raises(SearchError, match="params_m"):
        ObjectiveEvaluator(NoCost(), "params_m")


# -- searchers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mo_eval(table):
    return ObjectiveEvaluator(TabularEvaluator(table, "cifar10-valid"), "valid_acc,params_m")


@pytest.mark.parametrize("algo", MO_ALGOS)
def test_searchers_return_valid_fronts_reproducibly(algo, mo_eval):
    space = mo_eval.space
    a, b, c = (run_protocol(algo, mo_eval, "60evals", runs=1, seed=s)[0] for s in (3, 3, 4))
    assert a.num_evals == 60 and len(a.history["objectives"]) == 60
    assert a.history == b.history  # reproducible from the seed
    assert a.history["arch"] != c.history["arch"]
    front = run_front(a)
    assert front
    vals = run_values(a)
    for m in front:
        space.from_string(m["arch"])  # a valid arch of the space
        # no evaluated arch dominates a front member
        better = (vals[:, 0] >= m["valid_acc"]) & (vals[:, 1] <= m["params_m"])
        strictly = (vals[:, 0] > m["valid_acc"]) | (vals[:, 1] < m["params_m"])
        assert not (better & strictly).any()
    hv = hv_trajectory(a, make_box(mo_eval.objectives, mo_eval))
    assert (np.diff(hv) >= -1e-12).all() and hv[-1] > 0  # anytime: never decreases


@pytest.mark.parametrize("algo", MO_ALGOS)
def test_multi_objective_searchers_need_objectives(algo, table):
    with pytest.raises(SearchError, match="multi-objective"):
        run_protocol(algo, TabularEvaluator(table, "cifar10-valid"), "5evals")


def _context(n_obj: int = 2) -> SearchContext:
    objs = tuple(Objective(f"f{i}", False) for i in range(n_obj))
    return SearchContext(fidelities=(), default_fidelity=0, seed=0, objectives=objs)


def test_nsga2_survival_is_elitist_rank_then_crowding():
    s = BLACKBOX.create("nsga2", seed=1, population_size=4)
    s.start(_context())
    parents = [s.ask().arch for _ in range(4)]
    assert len(set(parents)) == 4  # duplicates are bred again
    # generation 0: one front of three and a dominated point
    for arch, f in zip(parents, [(1, 4), (2, 2), (4, 1), (5, 5)], strict=True):
        s.tell(Told(arch, 0.0, 0, 1.0, objectives=f))
    assert s.rank.tolist() == [0, 0, 0, 1]
    assert np.isinf(s.crowding[[0, 2]]).all() and np.isfinite(s.crowding[1])
    children = [s.ask().arch for _ in range(4)]
    assert not set(children) & set(parents)
    # two children dominate everything, two are dominated by everything
    for arch, f in zip(children, [(0, 1), (1, 0), (9, 9), (8, 8)], strict=True):
        s.tell(Told(arch, 0.0, 0, 1.0, objectives=f))
    assert s.generation == 1
    # survivors: front {c0, c1} then two of the front {p0, p1, p2} by crowding: within it
    # (1,4) and (4,1) are boundary points (infinite), (2,2) is interior
    assert set(s.population) == {children[0], children[1], parents[0], parents[2]}
    assert sorted(s.rank.tolist()) == [0, 0, 1, 1]


def test_nsga2_ranks_a_failed_evaluation_last():
    s = BLACKBOX.create("nsga2", seed=2, population_size=3)
    s.start(_context())
    archs = [s.ask().arch for _ in range(3)]
    # the failure reports the best objective values, but produced no network
    s.tell(Told(archs[0], 0.0, 0, 1.0, ok=False, objectives=(0, 0)))
    s.tell(Told(archs[1], 0.0, 0, 1.0, objectives=(5, 5)))
    s.tell(Told(archs[2], 0.0, 0, 1.0, objectives=(6, 6)))
    assert s.rank[s.population.index(archs[0])] == max(s.rank) == 2


def test_mo_rea_tournament_prefers_the_pareto_front():
    s = BLACKBOX.create("mo-rea", seed=0, population_size=5, sample_size=40)
    s.start(_context())
    archs = [s.ask().arch for _ in range(5)]
    fs = [(3, 3), (1, 1), (2, 4), (4, 2), (5, 5)]  # archs[1] dominates all
    for arch, f in zip(archs, fs, strict=True):
        s.tell(Told(arch, 0.0, 0, 1.0, objectives=f))
    s.ask()
    assert s.last_parent == archs[1]
    # a failed evaluation never wins while anything else is drawn
    s.tell(Told(s.space.sample(np.random.default_rng(9)), 0.0, 0, 1.0, ok=False, objectives=(0, 0)))
    s.ask()
    assert s.last_parent != s.population[-1][0]


@pytest.mark.parametrize(("weights", "best"), [([1, 0], 2), ([0, 1], 0)])
def test_rea_scalar_follows_its_weights(weights, best):
    s = BLACKBOX.create("rea-scalar", seed=0, population_size=3, sample_size=30, weights=weights)
    s.start(_context())
    archs = [s.ask().arch for _ in range(3)]
    for arch, f in zip(archs, [(3, 1), (2, 2), (1, 3)], strict=True):
        s.tell(Told(arch, 0.0, 0, 1.0, objectives=f))
    s.ask()
    assert s.last_parent == archs[best]
    with pytest.raises(SearchError, match="one entry per objective"):
        BLACKBOX.create("rea-scalar", weights=[1, 1, 1]).start(_context())
    with pytest.raises(SearchError, match="non-negative"):
        BLACKBOX.create("rea-scalar", weights=[-1, 1])


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_compare_and_search_with_objectives(table, tmp_path):
    out = tmp_path / "cmp"
    args = ["--bench", str(table), "--dataset", "cifar10-valid", "--budget", "40evals"]
    res = runner.invoke(
        app,
        [
            "compare",
            "--algos",
            "nsga2,random",
            *args,
            "--runs",
            "2",
            "-o",
            str(out),
            "--quiet",
            "--objectives",
            "valid_acc,latency_s",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "hypervolume" in res.output
    doc = json.loads((out / "pareto.json").read_text())
    assert [s["algo"] for s in doc["summaries"]] == ["nsga2", "random"]
    assert [o["name"] for o in doc["box"]["objectives"]] == ["valid_acc", "latency_s"]
    for s in doc["summaries"]:
        assert s["runs"] == 2 and 0 < s["hv_mean"] <= doc["box"]["max_hypervolume"]
    base = TabularEvaluator(table, "cifar10-valid")
    for algo, runs in doc["fronts"].items():
        assert len(runs) == 2, algo
        for run in runs:
            pts = np.array([[m["valid_acc"], m["latency_s"]] for m in run["front"]])
            F = to_minimisation(pts, [True, False])
            assert len(nondominated_fronts(F)) == 1  # mutually non-dominated
            # each member carries the test accuracy reported for it (never searched on)
            for m in run["front"]:
                arch = base.space.from_string(m["arch"])
                want = base.report(arch, Observation(arch, 0.0, 12, 0.0)).test_acc
                assert m["test_acc"] == pytest.approx(want)
    assert doc["report_box"]["objectives"][0]["range_source"].startswith("space (reported")
    assert all(s["report_hv_mean"] > 0 for s in doc["summaries"])
    for png in ("fronts.png", "hypervolume.png", "comparison.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    out2 = tmp_path / "one"
    res = runner.invoke(
        app,
        [
            "search",
            "--algo",
            "mo-rea",
            *args,
            "-o",
            str(out2),
            "--quiet",
            "--objectives",
            "valid_acc:max,params_m:min,train_time_s",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out2 / "pareto.json").read_text())
    assert doc["summaries"][0]["algo"] == "mo-rea" and len(doc["box"]["objectives"]) == 3
    assert (out2 / "fronts.png").exists() and (out2 / "summary.json").exists()


@pytest.mark.parametrize(
    ("command", "spec", "bad"),
    [
        (["search", "--algo", "nsga2"], "valid_acc,latency", "'latency'"),
        (["compare", "--algos", "nsga2,random"], "acc", "'acc'"),
    ],
)
def test_bad_objective_is_one_line_exit_2(command, spec, bad, table, tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    argv = [
        *command,
        "--bench",
        str(table),
        "--dataset",
        "cifar10-valid",
        "-o",
        str(tmp_path / "o"),
    ]
    monkeypatch.setattr(sys, "argv", ["nasforge", *argv, "--objectives", spec])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --objectives") and "\n" not in err
    assert bad in err and "valid_acc" in err and "latency_s" in err and "params_m" in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_multi_objective_algo_without_objectives_is_refused(table, tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    argv = ["search", "--algo", "nsga2", "--bench", str(table), "-o", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", ["nasforge", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "needs --objectives" in capsys.readouterr().err
