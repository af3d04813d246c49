"""Evaluators: the tabular one against the table's own query API, and real training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasforge.bench import Benchmark, ResultEntry, TableWriter, make_synthetic_table
from nasforge.errors import BenchError, SearchError
from nasforge.evaluate import EVALUATORS, TabularEvaluator, TrainingEvaluator
from nasforge.run import LocalExecutor, Outcome
from nasforge.search.base import Ask, Searcher, run_search
from nasforge.search.protocol import build_searcher, run_protocol
from nasforge.spaces.nb201 import Arch

ARCH = Arch.from_string(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_synthetic_table(
        tmp_path_factory.mktemp("ev") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


@pytest.fixture(scope="module")
def bench(table):
    return Benchmark.open(table)


def test_registry():
    assert EVALUATORS.get("tabular") is TabularEvaluator
    assert EVALUATORS.get("train") is TrainingEvaluator


def test_matches_simulate_for_a_fixed_seed(bench):
    ev = TabularEvaluator(bench, "cifar10-valid", seed_policy=888)
    ev.reset(0)
    tab = bench.table("cifar10-valid", "12")
    s = tab.seeds.index(888)
    for epoch in (1, 5, 12):
        obs = ev.evaluate(ARCH, epoch)
        sim = bench.simulate(ARCH, "cifar10-valid", epoch=epoch, seed=888, hp="12")
        assert obs.valid_acc == pytest.approx(sim.valid_acc)
        assert obs.test_acc == pytest.approx(sim.test_acc)
        assert obs.fidelity == epoch == sim.epoch
        # the official charge: train-all-time + valid-per-time, the latter the mean of the
        # validation times of epochs 0..e (nas_201_api get_more_info: all_time / (e + 1))
        vts = tab["valid_time"][s, ARCH.to_index(), :epoch]
        assert obs.cost == pytest.approx(sim.train_time + float(np.mean(vts)))
        assert obs.info["seed"] == 888
    assert ev.evaluate(ARCH).fidelity == 12  # default: the last epoch of the 12-epoch curve


def test_random_seed_policy_draws_recorded_seeds_reproducibly(bench):
    ev = TabularEvaluator(bench, "cifar10-valid")
    ev.reset(1)
    a = [ev.evaluate(ARCH).info["seed"] for _ in range(30)]
    ev.reset(1)
    b = [ev.evaluate(ARCH).info["seed"] for _ in range(30)]
    assert a == b
    assert set(a) == {777, 888, 999}


def test_mean_seed_policy_is_the_seed_average(bench):
    ev = TabularEvaluator(bench, "cifar10-valid", seed_policy="mean")
    obs = ev.evaluate(ARCH)
    rec = bench.query(ARCH, "cifar10-valid", hp="12")
    assert obs.valid_acc == pytest.approx(rec.final["valid_acc"], rel=1e-6)


def test_resume_charges_only_the_extra_epochs(bench):
    ev = TabularEvaluator(bench, "cifar10-valid")
    ev.reset(0)
    first = ev.evaluate(ARCH, 1, resume_key="t0")
    second = ev.evaluate(ARCH, 3, resume_key="t0")
    seed = first.info["seed"]
    assert second.info["seed"] == seed  # same training continued
    s = bench.table("cifar10-valid", "12").seeds.index(seed)
    tab = bench.table("cifar10-valid", "12")
    i = ARCH.to_index()
    cum, vt = tab.cum_time[s, i], tab["valid_time"][s, i]
    assert first.cost == pytest.approx(cum[0] + vt[0])
    assert second.cost == pytest.approx(cum[2] - cum[0] + vt[:3].mean())
    assert second.valid_acc == pytest.approx(float(tab.valid_acc[s, i, 2]))


def test_report_uses_the_final_recipe_seed_average(bench):
    ev = TabularEvaluator(bench, "cifar10-valid")
    assert ev.report_hp == "12"  # the longest recipe of this table ("200" when present)
    obs = ev.evaluate(ARCH)
    rep = ev.report(ARCH, obs)
    rec = bench.query(ARCH, "cifar10-valid", hp="12")
    assert rep.test_acc == pytest.approx(rec.final["test_acc"], rel=1e-6)
    assert rep.valid_acc == pytest.approx(rec.final["valid_acc"], rel=1e-6)


def test_bad_inputs_are_named(bench):
    with pytest.raises(SearchError, match="seed policy"):
        TabularEvaluator(bench, "cifar10-valid", seed_policy="sometimes")
    with pytest.raises(SearchError, match="1234"):
        TabularEvaluator(bench, "cifar10-valid", seed_policy=1234)
    ev = TabularEvaluator(bench, "cifar10-valid")
    with pytest.raises(SearchError, match="fidelity 13"):
        ev.evaluate(ARCH, 13)
    with pytest.raises(BenchError):
        TabularEvaluator(bench, "cifar100")


def test_arch_missing_from_a_partial_table_is_an_error(tmp_path):
    archs = [Arch.from_index(i) for i in range(40)]
    path = make_synthetic_table(
        tmp_path / "part", datasets=("cifar10-valid",), hps={"12": 12}, archs=archs
    )
    ev = TabularEvaluator(path, "cifar10-valid")
    assert ev.evaluate(archs[3]).ok
    with pytest.raises(BenchError, match="no entry"):
        ev.evaluate(Arch.from_index(5000))


SMALL = [Arch.from_index(i) for i in range(0, 400, 10)]


def _small_table(path, *, with_time: bool, failed: Arch | None = None):
    """A final-metrics table over :data:`SMALL` with valid and test in opposite orders."""
    rng = np.random.default_rng(0)
    with TableWriter(path) as w:
        for arch in SMALL:
            v = float(rng.uniform(10, 90))
            final = {"valid_acc": v, "test_acc": 100.0 - v}
            if with_time:
                final["train_time"] = 100.0
            w.append(ResultEntry(arch, "cifar10-valid", "final", 0, final=final))
        if failed is not None:
            w.append(
                ResultEntry(
                    failed, "cifar10-valid", "final", 0, status="diverged", error="loss is nan"
                )
            )
    return path


class FromList(Searcher):
    """Random search restricted to the archs of a small table."""

    name = "from-list"

    def _ask(self):
        return Ask(SMALL[int(self.rng.integers(len(SMALL)))])

    def _tell(self, told):
        pass


def test_valid_per_time_is_the_mean_over_epochs(tmp_path):
    """Hand-made times: valid-per-time after epoch e is sum(valid_time[0..e]) / (e + 1)."""
    vt = [1.0, 2.0, 3.0, 10.0]
    train = [5.0, 5.0, 5.0, 5.0]
    with TableWriter(tmp_path / "vt") as w:
        w.append(
            ResultEntry(
                ARCH,
                "cifar10-valid",
                "4",
                0,
                curves={
                    "valid_acc": [10.0, 20.0, 30.0, 40.0],
                    "epoch_time": train,
                    "valid_time": vt,
                },
            )
        )
    ev = TabularEvaluator(tmp_path / "vt", "cifar10-valid", hp="4")
    for e, want in [(1, 5 + 1.0), (2, 10 + 1.5), (4, 20 + 4.0)]:
        assert ev.evaluate(ARCH, e).cost == pytest.approx(want)


def test_failed_entries_become_failed_observations(tmp_path, monkeypatch):
    path = _small_table(tmp_path / "failed", with_time=True, failed=ARCH)
    ev = TabularEvaluator(path, "cifar10-valid", hp=None)

    def no_query(*a, **k):
        raise AssertionError("a failed run is read from Table.ok, not from a query error")

    monkeypatch.setattr(ev.bench, "query", no_query)
    obs = ev.evaluate(ARCH)
    assert not obs.ok and obs.status == "failed"
    ok = ev.evaluate(SMALL[0])
    assert ok.ok and ok.cost == pytest.approx(100.0)


# ---------------------------------------------------------------------------------------
# tables with final metrics only, and without training times
# ---------------------------------------------------------------------------------------
def test_final_only_table_runs_at_one_fidelity(tmp_path):
    path = make_synthetic_table(
        tmp_path / "final", datasets=("cifar10-valid",), hps={"12": 12}, final_only=True
    )
    ev = TabularEvaluator(path, "cifar10-valid")
    assert ev.hp == "final" and tuple(ev.fidelities) == () and ev.has_cost
    (r,) = run_protocol("rea", ev, "3000s", runs=1, seed=0)
    assert r.num_evals > 5 and set(r.history["fidelity"]) == {0}
    with pytest.raises(SearchError, match="bohb needs results at several epoch budgets"):
        run_protocol("bohb", ev, "3000s", runs=1, seed=0)
    with pytest.raises(SearchError, match="final metrics only"):
        ev.evaluate(ARCH, 5)


def test_table_without_times_needs_an_evaluation_budget(tmp_path):
    path = _small_table(tmp_path / "notime", with_time=False)
    ev = TabularEvaluator(path, "cifar10-valid", hp=None)
    assert not ev.has_cost
    with pytest.raises(SearchError, match="evaluations"):
        run_search(build_searcher("random", 0), ev, "1000s")
    r = run_search(FromList(seed=0), ev, "25evals")
    assert r.num_evals == 25 and r.total_cost == 0.0
    # valid and test are reversed in this table: the returned arch has the best valid
    assert r.final_valid == max(v for v in r.history["valid"])
    assert r.final_test == pytest.approx(100 - r.final_valid, abs=1e-4)


# ---------------------------------------------------------------------------------------
# real training (tiny: 8x8 digits upsampled, C=4, N=1, 1-2 epochs, 64 samples per split)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trainer_ev():
    import torch

    torch.set_num_threads(1)
    return TrainingEvaluator(
        "nb201-12e",
        "digits",
        limit=64,
        C=4,
        N=1,
        recipe_overrides={"epochs": 2, "batch_size": 32},
    )


def test_training_evaluator_runs_a_search(trainer_ev):
    assert trainer_ev.clock == "wall" and tuple(trainer_ev.fidelities) == (1, 2)
    r = run_search(build_searcher("rea", 0), trainer_ev, "3evals", seed=0)
    assert r.num_evals == 3 and r.clock == "wall"
    assert all(c > 0 for c in r.history["cost"])
    assert all(0 <= v <= 100 for v in r.history["valid"])
    assert 0 <= r.final_test <= 100 and math.isfinite(r.final_test)
    assert np.all(np.diff(r.times) > 0)
    # bohb runs on real epochs: rungs 1 and 2
    b = run_search(build_searcher("bohb", 0), trainer_ev, "3evals", seed=0)
    assert set(b.history["fidelity"]) <= {1, 2} and b.num_evals == 3


def test_training_evaluator_batch_is_the_same_as_one_by_one(trainer_ev):
    reqs = [(ARCH, 1, None), (Arch.from_index(7), 1, None)]
    trainer_ev.reset(5)
    seq = [trainer_ev.evaluate(a, f, resume_key=k) for a, f, k in reqs]
    trainer_ev.reset(5)
    trainer_ev.reset(5)
    with LocalExecutor(workers=1) as ex:
        par = trainer_ev.evaluate_batch(reqs, executor=ex)
    assert [o.info["seed"] for o in seq] == [o.info["seed"] for o in par]
    assert [o.valid_acc for o in seq] == [o.valid_acc for o in par]
    assert [o.arch for o in par] == [a for a, _, _ in reqs]


class _Reversed:
    """An executor whose outcomes come back last-first, as a pool's may; it records what
    each task carried."""

    def __init__(self):
        self.tasks = []

    def map(self, fn, tasks):
        tasks = list(tasks)
        self.tasks = tasks
        outs = [Outcome(i, t, fn(t), None, 1.0) for i, t in enumerate(tasks[:-1])]
        # the last task fails in its worker
        outs.append(Outcome(len(tasks) - 1, tasks[-1], None, "Traceback: boom", 0.5))
        return reversed(outs)


def test_training_evaluator_batch_reorders_by_outcome_index(trainer_ev):
    reqs = [(ARCH, 1, None), (Arch.from_index(7), 1, None), (Arch.from_index(9), 1, None)]
    trainer_ev.reset(5)
    seq = [trainer_ev.evaluate(a, f, resume_key=k) for a, f, k in reqs]
    trainer_ev.reset(5)
    ex = _Reversed()
    par = trainer_ev.evaluate_batch(reqs, executor=ex)
    assert [o.arch for o in par] == [a for a, _, _ in reqs]
    assert [o.valid_acc for o in par[:2]] == [o.valid_acc for o in seq[:2]]
    assert par[2].status == "failed" and "boom" in par[2].info["error"]
    # tasks name the dataset instead of carrying its tensors
    assert all(t[1] == ("digits", None, 64) for t in ex.tasks)


def test_training_evaluator_needs_a_validation_split(trainer_ev):
    with pytest.raises(SearchError, match="validation"):
        TrainingEvaluator(trainer_ev.recipe, trainer_ev.data, valid_split="holdout")
    with pytest.raises(SearchError, match="fidelity"):
        trainer_ev.evaluate(ARCH, 3)


def test_cifar10_without_a_cifar10_group_says_what_it_reports(tmp_path):
    path = make_synthetic_table(tmp_path / "c10v", datasets=("cifar10-valid",), hps={"12": 12})
    ev = TabularEvaluator(path, "cifar10")
    assert (ev.dataset, ev.report_dataset) == ("cifar10-valid", "cifar10-valid")
    assert "no 'cifar10' group" in ev.describe()["report_note"]
    assert TabularEvaluator(path, "cifar10-valid").describe()["report_note"] == ""


def test_evaluate_does_not_import_search():
    import subprocess
    import sys

    code = (
        "import sys, nasforge.evaluate; "
        "bad = [m for m in sys.modules if m.startswith('nasforge.search')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cifar10_searches_on_cifar10_valid_and_reports_cifar10(tmp_path):
    path = make_synthetic_table(
        tmp_path / "c10", datasets=("cifar10-valid", "cifar10"), hps={"12": 12}
    )
    ev = TabularEvaluator(path, "cifar10")
    assert (ev.dataset, ev.report_dataset) == ("cifar10-valid", "cifar10")
    bench = ev.bench
    obs = ev.evaluate(ARCH)
    assert obs.info["seed"] in bench.seeds("cifar10-valid", "12")
    rep = ev.report(ARCH, obs)
    assert rep.test_acc == pytest.approx(bench.query(ARCH, "cifar10", hp="12").final["test_acc"])
    assert ev.describe()["report_note"] == ""


@pytest.mark.parametrize("algo", ["random", "bohb"])
def test_parallel_asks_keep_the_sequential_trajectory_where_asks_do_not_wait(bench, algo):
    # Random search never waits on an outcome; BOHB caps itself at one pending ask. Either
    # way a batched loop must ask, charge and report exactly what the sequential one does.
    ev = TabularEvaluator(bench, "cifar10-valid")
    seq = run_search(build_searcher(algo, 3), ev, "3000s", seed=3)
    par = run_search(build_searcher(algo, 3), ev, "3000s", seed=3, parallel=4)
    assert par.history == seq.history
    np.testing.assert_array_equal(par.times, seq.times)
    assert par.final_arch == seq.final_arch


def test_parallel_batches_reach_the_executor(trainer_ev):
    class Counting:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def map(self, fn, tasks):
            tasks = list(tasks)
            self.batches.append(len(tasks))
            return [Outcome(i, t, fn(t), None, 0.0) for i, t in enumerate(tasks)]

    ex = Counting()
    res = run_search(build_searcher("rea", 0), trainer_ev, "5evals", parallel=2, executor=ex)
    assert ex.batches == [2, 2, 1]  # the last batch is cut to the evaluation budget
    assert len(res.history["arch_index"]) == 5
    assert all(ok for ok in res.history["ok"])
    with pytest.raises(SearchError, match="parallel"):
        run_search(build_searcher("rea", 0), trainer_ev, "2evals", parallel=0)
