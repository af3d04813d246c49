"""What the explorer asks of a benchmark table: filter, list, scatter with the Pareto front,
and one arch's per-seed curves -- all answered from the memory-mapped store.

Per (dataset, recipe) the seed-averaged final value of every metric and the known costs are
gathered once into flat ``[space size]`` arrays (:meth:`TableView.columns`); after that an
interaction is a few vectorised numpy passes over 15,625 (NB201) or 32,768 (NATS size)
entries, and one arch's curves are :meth:`nasforge.bench.Benchmark.query` calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench import Benchmark
from nasforge.bench.spaces import table_space
from nasforge.errors import ArchError, NasforgeError

#: Per-epoch durations: their "final" value is one epoch's, not the run's; not offered.
_HIDDEN = ("epoch_time",)
#: Cost columns of a table (``Benchmark.cost``), all minimised.
COSTS = ("params_m", "flops_m", "latency_s")
#: Rows a list answer holds at most.
MAX_ROWS = 500
#: Digits kept in JSON answers (accuracies in percent, costs in M / seconds).
DIGITS = 5


class ExploreError(NasforgeError, ValueError):
    """A request the explorer cannot answer: an unknown source, dataset, metric, arch or a
    malformed filter (the server answers it with 400 / 404 and this one-line message)."""


class NotFound(ExploreError):
    """A source or arch that does not exist (HTTP 404)."""


def maximize(metric: str) -> bool:
    """Accuracies are maximised; losses, times and costs minimised."""
    return metric.endswith("_acc")


def pareto_front(x: np.ndarray, y: np.ndarray, max_x: bool, max_y: bool) -> np.ndarray:
    """Positions (into ``x`` / ``y``) of the non-dominated points, ordered along ``x``.

    A point is dominated when another one is at least as good in both coordinates and
    better in one; of identical points one is kept. ``O(n log n)``: sort by the first
    coordinate (best first, ties by the second), then keep each point that beats the best
    second coordinate seen so far.
    """
    if not len(x):
        return np.zeros(0, np.int64)
    gx = x if max_x else -x
    gy = y if max_y else -y
    order = np.lexsort((-gy, -gx))
    ys = gy[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1]))
    front = order[ys > best_before]
    return front[np.argsort(x[front], kind="stable")]


def _clean(values: np.ndarray) -> list[float | None]:
    """Rounded floats for JSON, NaN as ``None``."""
    r = np.round(np.asarray(values, dtype=np.float64), DIGITS)
    out = r.tolist()
    if np.isnan(r).any():
        out = [None if v != v else v for v in out]
    return out


class RawJSON(str):
    """Text that is already JSON (a long number array), spliced into an answer as it is:
    formatting 30,000 floats with ``json`` costs tens of ms, joining cached texts ~1 ms."""


def _number_texts(values: np.ndarray) -> np.ndarray:
    """Per entry its JSON text (``null`` for NaN), rounded to :data:`DIGITS`."""
    r = np.round(np.asarray(values, dtype=np.float64), DIGITS)
    texts = np.asarray(list(map(repr, r.tolist())), dtype=object)  # float repr is JSON
    texts[~np.isfinite(r)] = "null"
    return texts


def _json_array(texts: Any) -> RawJSON:
    return RawJSON("[" + ",".join(texts) + "]")


@dataclass(frozen=True)
class Filter:
    """A parsed filter: metric ranges, allowed options per position, required tokens."""

    dataset: str
    hp: str
    ranges: dict[str, tuple[float, float]]
    allowed: dict[int, list[int]]
    required: list[str]


class TableView:
    """One opened table as the explorer serves it (see module doc)."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self.bench = Benchmark.open(path)
        self.space = self.bench.space
        self._tspace = table_space(self.space)
        self._columns: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        self._present: dict[tuple[str, str], np.ndarray] = {}
        self._bounds: dict[tuple[str, str], dict[str, list[float]]] = {}
        self._describe: dict[str, Any] | None = None
        self._texts: dict[tuple[str, str, str], np.ndarray] = {}
        self._costs: dict[str, dict[str, np.ndarray]] = {}
        self._picks: np.ndarray | None = None
        from nasforge.explore.cells import cell_view

        self.cells = cell_view(self.space)
        self._positions = self.cells.positions()

    # -- what the page shows before any request --------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The table as the page lists it (datasets, recipes, metrics, op positions); made
        once."""
        if self._describe is None:
            self._describe = self._make_description()
        return self._describe

    def _make_description(self) -> dict[str, Any]:
        b = self.bench
        groups = []
        for ds in b.datasets:
            for hp in b.hps(ds):
                metrics = [m for m in b.metrics(ds, hp) if m not in _HIDDEN]
                costs = [c for c in COSTS if np.isfinite(self._cost_columns(ds)[c]).any()]
                groups.append(
                    {
                        "dataset": ds,
                        "hp": hp,
                        "epochs": b.num_epochs(ds, hp),
                        "seeds": b.seeds(ds, hp),
                        "metrics": metrics + costs,
                        "curves": [m for m in metrics if m.endswith(("_acc", "_loss"))],
                    }
                )
        meta = b.meta
        return {
            "label": self.label,
            "space": self.space,
            "space_size": b.space_size,
            "archs": len(b),
            "synthetic": bool(meta.get("synthetic")),
            "groups": groups,
            "positions": self._positions,
            "latency_batch": {ds: b.latency_batch(ds) for ds in b.datasets},
        }

    # -- bulk columns -------------------------------------------------------------------------
    def _cost_columns(self, dataset: str) -> dict[str, np.ndarray]:
        cols = self._costs.get(dataset)
        if cols is None:
            n = self.bench.space_size
            cols = {c: np.full(n, np.nan) for c in COSTS}
            known = np.flatnonzero(self.bench.cost_known(dataset))
            for i in known.tolist():
                for k, v in self.bench.cost(i, dataset).items():
                    if k in cols:
                        cols[k][i] = v
            self._costs[dataset] = cols
        return cols

    def columns(self, dataset: str, hp: str) -> dict[str, np.ndarray]:
        """Metric name -> ``float64 [space size]`` (seed-mean final value; costs), cached."""
        key = (dataset, hp)
        cols = self._columns.get(key)
        if cols is None:
            self._check_group(dataset, hp)
            t = self.bench.table(dataset, hp)
            cols = {
                m: np.asarray(t.mean_final(m), dtype=np.float64)
                for m in t.metrics
                if m not in _HIDDEN
            }
            cols.update(self._cost_columns(dataset))
            self._columns[key] = cols
            self._present[key] = t.ok.any(axis=0)
        return cols

    def bounds(self, dataset: str, hp: str) -> dict[str, list[float]]:
        """Per metric ``[min, max]`` over the archs of (dataset, hp) (the range inputs'
        placeholders); metrics without a value are left out. Cached."""
        key = (dataset, hp)
        b = self._bounds.get(key)
        if b is None:
            cols = self.columns(dataset, hp)
            present = self.present(dataset, hp)
            b = {}
            for m, v in cols.items():
                v = v[present]
                v = v[np.isfinite(v)]
                if len(v):
                    b[m] = [round(float(v.min()), DIGITS), round(float(v.max()), DIGITS)]
            self._bounds[key] = b
        return b

    def texts(self, dataset: str, hp: str, metric: str) -> np.ndarray:
        """The JSON text of every arch's value of ``metric`` (scatter answers), cached."""
        key = (dataset, hp, metric)
        t = self._texts.get(key)
        if t is None:
            t = self._texts[key] = _number_texts(self.columns(dataset, hp)[metric])
        return t

    def present(self, dataset: str, hp: str) -> np.ndarray:
        """bool ``[space size]``: archs with an ok run of (dataset, hp)."""
        self.columns(dataset, hp)
        return self._present[(dataset, hp)]

    def picks(self) -> np.ndarray:
        """``[space size, positions]`` option index per position, made once."""
        if self._picks is None:
            self._picks = self.cells.picks(self._tspace.strings())
        return self._picks

    def warm(self) -> None:
        """Fill every cache (columns of every group, the op picks, the arch strings), so
        that no interaction pays for a first use."""
        for g in self.describe()["groups"]:
            self.bounds(g["dataset"], g["hp"])
            for m in g["metrics"]:
                self.texts(g["dataset"], g["hp"], m)
        if self._positions:
            self.picks()
        self._tspace.strings()

    def _check_group(self, dataset: str, hp: str) -> None:
        b = self.bench
        if dataset not in b.datasets:
            raise ExploreError(f"dataset {dataset!r} is not in {self.label}; it has {b.datasets}")
        if hp not in b.hps(dataset):
            raise ExploreError(
                f"hp {hp!r} is not in {self.label} for {dataset}; it has {b.hps(dataset)}"
            )

    # -- requests -----------------------------------------------------------------------------
    def parse_filter(self, q: Mapping[str, str]) -> Filter:
        """Read a filter from query parameters: ``ds``, ``hp``, ``lo.METRIC`` / ``hi.METRIC``
        (inclusive bounds), ``pos.I`` (comma-separated options allowed at position I) and
        ``has`` (comma-separated options each present at some position)."""
        b = self.bench
        dataset = q.get("ds") or b.datasets[0]
        hp = q.get("hp") or (b.hps(dataset)[-1] if dataset in b.datasets else "")
        cols = self.columns(dataset, hp)
        ranges: dict[str, tuple[float, float]] = {}
        for key, value in q.items():
            side, _, metric = key.partition(".")
            if side not in ("lo", "hi") or value == "":
                continue
            if metric not in cols:
                raise ExploreError(
                    f"filter {key}={value!r}: no metric {metric!r} on {dataset}/{hp}; "
                    f"expected one of {sorted(cols)}"
                )
            try:
                bound = float(value)
            except ValueError:
                raise ExploreError(f"filter {key}={value!r}: expected a number") from None
            lo, hi = ranges.get(metric, (-math.inf, math.inf))
            ranges[metric] = (bound, hi) if side == "lo" else (lo, bound)
        allowed: dict[int, list[int]] = {}
        for key, value in q.items():
            if not key.startswith("pos."):
                continue
            pos = key[4:]
            if not pos.isdigit() or int(pos) >= len(self._positions):
                raise ExploreError(
                    f"filter {key}: position {pos!r} unknown; expected 0..{len(self._positions) - 1}"
                )
            options = self._positions[int(pos)]["options"]
            picked = [o for o in value.split(",") if o]
            bad = [o for o in picked if o not in options]
            if bad:
                raise ExploreError(f"filter {key}: option {bad[0]!r} unknown; expected {options}")
            allowed[int(pos)] = [options.index(o) for o in picked]
        required = [o for o in (q.get("has") or "").split(",") if o]
        tokens = {o for p in self._positions for o in p["options"]}
        for o in required:
            if o not in tokens:
                raise ExploreError(f"filter has={o!r}: unknown option; expected {sorted(tokens)}")
        return Filter(dataset, hp, ranges, allowed, required)

    def mask(self, f: Filter) -> np.ndarray:
        """bool ``[space size]``: the archs of (dataset, hp) passing the filter."""
        cols = self.columns(f.dataset, f.hp)
        m = self.present(f.dataset, f.hp).copy()
        for metric, (lo, hi) in f.ranges.items():
            v = cols[metric]
            with np.errstate(invalid="ignore"):
                m &= (v >= lo) & (v <= hi)  # NaN (unknown) fails any range
        if f.allowed or f.required:
            picks = self.picks()
            for pos, ok in f.allowed.items():
                m &= np.isin(picks[:, pos], ok)
            for token in f.required:
                hit = np.zeros_like(m)
                for pos, p in enumerate(self._positions):
                    if token in p["options"]:
                        hit |= picks[:, pos] == p["options"].index(token)
                m &= hit
        return m

    def _metric(self, f: Filter, name: str | None, default: str) -> str:
        cols = self.columns(f.dataset, f.hp)
        name = name or default
        if name not in cols:
            raise ExploreError(
                f"metric {name!r} unknown on {f.dataset}/{f.hp}; expected one of {sorted(cols)}"
            )
        return name

    def _default_metric(self, f: Filter) -> str:
        cols = self.columns(f.dataset, f.hp)
        for m in ("test_acc", "valid_acc", "train_acc"):
            if m in cols:
                return m
        return sorted(cols)[0]

    def listing(self, q: Mapping[str, str]) -> dict[str, Any]:
        """The filtered archs sorted by ``sort`` (best first), at most ``limit`` rows."""
        f = self.parse_filter(q)
        sort = self._metric(f, q.get("sort"), self._default_metric(f))
        try:
            limit = int(q.get("limit") or 100)
        except ValueError:
            raise ExploreError(f"limit={q.get('limit')!r}: expected an integer") from None
        if not 1 <= limit <= MAX_ROWS:
            raise ExploreError(f"limit={limit}: expected 1..{MAX_ROWS}")
        cols = self.columns(f.dataset, f.hp)
        idx = np.flatnonzero(self.mask(f))
        v = cols[sort][idx]
        key = np.where(np.isnan(v), np.inf, -v if maximize(sort) else v)
        top = idx[np.lexsort((idx, key))[:limit]]
        strings = self._tspace.strings()
        shown = list(cols)
        return {
            "bounds": self.bounds(f.dataset, f.hp),
            "dataset": f.dataset,
            "hp": f.hp,
            "sort": sort,
            "matched": len(idx),
            "total": int(self.present(f.dataset, f.hp).sum()),
            "columns": shown,
            "rows": [
                {"index": int(i), "arch": strings[i], "values": vals}
                for i, vals in zip(
                    top.tolist(),
                    zip(*(_clean(cols[c][top]) for c in shown), strict=True) if len(top) else [],
                    strict=True,
                )
            ],
        }

    def names(self) -> list[str]:
        """Every arch string of the space in index order (the page fetches it once, for
        hover labels, instead of with every scatter)."""
        return self._tspace.strings()

    def scatter(self, q: Mapping[str, str]) -> dict[str, Any]:
        """``x`` / ``y`` of every filtered arch with both values (``index``: official
        indices) and ``front``: positions of the Pareto front, ordered along x."""
        f = self.parse_filter(q)
        cols = self.columns(f.dataset, f.hp)
        has_cost = [c for c in COSTS if np.isfinite(cols[c]).any()]
        x_name = self._metric(f, q.get("x"), has_cost[0] if has_cost else "train_time")
        y_name = self._metric(f, q.get("y"), self._default_metric(f))
        cols = self.columns(f.dataset, f.hp)
        x, y = cols[x_name], cols[y_name]
        idx = np.flatnonzero(self.mask(f) & np.isfinite(x) & np.isfinite(y))
        xs, ys = x[idx], y[idx]
        front = pareto_front(xs, ys, maximize(x_name), maximize(y_name))
        return {
            "dataset": f.dataset,
            "hp": f.hp,
            "x": x_name,
            "y": y_name,
            "maximize": {"x": maximize(x_name), "y": maximize(y_name)},
            "index": _json_array(map(str, idx.tolist())),
            "xs": _json_array(self.texts(f.dataset, f.hp, x_name)[idx]),
            "ys": _json_array(self.texts(f.dataset, f.hp, y_name)[idx]),
            "front": front.tolist(),
        }

    def arch(self, arch: str, q: Mapping[str, str]) -> dict[str, Any]:
        """One arch: its cell, costs, per-seed curves on (dataset, hp) and its final
        seed-mean metrics on every group of the table."""
        try:
            index = self.bench.arch_index(int(arch) if arch.isdigit() else arch)
        except (ArchError, ValueError) as exc:
            raise NotFound(f"arch {arch[:120]!r} is not a {self.space} arch: {exc}") from None
        b = self.bench
        dataset = q.get("ds") or b.datasets[0]
        hp = q.get("hp") or (b.hps(dataset)[-1] if dataset in b.datasets else "")
        self._check_group(dataset, hp)
        seeds = []
        for s in b.seeds(dataset, hp):
            try:
                rec = b.query(index, dataset, hp=hp, seed=s)
            except NasforgeError:
                continue  # this seed failed or was never trained: no curve
            curves = {m: _clean(v) for m, v in rec.curves.items() if m.endswith(("_acc", "_loss"))}
            seeds.append({"seed": s, "curves": curves})
        finals = []
        for ds in b.datasets:
            for h in b.hps(ds):
                cols = self.columns(ds, h)
                if not self.present(ds, h)[index]:
                    continue
                finals.append(
                    {
                        "dataset": ds,
                        "hp": h,
                        **{
                            m: _clean(cols[m][index : index + 1])[0]
                            for m in ("valid_acc", "test_acc")
                            if m in cols
                        },
                    }
                )
        string = self._tspace.string(index)
        return {
            "index": index,
            "arch": string,
            "dataset": dataset,
            "hp": hp,
            "cell": self.cells.draw(string),
            "cost": {k: round(v, DIGITS) for k, v in b.cost(index, dataset).items()},
            "seeds": seeds,
            "finals": finals,
        }


__all__ = ["ExploreError", "NotFound", "TableView", "maximize", "pareto_front"]
