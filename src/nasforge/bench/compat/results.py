"""The official result classes, served from a table: one trial (``ResultsCount``), one arch
under one recipe (``ArchResults``), and the lazy ``arch2infos`` mapping."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.bench.compat.common import (
    _ARCH_CONFIGS,
    CompatKeyError,
    _net_config,
    _no_weights,
    _none,
    _np_mean,
    _np_sum,
    _official_set,
    _py_mean,
)
from nasforge.bench.query import OFFICIAL_LATENCY_BATCH, Benchmark
from nasforge.bench.schema import OFFICIAL_DATASETS
from nasforge.errors import BenchError

if TYPE_CHECKING:
    from nasforge.bench.compat.api import NASBench201API


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
