"""Exact inference on the pairwise MRF of a width configuration (AOWS, Berman et al. 2020).

One discrete variable per searchable channel group (its state is the bin index of the
group's width), one unary vector per variable and one matrix per pair of variables that
share a layer. On a chain (MobileNet-v1, the paper's case) max-sum is the Viterbi
recursion of the official ``viterbi.py:maxsum`` and sum-product its forward-backward
(``viterbi.py:sumprod_log``). Width groups of residual backbones are not a chain (a
stage's residual stream touches every block of the stage), so inference here is exact
*variable elimination* in a fixed order: on a chain it is Viterbi / forward-backward
exactly, and on ResNet / MobileNetV2 width graphs (a chain of residual streams, each block
group hanging off two consecutive streams) every factor it creates stays pairwise.

Everything works in log space: ``decode`` maximises ``sum unary + sum pairwise``;
``log_marginals`` are the log-normalised max-marginals' sum-product counterpart (the
marginals of the Gibbs distribution ``p(x) ~ exp(sum unary + sum pairwise)``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.errors import SearchError

Pair = tuple[int, int]


@dataclass
class _Factor:
    vars: tuple[int, ...]  # sorted variable ids
    table: np.ndarray  # one axis per variable, in ``vars`` order


def _aligned(f: _Factor, scope: tuple[int, ...]) -> np.ndarray:
    """``f.table`` broadcastable over ``scope`` (a sorted superset of ``f.vars``)."""
    shape = [f.table.shape[f.vars.index(v)] if v in f.vars else 1 for v in scope]
    return f.table.reshape(shape)


class PairwiseMRF:
    """A pairwise MRF over ``len(states)`` discrete variables with ``states[i]`` states each.

    ``edges`` lists the variable pairs that carry a pairwise term. The elimination order is
    fixed once (greedy min-degree, ties to the lower id), so every call runs the same plan.
    """

    def __init__(self, states: Sequence[int], edges: Sequence[Pair]) -> None:
        self.states = tuple(int(s) for s in states)
        if not self.states or min(self.states) < 1:
            raise SearchError(f"every variable needs >= 1 state, got {list(self.states)}")
        n = len(self.states)
        es = set()
        for a, b in edges:
            if not (0 <= a < n and 0 <= b < n) or a == b:
                raise SearchError(f"edge ({a}, {b}) is not a pair of distinct variables < {n}")
            es.add((min(a, b), max(a, b)))
        self.edges = tuple(sorted(es))
        self.order = self._min_degree_order()

    def _min_degree_order(self) -> tuple[int, ...]:
        adj = {v: set() for v in range(len(self.states))}
        for a, b in self.edges:
            adj[a].add(b)
            adj[b].add(a)
        order = []
        while adj:
            v = min(adj, key=lambda u: (len(adj[u]), u))
            nbrs = adj.pop(v)
            for u in nbrs:
                adj[u].discard(v)
                adj[u].update(nbrs - {u})
            order.append(v)
        return tuple(order)

    # -- checks ---------------------------------------------------------------------------
    def _factors(
        self, unary: Sequence[np.ndarray], pairwise: Mapping[Pair, np.ndarray]
    ) -> list[_Factor]:
        if len(unary) != len(self.states):
            raise SearchError(f"expected {len(self.states)} unary vectors, got {len(unary)}")
        out = []
        for i, u in enumerate(unary):
            u = np.asarray(u, dtype=np.float64)
            if u.shape != (self.states[i],):
                raise SearchError(f"unary {i} has shape {u.shape}, expected ({self.states[i]},)")
            out.append(_Factor((i,), u))
        for (a, b), m in pairwise.items():
            m = np.asarray(m, dtype=np.float64)
            if (min(a, b), max(a, b)) not in self.edges:
                raise SearchError(f"pairwise term ({a}, {b}) is not an edge of the MRF")
            if a > b:
                a, b, m = b, a, m.T
            if m.shape != (self.states[a], self.states[b]):
                raise SearchError(
                    f"pairwise ({a}, {b}) has shape {m.shape}, expected "
                    f"({self.states[a]}, {self.states[b]})"
                )
            out.append(_Factor((a, b), m))
        return out

    # -- max-sum --------------------------------------------------------------------------
    def decode(
        self, unary: Sequence[np.ndarray], pairwise: Mapping[Pair, np.ndarray]
    ) -> tuple[float, tuple[int, ...]]:
        """The maximising assignment and its score (ties go to the lower state)."""
        factors = self._factors(unary, pairwise)
        trace: list[tuple[int, tuple[int, ...], np.ndarray]] = []
        for v in self.order:
            mine = [f for f in factors if v in f.vars]
            factors = [f for f in factors if v not in f.vars]
            scope = tuple(sorted({u for f in mine for u in f.vars}))
            total = sum(_aligned(f, scope) for f in mine)
            total = np.broadcast_to(total, [self.states[u] for u in scope])
            ax = scope.index(v)
            rest = scope[:ax] + scope[ax + 1 :]
            trace.append((v, rest, np.argmax(total, axis=ax)))
            factors.append(_Factor(rest, np.max(total, axis=ax)))
        score = float(sum(float(f.table) for f in factors))
        x = [0] * len(self.states)
        for v, rest, arg in reversed(trace):
            x[v] = int(arg[tuple(x[u] for u in rest)]) if rest else int(arg)
        return score, tuple(x)

    # -- sum-product ----------------------------------------------------------------------
    def _log_partition(self, factors: list[_Factor], keep: int | None) -> np.ndarray:
        for v in self.order:
            if v == keep:
                continue
            mine = [f for f in factors if v in f.vars]
            factors = [f for f in factors if v not in f.vars]
            scope = tuple(sorted({u for f in mine for u in f.vars}))
            total = sum(_aligned(f, scope) for f in mine)
            total = np.broadcast_to(total, [self.states[u] for u in scope])
            ax = scope.index(v)
            m = np.max(total, axis=ax, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            lse = np.log(np.sum(np.exp(total - m), axis=ax)) + np.squeeze(m, axis=ax)
            factors.append(_Factor(scope[:ax] + scope[ax + 1 :], lse))
        if keep is None:
            return np.asarray(sum(float(f.table) for f in factors))
        out = np.zeros(self.states[keep])
        for f in factors:
            out = out + (f.table if f.vars else float(f.table))
        return out

    def log_marginals(
        self, unary: Sequence[np.ndarray], pairwise: Mapping[Pair, np.ndarray]
    ) -> list[np.ndarray]:
        """Normalised log marginals of every variable under ``p ~ exp(score)``."""
        factors = self._factors(unary, pairwise)
        out = []
        for v in range(len(self.states)):
            lm = self._log_partition(list(factors), keep=v)
            m = lm.max()
            out.append(lm - (m + np.log(np.exp(lm - m).sum())))
        return out

    def score(
        self,
        x: Sequence[int],
        unary: Sequence[np.ndarray],
        pairwise: Mapping[Pair, np.ndarray],
    ) -> float:
        """``sum unary[i][x_i] + sum pairwise[a, b][x_a, x_b]`` of one assignment."""
        s = sum(float(np.asarray(u)[x[i]]) for i, u in enumerate(unary))
        return s + sum(float(np.asarray(m)[x[a], x[b]]) for (a, b), m in pairwise.items())

    def brute_force(
        self, unary: Sequence[np.ndarray], pairwise: Mapping[Pair, np.ndarray]
    ) -> tuple[float, tuple[int, ...]]:
        """Exhaustive max-sum (for checks on small MRFs)."""
        best: tuple[float, tuple[int, ...]] = (-np.inf, ())
        for x in itertools.product(*(range(s) for s in self.states)):
            s = self.score(x, unary, pairwise)
            if s > best[0]:
                best = (s, tuple(x))
        return best


__all__ = ["PairwiseMRF"]
