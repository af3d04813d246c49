"""The NAS-Bench-201 API (``nas_201_api.NASBench201API``) over a table, and where the table
of an official file lives (:func:`sibling_table`)."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.compat.common import (
    _ARCH_CONFIGS,
    _CLASSES,
    NB201_BASE_NAME,
    TABLE_SUFFIX,
    _default_table,
    _net_config,
    _none,
    remap_dataset_set_names,
)
from nasforge.bench.compat.results import (
    ArchResults,
    NB201ArchResults,
    _Arch2Infos,
    print_information,
)
from nasforge.bench.query import Benchmark
from nasforge.bench.schema import TRAIN_TIME
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nb201 import OPS, Arch


# -- the API -----------------------------------------------------------------------------------
def sibling_table(official: str | os.PathLike[str]) -> Path:
    """Where the table imported from an official file lives by convention: next to it,
    named after it (``NAS-Bench-201-v1_1-096897.pth`` -> ``NAS-Bench-201-v1_1-096897.table``,
    ``NATS-tss-v1_0-3ffb9-simple`` -> ``NATS-tss-v1_0-3ffb9.table``)."""
    p = Path(official)
    name = p.name
    for suffix in (".pickle.pbz2", ".pth", "-simple", "-full", "-archive"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + TABLE_SUFFIX)


def _open(path: Any) -> Benchmark:
    """A table; given an official file, the table imported next to it (so scripts that
    name the official file run unchanged once it is imported)."""
    if isinstance(path, Benchmark):
        return path
    p = Path(path)
    if p.exists() and not (p / "manifest.json").is_file():
        from nasforge.bench.importers import detect_format

        try:
            kind = detect_format(p)
        except BenchError:
            kind = None
        if kind in ("nb201", "nats-tss", "nats-sss"):
            table = sibling_table(p)
            if (table / "manifest.json").is_file():
                return Benchmark.open(table)
            raise BenchError(
                f"{str(p)!r} is an official {kind} file; import it once "
                f"(`nasforge bench import {p} -o {table}`), then this call opens the table"
            )
    return Benchmark.open(p)


class NASBench201API:
    """The official ``NASBench201API`` calls on top of a :class:`Benchmark`.

    ``path`` is a table directory (import an official file first with
    ``nasforge bench import``), an open :class:`Benchmark`, or ``None``:
    ``$TORCH_HOME/NAS-Bench-201-v1_1-096897.table`` (the official default file name with
    the table suffix).
    """

    _comment = False
    _arch_results_cls: type[ArchResults] = NB201ArchResults
    _info_sep = ","
    _default_base = NB201_BASE_NAME
    #: cifar10-valid's summary line shows ori-test too (only NATS-Bench size's does).
    _valid_test = False
    #: The space of the tables this flavour serves.
    _table_space = "nb201"

    def __init__(
        self,
        path: str | os.PathLike[str] | Benchmark | None = None,
        verbose: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if path is None:
            path = _default_table(self._default_base)
        self._bench = _open(path)
        if self._bench.space != self._table_space:
            raise BenchError(
                f"table {str(self._bench.path)!r} holds the {self._bench.space} space; "
                f"{type(self).__name__} serves {self._table_space} tables"
                + (" (use create(path, 'sss'))" if self._bench.space == "nats-sss" else "")
            )
        self.verbose = verbose
        self.filename = os.path.basename(str(self._bench.path))
        self._rng = rng if rng is not None else random
        self._used_time = 0.0
        self._meta_archs: list[str] | None = None
        self._archstr2index: dict[str, int] | None = None

    # -- the search space -------------------------------------------------------------------
    @property
    def meta_archs(self) -> list[str]:
        if self._meta_archs is None:
            space = self._bench._space
            self._meta_archs = [space.string(i) for i in range(space.size)]
        return self._meta_archs

    @property
    def evaluated_indexes(self) -> list[int]:
        """Indices with at least one ok run, ascending."""
        return np.flatnonzero(self._bench._present_mask()).tolist()

    @property
    def archstr2index(self) -> dict[str, int]:
        if self._archstr2index is None:
            self._archstr2index = {s: i for i, s in enumerate(self.meta_archs)}
        return self._archstr2index

    @property
    def arch2infos_dict(self) -> Mapping[int, dict[str, ArchResults]]:
        """index -> ``{hp: ArchResults}`` (made on access; nothing is loaded up front)."""
        return _Arch2Infos(self)

    def _hps(self) -> list[str]:
        return sorted({hp for _, hp in self._bench._g}, key=lambda h: (len(h), h))

    def _has(self, index: int) -> bool:
        return 0 <= index < self._size and bool(self._bench._present_mask()[index])

    @property
    def avaliable_hps(self) -> list[str]:  # sic: the official spelling
        return self._hps()

    @property
    def benchmark(self) -> Benchmark:
        return self._bench

    @property
    def _size(self) -> int:
        return self._bench.space_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> str:
        return self.meta_archs[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self._bench)}/{self._size} architectures, "
            f"file={self.filename})"
        )

    def arch(self, index: int) -> str:
        """The arch string of an index."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self._size:
            raise BenchError(f"invalid index : {index} vs. {self._size}.")
        return self._bench.arch_string(int(index))

    def query_index_by_arch(self, arch: Any) -> int:
        """Index of an arch string / object with ``tostr()`` / index; -1 if not in the space."""
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            if 0 <= arch < self._size:
                return int(arch)
            raise BenchError(f"Invalid architecture index {arch} vs [0, {self._size}].")
        if not isinstance(arch, str) and hasattr(arch, "tostr"):
            arch = arch.tostr()
        if isinstance(arch, (str, Arch, tuple)):  # strings, and the space's own arch values
            try:
                return self._bench._space.index(arch)
            except (ArchError, TypeError, ValueError):
                return -1
        return -1

    def random(self) -> int:
        return self._rng.randint(0, self._size - 1)

    @staticmethod
    def str2lists(arch_str: str) -> list[tuple[tuple[str, int], ...]]:
        """``'|op~0|+|op~0|op~1|+...'`` -> one tuple of ``(op, input node)`` per node."""
        nodes = []
        for node_str in arch_str.split("+"):
            edges = []
            for item in filter(None, node_str.split("|")):
                op, sep, src = item.partition("~")
                if not sep or "~" in src:
                    raise ArchError(f"invalid input length : {item!r} (expected 'op~node')")
                edges.append((op, int(src)))
            nodes.append(tuple(edges))
        return nodes

    @staticmethod
    def str2matrix(arch_str: str, search_space: Any = tuple(OPS)) -> np.ndarray:
        """The NAS-Bench-101-style ``[nodes, nodes]`` matrix: entry ``[i + 1, j]`` is the op
        index (in ``search_space``) of the edge node j -> node i + 1 (0 = none / no edge)."""
        nodes = NASBench201API.str2lists(arch_str)
        matrix = np.zeros((len(nodes) + 1, len(nodes) + 1))
        for i, edges in enumerate(nodes):
            for op, src in edges:
                if op not in search_space:
                    raise ArchError(f"this op ({op}) is not in {list(search_space)}")
                matrix[i + 1, src] = list(search_space).index(op)
        return matrix

    # -- time accounting --------------------------------------------------------------------
    @property
    def used_time(self) -> float:
        return self._used_time

    def reset_time(self) -> None:
        self._used_time = 0

    # -- memory management of the official API: moot on a memory-mapped table -------------
    def reload(self, archive_root: str | None = None, index: int | None = None) -> None:
        """No-op. The official call loads an arch's results (and weights) from the archive
        into memory; a table is memory-mapped, every arch is always available."""
        if index is not None:
            self.arch(index)  # the official call refuses a bad index: so do we

    def clear_params(self, index: int, hp: str | None = None) -> None:
        """No-op. The official call frees an arch's weights; a table holds none."""
        self.arch(index)

    # -- internals ---------------------------------------------------------------------------
    def _resolve(self, index: Any, dataset: str, hp: Any) -> tuple[Any, int, int]:
        i = self.query_index_by_arch(index)
        if i < 0:
            raise BenchError(f"arch {index!r} is not in the {self._bench.space} space")
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

    def _mean(self, values: list[float | None]) -> Any:
        """The flavour's seed average; ``None`` when any value is missing (a seed's NaN is
        missing, and missing is reported as missing, never averaged away)."""
        if not values or any(v is None for v in values):
            return None
        return self._arch_results_cls._result_cls._mean(values)

    # -- queries -----------------------------------------------------------------------------
    def query_meta_info_by_index(self, arch_index: Any, hp: str = "12") -> ArchResults:
        """The :class:`ArchResults` of an arch under recipe ``hp`` (all its datasets)."""
        i = self.query_index_by_arch(arch_index)
        if i < 0 or not self._has(i):
            raise BenchError(f"arch_index [{arch_index}] does not in arch2infos")
        hp = str(hp)
        if hp not in self._hps():
            raise BenchError(
                f"The {i}-th architecture only has hyper-parameters of {self._hps()} "
                f"instead of {hp}."
            )
        info = self._arch_results_cls._from_table(self._bench, i, hp, self._rng)
        if not info.dataset_seed:
            have = [h for h in self._hps() if self._has_hp(i, h)]
            raise BenchError(
                f"The {i}-th architecture only has hyper-parameters of {have} instead of {hp}."
            )
        return info

    def _has_hp(self, index: int, hp: str) -> bool:
        return any(
            g.row(index) >= 0 and (np.asarray(g.status[g.row(index)]) == 1).any()
            for (_, h), g in self._bench._g.items()
            if h == hp
        )

    def query_by_index(self, arch_index: Any, dataname: str | None = None, hp: str = "12") -> Any:
        """The :class:`ArchResults` (``dataname=None``) or ``{seed: ResultsCount}`` of one
        dataset."""
        info = self.query_meta_info_by_index(arch_index, hp)
        if dataname is None:
            return info
        if dataname not in info.get_dataset_names():
            raise BenchError(f"invalid dataset-name : {dataname} vs. {info.get_dataset_names()}")
        return info.query(dataname)

    def query_info_str_by_arch(self, arch: Any, hp: str = "12") -> str | None:
        """The official summary text of an arch under ``hp`` (``None`` if not evaluated)."""
        i = self.query_index_by_arch(arch)
        if i < 0 or not self._has(i):
            print(f"Find this arch-index : {i}, but this arch is not evaluated.")
            return None
        info = self.query_meta_info_by_index(i, hp)
        lines = print_information(
            info, f"arch-index={i}", sep=self._info_sep, valid_test=self._valid_test
        )
        return "\n".join(lines)

    def query_by_arch(self, arch: Any, hp: str = "12") -> str | None:
        """The old NB201 name of :meth:`query_info_str_by_arch`."""
        return self.query_info_str_by_arch(arch, hp)

    def show(self, index: int = -1) -> None:
        """Print the summary of one arch (``index >= 0``) or of every evaluated arch."""

        def one(i: int) -> None:
            for hp in self._hps():
                try:
                    info = self.query_meta_info_by_index(i, hp)
                except BenchError:
                    continue
                print(">" * 40 + f" {info.get_total_epoch():03d} epochs " + ">" * 40)
                lines = print_information(info, sep=self._info_sep, valid_test=self._valid_test)
                print("\n".join(lines))
            print("<" * 40 + "------------" + "<" * 40)

        if index < 0:
            print(self)
            done = self.evaluated_indexes
            for k, i in enumerate(done):
                print(
                    "\n"
                    + "-" * 10
                    + f" The ({k:5d}/{len(done):5d}) {i:06d}-th architecture! "
                    + "-" * 10
                )
                print(f"arch : {self.meta_archs[i]}")
                one(i)
        elif index >= self._size:
            print(f"This index ({index}) is out of range (0~{self._size}).")
        elif not self._has(index):
            print(f"The {index}-th architecture has not been evaluated or not saved.")
        else:
            one(index)

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

        averaged = isinstance(is_random, bool) and not is_random

        def pick(values: list[float | None]) -> Any:
            return self._mean(values) if averaged else values[0]

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
        self._resolve(index, dataset, hp)
        info = self.query_meta_info_by_index(self.query_index_by_arch(index), hp)
        return info.get_compute_costs(dataset)

    def get_latency(self, index: Any, dataset: str, hp: str = "12") -> float | None:
        """The official latency (``latency_s`` at batch 256, nas_201_api api_utils.py);
        ``None`` for tables built by nasforge, whose ``latency_s`` is measured at batch 1,
        a different quantity."""
        return self.get_cost_info(index, dataset, hp)["latency"]

    def get_net_param(self, index: Any, dataset: str, seed: int | None, hp: str = "12") -> Any:
        """Trained weights: tables store none, so this raises a clear :class:`BenchError`
        (after checking the arch / dataset / seed exist, as the official call would)."""
        return self.query_meta_info_by_index(index, hp).get_net_param(dataset, seed)

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

    def _final_means(self, dataset: str, hp: str, metric: str) -> np.ndarray:
        """``[15625]`` seed-averaged last-epoch ``metric`` (NaN: no ok run), read from the
        last epoch only (a sparse table is not expanded to 15,625 full curves)."""
        g = self._bench._group(dataset, hp)
        k = g.m_pos.get(metric)
        if k is None:
            raise BenchError(f"{dataset}/{hp} has no {metric}; it has {list(g.names)}")
        final = np.asarray(g.data[:, :, k, -1], dtype=np.float64)
        final = np.where(np.asarray(g.status) == 1, final, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are "missing"
            means = np.nanmean(final, axis=1)
        values = np.full(self._size, np.nan)
        if g.inv is None:
            values[g.g.rows] = means
        else:
            idx = np.flatnonzero(g.inv >= 0)
            values[idx] = means[g.inv[idx]]
        return values

    def _find_best(
        self,
        dataset: str,
        metric_on_set: str,
        flop_max: float | None,
        param_max: float | None,
        hp: str,
        names: tuple[str, str],
    ) -> tuple[int, Any]:
        dataset, metric_on_set = remap_dataset_set_names(dataset, metric_on_set)
        prefix = {"train": "train", "x-valid": "valid", "valid": "valid", "x-test": "test"}.get(
            metric_on_set
        )
        if metric_on_set == "ori-test":
            prefix = "test" if dataset in ("cifar10", "cifar10-valid") else "valtest"
        if prefix is None:
            raise BenchError(f"unknown set {metric_on_set!r} for {dataset}")
        values = self._final_means(dataset, str(hp), f"{prefix}_acc")
        c = self._bench._state.costs.get(dataset)
        for cap, name, arg in ((flop_max, "flops_m", names[0]), (param_max, "params_m", names[1])):
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
        best = int(np.nanargmax(values))  # the first of equal bests, as the official loop
        return best, self._arch_results_cls._result_cls._mean([float(values[best])])

    def find_best(
        self,
        dataset: str,
        metric_on_set: str,
        FLOP_max: float | None = None,
        Param_max: float | None = None,
        hp: str = "12",
    ) -> tuple[int, Any]:
        """(index, accuracy) of the best arch on a set, under optional FLOPs / params caps."""
        return self._find_best(
            dataset, metric_on_set, FLOP_max, Param_max, hp, ("FLOP_max", "Param_max")
        )

    def get_net_config(self, index: int, dataset: str) -> dict[str, Any]:
        """The network config of an arch: ``infer.tiny`` for a topology table (the official
        C=16, N=5, or the C / N a nasforge build recorded), ``infer.shape.tiny`` for a size
        table (its channels and the fixed cell)."""
        i = self.query_index_by_arch(index)
        if dataset not in _CLASSES and not any(d == dataset for d, _ in self._bench._g):
            raise BenchError(f"dataset {dataset!r} unknown; expected one of {list(_CLASSES)}")
        build: dict[str, Any] = {}
        for key, meta in sorted((self._bench.meta.get("build") or {}).items()):
            if key.split("/")[0] == dataset:
                build = meta
                break
        return _net_config(_ARCH_CONFIGS[self._bench.space](self.arch(i), dataset, build), None)

    def statistics(self, dataset: str, hp: str | int) -> dict[int, int]:
        """How many archs have 0, 1, 2, ... seeds on a dataset."""
        g = self._bench._g.get((dataset, str(hp)))
        if g is None:
            raise BenchError(f"no results for dataset={dataset!r} hp={hp!r}")
        counts = np.zeros(self._size, np.int64)
        counts[g.g.rows] = (np.asarray(g.status) == 1).sum(axis=1)
        values, freq = np.unique(counts, return_counts=True)
        return {int(v): int(f) for v, f in zip(values, freq, strict=True)}
