"""AOWS's black-box latency model of a width space (Berman et al., CVPR 2020, Sec. 3.1).

The latency of a width configuration is modelled as a sum of per-layer terms, each a table
indexed by the layer's input and output widths: ``T[layer, c_in, c_out]``. Here a "layer"
is a pair of channel groups of the backbone spec (every Conv / Linear between the same two
groups shares one table; a BN or depthwise conv on one group, and any elementwise work
there, is a table over that group's width alone; a fixed group -- the RGB input, the class
logits -- has one state). The tables are fitted to latencies *measured* on the target
device for random configurations, by non-negative least squares with the paper's
monotonicity penalty (Eq. 7; official ``latency.py:254-290``): with ``D`` the differences
``T[.., c, ..] - T[.., c', ..]`` of neighbouring widths ``c < c'`` along either axis,

    minimise ||M x - y||^2 + K ||max(0, D x)||^2   subject to x >= 0,

where ``M`` selects, per measured configuration, the table entry of every term (so
``M x`` is the predicted latency). The official code solves it with CVXPY/SCS; the
objective is smooth (a squared hinge), so here scipy's L-BFGS-B with the bounds ``x >= 0``
solves it, started from the clipped least-squares (LSMR) solution. Held-out configurations give the RMSE.

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
from nasforge.spaces.width import WidthSpace

FORMAT = "nasforge-latency-model-1"
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


class LatencyModel:
    """Pairwise latency tables of a width space; predict, fit, validate, save, load."""

    def __init__(self, space: WidthSpace, tables: dict[Term, np.ndarray] | None = None) -> None:
        self.space = space
        self.terms = model_terms(space)
        pos = {g: i for i, g in enumerate(space.groups)}
        self._col = {g: pos.get(g) for t in self.terms for g in t}
        self._states = {
            g: (int(space.num_bins[pos[g]]) if g in pos else 1) for t in self.terms for g in t
        }
        self.shapes = [self._shape(t) for t in self.terms]
        self.offsets = np.concatenate([[0], np.cumsum([int(np.prod(s)) for s in self.shapes])])
        self.x = np.zeros(int(self.offsets[-1]))
        if tables is not None:
            for i, t in enumerate(self.terms):
                if t not in tables or np.shape(tables[t]) != self.shapes[i]:
                    raise SearchError(f"latency table {t} missing or not of shape {self.shapes[i]}")
                self.x[self.offsets[i] : self.offsets[i + 1]] = np.ravel(tables[t])
        self.info: dict[str, Any] = {}

    def _shape(self, t: Term) -> tuple[int, ...]:
        a, b = t
        return (self._states[a],) if a == b else (self._states[a], self._states[b])

    @property
    def num_variables(self) -> int:
        return int(self.offsets[-1])

    def tables(self) -> dict[Term, np.ndarray]:
        return {
            t: self.x[self.offsets[i] : self.offsets[i + 1]].reshape(self.shapes[i])
            for i, t in enumerate(self.terms)
        }

    # -- design ---------------------------------------------------------------------------
    def _state(self, idx: np.ndarray, g: str) -> np.ndarray:
        c = self._col[g]
        return np.zeros(len(idx), dtype=np.int64) if c is None else idx[:, c]

    def active(self, indices: np.ndarray) -> np.ndarray:
        """Per configuration (bin indices, (B, G)), the variable of every term: (B, terms)."""
        idx = np.atleast_2d(np.asarray(indices, dtype=np.int64))
        cols = []
        for i, (a, b) in enumerate(self.terms):
            flat = self._state(idx, a)
            if a != b:
                flat = flat * self.shapes[i][1] + self._state(idx, b)
            cols.append(self.offsets[i] + flat)
        return np.stack(cols, axis=1)

    def design(self, indices: np.ndarray) -> scipy.sparse.csr_matrix:
        act = self.active(indices)
        rows = np.repeat(np.arange(len(act)), act.shape[1])
        return scipy.sparse.csr_matrix(
            (np.ones(act.size), (rows, act.ravel())), shape=(len(act), self.num_variables)
        )

    def monotonicity(self) -> scipy.sparse.csr_matrix:
        """``D``: one row ``x[small] - x[large]`` per neighbouring width pair along an axis
        (official ``get_inequalities``, ``latency.py:271-290``)."""
        rows: list[tuple[int, int]] = []
        for i, shape in enumerate(self.shapes):
            ids = np.arange(int(np.prod(shape))).reshape(shape) + self.offsets[i]
            for ax in range(len(shape)):
                lo = np.take(ids, np.arange(shape[ax] - 1), axis=ax).ravel()
                hi = np.take(ids, np.arange(1, shape[ax]), axis=ax).ravel()
                rows += list(zip(lo.tolist(), hi.tolist(), strict=True))
        r = np.arange(len(rows))
        lo, hi = (np.asarray(c, dtype=np.int64) for c in zip(*rows, strict=True)) if rows else (
            np.zeros(0, np.int64), np.zeros(0, np.int64))  # fmt: skip
        return scipy.sparse.csr_matrix(
            (np.r_[np.ones(len(r)), -np.ones(len(r))], (np.r_[r, r], np.r_[lo, hi])),
            shape=(len(rows), self.num_variables),
        )

    # -- use ------------------------------------------------------------------------------
    def predict_indices(self, indices: np.ndarray) -> np.ndarray:
        """Predicted latency (ms per image) of bin-index configurations, shape (B,)."""
        return self.x[self.active(indices)].sum(axis=1)

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
        return {
            "format": FORMAT,
            "space": self.space.describe(),
            "terms": [list(t) for t in self.terms],
            "tables": [t.tolist() for t in self.tables().values()],
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, space: WidthSpace) -> LatencyModel:
        """A model saved by :meth:`save` for the same space (checked)."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SearchError(f"cannot read latency model {p}: {exc}") from None
        if (
            d.get("format") != FORMAT
            or d.get("space", {}).get("groups") != space.describe()["groups"]
        ):
            raise SearchError(
                f"{p} is not a latency model of this width space (format {d.get('format')!r}; "
                f"expected {FORMAT!r} over the same candidate widths)"
            )
        model = cls(space)
        model.x = np.concatenate([np.ravel(np.asarray(t, dtype=np.float64)) for t in d["tables"]])
        if len(model.x) != model.num_variables:
            raise SearchError(f"{p}: {len(model.x)} table entries, expected {model.num_variables}")
        model.info = dict(d.get("info", {}))
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
    configuration towards the least-measured table entries; here it is the best of
    ``biased_pool`` random candidates by that count.
    """

    samples: int = 8000
    val_samples: int = 200
    penalty: float = 100.0
    biased: bool = True
    biased_pool: int = 64

    def __post_init__(self) -> None:
        if self.samples < 1 or self.val_samples < 1 or self.biased_pool < 1:
            raise SearchError(
                f"latency fit needs samples, val_samples, biased_pool >= 1; got {self.samples}, "
                f"{self.val_samples}, {self.biased_pool}"
            )


def sample_configurations(
    model: LatencyModel, rng: np.random.Generator, n: int, *, biased: bool, pool: int = 64
) -> np.ndarray:
    """``n`` configurations (bin indices); ``biased``: each covers the least-seen entries."""
    space = model.space
    if not biased:
        return space.sample_indices(rng, n)
    counts = np.zeros(model.num_variables, dtype=np.int64)
    out = []
    for _ in range(int(n)):
        cand = space.sample_indices(rng, pool)
        act = model.active(cand)
        low = counts.min()
        pick = int(np.argmax((counts[act] == low).sum(axis=1)))
        counts[act[pick]] += 1
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

    model = LatencyModel(space)
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
    "LatencyFitSettings",
    "LatencyModel",
    "MeasureSettings",
    "fit_latency_model",
    "measure_widths",
    "model_terms",
    "sample_configurations",
]
