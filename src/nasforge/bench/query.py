"""The read API of a benchmark table: :class:`Benchmark`, :class:`Record`, :class:`Sim`,
:class:`Table`.

Opening a table parses its small manifest and memory-maps the columns; a query is an index
computation into those maps (plus a mean over seeds when asked to average, as the official
API does by default).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.schema import AGGREGATES_META, STATUS_CODES, STATUS_NAMES, TRAIN_TIME
from nasforge.bench.spaces import DEFAULT_TABLE_SPACE, TableSpace, table_space
from nasforge.bench.store import GroupData, TableState, load_table, verify
from nasforge.errors import ArchError, BenchError

#: The arch value of a table's space: an ``nasforge.spaces.nb201.Arch`` for NB201 tables,
#: a tuple of channel counts for NATS-Bench size tables.
Arch = Any

_OK = STATUS_CODES["ok"]
#: Batch size of the official files' latency (nas_201_api api_utils.py ``get_latency``:
#: "the latency with the batch size of 256").
OFFICIAL_LATENCY_BATCH = 256
#: Manifest metadata flag: archs without an entry answer through their equivalence class.
ANSWER_BY_CLASS = "answer_by_class"

#: Metrics where smaller is better (everything else: larger is better).
_MINIMISE_SUFFIXES = ("_loss", "_time")


@dataclass(frozen=True, slots=True)
class Record:
    """Everything the table holds for one arch on one (dataset, hp).

    ``curves[m][e]`` is metric ``m`` after epoch ``e + 1`` (NaN where not recorded);
    ``final`` holds the values after the last queried epoch plus ``train_time`` (total
    training seconds); ``cost`` the known costs (``params_m``, ``flops_m``, ``latency_s``:
    seconds per batch of :meth:`Benchmark.latency_batch` images -- 256 in official files,
    1 when measured by ``nasforge bench build``).
    Accuracies are in percent. With several seeds and ``seed=None`` the values are the mean
    over ``seeds``. ``arch`` is the value of the table's ``space`` (an ``Arch`` for
    ``nb201``, a tuple of 5 channel counts for ``nats-sss``).
    """

    arch: Arch
    dataset: str
    hp: str
    seeds: tuple[int, ...]
    curves: dict[str, np.ndarray]
    final: dict[str, float]
    cost: dict[str, float]
    space: str = DEFAULT_TABLE_SPACE

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (NaN becomes ``None``)."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        space = table_space(self.space)
        return {
            "arch": space.to_string(self.arch),
            "index": space.index(self.arch),
            "dataset": self.dataset,
            "hp": self.hp,
            "seeds": list(self.seeds),
            "final": {k: clean(v) for k, v in self.final.items()},
            "cost": dict(self.cost),
            "curves": {k: [clean(float(x)) for x in v] for k, v in self.curves.items()},
        }


@dataclass(frozen=True, slots=True)
class Sim:
    """The outcome of a simulated training run: metrics after ``epoch`` epochs of ``seed``
    and the cumulative training seconds it took to get there (NaN if the table has no
    times)."""

    valid_acc: float
    test_acc: float
    train_time: float
    epoch: int
    seed: int


@dataclass(frozen=True)
class Table:
    """Bulk arrays of one (dataset, hp), indexed by official arch index.

    ``valid_acc[seed_i, index, epoch_i]`` etc. (epoch axis of length 1 for final-only
    tables); NaN wherever there is no ok entry. ``ok[seed_i, index]`` says where there is.
    Search loops answer a query with one array lookup.
    """

    dataset: str
    hp: str
    seeds: tuple[int, ...]
    num_epochs: int | None
    metrics: tuple[str, ...]
    ok: np.ndarray
    _group: GroupData = field(repr=False)
    #: official index -> row of the group (None: every index has its own row, in order).
    _inv: np.ndarray | None = field(default=None, repr=False)
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def metric(self, name: str) -> np.ndarray:
        """``[seeds, space size, epochs]`` array of one metric (a read-only view when the table is
        dense, else a NaN-filled copy made once)."""
        if name not in self.metrics:
            raise BenchError(
                f"{self.dataset}/{self.hp} has no metric {name!r}; it has {list(self.metrics)}"
            )
        arr = self._cache.get(name)
        if arr is None:
            g = self._group
            m = g.metrics.index(name)
            if self._inv is None:
                arr = g.data[:, :, m, :].transpose(1, 0, 2)
            else:
                idx = np.flatnonzero(self._inv >= 0)
                arr = np.full((len(g.seeds), len(self._inv), g.epochs), np.nan, dtype=g.data.dtype)
                arr[:, idx, :] = g.data[self._inv[idx], :, m, :].transpose(1, 0, 2)
                arr.flags.writeable = False
            self._cache[name] = arr
        return arr

    def __getitem__(self, name: str) -> np.ndarray:
        return self.metric(name)

    def has_entry(self, index: int) -> bool:
        """Whether the table holds any entry (ok, failed or diverged) for this arch index;
        ``ok`` alone cannot tell a failed run from an arch that was never trained."""
        return self._inv is None or int(self._inv[index]) >= 0

    @property
    def valid_acc(self) -> np.ndarray:
        return self.metric("valid_acc")

    @property
    def test_acc(self) -> np.ndarray:
        return self.metric("test_acc")

    @property
    def cum_time(self) -> np.ndarray:
        """Cumulative training seconds after each epoch."""
        return self.metric(TRAIN_TIME)

    def final(self, name: str) -> np.ndarray:
        """``[seeds, space size]``: the metric after the last epoch."""
        return self.metric(name)[:, :, -1]

    def mean_final(self, name: str) -> np.ndarray:
        """``[space size]``: the last-epoch metric averaged over the ok seeds (NaN: none)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are "missing"
            return np.nanmean(self.final(name), axis=0)


class _G:
    """Per-group lookup data, prepared once."""

    __slots__ = (
        "_all_ok",
        "data",
        "dense",
        "final_only",
        "g",
        "inv",
        "m_pos",
        "names",
        "seed_pos",
        "status",
    )

    def __init__(self, g: GroupData, space: TableSpace, by_class: bool = False) -> None:
        self.g = g
        self.data = g.data
        self.status = g.status
        self.names = tuple(g.metrics)
        self.m_pos = {m: i for i, m in enumerate(g.metrics)}
        self.seed_pos = {s: i for i, s in enumerate(g.seeds)}
        self.final_only = g.final_only
        size = space.size
        self.dense = len(g.rows) == size
        self._all_ok: list[bool] | None = None
        if self.dense:
            self.inv = None
        else:
            rows = np.arange(len(g.rows))
            inv = np.full(size, -1, np.int64)
            inv[g.rows] = rows
            canon = space.canonical_indices() if by_class else None
            if canon is not None:
                # A table built from one member per equivalence class (``--archs unique``)
                # answers for every arch through its class: isomorphic cells are the same
                # network (NAS-Bench-201, Sec. 2.1).
                class_row = np.full(size, -1, np.int64)
                class_row[canon[g.rows]] = rows
                missing = inv < 0
                inv[missing] = class_row[canon[missing]]
            self.inv = inv

    def row(self, index: int) -> int:
        return index if self.inv is None else int(self.inv[index])

    def all_ok(self) -> list[bool]:
        """Per row: every seed of the group has an ok run (the fast path of a query)."""
        if self._all_ok is None:
            self._all_ok = (np.asarray(self.status) == _OK).all(axis=1).tolist()
        return self._all_ok


class Benchmark:
    """A tabular benchmark opened from disk. Use :meth:`open`."""

    def __init__(self, state: TableState) -> None:
        self._state = state
        self.path = state.root
        self._space = table_space(state.space)
        by_class = bool((state.manifest.get("meta") or {}).get(ANSWER_BY_CLASS))
        self._g = {k: _G(g, self._space, by_class) for k, g in state.groups.items()}
        self._arch_cache: list[Arch | None] = [None] * self._space.size
        self._str_index: dict[str, int] = {}
        self._present: np.ndarray | None = None
        self._tables: dict[tuple[str, str], Table] = {}
        self._costs: dict[tuple[str, int], dict[str, float]] = {}
        self._latency_batch: dict[str, int | None] = {}

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Benchmark:
        """Open a table directory (manifest + memory maps + journal tail)."""
        return cls(load_table(Path(path)))

    def verify(self) -> dict[str, Any]:
        """Recompute every column file's sha256 against the manifest (slow; on demand)."""
        return verify(self.path)

    # -- what is in the table -------------------------------------------------------------
    @property
    def datasets(self) -> list[str]:
        return sorted({ds for ds, _ in self._g})

    def hps(self, dataset: str) -> list[str]:
        ds = self._dataset(dataset)
        return sorted((hp for d, hp in self._g if d == ds), key=lambda h: (len(h), h))

    def seeds(self, dataset: str, hp: str) -> list[int]:
        return list(self._group(dataset, hp).g.seeds)

    def num_epochs(self, dataset: str, hp: str) -> int | None:
        g = self._group(dataset, hp)
        return None if g.final_only else g.g.epochs

    def has_time(self, dataset: str, hp: str) -> bool:
        return TRAIN_TIME in self._group(dataset, hp).m_pos

    def metrics(self, dataset: str, hp: str) -> list[str]:
        return list(self._group(dataset, hp).names)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._state.manifest.get("meta") or {})

    def aggregate(self, dataset: str, hp: str) -> str | None:
        """``"mean"`` when the group ``(dataset, hp)`` holds seed means instead of per-seed
        runs (an NB201 results export, or a plain table with an ``aggregate`` column): its
        one entry per arch is stored under the pseudo-seed 0, which is not a training seed
        and is shown and exported as none (``seed`` null, ``aggregate`` "mean"). None for
        per-seed groups."""
        meta = self.meta
        named = (meta.get(AGGREGATES_META) or {}).get(f"{dataset}/{hp}")
        if named is not None:
            return str(named)
        # tables imported from an NB201 export before the key existed: all seed means
        return "mean" if meta.get("source_format") == "nb201-export" else None

    @property
    def space(self) -> str:
        """The search space of the table: ``"nb201"`` or ``"nats-sss"``."""
        return self._space.name

    @property
    def space_size(self) -> int:
        """Number of archs in the table's space (15,625 / 32,768)."""
        return self._space.size

    def latency_batch(self, dataset: str) -> int | None:
        """Batch size of the ``latency_s`` measurement on ``dataset``: what the build
        recorded (1; tables built before it was recorded measured at 1 too), 256 for tables
        imported from the official files, ``None`` where the table does not say."""
        if dataset not in self._latency_batch:
            self._latency_batch[dataset] = self._find_latency_batch(dataset)
        return self._latency_batch[dataset]

    def _find_latency_batch(self, dataset: str) -> int | None:
        meta = self.meta
        for key, build in sorted((meta.get("build") or {}).items()):
            if key.split("/")[0] == dataset and isinstance(build, dict):
                return int(build.get("latency_batch", 1))
        if "latency_batch" in meta:
            return int(meta["latency_batch"])
        if meta.get("source_format") in ("nb201", "nb201-archive", "nats-tss", "nats-sss"):
            return OFFICIAL_LATENCY_BATCH
        return None

    def arch_index(self, arch: object) -> int:
        """The official index of an arch (value, string or index) of the table's space."""
        return self._index(arch)

    def arch_string(self, arch: object) -> str:
        """The official string of an arch (value, string or index) of the table's space."""
        return self._space.string(self._index(arch))

    def _present_mask(self) -> np.ndarray:
        if self._present is None:
            mask = np.zeros(self._space.size, bool)
            for g in self._g.values():
                ok_rows = (np.asarray(g.status) == _OK).any(axis=1)
                if g.inv is None:
                    mask[g.g.rows[ok_rows]] = True
                else:
                    mask |= (g.inv >= 0) & ok_rows[np.maximum(g.inv, 0)]
            self._present = mask
        return self._present

    def __len__(self) -> int:
        """Number of archs with at least one ok entry (their own or their equivalence class's)."""
        return int(self._present_mask().sum())

    def __iter__(self) -> Iterator[Arch]:
        """The archs with at least one ok entry, in official index order."""
        for i in np.flatnonzero(self._present_mask()):
            yield self._arch(int(i))

    def __contains__(self, arch: object) -> bool:
        try:
            return bool(self._present_mask()[self._index(arch)])
        except ArchError:
            return False

    def __repr__(self) -> str:
        return f"Benchmark({str(self.path)!r}, {len(self)} archs, groups={sorted(self._g)})"

    # -- lookups ----------------------------------------------------------------------------
    def _arch(self, index: int) -> Arch:
        a = self._arch_cache[index]
        if a is None:
            a = self._arch_cache[index] = self._space.arch(index)
        return a

    def _index(self, arch: object) -> int:
        if type(arch) is int and 0 <= arch < self._space.size:
            return arch
        if isinstance(arch, str):
            i = self._str_index.get(arch)
            if i is None:
                i = self._str_index[arch] = self._space.index(arch)
            return i
        return self._space.index(arch)  # arch values, numpy ints; raises on anything else

    def _dataset(self, dataset: str, *, search_fallback: bool = False) -> str:
        """``dataset`` as the table names it. ``search_fallback`` applies the official
        API's convention, used only by its ``simulate_train_eval`` (api_utils.py): a search
        on ``cifar10`` reads the ``cifar10-valid`` runs. Every other query keeps the two
        apart: they are separate trainings (train half vs. the full train set)."""
        if any(d == dataset for d, _ in self._g):
            return dataset
        has_valid = any(d == "cifar10-valid" for d, _ in self._g)
        if dataset == "cifar10" and has_valid and search_fallback:
            return "cifar10-valid"
        hint = ""
        if dataset == "cifar10" and has_valid:
            hint = (
                "; the table has cifar10-valid: NB201's cifar10 results are a separate "
                "training on the full train set (ask for 'cifar10-valid', or use simulate(), "
                "which searches cifar10 on the cifar10-valid runs like the official API)"
            )
        raise BenchError(
            f"dataset {dataset!r} is not in the table {str(self.path)!r}; it has "
            f"{self.datasets}{hint}"
        )

    def _group(self, dataset: str, hp: str, *, search_fallback: bool = False) -> _G:
        g = self._g.get((dataset, hp))
        if g is not None:
            return g
        ds = self._dataset(dataset, search_fallback=search_fallback)
        g = self._g.get((ds, str(hp)))
        if g is None:
            raise BenchError(
                f"hp {hp!r} is not in the table for {ds!r}; it has {self.hps(ds)} "
                "(recipe keys such as '12', '200', or 'final' for final-metrics tables)"
            )
        return g

    def _row(self, g: _G, index: int) -> int:
        r = g.row(index)
        if r < 0:
            raise BenchError(
                f"arch {self._arch(index)} (index {index}) has no entry for "
                f"{g.g.dataset}/hp={g.g.hp} in {str(self.path)!r}"
            )
        return r

    def _ok_seeds(self, g: _G, r: int, index: int) -> np.ndarray:
        ok = g.status[r] == _OK
        if not ok.any():
            states = {STATUS_NAMES.get(int(x), "missing") for x in g.status[r]}
            raise BenchError(
                f"arch {self._arch(index)} (index {index}) has no ok run for "
                f"{g.g.dataset}/hp={g.g.hp} (entries: {sorted(states)})"
            )
        return ok

    def _seed_pos(self, g: _G, seed: int, ok: np.ndarray, index: int) -> int:
        s = g.seed_pos.get(seed)
        if s is None or not ok[s]:
            have = [x for x, o in zip(g.g.seeds, ok, strict=True) if o]
            raise BenchError(
                f"seed {seed!r} is not available for arch index {index} on "
                f"{g.g.dataset}/hp={g.g.hp}; available seeds: {have}"
            )
        return s

    def _cost_data(self, dataset: str) -> Any:
        c = self._state.costs.get(dataset)
        if c is None and dataset == "cifar10":
            # Same network (10 classes, 32x32) on cifar10 and cifar10-valid: same costs.
            c = self._state.costs.get("cifar10-valid")
        return c

    def cost(self, arch: Arch | str | int, dataset: str) -> dict[str, float]:
        """The known costs of an arch on a dataset (absent keys = unknown).

        ``latency_s`` is seconds per batch of :meth:`latency_batch` images: 256 in the
        official files (nas_201_api api_utils.py), 1 when ``nasforge bench build`` measured
        it."""
        index = self._index(arch)
        cached = self._costs.get((dataset, index))
        if cached is None:
            c = self._cost_data(dataset)
            row = c.values[index].tolist() if c is not None else []
            cached = {m: v for m, v in zip(c.metrics, row, strict=True) if v == v} if row else {}
            self._costs[(dataset, index)] = cached
        return dict(cached)

    def cost_array(self, dataset: str, name: str) -> np.ndarray | None:
        """float [space size]: cost ``name`` of every arch on ``dataset`` (NaN: unknown), or
        None when the table has no such cost column."""
        c = self._cost_data(dataset)
        if c is None or name not in c.metrics:
            return None
        return np.asarray(c.values)[:, list(c.metrics).index(name)]

    def cost_known(self, dataset: str) -> np.ndarray:
        """bool [space size]: which archs have at least one known cost on ``dataset``."""
        c = self._cost_data(dataset)
        if c is None or not len(c.metrics):
            return np.zeros(self._space.size, bool)
        return ~np.isnan(np.asarray(c.values)).all(axis=1)

    # -- queries ----------------------------------------------------------------------------
    def query(
        self,
        arch: Arch | str | int,
        dataset: str,
        *,
        hp: str = "200",
        seed: int | None = None,
        epochs: int | None = None,
    ) -> Record:
        """Curves, final metrics and costs of ``arch`` on ``dataset`` trained with ``hp``.

        ``seed=None`` averages over the arch's available seeds (the official API's default);
        ``epochs`` truncates to the first ``epochs`` epochs (``final`` then reports the state
        after that many epochs).
        """
        index = self._index(arch)
        g = self._group(dataset, hp)
        r = self._row(g, index)
        E = g.g.epochs
        if epochs is None:
            e = E
        elif isinstance(epochs, (int, np.integer)) and 1 <= epochs <= E:
            e = int(epochs)
        else:
            raise BenchError(
                f"epochs={epochs!r} invalid for {g.g.dataset}/hp={g.g.hp}; expected 1..{E}"
            )
        x = g.data[r]  # [seeds, metrics, epochs], one contiguous block
        if e < E:
            x = x[:, :, :e]
        if seed is None and g.all_ok()[r]:
            seeds = g.g.seeds
            # sum then divide (not mean): the same float result as the official API's
            # ``sum(values) / len(values)`` over the seeds in order.
            if len(seeds) == 1:
                block = x[0]
            else:
                block = x.sum(axis=0)
                block /= len(seeds)
        elif seed is not None and g.all_ok()[r] and seed in g.seed_pos:
            block = x[g.seed_pos[seed]]
            seeds = [seed]
        else:
            ok = self._ok_seeds(g, r, index)
            if seed is None:
                block = x[ok].sum(axis=0)
                block /= int(ok.sum())
                seeds = [s for s, o in zip(g.g.seeds, ok.tolist(), strict=True) if o]
            else:
                block = x[self._seed_pos(g, seed, ok, index)]
                seeds = [int(seed)]
        names = g.names
        final = dict(zip(names, block[:, e - 1].tolist(), strict=True))
        final.pop("epoch_time", None)
        return Record(
            self._arch(index),
            g.g.dataset,
            g.g.hp,
            tuple(seeds),
            dict(zip(names, block, strict=True)),
            final,
            self.cost(index, dataset),
            self._space.name,
        )

    def simulate(
        self,
        arch: Arch | str | int,
        dataset: str,
        *,
        epoch: int | None = None,
        seed: int | None = None,
        hp: str = "12",
        rng: np.random.Generator | None = None,
    ) -> Sim:
        """Metrics of one seeded run after ``epoch`` epochs (1-based; None = last) and the
        cumulative training seconds to reach them — what simulated-time search needs.

        The run is ``seed`` if given, else one drawn uniformly from the arch's ok seeds with
        ``rng`` (the official ``is_random=True``), else the smallest available seed.
        Like the official ``simulate_train_eval``, ``cifar10`` reads the ``cifar10-valid``
        runs when the table has no ``cifar10`` group (a search needs a validation set).
        """
        index = self._index(arch)
        g = self._group(dataset, hp, search_fallback=True)
        r = self._row(g, index)
        if g.all_ok()[r]:
            if seed is not None:
                s = g.seed_pos.get(seed, -1)
                if s < 0:
                    s = self._seed_pos(g, seed, g.status[r] == _OK, index)  # raises
            elif rng is not None:
                s = int(rng.integers(len(g.g.seeds)))
            else:
                s = 0
        else:
            ok = self._ok_seeds(g, r, index)
            if seed is not None:
                s = self._seed_pos(g, seed, ok, index)
            elif rng is not None:
                cand = np.flatnonzero(ok)
                s = int(cand[rng.integers(len(cand))])
            else:
                s = int(np.flatnonzero(ok)[0])
        E = g.g.epochs
        if epoch is None:
            e = E
        elif isinstance(epoch, (int, np.integer)) and 1 <= epoch <= E:
            e = int(epoch)
        else:
            raise BenchError(
                f"epoch={epoch!r} invalid for {g.g.dataset}/hp={g.g.hp}; "
                f"expected 1..{E} (1-based count of epochs trained) or None"
            )
        m = g.m_pos
        row = g.data[r, s, :, e - 1]
        nan = float("nan")
        return Sim(
            valid_acc=float(row[m["valid_acc"]]) if "valid_acc" in m else nan,
            test_acc=float(row[m["test_acc"]]) if "test_acc" in m else nan,
            train_time=float(row[m[TRAIN_TIME]]) if TRAIN_TIME in m else nan,
            epoch=e,
            seed=int(g.g.seeds[s]),
        )

    def table(self, dataset: str, hp: str) -> Table:
        """Bulk arrays indexed by official arch index, for fast search loops."""
        g = self._group(dataset, hp)
        key = (g.g.dataset, g.g.hp)
        t = self._tables.get(key)
        if t is None:
            ok = np.zeros((len(g.g.seeds), self._space.size), bool)
            if g.inv is None:
                ok[:, g.g.rows] = (np.asarray(g.status) == _OK).T
            else:
                idx = np.flatnonzero(g.inv >= 0)
                ok[:, idx] = (np.asarray(g.status)[g.inv[idx]] == _OK).T
            ok.flags.writeable = False
            t = Table(
                dataset=g.g.dataset,
                hp=g.g.hp,
                seeds=tuple(g.g.seeds),
                num_epochs=None if g.final_only else g.g.epochs,
                metrics=g.names,
                ok=ok,
                _group=g.g,
                _inv=g.inv,
            )
            self._tables[key] = t
        return t

    def top(
        self,
        dataset: str,
        metric: str = "valid_acc",
        *,
        hp: str = "200",
        k: int = 10,
        maximize: bool | None = None,
    ) -> list[tuple[Arch, float]]:
        """The ``k`` best archs by the seed-averaged final ``metric`` (losses and times are
        minimised unless ``maximize`` says otherwise)."""
        if not isinstance(k, int) or k < 1:
            raise BenchError(f"k={k!r} must be a positive int")
        values = self.table(dataset, hp).mean_final(metric)
        if maximize is None:
            maximize = not metric.endswith(_MINIMISE_SUFFIXES)
        valid = np.flatnonzero(~np.isnan(values))
        if not len(valid):
            raise BenchError(f"no arch has a value of {metric!r} on {dataset}/hp={hp}")
        keyed = -values[valid] if maximize else values[valid]
        order = valid[np.lexsort((valid, keyed))][:k]  # ties: smaller index first
        return [(self._arch(int(i)), float(values[i])) for i in order]

    def best(
        self, dataset: str, metric: str = "valid_acc", *, hp: str = "200"
    ) -> tuple[Arch, float]:
        """The best arch and its seed-averaged final ``metric``."""
        return self.top(dataset, metric, hp=hp, k=1)[0]

    def failures(self) -> list[dict[str, Any]]:
        """Recorded failed / diverged runs with their error messages."""
        return list(self._state.errors)

    # -- tables everywhere ------------------------------------------------------------------
    def to_arrow(self, *, curves: bool = False) -> Any:
        """One row per arch x dataset x hp x seed as a ``pyarrow.Table`` (final metrics,
        costs, and with ``curves`` the per-epoch lists); see :mod:`nasforge.bench.export`.
        Needs pyarrow (``pip install 'nasforge[parquet]'``)."""
        from nasforge.bench.frame import to_arrow

        return to_arrow(self, curves=curves)

    def to_pandas(self, *, curves: bool = False) -> Any:
        """:meth:`to_arrow` as a ``pandas.DataFrame`` (needs pandas and pyarrow)."""
        from nasforge.bench.frame import to_pandas

        return to_pandas(self, curves=curves)

    # -- summary ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Datasets, recipes, epochs, seeds and coverage (for ``nasforge bench info``)."""
        groups = []
        for (ds, hp), g in sorted(self._g.items()):
            st = np.asarray(g.status)
            ok = st == _OK
            groups.append(
                {
                    "dataset": ds,
                    "hp": hp,
                    "epochs": None if g.final_only else g.g.epochs,
                    "final_only": g.final_only,
                    # an aggregate group has no training seeds: its pseudo-seed is not one
                    "seeds": [] if self.aggregate(ds, hp) else list(g.g.seeds),
                    "aggregate": self.aggregate(ds, hp),
                    "metrics": list(g.names),
                    "has_time": TRAIN_TIME in g.m_pos,
                    "archs": int(ok.any(axis=1).sum()),
                    "runs_ok": int(ok.sum()),
                    "runs_failed": int((st == STATUS_CODES["failed"]).sum()),
                    "runs_diverged": int((st == STATUS_CODES["diverged"]).sum()),
                    "archs_by_num_seeds": {
                        str(n): int(c)
                        for n, c in zip(*np.unique(ok.sum(axis=1), return_counts=True), strict=True)
                    },
                }
            )
        costs = {
            ds: {m: int((~np.isnan(c.values[:, k])).sum()) for k, m in enumerate(c.metrics)}
            for ds, c in sorted(self._state.costs.items())
        }
        man = self._state.manifest
        return {
            "path": str(self.path),
            "format": f"{man['format']} v{man['version']}",
            "space": man["space"],
            "generation": man["generation"],
            "archs": len(self),
            "space_size": self._space.size,
            "groups": groups,
            "costs": costs,
            "latency_batch": {ds: self.latency_batch(ds) for ds in costs},
            "journal_records": len(self._state.journal_records),
            "meta": self.meta,
        }
