"""A drop-in facade with the official NAS-Bench-201 API's calls, served from our table.

    from nasforge.bench.compat import NASBench201API as API
    api = API("nb201.table")           # opens in milliseconds instead of minutes
    info = api.get_more_info(index, "cifar10-valid", iepoch=None, hp="200", is_random=False)

Keys and value conventions follow ``nas_201_api`` (v2.0) and ``nats_bench`` (v1.8):

* datasets ``cifar10-valid`` (sets ``x-valid``, ``ori-test``), ``cifar10`` (``ori-test``),
  ``cifar100`` / ``ImageNet16-120`` (``x-valid``, ``x-test``, and ``ori-test`` reported as
  ``valtest-*``);
* ``iepoch`` is 0-based (``None`` = last epoch); ``*-all-time`` is the time summed over
  epochs ``0..iepoch`` and ``*-per-time`` that sum divided by ``iepoch + 1``;
* ``is_random=True`` picks one of the arch's seeds at random (``random.choice``),
  ``False`` averages over its seeds, an int selects that seed;
* ``get_cost_info`` gives ``flops`` / ``params`` (millions), ``latency`` (seconds, ``None``
  if unknown) and ``T-<set>@epoch`` / ``T-<set>@total`` times.

The random draws use the ``random`` module like the official API, unless a
``random.Random`` is passed as ``rng`` (reproducible runs).
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

from nasforge.bench.query import Benchmark
from nasforge.bench.schema import TRAIN_TIME
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def _official_set(dataset: str, prefix: str) -> str:
    """Our metric prefix -> the official evaluation-set name."""
    if prefix == "valid":
        return "x-valid"
    if prefix == "valtest":
        return "ori-test"
    return "ori-test" if dataset in ("cifar10", "cifar10-valid") else "x-test"


def remap_dataset_set_names(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """The official ``remap_dataset_set_names`` (api_utils.py)."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "valid":
        return dataset, "x-valid"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "test":
        return dataset, "x-test"
    return dataset, metric_on_set


def _mean(values: list[float | None]) -> float | None:
    """The official ``mean``: ``sum / len``; ``None`` when any value is missing (a seed's
    NaN is missing, and missing is reported as missing, never averaged away)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _none(x: float) -> float | None:
    return None if x != x else x


class NASBench201API:
    """The official ``NASBench201API`` calls on top of a :class:`Benchmark`.

    ``path`` is a table directory (import an official file first with
    ``nasforge bench import``) or an open :class:`Benchmark`.
    """

    _comment = False

    def __init__(
        self,
        path: str | os.PathLike[str] | Benchmark,
        verbose: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._bench = path if isinstance(path, Benchmark) else Benchmark.open(path)
        self.verbose = verbose
        self.filename = os.path.basename(str(self._bench.path))
        self._rng = rng if rng is not None else random
        self._used_time = 0.0
        self._meta_archs: list[str] | None = None

    # -- the search space -------------------------------------------------------------------
    @property
    def meta_archs(self) -> list[str]:
        if self._meta_archs is None:
            self._meta_archs = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
        return self._meta_archs

    @property
    def evaluated_indexes(self) -> list[int]:
        return [a.to_index() for a in self._bench]

    @property
    def avaliable_hps(self) -> list[str]:  # sic: the official spelling
        return sorted({hp for ds in self._bench.datasets for hp in self._bench.hps(ds)})

    @property
    def benchmark(self) -> Benchmark:
        return self._bench

    def __len__(self) -> int:
        return NUM_ARCHS

    def __getitem__(self, index: int) -> str:
        return self.meta_archs[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self._bench)}/{NUM_ARCHS} architectures, "
            f"file={self.filename})"
        )

    def arch(self, index: int) -> str:
        """The arch string of an index."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < NUM_ARCHS:
            raise BenchError(f"invalid index : {index} vs. {NUM_ARCHS}.")
        return Arch.from_index(int(index)).to_string()

    def query_index_by_arch(self, arch: Any) -> int:
        """Index of an arch string / object with ``tostr()`` / index; -1 if not in the space."""
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            if 0 <= arch < NUM_ARCHS:
                return int(arch)
            raise BenchError(f"Invalid architecture index {arch} vs [0, {NUM_ARCHS}].")
        if isinstance(arch, Arch):
            return arch.to_index()
        if not isinstance(arch, str) and hasattr(arch, "tostr"):
            arch = arch.tostr()
        if isinstance(arch, str):
            try:
                return Arch.from_string(arch).to_index()
            except ArchError:
                return -1
        return -1

    def random(self) -> int:
        return self._rng.randint(0, NUM_ARCHS - 1)

    # -- time accounting --------------------------------------------------------------------
    @property
    def used_time(self) -> float:
        return self._used_time

    def reset_time(self) -> None:
        self._used_time = 0

    # -- internals ---------------------------------------------------------------------------
    def _resolve(self, index: Any, dataset: str, hp: Any) -> tuple[Any, int, int]:
        i = self.query_index_by_arch(index)
        if i < 0:
            raise BenchError(f"arch {index!r} is not in the NB201 space")
        g = self._bench._g.get((dataset, str(hp)))
        if g is None:
            have = sorted(self._bench._g)
            raise BenchError(f"no results for dataset={dataset!r} hp={hp!r}; table has {have}")
        r = g.row(i)
        if r < 0 or not (r < len(g.g.rows) and (g.all_ok()[r] or (g.status[r] == 1).any())):
            raise BenchError(f"Did not find {i} from arch2infos_dict ({dataset}, hp={hp}).")
        return g, i, r

    def _seed_rows(self, g: Any, r: int, is_random: Any) -> list[int]:
        if g.all_ok()[r]:
            ok = list(range(len(g.g.seeds)))
        else:
            ok = [k for k, st in enumerate(g.status[r].tolist()) if st == 1]
        seeds = [g.g.seeds[k] for k in ok]
        if isinstance(is_random, bool) and is_random:
            return [ok[seeds.index(self._rng.choice(seeds))]]
        if isinstance(is_random, bool):
            return ok
        if isinstance(is_random, (int, np.integer)):
            if is_random not in seeds:
                raise BenchError(f"can not find random seed ({is_random}) from {seeds}")
            return [ok[seeds.index(int(is_random))]]
        raise BenchError(f"invalid value for is_random: {is_random}")

    # -- queries -----------------------------------------------------------------------------
    def get_more_info(
        self,
        index: Any,
        dataset: str,
        iepoch: int | None = None,
        hp: str = "12",
        is_random: bool | int = True,
    ) -> dict[str, Any]:
        """Loss / accuracy / time of the train and evaluation sets after epoch ``iepoch``."""
        g, _, r = self._resolve(index, dataset, hp)
        E = g.g.epochs
        if iepoch is None:
            iepoch = E - 1
        if not isinstance(iepoch, (int, np.integer)) or not 0 <= iepoch < E:
            raise BenchError(f"invalid iepoch={iepoch} < {E}")
        iepoch = int(iepoch)
        seed_rows = self._seed_rows(g, r, is_random)
        m = g.m_pos
        sub = g.data[r][seed_rows]  # [seeds, metrics, epochs]
        per_seed = sub[:, :, iepoch].tolist()  # [seeds][metrics]
        total = iepoch + 1
        # The official all_time is the sum of per-epoch times over epochs 0..iepoch.
        time_names = [n for n in ("valid_time", "test_time", "valtest_time") if n in m]
        sums = sub[:, [m[n] for n in time_names], :total].sum(axis=-1).tolist()
        time_pos = {n: k for k, n in enumerate(time_names)}

        def col(name: str) -> list[float | None]:
            k = m.get(name)
            if k is None:
                return [None] * len(per_seed)
            return [_none(row[k]) for row in per_seed]

        def all_time(name: str) -> list[float | None]:
            if name == TRAIN_TIME:
                return col(TRAIN_TIME)
            k = time_pos.get(name)
            if k is None:
                return [None] * len(per_seed)
            return [_none(row[k]) for row in sums]

        def pick(values: list[float | None]) -> float | None:
            return values[0] if len(values) == 1 else _mean(values)

        train_all = pick(all_time(TRAIN_TIME))
        info: dict[str, Any] = {
            "train-loss": pick(col("train_loss")),
            "train-accuracy": pick(col("train_acc")),
            "train-per-time": train_all / total if train_all is not None else None,
            "train-all-time": train_all,
        }
        if self._comment and dataset == "cifar10-valid":
            info["comment"] = (
                "In this dict, train-loss/accuracy/time is the metric on the train set of "
                "CIFAR-10. The test-loss/accuracy/time is the performance of the CIFAR-10 test "
                f"set after training on the train set by {hp} epochs. The per-time and "
                "total-time indicate the per epoch and total time costs, respectively."
            )
        elif self._comment and dataset == "cifar10":
            info["comment"] = (
                "In this dict, train-loss/accuracy/time is the metric on the train+valid sets "
                "of CIFAR-10. The test-loss/accuracy/time is the performance of the CIFAR-10 "
                f"test set after training on the train+valid sets by {hp} epochs. The per-time "
                "and total-time indicate the per epoch and total time costs, respectively."
            )
        for prefix in ("valid", "test", "valtest"):
            acc = col(f"{prefix}_acc")
            if all(a is None for a in acc):
                continue  # the official API leaves out a set it cannot find
            t = pick(all_time(f"{prefix}_time"))
            info[f"{prefix}-loss"] = pick(col(f"{prefix}_loss"))
            info[f"{prefix}-accuracy"] = pick(acc)
            info[f"{prefix}-per-time"] = t / total if t is not None else None
            info[f"{prefix}-all-time"] = t
        return info

    def get_cost_info(self, index: Any, dataset: str, hp: str = "12") -> dict[str, Any]:
        """``flops``, ``params``, ``latency`` and the ``T-<set>@epoch|total`` times."""
        g, i, r = self._resolve(index, dataset, hp)
        cost = self._bench.cost(i, dataset)
        info: dict[str, Any] = {
            "flops": cost.get("flops_m"),
            "params": cost.get("params_m"),
            "latency": cost.get("latency_s"),
        }
        seed_rows = self._seed_rows(g, r, False)

        def times(name: str) -> tuple[float | None, float | None]:
            k = g.m_pos.get(name)
            if k is None:
                return None, None
            per_epoch, totals = [], []
            for s in seed_rows:
                xs = g.data[r, s, k, :].tolist()
                if any(x != x for x in xs):
                    return None, None
                totals.append(sum(xs))
                per_epoch.append(sum(xs) / len(xs))
            return _mean(per_epoch), _mean(totals)

        info["T-train@epoch"], info["T-train@total"] = times("epoch_time")
        for prefix in ("valid", "test", "valtest"):
            if f"{prefix}_acc" in g.m_pos:
                name = _official_set(dataset, prefix)
                info[f"T-{name}@epoch"], info[f"T-{name}@total"] = times(f"{prefix}_time")
        return info

    def get_latency(self, index: Any, dataset: str, hp: str = "12") -> float | None:
        """The official latency (``latency_s``: batch 256, nas_201_api api_utils.py); ``None``
        for tables built by nasforge, whose ``latency_b1_s`` is a different measurement."""
        return self.get_cost_info(index, dataset, hp)["latency"]

    def simulate_train_eval(
        self,
        arch: Any,
        dataset: str,
        iepoch: int | str | None = None,
        hp: str = "12",
        account_time: bool = True,
    ) -> tuple[float, float | None, float, float]:
        """(valid accuracy, latency, time cost, total used time) of a simulated run.

        The NATS-Bench signature; a third positional string is taken as ``hp`` (the older
        ``nas_201_api`` signature ``(arch, dataset, hp, account_time)``).

        The time cost is training time to ``iepoch`` plus one evaluation of the validation
        set. Tables built by nasforge do not record evaluation times (the trainer times all
        evaluations of an epoch together); their evaluation is charged 0 seconds, as
        :class:`nasforge.evaluate.TabularEvaluator` does.
        """
        if isinstance(iepoch, str):
            iepoch, hp = None, iepoch
        index = self.query_index_by_arch(arch)
        names = ("cifar10", "cifar100", "ImageNet16-120")
        if dataset not in names:
            raise BenchError(f"Invalid dataset name : {dataset} vs {names}")
        ds = "cifar10-valid" if dataset == "cifar10" else dataset
        info = self.get_more_info(index, ds, iepoch=iepoch, hp=hp, is_random=True)
        if "valid-accuracy" in info:
            valid_acc = info["valid-accuracy"]
            eval_time = info["valid-per-time"]
        else:
            valid_acc = info["valtest-accuracy"]
            temp = self.get_more_info(index, dataset, iepoch=None, hp=hp, is_random=True)
            eval_time = temp.get("valid-per-time")
        if info["train-all-time"] is None:
            raise BenchError(
                f"table {self.filename!r} has no training times for {ds}/hp={hp}; "
                "simulate_train_eval needs them to account time"
            )
        time_cost = info["train-all-time"] + (eval_time if eval_time is not None else 0.0)
        # The official call reads cifar10's latency; without a cifar10 group, cifar10-valid's
        # (the same network, so the same cost).
        has_ds = (dataset, str(hp)) in self._bench._g
        latency = self.get_latency(index, dataset if has_ds else ds, hp=hp)
        if account_time:
            self._used_time += time_cost
        return valid_acc, latency, time_cost, self._used_time

    def find_best(
        self,
        dataset: str,
        metric_on_set: str,
        FLOP_max: float | None = None,
        Param_max: float | None = None,
        hp: str = "12",
    ) -> tuple[int, float | None]:
        """(index, accuracy) of the best arch on a set, under optional FLOPs / params caps."""
        dataset, metric_on_set = remap_dataset_set_names(dataset, metric_on_set)
        prefix = {"train": "train", "x-valid": "valid", "x-test": "test"}.get(metric_on_set)
        if metric_on_set == "ori-test":
            prefix = "test" if dataset in ("cifar10", "cifar10-valid") else "valtest"
        if prefix is None:
            raise BenchError(f"unknown set {metric_on_set!r} for {dataset}")
        values = np.array(self._bench.table(dataset, hp).mean_final(f"{prefix}_acc"))
        c = self._bench._state.costs.get(dataset)
        for cap, name, arg in (
            (FLOP_max, "flops_m", "FLOP_max"),
            (Param_max, "params_m", "Param_max"),
        ):
            if cap is None:
                continue
            if c is None or name not in c.metrics:
                # Ignoring the cap would return an unconstrained best as if it met it.
                raise BenchError(
                    f"{arg}={cap} needs the {name} cost, but the table has no {name} for "
                    f"{dataset!r} (costs known for {sorted(self._bench._state.costs)})"
                )
            cost = np.asarray(c.values[:, c.metrics.index(name)])
            # Unknown cost (NaN) cannot be shown to meet the cap: excluded.
            values[~(cost <= cap)] = np.nan
        if np.isnan(values).all():
            return -1, None
        best = int(np.nanargmax(values))
        return best, float(values[best])

    def get_net_config(self, index: int, dataset: str) -> dict[str, Any]:
        """The official ``infer.tiny`` config (C=16, N=5) of an arch."""
        if dataset not in _CLASSES:
            raise BenchError(f"dataset {dataset!r} unknown; expected one of {list(_CLASSES)}")
        return {
            "name": "infer.tiny",
            "C": 16,
            "N": 5,
            "arch_str": self.arch(self.query_index_by_arch(index)),
            "num_classes": _CLASSES[dataset],
        }

    def statistics(self, dataset: str, hp: str | int) -> dict[int, int]:
        """How many archs have 0, 1, 2, ... seeds on a dataset."""
        g = self._bench._g.get((dataset, str(hp)))
        if g is None:
            raise BenchError(f"no results for dataset={dataset!r} hp={hp!r}")
        counts = np.zeros(NUM_ARCHS, np.int64)
        counts[g.g.rows] = (np.asarray(g.status) == 1).sum(axis=1)
        values, freq = np.unique(counts, return_counts=True)
        return {int(v): int(f) for v, f in zip(values, freq, strict=True)}


class NATStopologyAPI(NASBench201API):
    """The NATS-Bench topology API flavour (``nats_bench.create(path, 'tss')``): as
    :class:`NASBench201API`, plus the ``comment`` key it adds for CIFAR-10."""

    _comment = True


def create(path: str | os.PathLike[str], search_space: str = "tss", **kwargs: Any) -> Any:
    """``nats_bench.create`` look-alike for the topology space."""
    if search_space not in ("tss", "topology"):
        raise BenchError(f"search space {search_space!r} unsupported; expected 'tss'")
    kwargs.pop("fast_mode", None)
    return NATStopologyAPI(path, **kwargs)


__all__ = ["NASBench201API", "NATStopologyAPI", "create", "remap_dataset_set_names"]
