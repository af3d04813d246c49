"""AOWS's black-box latency model of a width space (Berman et al., CVPR 2020, Sec. 3.1).

The latency of a width configuration is modelled as a sum of per-layer terms. Two keyings of
the terms' variables (``keying``):

* ``"layer-type"`` (default, the official model): one variable per *layer type* and
  (input, output) channel count, shared by every layer of that type. The official
  ``Vartype`` (bermanmaxim/AOWS ``latency.py:29``) is the ``LayerType`` of ``model.py:14``
  (``in_size, kernel_size, stride, dw, bias``) plus ``in_channels, out_channels``; a
  configuration's row of the design matrix counts how many of its layers have each type
  (``collect_repetitions`` / ``build_equation``, ``latency.py:159-173`` and ``:229-251``),
  and the search reads a layer's pairwise table from the shared variables
  (``train_nas.py:312-326``). Here the type is ``(kind, kernel, stride, bias, out_size)``
  of a :class:`~nasforge.spaces.width.LayerSpec`: the spec records the output side, which
  with kernel and stride fixed orders the layers as the input side does (the official
  ``in_size``); ``kind`` is conv / depthwise conv / BN / linear where the official layer is
  one conv+BN+ReLU block with a ``dw`` flag. A layer on one group (BN, depthwise conv) is
  keyed ``(c, c)``. A layer that exists only for some widths (``LayerSpec.when_differ``)
  counts only where it exists.
* ``"group-pair"`` (nasforge's earlier model, an option): one free table per pair of
  channel groups, ``T[(g_in, g_out)][c_in, c_out]``, summing every layer between those two
  groups (a BN or depthwise conv on one group, and any elementwise work there, is a table
  over that group's width alone). It has more variables (layers of the same type in
  different places do not share) and so needs more measured configurations; it can follow
  per-place differences the shared keying averages out (``benchmarks/latency_keying.py``
  measures both).

A fixed group -- the RGB input, the class logits -- has one state. The variables ``x`` are
fitted to latencies *measured* on the target device for random configurations, by
non-negative least squares with the paper's monotonicity penalty (Eq. 7; official
``latency.py:254-290``): with ``D`` the differences ``x[v] - x[v']`` of neighbouring
variables ``v < v'``,

    minimise ||M x - y||^2 + K ||max(0, D x)||^2   subject to x >= 0,

where ``M`` counts, per measured configuration, the variables of its layers (so ``M x`` is
the predicted latency). Neighbours (official ``get_inequalities``, ``latency.py:271-290``):
the variables that agree on everything but one of input channels, output channels and the
input size, sorted along that one; ``layer-type`` adds the ``(c, c)`` variables of a type
sorted by ``c`` (the official space has no one-group layer, so it has no such rule), and
``group-pair`` orders each table along each axis. The official code solves it with
CVXPY/SCS; the objective is smooth (a squared hinge), so here scipy's L-BFGS-B with the
bounds ``x >= 0`` solves it, started from the clipped least-squares (LSMR) solution. The
official model has a variable only for the types its samples saw; here every type a
configuration can have has one (an unseen one is set by the penalty and the minimum-norm
start). Held-out configurations give the RMSE.

Measurements follow ``latency.py:54-61`` of the official code by default: batch 64,
10 warm-up passes, 60 timed passes, their mean, reported in ms per image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg
import threadpoolctl
import torch

from nasforge.errors import SearchError
from nasforge.io import atomic_write_json
from nasforge.spaces.width import LayerSpec, WidthSpace

FORMAT = "nasforge-latency-model-2"
#: The format of models saved before the keying option (group-pair tables); still read.
FORMAT_V1 = "nasforge-latency-model-1"
#: How the variables are keyed (see the module docstring); the first is the default.
KEYINGS = ("layer-type", "group-pair")
Term = tuple[str, str]


@dataclass(frozen=True)
class MeasureSettings:
    """How one configuration is timed (defaults: official ``latency.py:54-61``)."""

    batch_size: int = 64
    warmup: int = 10
    repeats: int = 60
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.warmup < 0 or self.repeats < 1:
            raise SearchError(
                f"latency measurement needs batch_size >= 1, warmup >= 0, repeats >= 1; got "
                f"{self.batch_size}, {self.warmup}, {self.repeats}"
            )


def measure_widths(
    space: WidthSpace,
    widths: Sequence[int],
    *,
    settings: MeasureSettings | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """Measured forward latency (ms per image) of the standalone network of ``widths``."""
    from nasforge.cost.latency import latency
    from nasforge.nn.backbones import build_from_spec

    s = settings or MeasureSettings()
    model = build_from_spec(space.spec, list(widths))
    res = space.spec.resolution
    sec = latency(
        model,
        (s.batch_size, 3, res, res),
        device=device,
        warmup=s.warmup,
        repeats=s.repeats,
        reduction=s.reduction,
    )
    return 1000.0 * sec / s.batch_size


def model_terms(space: WidthSpace) -> list[Term]:
    """The latency terms of a space: one per (input group, output group) pair of its layers
    (``(g, g)`` for work on one group), in spec order."""
    seen: dict[Term, None] = {}
    for layer in space.spec.layers:
        seen.setdefault((layer.cin, layer.cout), None)
    return list(seen)


def _home_term(layer: LayerSpec, terms: list[Term]) -> Term:
    """The table a layer's latency goes to under ``layer-type`` keying: its own groups' pair,
    or for a layer that exists only when two groups differ, the pair of those two groups
    (a BN on one of them then has a cost that depends on both)."""
    if layer.when_differ is None:
        return (layer.cin, layer.cout)
    a, b = layer.when_differ
    if not {layer.cin, layer.cout} <= {a, b}:
        raise SearchError(
            f"layer {layer.name!r} ({layer.cin} -> {layer.cout}) exists only when groups "
            f"{a} and {b} differ: its cost depends on three groups, which pairwise latency "
            "tables cannot express; use keying='group-pair'"
        )
    if (a, b) in terms:
        return (a, b)
    if (b, a) in terms:
        return (b, a)
    raise SearchError(f"layer {layer.name!r}: no latency table of groups ({a}, {b})")


class LatencyModel:
    """Per-layer latency terms of a width space; predict, fit, validate, save, load.

    ``x`` holds the fitted variables (one per layer type and channel pair for
    ``keying="layer-type"``, one per table entry for ``"group-pair"``); :meth:`tables`
    expands them into one table per (input group, output group) pair, which is what
    prediction and the search's MRF read. ``tables`` (``group-pair`` only) sets the tables.
    """

    def __init__(
        self,
        space: WidthSpace,
        tables: dict[Term, np.ndarray] | None = None,
        *,
        keying: str = "layer-type",
    ) -> None:
        if keying not in KEYINGS:
            raise SearchError(f"latency keying {keying!r} unknown; expected one of {KEYINGS}")
        self.space = space
        self.keying = keying
        self.terms = model_terms(space)
        if keying == "layer-type":
            self._home = {layer.name: _home_term(layer, self.terms) for layer in space.spec.layers}
        pos = {g: i for i, g in enumerate(space.groups)}
        self._col = {g: pos.get(g) for t in self.terms for g in t}
        self._states = {
            g: (int(space.num_bins[pos[g]]) if g in pos else 1) for t in self.terms for g in t
        }
        self.shapes = [self._shape(t) for t in self.terms]
        self.offsets = np.concatenate([[0], np.cumsum([int(np.prod(s)) for s in self.shapes])])
        if keying == "layer-type":
            self.keys, self.expand = self._layer_type_keys()
        else:
            n = int(self.offsets[-1])
            self.keys = [
                (a, b, *ij) for t, (a, b) in zip(self.shapes, self.terms, strict=True)
                for ij in np.ndindex(*t)
            ]  # fmt: skip
            self.expand = scipy.sparse.identity(n, format="csr")
        self.x = np.zeros(len(self.keys))
        if tables is not None:
            if keying != "group-pair":
                raise SearchError("latency tables can be set only with keying='group-pair'")
            for i, t in enumerate(self.terms):
                if t not in tables or np.shape(tables[t]) != self.shapes[i]:
                    raise SearchError(f"latency table {t} missing or not of shape {self.shapes[i]}")
                self.x[self.offsets[i] : self.offsets[i + 1]] = np.ravel(tables[t])
        self.info: dict[str, Any] = {"keying": keying}

    def _shape(self, t: Term) -> tuple[int, ...]:
        a, b = t
        return (self._states[a],) if a == b else (self._states[a], self._states[b])

    def _widths_of(self, g: str) -> np.ndarray:
        """Candidate channel counts of a group (the full width of a fixed one)."""
        c = self._col[g]
        return np.asarray([self.space.spec.group(g).full] if c is None else
                          self.space.candidates[c], dtype=np.int64)  # fmt: skip

    def _layer_type_keys(self) -> tuple[list[tuple], scipy.sparse.csr_matrix]:
        """The official variables (``Vartype``) and the map from them to table entries.

        Entry ``(i, j)`` of the table of groups ``(a, b)`` is the sum, over the layers from
        ``a`` to ``b`` that exist at those widths, of the variable of (layer type, width
        ``i`` of ``a``, width ``j`` of ``b``) -- ``train_nas.py:312-326`` reads a layer's
        pairwise table the same way.
        """
        spec = self.space.spec
        term_id = {t: i for i, t in enumerate(self.terms)}
        index: dict[tuple, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for layer in spec.layers:
            home = self._home[layer.name]
            t = term_id[home]
            ltype = (layer.kind, int(layer.kernel), int(layer.stride), bool(layer.bias),
                     int(layer.out_size))  # fmt: skip
            wh = [self._widths_of(g) for g in home]
            for flat, ij in enumerate(np.ndindex(*self.shapes[t])):
                pick = ij if len(ij) == 2 else ij * 2  # a one-group table: (c,) -> (c, c)
                ch = {g: int(w[k]) for g, w, k in zip(home, wh, pick, strict=True)}
                cond = layer.when_differ
                if cond is not None and ch[cond[0]] == ch[cond[1]]:
                    continue  # the layer is absent (an identity skip) at equal widths
                key = (*ltype, ch[layer.cin], ch[layer.cout])
                rows.append(int(self.offsets[t]) + flat)
                cols.append(index.setdefault(key, len(index)))
        keys = list(index)
        expand = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(int(self.offsets[-1]), len(keys))
        )
        return keys, expand

    @property
    def num_variables(self) -> int:
        return len(self.keys)

    def entries(self) -> np.ndarray:
        """The table entries of every term, concatenated (``expand @ x``)."""
        return np.asarray(self.expand @ self.x)

    def tables(self) -> dict[Term, np.ndarray]:
        e = self.entries()
        return {
            t: e[self.offsets[i] : self.offsets[i + 1]].reshape(self.shapes[i])
            for i, t in enumerate(self.terms)
        }

    # -- design ---------------------------------------------------------------------------
    def _state(self, idx: np.ndarray, g: str) -> np.ndarray:
        c = self._col[g]
        return np.zeros(len(idx), dtype=np.int64) if c is None else idx[:, c]

    def active(self, indices: np.ndarray) -> np.ndarray:
        """Per configuration (bin indices, (B, G)), the table entry of every term: (B, terms)."""
        idx = np.atleast_2d(np.asarray(indices, dtype=np.int64))
        cols = []
        for i, (a, b) in enumerate(self.terms):
            flat = self._state(idx, a)
            if a != b:
                flat = flat * self.shapes[i][1] + self._state(idx, b)
            cols.append(self.offsets[i] + flat)
        return np.stack(cols, axis=1)

    def design(self, indices: np.ndarray) -> scipy.sparse.csr_matrix:
        """``M``: per configuration, how many of its layers use each variable."""
        act = self.active(indices)
        rows = np.repeat(np.arange(len(act)), act.shape[1])
        m = scipy.sparse.csr_matrix(
            (np.ones(act.size), (rows, act.ravel())), shape=(len(act), int(self.offsets[-1]))
        )
        return (m @ self.expand).tocsr()

    def monotonicity(self) -> scipy.sparse.csr_matrix:
        """``D``: one row ``x[small] - x[large]`` per pair of neighbouring variables (official
        ``get_inequalities``, ``latency.py:271-290``; see the module docstring)."""
        pairs = self._layer_type_pairs() if self.keying == "layer-type" else self._table_pairs()
        r = np.arange(len(pairs))
        lo = np.asarray([p[0] for p in pairs], dtype=np.int64)
        hi = np.asarray([p[1] for p in pairs], dtype=np.int64)
        return scipy.sparse.csr_matrix(
            (np.r_[np.ones(len(r)), -np.ones(len(r))], (np.r_[r, r], np.r_[lo, hi])),
            shape=(len(pairs), self.num_variables),
        )

    def _table_pairs(self) -> list[tuple[int, int]]:
        rows: list[tuple[int, int]] = []
        for i, shape in enumerate(self.shapes):
            ids = np.arange(int(np.prod(shape))).reshape(shape) + self.offsets[i]
            for ax in range(len(shape)):
                lo = np.take(ids, np.arange(shape[ax] - 1), axis=ax).ravel()
                hi = np.take(ids, np.arange(1, shape[ax]), axis=ax).ravel()
                rows += list(zip(lo.tolist(), hi.tolist(), strict=True))
        return rows

    def _layer_type_pairs(self) -> list[tuple[int, int]]:
        # Key layout: (kind, kernel, stride, bias, size, c_in, c_out). The official buckets
        # drop one of in_channels / out_channels / in_size and sort along it.
        buckets: dict[tuple, list[tuple[Any, int]]] = {}
        for v, k in enumerate(self.keys):
            for axis in (5, 6, 4):
                rest = (axis, *k[:axis], *k[axis + 1 :])
                buckets.setdefault(rest, []).append((k[axis], v))
            if k[5] == k[6]:  # a one-group layer's (c, c): sorted by c (not official)
                buckets.setdefault(("diag", *k[:5]), []).append((k[5], v))
        rows: list[tuple[int, int]] = []
        for members in buckets.values():
            members.sort()
            rows += [(members[i][1], members[i + 1][1]) for i in range(len(members) - 1)]
        return rows

    # -- use ------------------------------------------------------------------------------
    def predict_indices(self, indices: np.ndarray) -> np.ndarray:
        """Predicted latency (ms per image) of bin-index configurations, shape (B,)."""
        return self.entries()[self.active(indices)].sum(axis=1)

    def predict(self, widths: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predicted latency (ms per image) of one configuration (shape ()) or a batch."""
        w = np.asarray(widths)
        idx = np.stack([self.space.encode(row) for row in np.atleast_2d(w)])
        out = self.predict_indices(idx)
        return out[0] if w.ndim == 1 else out

    def pairwise_terms(self) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
        """The model as MRF potentials over the searchable groups: per group a unary vector,
        per pair of groups a matrix (terms touching a fixed group fold into unaries)."""
        pos = {g: i for i, g in enumerate(self.space.groups)}
        unary = [np.zeros(int(n)) for n in self.space.num_bins]
        pair: dict[tuple[int, int], np.ndarray] = {}
        const = 0.0
        for (a, b), tab in self.tables().items():
            ia, ib = pos.get(a), pos.get(b)
            if a == b and ia is not None:
                unary[ia] = unary[ia] + tab
            elif ia is None and ib is None:
                const += float(tab.sum())
            elif ia is None:
                unary[ib] = unary[ib] + tab.reshape(-1)
            elif ib is None:
                unary[ia] = unary[ia] + tab.reshape(-1)
            else:
                key, m = ((ia, ib), tab) if ia < ib else ((ib, ia), tab.T)
                pair[key] = pair.get(key, 0.0) + m
        unary[0] = unary[0] + const  # a fixed-only term is a constant: put it anywhere
        return unary, pair

    # -- fit ------------------------------------------------------------------------------
    def fit(self, indices: np.ndarray, latencies: np.ndarray, *, penalty: float = 100.0) -> None:
        """Fit the tables to measured ``latencies`` (ms) of ``indices`` (bin indices, (B, G)).

        ``penalty`` is K of Eq. 7 (the official README fits with ``-K 100.0``).
        """
        if penalty < 0:
            raise SearchError(f"the monotonicity penalty K must be >= 0, got {penalty}")
        y = np.asarray(latencies, dtype=np.float64)
        m = self.design(indices)
        if m.shape[0] != len(y) or len(y) == 0:
            raise SearchError(f"need one latency per configuration, got {len(y)} for {m.shape[0]}")
        d = self.monotonicity() if penalty > 0 else None
        x0 = _lbfgsb(m, y, d, penalty)
        self.x = np.maximum(x0, 0.0)
        self.info.update(
            {"penalty": float(penalty), "train_samples": len(y),
             "train_rmse_ms": self.rmse(indices, y)}
        )  # fmt: skip

    def rmse(self, indices: np.ndarray, latencies: np.ndarray) -> float:
        """Root-mean-square error (ms) of the predictions on measured configurations."""
        err = self.predict_indices(indices) - np.asarray(latencies, dtype=np.float64)
        return float(np.sqrt(np.mean(err**2)))

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the keying, every variable's key and value, and the expanded tables."""
        return {
            "format": FORMAT,
            "keying": self.keying,
            "space": self.space.describe(),
            "keys": [list(k) for k in self.keys],
            "x": self.x.tolist(),
            "terms": [list(t) for t in self.terms],
            "tables": [t.tolist() for t in self.tables().values()],
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, space: WidthSpace) -> LatencyModel:
        """A model saved by :meth:`save` for the same space (checked); a model saved before
        the keying option (its tables) loads as ``keying="group-pair"``."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SearchError(f"cannot read latency model {p}: {exc}") from None
        if (
            d.get("format") not in (FORMAT, FORMAT_V1)
            or d.get("space", {}).get("groups") != space.describe()["groups"]
        ):
            raise SearchError(
                f"{p} is not a latency model of this width space (format {d.get('format')!r}; "
                f"expected {FORMAT!r} over the same candidate widths)"
            )
        keying = d.get("keying", "group-pair") if d["format"] == FORMAT else "group-pair"
        if keying not in KEYINGS:
            raise SearchError(f"{p}: latency keying {keying!r} unknown; expected one of {KEYINGS}")
        model = cls(space, keying=keying)
        if d["format"] == FORMAT_V1:
            x = np.concatenate([np.ravel(np.asarray(t, dtype=np.float64)) for t in d["tables"]])
            if len(x) != model.num_variables:
                raise SearchError(f"{p}: {len(x)} table entries, expected {model.num_variables}")
            model.x = x
        else:
            keys = [tuple(k) for k in d.get("keys", [])]
            values = np.asarray(d.get("x", []), dtype=np.float64)
            if len(keys) != len(values) or set(keys) != set(model.keys):
                raise SearchError(
                    f"{p}: its {len(keys)} latency variables are not this space's "
                    f"{model.num_variables} ({keying} keying)"
                )
            where = {k: i for i, k in enumerate(keys)}
            model.x = values[[where[k] for k in model.keys]]
        model.info = {**dict(d.get("info", {})), "keying": keying}
        return model


def _lbfgsb(
    m: scipy.sparse.csr_matrix, y: np.ndarray, d: scipy.sparse.csr_matrix | None, penalty: float
) -> np.ndarray:
    """``min ||m x - y||^2 + K ||max(0, d x)||^2, x >= 0`` with L-BFGS-B."""
    x0 = np.maximum(scipy.sparse.linalg.lsmr(m, y, atol=1e-10, btol=1e-10)[0], 0.0)
    mt = m.T.tocsr()
    dt = None if d is None else d.T.tocsr()

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        r = m @ x - y
        val, grad = float(r @ r), 2.0 * (mt @ r)
        if d is not None and dt is not None and d.shape[0]:
            v = np.maximum(d @ x, 0.0)
            val += penalty * float(v @ v)
            grad = grad + 2.0 * penalty * (dt @ v)
        return val, grad

    # One BLAS thread: L-BFGS-B's small dense updates run ~20x slower when OpenBLAS
    # threads spin on a busy machine (measured: 4.8 s vs 0.25 s for 400 variables).
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        res = scipy.optimize.minimize(
            f, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(x0),
            options={"maxiter": 15000, "maxfun": 30000, "ftol": 1e-11, "gtol": 1e-7},
        )  # fmt: skip
    return res.x


@dataclass(frozen=True)
class LatencyFitSettings:
    """Sample counts and penalty of a latency-model fit.

    Defaults of the official README: 8000 (biased) training and 200 validation
    configurations, K = 100. Biased sampling (``latency.py:130-150``) steers each new
    configuration towards the least-measured variables; here it is the best of
    ``biased_pool`` random candidates by that count. ``keying``: how the model's variables
    are keyed (default the official ``"layer-type"``; ``"group-pair"`` the earlier tables,
    see the module docstring).
    """

    samples: int = 8000
    val_samples: int = 200
    penalty: float = 100.0
    biased: bool = True
    biased_pool: int = 64
    keying: str = "layer-type"

    def __post_init__(self) -> None:
        if self.keying not in KEYINGS:
            raise SearchError(f"latency keying {self.keying!r} unknown; expected one of {KEYINGS}")
        if self.samples < 1 or self.val_samples < 1 or self.biased_pool < 1:
            raise SearchError(
                f"latency fit needs samples, val_samples, biased_pool >= 1; got {self.samples}, "
                f"{self.val_samples}, {self.biased_pool}"
            )


def sample_configurations(
    model: LatencyModel, rng: np.random.Generator, n: int, *, biased: bool, pool: int = 64
) -> np.ndarray:
    """``n`` configurations (bin indices); ``biased``: each covers the least-seen variables.

    A candidate scores one per layer whose variable has the lowest count so far, and the
    counts grow by the layers' repetitions (``repeats.update(collect_repetitions(...))``,
    official ``latency.py:211``); with ``group-pair`` keying a variable is a table entry.
    """
    space = model.space
    if not biased:
        return space.sample_indices(rng, n)
    counts = np.zeros(model.num_variables, dtype=np.int64)
    out = []
    for _ in range(int(n)):
        cand = space.sample_indices(rng, pool)
        rep = model.design(cand)
        low = counts.min()
        pick = int(np.argmax(rep @ (counts == low).astype(np.float64)))
        row = rep.getrow(pick)
        counts[row.indices] += np.rint(row.data).astype(np.int64)
        out.append(cand[pick])
    return np.asarray(out, dtype=np.int64).reshape(-1, len(space.groups))


def fit_latency_model(
    space: WidthSpace,
    *,
    measure: Callable[[Sequence[int]], float] | None = None,
    settings: LatencyFitSettings | None = None,
    measure_settings: MeasureSettings | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    on_sample: Callable[[int, int], None] | None = None,
) -> LatencyModel:
    """Measure random configurations, fit the tables, validate on held-out ones.

    ``measure(widths) -> ms`` defaults to :func:`measure_widths` on ``device``; the
    validation configurations are uniformly random (not biased), drawn from their own
    stream. ``model.info`` records the settings, the train and validation RMSE (ms) and
    the mean validation latency.
    """
    s = settings or LatencyFitSettings()
    ms = measure_settings or MeasureSettings()
    if measure is None:

        def measure(w: Sequence[int]) -> float:
            return measure_widths(space, w, settings=ms, device=device)

    model = LatencyModel(space, keying=s.keying)
    train = sample_configurations(
        model, np.random.default_rng([seed, 11]), s.samples, biased=s.biased, pool=s.biased_pool
    )
    val = sample_configurations(model, np.random.default_rng([seed, 12]), s.val_samples,
                                biased=False)  # fmt: skip
    total = len(train) + len(val)
    ys = []
    for i, idx in enumerate(np.concatenate([train, val])):
        ys.append(float(measure(tuple(int(w) for w in space.decode(idx)))))
        if on_sample is not None:
            on_sample(i + 1, total)
    y = np.asarray(ys)
    model.fit(train, y[: len(train)], penalty=s.penalty)
    yv = y[len(train) :]
    model.info.update(
        {
            "fit": asdict(s),
            "measure": asdict(ms),
            "device": str(device),
            "val_rmse_ms": model.rmse(val, yv),
            "val_mean_ms": float(yv.mean()),
            "val_nrmse": model.rmse(val, yv) / float(yv.mean()),
            "num_variables": model.num_variables,
        }
    )
    return model


__all__ = [
    "KEYINGS",
    "LatencyFitSettings",
    "LatencyModel",
    "MeasureSettings",
    "fit_latency_model",
    "measure_widths",
    "model_terms",
    "sample_configurations",
]
