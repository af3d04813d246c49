"""Evaluate an arch by looking it up in a tabular benchmark: :class:`TabularEvaluator`.

This is NAS-Bench-201's ``simulate_train_eval`` (``nas_201_api`` / ``nats_bench``
``api_utils.py``): the validation accuracy of one training run of the arch with the
12-epoch recipe (``hp='12'``) after ``fidelity`` epochs (``iepoch=fidelity-1``; the last epoch
by default), the run's seed drawn uniformly from the recorded seeds (``is_random=True``), and
the simulated clock charged ``train-all-time + valid-per-time``: the cumulative training
seconds up to that epoch plus one evaluation of the validation set, where ``valid-per-time``
is the *mean* validation time over epochs 0..e (``nas_201_api`` ``api_201.py``
``get_more_info``: ``valid_info['all_time'] / total`` with ``all_time`` the sum of the eval
times of epochs 0..iepoch, ``api_utils.py`` ``ResultsCount.get_eval``, and ``total =
iepoch + 1``).

Which group is searched and which reported is explicit, never a silent fallback of the
table: "cifar10" (train+valid) has no validation split, so, like the official
``simulate_train_eval``, a search asked for "cifar10" runs on the ``cifar10-valid`` group and
reports the ``cifar10`` group's final test accuracy (NB201 Table 5); when the table has no
``cifar10`` group it reports ``cifar10-valid`` and says so in ``describe()["report_note"]``.

What the protocol *reports* for a returned arch is a different query: by default the test
(and validation) accuracy after the final training of the report recipe (``hp='200'`` where
the table has it), averaged over seeds — the numbers of NAS-Bench-201's Table 5. These never
reach the searcher.

All lookups are numpy indexing into the table's bulk arrays (``Benchmark.table``), so an
evaluation costs microseconds and 100 searches of 12,000 simulated seconds take well under
a second of bookkeeping.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import BenchError, SearchError
from nasforge.evaluate.base import Arch, Evaluator, NetworkSpec, Observation, Reported
from nasforge.spaces import SearchSpace, get_space

__all__ = ["TabularEvaluator"]


class TabularEvaluator(Evaluator):
    """Answer evaluations from a benchmark table on a simulated clock.

    Parameters: ``bench`` a :class:`nasforge.bench.Benchmark` or a path to one; ``dataset``
    as the table names it; ``hp`` the recipe whose curves the search sees ("12": the
    12-epoch proxy, as in the official scripts); ``seed_policy`` "random" (a recorded seed
    drawn uniformly per evaluation — the official behaviour), "mean" (the seed average) or
    an int (always that seed); ``report_hp`` / ``report_dataset`` what is reported for a
    returned arch (default "200" if the table has it, else the longest recipe; the search
    dataset).
    """

    clock = "simulated"
    #: Benchmark tables are indexed by the official NB201 index: a table answers for NB201
    #: archs, located through the space's index and printed with its strings.
    SPACE = "nb201"

    def __init__(
        self,
        bench: Any,
        dataset: str,
        *,
        hp: str | None = "12",
        seed_policy: str | int = "random",
        report_hp: str | None = None,
        report_dataset: str | None = None,
    ) -> None:
        from nasforge.bench import Benchmark

        if isinstance(bench, (str, Path)):
            bench = Benchmark.open(bench)
        # the table's space (nb201, or nats-sss for a NATS-Bench size table)
        self._space = get_space(getattr(bench, "space", self.SPACE))
        self.bench = bench
        self.requested_dataset = dataset
        self.report_note = ""
        search_dataset = dataset
        if dataset == "cifar10":
            if "cifar10-valid" not in bench.datasets:
                raise BenchError(
                    "a search on 'cifar10' runs on the 'cifar10-valid' group (cifar10 has no "
                    f"validation split, as in the official simulate_train_eval); the table "
                    f"has {bench.datasets}"
                )
            search_dataset = "cifar10-valid"
            if report_dataset is None:
                if "cifar10" in bench.datasets:
                    report_dataset = "cifar10"
                else:
                    report_dataset = "cifar10-valid"
                    self.report_note = (
                        "the table has no 'cifar10' group: reported accuracies are those of "
                        "'cifar10-valid' (its test split), not of cifar10 train+valid training"
                    )
        elif dataset not in bench.datasets:
            raise BenchError(f"dataset {dataset!r} is not in the table; it has {bench.datasets}")
        dataset = search_dataset
        hps = bench.hps(dataset)
        if hp is None or (hp not in hps and len(hps) == 1):
            # a table with one recipe (e.g. a "final" import) is searched on that one
            hp = hps[0] if hp is None or len(hps) == 1 else hp
        self.dataset = dataset
        self.hp = str(hp)
        self.table = bench.table(dataset, self.hp)
        t = self.table
        self.seeds = tuple(t.seeds)
        if "valid_acc" not in t.metrics:
            raise BenchError(
                f"{dataset}/hp={self.hp} records no 'valid_acc'; a search selects on "
                f"validation accuracy (metrics: {list(t.metrics)})"
            )
        self._valid = np.asarray(t.valid_acc)
        self._test = np.asarray(t.test_acc) if "test_acc" in t.metrics else None
        self._has_time = bench.has_time(dataset, self.hp)
        self._cum = np.asarray(t.cum_time) if self._has_time else None
        self._vtime = np.asarray(t["valid_time"]) if "valid_time" in t.metrics else None
        self._ok = np.asarray(t.ok)
        self._num_epochs = t.num_epochs
        self._E = self._valid.shape[2]
        self._ok_seeds_cache: dict[int, np.ndarray] = {}

        if (
            isinstance(seed_policy, str)
            and seed_policy.isascii()
            and seed_policy.lstrip("-").isdigit()
        ):
            seed_policy = int(seed_policy)
        if isinstance(seed_policy, int) and not isinstance(seed_policy, bool):
            if seed_policy not in self.seeds:
                raise SearchError(
                    f"seed policy {seed_policy} is not a seed of {dataset}/hp={self.hp}; "
                    f"the table has seeds {list(self.seeds)}"
                )
            self._fixed_seed: int | None = self.seeds.index(seed_policy)
        elif seed_policy in ("random", "mean"):
            self._fixed_seed = None
        else:
            raise SearchError(
                f"seed policy {seed_policy!r} unknown; expected 'random', 'mean' or a seed of "
                f"the table ({list(self.seeds)})"
            )
        self.seed_policy = seed_policy

        self.report_dataset = report_dataset or dataset
        if self.report_dataset not in bench.datasets:
            raise BenchError(
                f"report dataset {self.report_dataset!r} is not in the table; it has "
                f"{bench.datasets}"
            )
        rhps = bench.hps(self.report_dataset)
        if report_hp is None:
            report_hp = (
                "200"
                if "200" in rhps
                else max(rhps, key=lambda h: bench.num_epochs(self.report_dataset, h) or 0)
            )
        self.report_hp = str(report_hp)
        self._report_valid: np.ndarray | None = None
        self._report_test: np.ndarray | None = None

        self._rng = np.random.default_rng(0)
        self._resume: dict[Hashable, tuple[int, int]] = {}

    # -- what this evaluator can answer ---------------------------------------------------
    @property
    def space(self) -> SearchSpace[Any]:
        return self._space

    @property
    def fidelities(self) -> Sequence[int]:
        if self._num_epochs is None:
            return ()
        return tuple(range(1, self._num_epochs + 1))

    @property
    def default_fidelity(self) -> int:
        # a final-metrics table: fidelity 0 stands for "final, epoch count unknown"
        return self._num_epochs if self._num_epochs is not None else 0

    @property
    def has_cost(self) -> bool:
        return self._has_time

    @property
    def recipe_epochs(self) -> int | None:
        """The epochs of the searched recipe: the table's epoch count, or, for a table with
        final metrics only, the recipe's name where it is a number of epochs (NB201 names
        its recipes so: "12", "200"); None when unknown."""
        if self._num_epochs is not None:
            return self._num_epochs
        return int(self.hp) if self.hp.isascii() and self.hp.isdigit() and int(self.hp) else None

    def known_costs(self, arch: Arch) -> dict[str, float]:
        """The table's costs of ``arch`` on the searched dataset (``Benchmark.cost``), with
        params / FLOPs the table lacks counted by the space's registered counter
        (``nasforge.cost.space_cost``: NB201's own convention, the networks the table's
        results were trained with)."""
        costs = self.bench.cost(arch, self.dataset)
        if "params_m" not in costs or "flops_m" not in costs:
            from nasforge.cost import DATASET_SHAPES, space_cost

            if self.dataset in DATASET_SHAPES:
                counted = space_cost(self._space.name, arch, self.dataset)
                if counted is not None:
                    costs = {**counted.to_dict(), **costs}
        return costs

    def network_spec(self) -> NetworkSpec | None:
        """The table's networks at their published size (the builder's defaults: NB201
        C=16, N=5) for the dataset's classes and resolution; None for a dataset whose shape
        is unknown."""
        from nasforge.cost import DATASET_SHAPES

        shape = DATASET_SHAPES.get(self.dataset)
        if shape is None:
            return None
        res, classes = shape
        return NetworkSpec(self._space.name, {"num_classes": classes}, (1, 3, res, res))

    def objective_range(self, name: str) -> tuple[float, float] | None:
        """(min, max) of objective ``name`` over every arch and seed the table holds, at the
        default fidelity: ``valid_acc``, ``train_time_s`` (the charge of a from-scratch
        evaluation) and the known costs; ``test_acc`` is the range of the *reported* test
        accuracy (:meth:`report`). None for anything else (e.g. a measured latency).
        The bounds a hypervolume is normalised with (``nasforge.search.fronts``)."""
        cache = self.__dict__.setdefault("_ranges", {})
        if name not in cache:
            cache[name] = self._objective_range(name)
        return cache[name]

    def _objective_range(self, name: str) -> tuple[float, float] | None:
        e = self._E - 1
        ok = self._ok
        if name == "test_acc":  # what is reported for a returned arch (report recipe)
            vals = self._report_arrays()[1]
        elif name == "valid_acc":
            vals = np.where(ok, self._valid[:, :, e], np.nan)
        elif name == "train_time_s":
            if self._cum is None:
                return None
            vals = np.where(ok, self._cum[:, :, e], np.nan)
            if self._vtime is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    vals = vals + np.nan_to_num(np.nanmean(self._vtime[:, :, : e + 1], axis=2))
        else:
            present = np.flatnonzero(ok.any(axis=0))
            column = self.bench.cost_array(self.dataset, name)
            if column is not None and np.isfinite(column[present]).all():
                vals = column[present]  # the table's own column, one lookup
            else:
                got = [self.known_costs(self.bench.arch_string(int(i))).get(name) for i in present]
                vals = np.asarray([math.nan if v is None else v for v in got], dtype=np.float64)
            if not np.isfinite(vals).all():
                return None  # a cost known for some archs only: no space-wide range
        finite = vals[np.isfinite(vals)]
        if finite.size == 0:
            return None
        return float(finite.min()), float(finite.max())

    def reset(self, seed: int) -> None:
        # decorrelated from the searcher's stream, which is seeded with the same int
        self._rng = np.random.default_rng([int(seed), 0x7AB1E])
        self._resume.clear()

    # -- evaluation ------------------------------------------------------------------------
    def _epoch_pos(self, fidelity: int | None) -> int:
        if fidelity is None:
            return self._E - 1
        if self._num_epochs is None:
            if fidelity in (0, self._E):
                return self._E - 1
            raise SearchError(
                f"{self.dataset}/hp={self.hp} has final metrics only; it cannot answer at "
                f"fidelity {fidelity} epochs"
            )
        if not 1 <= fidelity <= self._num_epochs:
            raise SearchError(
                f"fidelity {fidelity!r} out of range for {self.dataset}/hp={self.hp}; "
                f"expected 1..{self._num_epochs} epochs"
            )
        return int(fidelity) - 1

    def _ok_seeds(self, index: int, arch: Arch) -> np.ndarray:
        cand = self._ok_seeds_cache.get(index)
        if cand is None:
            cand = np.flatnonzero(self._ok[:, index])
            if cand.size == 0:
                if self.table.has_entry(index):
                    raise _FailedRun(
                        f"arch {self._space.to_string(arch)} (index {index}) has no ok run for "
                        f"{self.dataset}/hp={self.hp}: every recorded seed failed or diverged"
                    )
                raise BenchError(
                    f"arch {self._space.to_string(arch)} (index {index}) has no entry for "
                    f"{self.dataset}/hp={self.hp}"
                )
            self._ok_seeds_cache[index] = cand
        return cand

    def evaluate(
        self, arch: Arch, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        e = self._epoch_pos(fidelity)
        index = self._space.index(arch)
        try:
            cand = self._ok_seeds(index, arch)
        except _FailedRun as exc:
            return Observation(
                arch,
                math.nan,
                e + 1 if self._num_epochs else 0,
                0.0,
                status="failed",
                info={"error": str(exc)},
            )
        prev_e = -1
        if resume_key is not None and resume_key in self._resume:
            s, prev_e = self._resume[resume_key]
        elif self.seed_policy == "mean":
            s = -1
        elif self._fixed_seed is not None:
            s = self._fixed_seed
            if not self._ok[s, index]:
                raise BenchError(
                    f"seed {self.seeds[s]} has no ok run of arch {self._space.to_string(arch)} on "
                    f"{self.dataset}/hp={self.hp}"
                )
        else:
            s = int(cand[self._rng.integers(cand.size)]) if cand.size > 1 else int(cand[0])
        if resume_key is not None:
            self._resume[resume_key] = (s, max(e, prev_e))
        if s < 0:
            valid = float(self._valid[cand, index, e].mean())
            test = float(self._test[cand, index, e].mean()) if self._test is not None else math.nan
            cost = self._cost_mean(cand, index, e, prev_e)
        else:
            valid = float(self._valid[s, index, e])
            test = float(self._test[s, index, e]) if self._test is not None else math.nan
            cost = self._cost(s, index, e, prev_e)
        fid = e + 1 if self._num_epochs is not None else 0
        return Observation(
            arch,
            valid,
            fid,
            cost,
            test,
            "ok",
            {"seed": self.seeds[s] if s >= 0 else "mean"},
        )

    def _cost(self, s: int, index: int, e: int, prev_e: int) -> float:
        """Training seconds from epoch ``prev_e`` (exclusive, -1: from scratch) to ``e``,
        plus one validation pass (the official ``train-all-time + valid-per-time``, the
        latter the mean validation time of epochs 0..e; see the module docstring)."""
        if self._cum is None:
            return 0.0
        t = float(self._cum[s, index, e])
        if prev_e >= 0:
            t -= float(self._cum[s, index, min(prev_e, e)])
        if self._vtime is not None:
            v = self._vtime[s, index, : e + 1]
            finite = v[np.isfinite(v)]
            if finite.size:
                t += float(finite.mean())
        return max(t, 0.0)

    def _cost_mean(self, cand: np.ndarray, index: int, e: int, prev_e: int) -> float:
        return float(np.mean([self._cost(int(s), index, e, prev_e) for s in cand]))

    # -- reporting -------------------------------------------------------------------------
    def _report_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._report_test is None:
            t = self.bench.table(self.report_dataset, self.report_hp)
            nan = np.full(self._valid.shape[1], np.nan)
            self._report_valid = t.mean_final("valid_acc") if "valid_acc" in t.metrics else nan
            self._report_test = t.mean_final("test_acc") if "test_acc" in t.metrics else nan
        assert self._report_valid is not None
        return self._report_valid, self._report_test

    def report(self, arch: Arch, observation: Observation) -> Reported:
        """The seed-averaged final valid / test accuracy of ``arch`` under the report recipe
        (NaN where the table has none)."""
        rv, rt = self._report_arrays()
        i = self._space.index(arch)
        return Reported(float(rv[i]), float(rt[i]))

    def best_possible(self) -> Reported:
        """The report of the arch with the best reported validation accuracy — the oracle a
        search is measured against (regret = this test accuracy minus the search's)."""
        rv, rt = self._report_arrays()
        if np.all(np.isnan(rv)):
            raise BenchError(f"no reported valid accuracy on {self.report_dataset}")
        i = int(np.nanargmax(rv))
        return Reported(float(rv[i]), float(rt[i]))

    def optimum(self) -> float:
        """The best reported test accuracy of any arch in the table (NaN if none): the
        "optimal" row of NAS-Bench-201's Table 5, the ceiling a plot draws."""
        _, rt = self._report_arrays()
        return float(np.nanmax(rt)) if np.isfinite(rt).any() else math.nan

    def describe(self) -> dict[str, Any]:
        return {
            "name": "tabular",
            "clock": self.clock,
            "bench": str(getattr(self.bench, "path", "")),
            # A synthetic table's figures are made up: every summary and plot says so.
            "synthetic": bool((getattr(self.bench, "meta", None) or {}).get("synthetic")),
            "dataset": self.dataset,
            "hp": self.hp,
            "epochs": self._num_epochs,
            "seed_policy": self.seed_policy,
            "has_time": self._has_time,
            "requested_dataset": self.requested_dataset,
            "report_dataset": self.report_dataset,
            "report_hp": self.report_hp,
            "report_note": self.report_note,
        }


class _FailedRun(Exception):
    """Internal: the table has entries for the arch but none of them is ok."""
