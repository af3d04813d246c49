"""A drop-in facade with the official NAS-Bench-201 / NATS-Bench (topology) API, served
from our table.

    from nasforge.bench.compat import NASBench201API as API      # nas_201_api flavour
    api = API("nb201.table")           # opens in milliseconds instead of minutes
    info = api.query_meta_info_by_index(index, hp="200")           # an ArchResults
    info.get_metrics("cifar10-valid", "x-valid")["accuracy"]
    for seed, rc in api.query_by_index(index, "cifar100", hp="200").items():
        rc.eval_acc1es["x-test@199"], rc.get_train(10)

    from nasforge.bench import compat
    api = compat.create(None, "tss", fast_mode=True)               # nats_bench flavour

Keys, value conventions and return types follow ``nas_201_api`` (v2.0) and ``nats_bench``
(v1.8):

* datasets ``cifar10-valid`` (sets ``x-valid``, ``ori-test``), ``cifar10`` (``ori-test``),
  ``cifar100`` / ``ImageNet16-120`` (``x-valid``, ``x-test``, and ``ori-test`` reported as
  ``valtest-*``);
* ``iepoch`` is 0-based (``None`` = last epoch); ``*-all-time`` is the time summed over
  epochs ``0..iepoch`` and ``*-per-time`` that sum divided by ``iepoch + 1``;
* ``is_random=True`` picks one of the arch's seeds at random, ``False`` averages over its
  seeds, an int selects that seed;
* averages are ``numpy.mean`` (``numpy.float64``) in the ``nas_201_api`` flavour and
  ``sum / len`` (``float``) in the ``nats_bench`` one, as in the two official packages;
* ``get_cost_info`` gives ``flops`` / ``params`` (millions), ``latency`` (seconds, ``None``
  if unknown) and ``T-<set>@epoch`` / ``T-<set>@total`` times.

Where the facade differs on purpose:

* ``reload`` / ``clear_params`` are no-ops: the table is memory-mapped, so nothing is held
  per arch (no 25 GB dict to load arch by arch, no weights to free);
* a table holds metrics, not trained weights: ``get_net_param`` raises a clear
  :class:`BenchError` instead of returning ``None``;
* ``verbose`` is accepted and ignored (the official call logs are not reproduced);
* an official file path (or ``None`` = the default under ``$TORCH_HOME``) opens the table
  imported next to it, ``<official name>.table`` (:func:`sibling_table`): import once with
  ``nasforge bench import``, then scripts naming the official file run unchanged;
* errors are :class:`BenchError` (a ``ValueError``, as most official errors are; a missing
  key is also a ``KeyError``).

The random draws use the ``random`` module like the official API, unless a
``random.Random`` is passed as ``rng`` (reproducible runs).
"""

from __future__ import annotations

import copy
import os
import random
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.query import OFFICIAL_LATENCY_BATCH, Benchmark
from nasforge.bench.schema import OFFICIAL_DATASETS, TRAIN_TIME
from nasforge.errors import ArchError, BenchError
from nasforge.spaces.nats_sss import CELL as _SSS_CELL
from nasforge.spaces.nb201 import OPS, Arch

_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: The NB201 network the official files were trained with (api_utils ``arch_config``).
_OFFICIAL_C, _OFFICIAL_N = 16, 5


def _tiny_config(arch_str: str, dataset: str, build: dict[str, Any]) -> dict[str, Any]:
    """``arch_config`` of a topology trial (api_utils ``ResultsCount.arch_config``)."""
    return {
        "channel": build.get("C", _OFFICIAL_C),
        "num_cells": build.get("N", _OFFICIAL_N),
        "arch_str": arch_str,
        "class_num": _CLASSES.get(dataset, build.get("num_classes")),
    }


def _shape_config(arch_str: str, dataset: str, build: dict[str, Any]) -> dict[str, Any]:
    """``arch_config`` of a size-space trial, as AutoDL-Projects
    ``exps/NATS-Bench/sss-collect.py`` (``account_one_arch``) writes it."""
    return {
        "name": "infer.shape.tiny",
        "channels": arch_str,
        "arch_str": arch_str,
        "genotype": _SSS_CELL,
        "class_num": _CLASSES.get(dataset, build.get("num_classes")),
    }


#: Table space -> the ``arch_config`` its trials carry.
_ARCH_CONFIGS: dict[str, Callable[[str, str, dict[str, Any]], dict[str, Any]]] = {
    "nb201": _tiny_config,
    "nats-sss": _shape_config,
}


def _net_config(cfg: dict[str, Any], str2structure: Callable[[str], Any] | None) -> dict[str, Any]:
    """``ResultsCount.get_config`` (nats_bench api_utils.py): ``infer.shape.tiny`` for a
    size-space trial, ``infer.tiny`` otherwise (``genotype`` via ``str2structure`` if
    given, else the arch string)."""
    if cfg.get("name") == "infer.shape.tiny":
        genotype = cfg["genotype"]
        return {
            "name": "infer.shape.tiny",
            "channels": cfg["channels"],
            "genotype": genotype if str2structure is None else str2structure(genotype),
            "num_classes": cfg["class_num"],
        }
    out: dict[str, Any] = {"name": "infer.tiny", "C": cfg["channel"], "N": cfg["num_cells"]}
    if str2structure is None:
        out["arch_str"] = cfg["arch_str"]
    else:
        out["genotype"] = str2structure(cfg["arch_str"])
    out["num_classes"] = cfg["class_num"]
    return out


#: Base names of the newest official files (nas_201_api/api_201.py ALL_BENCHMARK_FILES,
#: nats_bench/api_topology.py ALL_BASE_NAMES, nats_bench/api_size.py ALL_BASE_NAMES).
NB201_BASE_NAME = "NAS-Bench-201-v1_1-096897"
NATS_TSS_BASE_NAME = "NATS-tss-v1_0-3ffb9"
NATS_SSS_BASE_NAME = "NATS-sss-v1_0-50262"
#: Suffix of the table ``create(None, ...)`` looks for next to the official files.
TABLE_SUFFIX = ".table"


class CompatKeyError(BenchError, KeyError):
    """A dataset / seed / key an official object does not have (a ``KeyError`` there)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _official_set(dataset: str, prefix: str) -> str:
    """Our metric prefix -> the official evaluation-set name."""
    if prefix == "valid":
        return "x-valid"
    if prefix == "valtest":
        return "ori-test"
    return "ori-test" if dataset in ("cifar10", "cifar10-valid") else "x-test"


def remap_dataset_set_names(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """The official ``remap_dataset_set_names`` (nats_bench api_utils.py)."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "valid":
        return dataset, "x-valid"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "test":
        return dataset, "x-test"
    return dataset, metric_on_set


def _py_mean(values: list[Any]) -> Any:
    return sum(values) / len(values)


def _np_mean(values: list[Any]) -> Any:
    return np.mean(values)


def _np_sum(values: list[Any]) -> Any:
    return np.sum(values)


def _none(x: float) -> float | None:
    return None if x != x else x


def get_torch_home() -> str:
    """``$TORCH_HOME``, else ``$HOME/.torch`` (nats_bench api_utils.get_torch_home)."""
    if "TORCH_HOME" in os.environ:
        return os.environ["TORCH_HOME"]
    if "HOME" in os.environ:
        return os.path.join(os.environ["HOME"], ".torch")
    raise BenchError("neither TORCH_HOME nor HOME is set; pass the table path explicitly")


def _no_weights(where: str) -> BenchError:
    return BenchError(
        f"{where}: nasforge tables store metrics and costs, not trained weights; train the "
        "arch (`nasforge train`) or load the official NB201 archive / NATS -full checkpoints "
        "with the official API"
    )


# -- one trial -------------------------------------------------------------------------------
class ResultsCount:
    """One trial (one seed) of an arch on a dataset: the official ``ResultsCount``.

    Attributes are the official ones (``train_acc1es`` / ``train_losses`` / ``train_times``
    keyed by 0-based epoch, ``eval_acc1es`` / ``eval_losses`` / ``eval_times`` keyed
    ``"<set>@<epoch>"``, ``params`` / ``flop`` in millions, ``latency`` a list of seconds).
    This class averages like ``nats_bench`` (``sum / len``); :class:`NB201ResultsCount`
    like ``nas_201_api`` (``numpy.mean``).
    """

    _mean: Callable[[list[Any]], Any] = staticmethod(_py_mean)
    _sum: Callable[[list[Any]], Any] = staticmethod(sum)

    def __init__(
        self,
        name: Any,
        state_dict: Any,
        train_accs: Any,
        train_losses: Any,
        params: Any,
        flop: Any,
        arch_config: Any,
        seed: Any,
        epochs: Any,
        latency: Any,
    ) -> None:
        self.name = name
        self.net_state_dict = state_dict
        self.train_acc1es = copy.deepcopy(train_accs)
        self.train_acc5es = None
        self.train_losses = copy.deepcopy(train_losses)
        self.train_times: dict[int, float] | None = None
        self.arch_config = copy.deepcopy(arch_config)
        self.params = params
        self.flop = flop
        self.seed = seed
        self.epochs = epochs
        self.latency = latency
        self.reset_eval()

    def reset_eval(self) -> None:
        self.eval_names: list[str] = []
        self.eval_acc1es: dict[str, float] = {}
        self.eval_times: dict[str, float] = {}
        self.eval_losses: dict[str, float] = {}

    def update_train_info(
        self, train_acc1es: Any, train_acc5es: Any, train_losses: Any, train_times: Any
    ) -> None:
        self.train_acc1es = train_acc1es
        self.train_acc5es = train_acc5es
        self.train_losses = train_losses
        self.train_times = train_times

    def update_eval(self, accs: dict, losses: dict, times: dict) -> None:
        """Add evaluation sets from dicts keyed ``"<set>@<epoch>"``."""
        for data_name in sorted({k.split("@")[0] for k in accs}):
            if data_name in self.eval_names:
                raise BenchError(f"{data_name} has already been added into eval-names")
            self.eval_names.append(data_name)
            for i in range(self.epochs):
                key = f"{data_name}@{i}"
                self.eval_acc1es[key] = accs[key]
                self.eval_losses[key] = losses[key]
                if key in times:
                    self.eval_times[key] = times[key]

    def update_latency(self, latency: Any) -> None:
        self.latency = copy.deepcopy(latency)

    def get_latency(self) -> float:
        """Latency in seconds; -1.0 when unknown (the official convention)."""
        if self.latency is None:
            return -1.0
        return sum(self.latency) / len(self.latency)

    def get_total_epoch(self) -> int:
        return self.epochs

    def get_times(self) -> dict[str, Any]:
        """``T-train@epoch|total`` and ``T-<set>@epoch|total`` (``None`` if not recorded)."""
        if isinstance(self.train_times, dict) and self.train_times:
            values = list(self.train_times.values())
            info: dict[str, Any] = {
                "T-train@epoch": self._mean(values),
                "T-train@total": self._sum(values),
            }
        else:
            info = {"T-train@epoch": None, "T-train@total": None}
        for name in self.eval_names:
            keys = [f"{name}@{i}" for i in range(self.epochs)]
            if all(k in self.eval_times for k in keys):
                values = [self.eval_times[k] for k in keys]
                info[f"T-{name}@epoch"] = self._mean(values)
                info[f"T-{name}@total"] = self._sum(values)
            else:
                info[f"T-{name}@epoch"] = info[f"T-{name}@total"] = None
        return info

    def get_eval_set(self) -> list[str]:
        return self.eval_names

    def judge_valid(self, iepoch: int) -> None:
        if not isinstance(iepoch, (int, np.integer)) or not 0 <= iepoch < self.epochs:
            raise BenchError(f"invalid iepoch={iepoch} < {self.epochs}")

    def get_train(self, iepoch: int | None = None) -> dict[str, Any]:
        """Loss, accuracy, epoch time and summed time of the training set after ``iepoch``."""
        if iepoch is None:
            iepoch = self.epochs - 1
        self.judge_valid(iepoch)
        if self.train_times is not None:
            xtime = self.train_times[iepoch]
            atime = sum(self.train_times[i] for i in range(iepoch + 1))
        else:
            xtime = atime = None
        return {
            "iepoch": iepoch,
            "loss": self.train_losses[iepoch],
            "accuracy": self.train_acc1es[iepoch],
            "cur_time": xtime,
            "all_time": atime,
        }

    def get_eval(self, name: str, iepoch: int | None = None) -> dict[str, Any]:
        """The same for an evaluation set (``"valid"`` is an alias of ``"x-valid"``)."""
        if iepoch is None:
            iepoch = self.epochs - 1
        self.judge_valid(iepoch)
        if name == "valid":
            name = "x-valid"
        key = f"{name}@{iepoch}"
        if key not in self.eval_acc1es:
            raise CompatKeyError(
                f"evaluation set {name!r} not recorded for {self.name}; it has {self.eval_names}"
            )
        if self.eval_times:
            if key not in self.eval_times:
                raise BenchError(f"{key} not in {list(self.eval_times)[:6]}...")
            xtime = self.eval_times[key]
            atime = sum(self.eval_times[f"{name}@{i}"] for i in range(iepoch + 1))
        else:
            xtime = atime = None
        return {
            "iepoch": iepoch,
            "loss": self.eval_losses[key],
            "accuracy": self.eval_acc1es[key],
            "cur_time": xtime,
            "all_time": atime,
        }

    def get_net_param(self, clone: bool = False) -> Any:
        if self.net_state_dict is None:
            raise _no_weights(f"{self.name} seed {self.seed}")
        return copy.deepcopy(self.net_state_dict) if clone else self.net_state_dict

    def get_config(self, str2structure: Callable[[str], Any] | None) -> dict[str, Any]:
        """The network config: ``infer.tiny`` (topology; ``genotype`` via ``str2structure``
        if given) or ``infer.shape.tiny`` (size space: ``channels`` and the fixed cell)."""
        return _net_config(self.arch_config, str2structure)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    @classmethod
    def create_from_state_dict(cls, state_dict: dict[str, Any]) -> ResultsCount:
        x = cls(None, None, None, None, None, None, None, None, None, None)
        x.load_state_dict(state_dict)
        return x

    def __repr__(self) -> str:
        sets = "[" + ", ".join(self.eval_names) + "]"
        return (
            f"{type(self).__name__}({self.name}, arch={self.arch_config['arch_str']}, "
            f"FLOP={_fmt_or_none(self.flop, '.2f')}M, Param={_fmt_or_none(self.params, '.3f')}MB, "
            f"seed={self.seed}, "
            f"{len(self.eval_names)} eval-sets: {sets})"
        )


def _fmt_or_none(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``None`` for an unknown cost (a table imported
    from a file without costs): the official summary formats numbers it always has, and
    ``format(None, ".2f")`` would raise where printing must not (a final-metrics table has
    no training loss either)."""
    return "None" if value is None else format(value, spec)


class NB201ResultsCount(ResultsCount):
    """:class:`ResultsCount` averaging like ``nas_201_api`` (``numpy.mean`` / ``numpy.sum``)."""

    _mean = staticmethod(_np_mean)
    _sum = staticmethod(_np_sum)


# -- one arch under one recipe ------------------------------------------------------------
class _Source:
    """Where an :class:`ArchResults` reads its trials from (a table, lazily per dataset)."""

    __slots__ = ("bench", "costs", "hp", "index", "rng")

    def __init__(self, bench: Benchmark, index: int, hp: str, rng: Any) -> None:
        self.bench, self.index, self.hp, self.rng = bench, index, hp, rng
        self.costs: dict[str, dict[str, float]] = {}


class ArchResults:
    """All trials of one arch under one recipe: the official ``ArchResults``.

    Built from a table by :meth:`NASBench201API.query_meta_info_by_index`; the per-seed
    :class:`ResultsCount` objects of a dataset are made on first use (a loop over all
    archs that reads one dataset pays for that dataset only).
    """

    _result_cls: type[ResultsCount] = ResultsCount

    def __init__(self, arch_index: int, arch_str: Any) -> None:
        self.arch_index = int(arch_index)
        self.arch_str = copy.deepcopy(arch_str)
        self.dataset_seed: dict[str, list[int]] = {}
        self.clear_net_done = False
        self._results: dict[tuple[str, int], ResultsCount] = {}
        self._source: _Source | None = None

    # -- construction from a table ------------------------------------------------------
    @classmethod
    def _from_table(cls, bench: Benchmark, index: int, hp: str, rng: Any) -> ArchResults:
        self = cls(index, bench.arch_string(index))
        self._source = _Source(bench, index, hp, rng)
        names = [d for d in OFFICIAL_DATASETS if (d, hp) in bench._g]
        names += sorted(d for d, h in bench._g if h == hp and d not in OFFICIAL_DATASETS)
        for ds in names:
            g = bench._g[(ds, hp)]
            r = g.row(index)
            if r < 0:
                continue
            ok = np.asarray(g.status[r]) == 1
            if ok.any():
                self.dataset_seed[ds] = [int(s) for s, o in zip(g.g.seeds, ok, strict=True) if o]
        return self

    def _load(self, dataset: str) -> None:
        src = self._source
        if src is None or dataset not in self.dataset_seed:
            return
        if (dataset, self.dataset_seed[dataset][0]) in self._results:
            return
        bench, index = src.bench, src.index
        g = bench._g[(dataset, src.hp)]
        r = g.row(index)
        block = g.data[r].tolist()  # [seeds][metrics][epochs], one read
        m, E = g.m_pos, g.g.epochs
        cost = bench.cost(index, dataset)
        if bench.latency_batch(dataset) not in (None, OFFICIAL_LATENCY_BATCH):
            # A latency at another batch (a nasforge build measures at batch 1) is not the
            # official quantity: reported unknown, as the official files would.
            cost.pop("latency_s", None)
        src.costs[dataset] = cost
        build = (bench.meta.get("build") or {}).get(f"{dataset}/{src.hp}") or {}
        cfg = _ARCH_CONFIGS[bench.space](self.arch_str, dataset, build)
        latency = [cost["latency_s"]] if "latency_s" in cost else None
        sets = [(p, _official_set(dataset, p)) for p in ("valid", "test", "valtest")]
        for seed in self.dataset_seed[dataset]:
            rows = block[g.seed_pos[seed]]

            def per_epoch(name: str, rows: list = rows) -> dict[int, float | None]:
                k = m.get(name)
                if k is None:
                    return dict.fromkeys(range(E))
                return {i: _none(v) for i, v in enumerate(rows[k])}

            rc = self._result_cls(
                dataset,
                None,
                None,
                None,
                cost.get("params_m"),
                cost.get("flops_m"),
                cfg,
                seed,
                E,
                latency,
            )
            times = per_epoch("epoch_time")
            rc.update_train_info(
                per_epoch("train_acc"),
                None,
                per_epoch("train_loss"),
                times if "epoch_time" in m and None not in times.values() else None,
            )
            for prefix, set_name in sets:
                k = m.get(f"{prefix}_acc")
                if k is None or all(v != v for v in rows[k]):
                    continue  # the set was not evaluated: absent, as in the official files
                rc.eval_names.append(set_name)
                for i in range(E):
                    key = f"{set_name}@{i}"
                    rc.eval_acc1es[key] = _none(rows[k][i])
                    kl = m.get(f"{prefix}_loss")
                    rc.eval_losses[key] = _none(rows[kl][i]) if kl is not None else None
                    kt = m.get(f"{prefix}_time")
                    if kt is not None and rows[kt][i] == rows[kt][i]:
                        rc.eval_times[key] = rows[kt][i]
            self._results[(dataset, seed)] = rc

    def _seeds(self, dataset: str) -> list[int]:
        seeds = self.dataset_seed.get(dataset)
        if seeds is None:
            raise CompatKeyError(
                f"arch {self.arch_index} has no results on {dataset!r}; it has "
                f"{self.get_dataset_names()}"
            )
        self._load(dataset)
        return seeds

    def _trials(self, dataset: str) -> list[ResultsCount]:
        return [self._results[(dataset, s)] for s in self._seeds(dataset)]

    @property
    def all_results(self) -> dict[tuple[str, int], ResultsCount]:
        """``(dataset, seed) -> ResultsCount`` for every trial (built on first access)."""
        for ds in self.dataset_seed:
            self._load(ds)
        return self._results

    @property
    def _rng(self) -> Any:
        return self._source.rng if self._source is not None else random

    # -- the official calls -----------------------------------------------------------
    def get_compute_costs(self, dataset: str) -> dict[str, Any]:
        """``flops`` / ``params`` (M), ``latency`` (s) and ``T-*`` times, seed-averaged."""
        results = self._trials(dataset)
        mean = self._result_cls._mean
        src = self._source
        if src is not None:
            # The table holds the per-arch costs the official call computes (the importer
            # applies the same seed average / legacy fix): served as stored, bit for bit.
            cost = src.costs[dataset]
            wrap = (lambda x: x) if mean is _py_mean else np.float64

            def known(name: str) -> Any:
                return wrap(cost[name]) if name in cost else None

            info: dict[str, Any] = {
                "flops": known("flops_m"),
                "params": known("params_m"),
                "latency": known("latency_s"),
            }
        else:
            lats = [x for x in (r.get_latency() for r in results) if x > 0]
            info = {
                "flops": mean([r.flop for r in results]),
                "params": mean([r.params for r in results]),
                "latency": mean(lats) if lats else None,
            }
        per_key: dict[str, list[Any]] = {}
        for r in results:
            for key, value in r.get_times().items():
                per_key.setdefault(key, []).append(value)
        for key, values in per_key.items():
            info[key] = mean(values) if values and values[0] is not None else None
        return info

    def get_metrics(
        self, dataset: str, setname: str, iepoch: int | None = None, is_random: Any = False
    ) -> dict[str, Any]:
        """Loss / accuracy / times on ``setname`` (``train``, ``x-valid``, ``x-test``,
        ``ori-test``, ``valid``) after ``iepoch``: one random trial, the mean, or a seed."""
        seeds = self._seeds(dataset)
        results = [self._results[(dataset, s)] for s in seeds]
        infos: dict[str, list[Any]] = {}
        for r in results:
            info = r.get_train(iepoch) if setname == "train" else r.get_eval(setname, iepoch)
            for key, value in info.items():
                infos.setdefault(key, []).append(value)
        if isinstance(is_random, bool) and is_random:
            k = self._rng.randint(0, len(results) - 1)
            return {key: values[k] for key, values in infos.items()}
        if isinstance(is_random, bool):
            mean = self._result_cls._mean
            out = {}
            for key, values in infos.items():
                if values and values[0] is not None and None not in values:
                    out[key] = mean(values)
                else:
                    out[key] = None  # a missing value is reported, never averaged away
            return out
        if isinstance(is_random, (int, np.integer)):
            if is_random not in seeds:
                raise BenchError(f"can not find random seed ({is_random}) from {seeds}")
            k = seeds.index(int(is_random))
            return {key: values[k] for key, values in infos.items()}
        raise BenchError(f"invalid value for is_random: {is_random}")

    def get_dataset_names(self) -> list[str]:
        return list(self.dataset_seed)

    def get_dataset_seeds(self, dataset: str) -> list[int]:
        return list(self._seeds(dataset))

    def get_net_param(self, dataset: str, seed: int | None = None) -> Any:
        """Trained weights: a table holds none, so this is a clear :class:`BenchError`."""
        if seed is None:
            return {
                s: r.get_net_param()
                for s, r in zip(self._seeds(dataset), self._trials(dataset), strict=True)
            }
        return self.query(dataset, seed).get_net_param()

    def get_latency(self, dataset: str) -> float:
        latencies = []
        for r in self._trials(dataset):
            lat = r.get_latency()
            if not isinstance(lat, float) or lat <= 0:
                raise BenchError(f"invalid latency of {dataset} with seed={r.seed} : {lat}")
            latencies.append(lat)
        return sum(latencies) / len(latencies)

    def get_total_epoch(self, dataset: str | None = None) -> int:
        names = list(self.dataset_seed) if dataset is None else [dataset]
        epochs = [r.get_total_epoch() for ds in names for r in self._trials(ds)]
        if len(set(epochs)) > 1:
            raise BenchError(f"Each trial mush have the same number of training epochs : {epochs}")
        return epochs[-1]

    def query(self, dataset: str, seed: int | None = None) -> Any:
        """``{seed: ResultsCount}`` of a dataset, or one seed's :class:`ResultsCount`."""
        seeds = self._seeds(dataset)
        if seed is None:
            return {s: self._results[(dataset, s)] for s in seeds}
        if (dataset, seed) not in self._results:
            raise CompatKeyError(f"seed {seed} not recorded on {dataset!r}; seeds: {seeds}")
        return self._results[(dataset, seed)]

    def arch_idx_str(self) -> str:
        return f"{self.arch_index:06d}"

    def update(self, dataset_name: str, seed: int, result: ResultsCount) -> None:
        seeds = self.dataset_seed.setdefault(dataset_name, [])
        if seed in seeds:
            raise BenchError(
                f"{self.arch_index}-th arch alreadly has this seed ({seed}) on {dataset_name}"
            )
        seeds.append(seed)
        seeds.sort()
        self._results[(dataset_name, seed)] = result
        self.clear_net_done = False

    def state_dict(self) -> dict[str, Any]:
        """The official state dict (loadable by the official ``create_from_state_dict``)."""
        return {
            "arch_index": self.arch_index,
            "arch_str": self.arch_str,
            "all_results": {k: v.state_dict() for k, v in self.all_results.items()},
            "dataset_seed": copy.deepcopy(self.dataset_seed),
            "clear_net_done": self.clear_net_done,
        }

    @classmethod
    def create_from_state_dict(cls, state_dict: dict[str, Any]) -> ArchResults:
        x = cls(state_dict["arch_index"], state_dict["arch_str"])
        x.dataset_seed = copy.deepcopy(state_dict["dataset_seed"])
        x.clear_net_done = state_dict.get("clear_net_done", False)
        x._results = {
            k: cls._result_cls.create_from_state_dict(v)
            for k, v in state_dict["all_results"].items()
        }
        return x

    def clear_params(self) -> None:
        """No-op: a table holds no weights (kept so official code runs unchanged)."""
        self.clear_net_done = True

    def __repr__(self) -> str:
        n = sum(len(s) for s in self.dataset_seed.values())
        return (
            f"{type(self).__name__}(arch-index={self.arch_index}, arch={self.arch_str}, "
            f"{n} runs, clear={self.clear_net_done})"
        )


class NB201ArchResults(ArchResults):
    """:class:`ArchResults` as ``nas_201_api`` has it (``numpy.mean``, plus ``show``)."""

    _result_cls = NB201ResultsCount

    def show(self, is_print: bool = False) -> list[str]:
        return print_information(self, None, is_print, sep=",")


def print_information(
    information: ArchResults,
    extra_info: Any = None,
    show: bool = False,
    sep: str = " &",
    valid_test: bool = False,
) -> list[str]:
    """The official summary lines of an :class:`ArchResults` (``sep`` is ``", "`` in
    nas_201_api, ``" &"`` in nats_bench; ``valid_test``: cifar10-valid's line also shows
    the ``ori-test`` result, as nats_bench/api_size.py's ``print_information`` does)."""
    names = information.get_dataset_names()
    lines = [information.arch_str, f"datasets : {names}, extra-info : {extra_info}"]

    def metric2str(ds: str, setname: str) -> str:
        try:
            info = information.get_metrics(ds, setname)
        except CompatKeyError:
            # a final-metrics table (e.g. the 12-epoch group of an NB201 export) records
            # only some sets: the line says so instead of failing the whole summary
            return "not recorded"
        loss, top1 = _fmt_or_none(info["loss"], ".3f"), _fmt_or_none(info["accuracy"], ".2f")
        return f"loss = {loss}{sep} top1 = {top1}%"

    for ds in names:
        c = information.get_compute_costs(ds)
        lat = c["latency"]
        lat_s = f"{lat * 1000:.2f}" if lat is not None and lat > 0 else None
        lines.append(
            f"{ds:14s} FLOP={_fmt_or_none(c['flops'], '6.2f')} M, "
            f"Params={_fmt_or_none(c['params'], '.3f')} MB, latency={lat_s} ms."
        )
        train = metric2str(ds, "train")
        if ds == "cifar10-valid":
            valid = metric2str(ds, "x-valid")
            if valid_test:
                test = metric2str(ds, "ori-test")
                lines.append(f"{ds:14s} train : [{train}], valid : [{valid}], test : [{test}]")
            else:
                lines.append(f"{ds:14s} train : [{train}], valid : [{valid}]")
        elif ds == "cifar10":
            test = metric2str(ds, "ori-test")
            lines.append(f"{ds:14s} train : [{train}], test  : [{test}]")
        else:
            valid = metric2str(ds, "x-valid")
            test = metric2str(ds, "x-test")
            lines.append(f"{ds:14s} train : [{train}], valid : [{valid}], test : [{test}]")
    if show:
        print("\n".join(lines))
    return lines


class _Arch2Infos(Mapping):
    """``arch2infos_dict``: index -> ``{hp: ArchResults}``, made on access."""

    def __init__(self, api: NASBench201API) -> None:
        self._api = api

    def __getitem__(self, index: int) -> dict[str, ArchResults]:
        api = self._api
        if not isinstance(index, (int, np.integer)) or not api._has(int(index)):
            raise CompatKeyError(index)
        out = {}
        for hp in api._hps():
            try:
                out[hp] = api.query_meta_info_by_index(int(index), hp)
            except BenchError:
                continue
        return out

    def __contains__(self, index: object) -> bool:
        return isinstance(index, (int, np.integer)) and self._api._has(int(index))

    def __iter__(self) -> Iterator[int]:
        return iter(self._api.evaluated_indexes)

    def __len__(self) -> int:
        return len(self._api._bench)


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


class NATStopologyAPI(NASBench201API):
    """The NATS-Bench topology API flavour (``nats_bench.create(path, 'tss')``): averages
    with ``sum / len``, ``find_best(..., flop_max, param_max, hp, enforce_all)``, and the
    ``comment`` key it adds for CIFAR-10. ``path=None`` opens
    ``$TORCH_HOME/NATS-tss-v1_0-3ffb9.table``."""

    _comment = True
    _arch_results_cls = ArchResults
    _info_sep = " &"
    _default_base = NATS_TSS_BASE_NAME

    def __init__(
        self,
        path: str | os.PathLike[str] | Benchmark | None = None,
        fast_mode: bool = False,
        verbose: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(path, verbose=verbose, rng=rng)
        self._fast_mode = fast_mode

    search_space_name = "topology"
    is_topology = True
    is_size = False
    full_epochs_in_paper = 200

    @property
    def fast_mode(self) -> bool:
        """Kept for the official signature: a table is always 'fast' (memory-mapped)."""
        return self._fast_mode

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self._bench)}/{self._size} architectures, "
            f"fast_mode={self._fast_mode}, file={self.filename})"
        )

    def find_best(  # type: ignore[override]
        self,
        dataset: str,
        metric_on_set: str,
        flop_max: float | None = None,
        param_max: float | None = None,
        hp: str = "12",
        enforce_all: bool | None = None,
    ) -> tuple[int, Any]:
        """(index, accuracy) of the best arch; ``enforce_all`` is moot (every arch of the
        table is always considered)."""
        return self._find_best(
            dataset, metric_on_set, flop_max, param_max, hp, ("flop_max", "param_max")
        )


class NATSsizeAPI(NATStopologyAPI):
    """The NATS-Bench size API (``nats_bench.create(path, 'sss')``, official class
    ``NATSsize`` in nats_bench/api_size.py) on a table of the ``nats-sss`` space: the same
    query surface as topology over the 32,768 channel configurations (arch strings like
    ``"64:32:16:48:8"``, recipes ``"01"``, ``"12"``, ``"90"``), ``infer.shape.tiny``
    network configs, and cifar10-valid's summary line with its test result.
    ``path=None`` opens ``$TORCH_HOME/NATS-sss-v1_0-50262.table``."""

    _default_base = NATS_SSS_BASE_NAME
    _valid_test = True
    _table_space = "nats-sss"

    search_space_name = "size"
    is_topology = False
    is_size = True
    full_epochs_in_paper = 90


def _default_table(base: str) -> Path:
    """The table ``create(None, ...)`` opens: ``<torch home>/<official base name>.table``.

    Where only the official file is there, it is returned: opening it gives the one-time
    import command."""
    home = Path(get_torch_home())
    table = home / f"{base}{TABLE_SUFFIX}"
    if (table / "manifest.json").is_file():
        return table
    official = [
        home / f"{base}.pth",
        home / f"{base}-simple",
        home / f"{base}-full",
        home / f"{base}.pickle.pbz2",
        home / f"{base.replace('v1_1-096897', 'v1_1')}-archive",
    ]
    found = next((p for p in official if p.exists()), None)
    if found is not None:
        return found  # _open explains how to import it (or opens its sibling table)
    raise BenchError(
        f"no table at {str(table)!r} (and no official {base} file in {str(home)!r}); set "
        "TORCH_HOME or pass the table path"
    )


#: ``create``'s search-space names (nats_bench/__init__.py ``create``) -> facade class.
_NATS_APIS: dict[str, type[NATStopologyAPI]] = {
    "tss": NATStopologyAPI,
    "topology": NATStopologyAPI,
    "sss": NATSsizeAPI,
    "size": NATSsizeAPI,
}


def create(
    file_path_or_dict: str | os.PathLike[str] | Benchmark | None,
    search_space: str,
    fast_mode: bool = False,
    verbose: bool = True,
    **kwargs: Any,
) -> NATStopologyAPI:
    """``nats_bench.create`` look-alike: ``'tss'`` / ``'topology'`` gives a
    :class:`NATStopologyAPI`, ``'sss'`` / ``'size'`` a :class:`NATSsizeAPI`. ``None``
    resolves ``$TORCH_HOME`` (else ``$HOME/.torch``) as nats_bench does, to the table named
    after the official file (``NATS-tss-v1_0-3ffb9.table``, ``NATS-sss-v1_0-50262.table``)."""
    cls = _NATS_APIS.get(search_space)
    if cls is None:
        raise BenchError(f"invalid search space : {search_space}; expected 'tss' or 'sss'")
    return cls(file_path_or_dict, fast_mode=fast_mode, verbose=verbose, **kwargs)


__all__ = [
    "ArchResults",
    "CompatKeyError",
    "NASBench201API",
    "NATSsizeAPI",
    "NATStopologyAPI",
    "NB201ArchResults",
    "NB201ResultsCount",
    "ResultsCount",
    "create",
    "get_torch_home",
    "print_information",
    "remap_dataset_set_names",
    "sibling_table",
]
