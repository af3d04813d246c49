"""The NAS-Bench-201 cell space as the one-shot methods search it: :class:`NB201Adapter`.

The supernet is :class:`~nasforge.nn.supernet.NB201Supernet` (xautodl's search model: ``N``
cells per stage, two residual reductions), the architecture parameters are 6 x 5 (one row
per edge of the 4-node cell, one column per op), and every edge is kept, so a derived arch
is each edge's strongest op and a single path (one op per edge) is itself an arch -- what
RSPS, ENAS, SETN and the sampling methods return. Records name an arch by its string and
index; the plot is :func:`~nasforge.report.oneshot.plot_search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.nn.supernet import NB201Supernet, SearchCell
from nasforge.search.oneshot.config import OneShotConfig
from nasforge.search.oneshot.spaces.base import SupernetAdapter
from nasforge.search.registry import ONESHOT_SPACES
from nasforge.spaces.nb201 import EDGES, NUM_ARCHS, NUM_EDGES, NUM_NODES, NUM_OPS, OPS, Arch

#: The edges entering each intermediate node (1..3), as indices into :data:`EDGES`.
NODE_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (dst, _) in enumerate(EDGES) if dst == node) for node in range(1, NUM_NODES)
)


def skip_share(arch: Arch) -> float:
    """The fraction of edges that are ``skip_connect`` (the DARTS collapse indicator)."""
    return sum(op == "skip_connect" for op in arch.ops) / NUM_EDGES


def normalise_edges(betas: torch.Tensor) -> torch.Tensor:
    """Per node, the softmax of its input edges' betas (PC-DARTS edge normalisation)."""
    out = torch.empty_like(betas)
    for edges in NODE_EDGES:
        idx = list(edges)
        out[idx] = torch.softmax(betas[idx], dim=0)
    return out


@lru_cache(maxsize=1)
def _all_op_ids() -> np.ndarray:
    """(15625, 6) op ids of every arch in code order (first edge most significant)."""
    codes = np.arange(NUM_ARCHS)
    cols = [(codes // NUM_OPS ** (NUM_EDGES - 1 - e)) % NUM_OPS for e in range(NUM_EDGES)]
    out = np.stack(cols, axis=1)
    out.flags.writeable = False
    return out


def top_k_archs(log_probs: np.ndarray, k: int) -> list[Arch]:
    """The ``k`` archs of highest log-probability under independent per-edge distributions
    (xautodl ``return_topK``); ties keep the enumeration order."""
    ops = _all_op_ids()
    scores = log_probs[np.arange(NUM_EDGES)[None, :], ops].sum(axis=1)
    order = np.argsort(-scores, kind="stable")[: min(k, NUM_ARCHS)]
    return [Arch.from_op_ids(ops[i].tolist()) for i in order]


@ONESHOT_SPACES.register("nb201")
class NB201Adapter(SupernetAdapter):
    """The NAS-Bench-201 cell space (see the module docstring)."""

    name = "nb201"
    rows = NUM_EDGES
    ops = tuple(OPS)
    provides = frozenset({"path-archs", "top-k", "node-rows", "cell-ops", "arch-flops"})

    def build_supernet(
        self,
        config: OneShotConfig,
        num_classes: int,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
    ) -> nn.Module:
        return NB201Supernet(
            config.C,
            config.N,
            num_classes,
            partial_k=partial_k,
            pool_bn=pool_bn,
            affine=affine,
            track_running_stats=config.track_running_stats,
        )

    def derive(
        self,
        weights: np.ndarray,
        edge_weights: np.ndarray | None = None,
        *,
        rule: str = "edges",
        tie_break: np.ndarray | None = None,
    ) -> Arch:
        """Each edge's op of highest weight (times its edge weight, which cannot reorder an
        edge's ops; every rule is this one where every edge is kept). With ``tie_break``,
        the ops within 1e-12 of the best are ordered by it (first on equal values)."""
        w = np.asarray(weights)
        if edge_weights is not None:
            w = w * np.asarray(edge_weights)[:, None]
        if tie_break is None:
            return Arch.from_op_ids(np.argmax(w, axis=1).tolist())
        ops = []
        for e in range(len(w)):
            best = np.flatnonzero(np.isclose(w[e], w[e].max(), rtol=0, atol=1e-12))
            ops.append(int(best[int(np.argmax(tie_break[e, best]))]))
        return Arch.from_op_ids(ops)

    def path_arch(self, path: Sequence[int]) -> Arch:
        return Arch.from_op_ids(path)

    def arch_path(self, arch: Any) -> list[int]:
        return list(arch.op_ids)

    def describe_path(self, path: Sequence[int]) -> str:
        return Arch.from_op_ids(path).to_string()

    def top_k(self, log_probs: np.ndarray, k: int) -> list[Arch]:
        """``top-k``: :func:`top_k_archs`."""
        return top_k_archs(log_probs, k)

    def normalise_edges(self, betas: torch.Tensor) -> torch.Tensor:
        return normalise_edges(betas)

    def node_rows(self) -> tuple[tuple[int, ...], ...]:
        return NODE_EDGES

    def cell_ops(self, supernet: nn.Module) -> list[list[Sequence[nn.Module]]]:
        return [
            [edge.ops for edge in cell.edges]
            for cell in supernet.cells  # type: ignore[union-attr]
            if isinstance(cell, SearchCell)
        ]

    def arch_flops(self, arch: Any, dataset: str, config: OneShotConfig) -> float:
        """NB201's benchmark FLOPs convention (:func:`nasforge.cost.nb201.arch_cost`)."""
        from nasforge.cost.nb201 import arch_cost

        return arch_cost(arch, dataset, config.C, config.N).flops_m

    def arch_fields(self, arch: Any) -> dict[str, Any]:
        return {
            "arch": arch.to_string(),
            "arch_index": arch.to_index(),
            "skip_share": skip_share(arch),
        }

    def plot(
        self,
        records: list[dict[str, Any]],
        path: Any,
        title: str = "",
        *,
        warmup: int = 0,
        trained: dict[str, float] | None = None,
    ) -> Path:
        """:func:`~nasforge.report.oneshot.plot_search` (per-edge probabilities,
        warm-up shaded, ``trained`` accuracies of the derived arch as lines)."""
        from nasforge.report.oneshot import plot_search

        return plot_search(records, path, title=title, warmup=warmup, trained=trained)
