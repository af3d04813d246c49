"""The DARTS cell space as the one-shot methods search it: :class:`DartsAdapter`.

The supernet is :class:`~nasforge.nn.darts_supernet.DartsSupernet` (``N`` cells in all,
reductions at 1/3 and 2/3), the architecture parameters are 28 x 8 (rows 0..13 the normal
cell's edges, 14..27 the reduction cell's), and an arch is derived as DARTS' ``genotype()``
(:func:`parse_cell`, optionally with PC-DARTS' edge weights) or as xautodl's NASNet-space
GDAS (:func:`gdas_parse_cell`). A single path (one op per row) is not a genotype here, so
the methods that return sampled paths do not run in this space. Every DARTS-space config
carries :class:`DartsSpaceFields` (the official loops' schedule, data split and arch-batch
rules); the published settings per method are in :mod:`nasforge.search.oneshot.settings`.
The final genotype is written as ``genotype.json`` (read by ``nasforge train --space darts
--arch``) and ``genotype.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.io import atomic_write_json, atomic_write_text
from nasforge.nn.darts_supernet import NUM_ARCH_ROWS, NUM_CELL_EDGES, NUM_DARTS_OPS, DartsSupernet
from nasforge.search.oneshot.config import OneShotConfig, check_bool, cosine_lr
from nasforge.search.oneshot.loop import ARCH_BATCH_RULES, SPLIT_RULES
from nasforge.search.oneshot.spaces.base import SupernetAdapter
from nasforge.search.registry import ONESHOT_SPACES
from nasforge.spaces.darts import DARTS_CONCAT, PRIMITIVES, STEPS, Genotype, Pair

GENOTYPE_JSON = "genotype.json"
GENOTYPE_REPR = "genotype.txt"
_NONE_ID = PRIMITIVES.index("none")

# -- derivation ------------------------------------------------------------------------------


def node_edges(steps: int = STEPS) -> list[range]:
    """The rows of one cell's arch tensors that feed each intermediate node."""
    out, start = [], 0
    for i in range(steps):
        out.append(range(start, start + 2 + i))
        start += 2 + i
    return out


def normalise_cell_edges(betas: torch.Tensor) -> torch.Tensor:
    """PC-DARTS edge normalisation of the 28 betas: per cell and node, the softmax of its
    input edges' betas (``model_search.py:141-158``)."""
    parts = []
    for cell in range(2):
        for rows in node_edges():
            idx = [cell * NUM_CELL_EDGES + r for r in rows]
            parts.append(torch.softmax(betas[idx], dim=0))
    return torch.cat(parts)


def parse_cell(weights: np.ndarray, edge_weights: np.ndarray | None = None) -> list[Pair]:
    """DARTS / PC-DARTS ``genotype()._parse`` (PC-DARTS ``model_search.py:188-210``) of one
    cell: each edge's op weights times its edge weight (PC-DARTS) or as they are (DARTS);
    per node the 2 incoming edges whose strongest non-``none`` op is strongest (ties: the
    earlier input, as Python's stable sort), each with that op (ties: the first op)."""
    w = np.asarray(weights, dtype=np.float64)
    if edge_weights is not None:
        w = w * np.asarray(edge_weights, dtype=np.float64)[:, None]
    w = w.copy()
    w[:, _NONE_ID] = -np.inf
    gene: list[Pair] = []
    for rows in node_edges():
        block = w[list(rows)]
        strongest = sorted(range(len(rows)), key=lambda j: -block[j].max())[:2]
        gene += [(PRIMITIVES[int(np.argmax(block[j]))], j) for j in strongest]
    return gene


def gdas_parse_cell(weights: np.ndarray) -> list[Pair]:
    """xautodl's GDAS (NASNet space) ``genotype()._parse`` (``search_model_gdas_nasnet.py:
    129-143``): per node the 2 strongest (op, input) pairs over all its non-``none`` op
    weights (stable order on ties)."""
    w = np.asarray(weights, dtype=np.float64)
    gene: list[Pair] = []
    for rows in node_edges():
        cands = [
            (PRIMITIVES[k], j, w[r, k])
            for j, r in enumerate(rows)
            for k in range(NUM_DARTS_OPS)
            if k != _NONE_ID
        ]
        gene += [(op, j) for op, j, _ in sorted(cands, key=lambda c: -c[2])[:2]]
    return gene


def derive_genotype(
    probs: np.ndarray, edge_weights: np.ndarray | None = None, rule: Any = None
) -> Genotype:
    """The genotype of the 28 x 8 op weights (normal rows then reduction rows) and the
    optional 28 edge weights, by ``rule`` (default :func:`parse_cell`; or
    :func:`gdas_parse_cell`, which ignores edge weights)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (NUM_ARCH_ROWS, NUM_DARTS_OPS):
        raise SearchError(f"op weights have shape {p.shape}; expected (28, 8)")
    cells = []
    for c in range(2):
        rows = slice(c * NUM_CELL_EDGES, (c + 1) * NUM_CELL_EDGES)
        if rule is None:
            ew = None if edge_weights is None else np.asarray(edge_weights)[rows]
            cells.append(parse_cell(p[rows], ew))
        else:
            cells.append(rule(p[rows]))
    return Genotype(cells[0], DARTS_CONCAT, cells[1], DARTS_CONCAT)


def normal_skip_share(g: Genotype) -> float:
    """The share of ``skip_connect`` among the normal cell's pairs (DARTS' collapse sign)."""
    return sum(op == "skip_connect" for op, _ in g.normal) / len(g.normal)


# -- config fields and pruning groups -------------------------------------------------------


@dataclass(frozen=True)
class DartsSpaceFields:
    """Fields every DARTS-space config shares (first in its bases: its ``__post_init__``
    checks them after the method's config). ``N`` is the total number of cells (the
    official ``--layers``; ``nasforge train --space darts --N`` means the same).

    ``scheduler_first`` (default ``False``): whether epoch ``e`` trains at ``cosine(e + 1)``
    instead of ``cosine(e)``. The official DARTS and PC-DARTS searches call
    ``scheduler.step()`` at the start of each epoch (quark0/darts ``cnn/train_search.py``
    ``for epoch in range(args.epochs): scheduler.step()``; PC-DARTS ``train_search.py`` the
    same) and ran on PyTorch 0.3.1 (PC-DARTS README). That version's
    ``_LRScheduler.__init__`` (``torch/optim/lr_scheduler.py``) calls
    ``self.step(last_epoch + 1)`` and then sets ``self.last_epoch = last_epoch`` (-1) again,
    so the first ``step()`` goes to epoch 0 = the base lr: no shift, and the last epoch runs
    at ``cosine(E - 1)`` > ``eta_min``. ``True`` is what the same loop gives on PyTorch
    >= 1.1, whose ``__init__`` leaves ``last_epoch`` at 0 (the first ``step()`` moves to 1;
    PC-DARTS then ends at lr 0). Compared: the 0.3.x ``_LRScheduler`` source as quoted in a
    public copy (the pytorch repository itself was too large to fetch here), not a run of
    PyTorch 0.3.1.

    ``split`` / ``arch_batches`` (defaults ``prefix`` / ``fresh``, DARTS's and PC-DARTS's):
    how a dataset without a ``valid`` split is halved and how each step's arch batch is
    drawn (see :mod:`~nasforge.search.oneshot.loop`); ``random`` / ``cycle`` are the NB201
    methods' rules (GDAS and DDPNAS here, whose official loaders pair or split otherwise).
    """

    C: int = 16
    N: int = 8
    nesterov: bool = False
    pool_bn: bool = True
    scheduler_first: bool = False
    split: str = "prefix"
    arch_batches: str = "fresh"

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]  # the method's config, next in the MRO
        check_bool(self, "pool_bn")
        check_bool(self, "scheduler_first")
        if self.split not in SPLIT_RULES:
            raise SearchError(
                f"config field split={self.split!r} invalid; expected one of {SPLIT_RULES}"
            )
        if self.arch_batches not in ARCH_BATCH_RULES:
            raise SearchError(
                f"config field arch_batches={self.arch_batches!r} invalid; expected one of "
                f"{ARCH_BATCH_RULES}"
            )


#: XNAS' two op groups (``xnas/spaces/DARTS/ops.py`` ``NON_PARAMETER_OP`` / ``PARAMETER_OP``)
#: as ids of :data:`PRIMITIVES`: DDPNAS never prunes the last survivor of either.
DDPNAS_PRUNE_GROUPS: tuple[tuple[int, ...], ...] = (
    tuple(PRIMITIVES.index(op) for op in ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect")),
    tuple(
        PRIMITIVES.index(op)
        for op in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    ),
)


def genotype_path(g: Genotype) -> list[int]:
    """The 28 op ids of ``g``'s single path: each named (op, input) on its edge, ``none``
    on the edges ``g`` leaves out (two pairs on one edge keep the first)."""
    path = [_NONE_ID] * NUM_ARCH_ROWS
    for c, reduction in enumerate((False, True)):
        pairs = g.cell(reduction)[0]
        for node, rows in enumerate(node_edges()):
            for op, j in pairs[2 * node : 2 * node + 2]:
                row = c * NUM_CELL_EDGES + rows[j]
                if path[row] == _NONE_ID:
                    path[row] = PRIMITIVES.index(op)
    return path


@ONESHOT_SPACES.register("darts")
class DartsAdapter(SupernetAdapter):
    """The DARTS cell space (see the module docstring)."""

    name = "darts"
    rows = NUM_ARCH_ROWS
    ops = tuple(PRIMITIVES)
    provides = frozenset()
    config_fields = DartsSpaceFields
    prune_groups = DDPNAS_PRUNE_GROUPS
    bigmodel_rule = (DDPNAS_PRUNE_GROUPS[0], _NONE_ID, NUM_CELL_EDGES)

    def build_supernet(
        self,
        config: OneShotConfig,
        num_classes: int,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
    ) -> nn.Module:
        """:class:`DartsSupernet` with ``N`` cells in all; BN after pooling as the config's
        ``pool_bn`` field says (the official search models' BatchNorms are not affine)."""
        if affine:
            raise SearchError("the DARTS one-shot supernet has no affine candidate-op BatchNorms")
        return DartsSupernet(
            config.C,
            config.N,
            num_classes,
            partial_k=partial_k,
            pool_bn=config.pool_bn,  # type: ignore[attr-defined]
        )

    def epoch_lr(self, config: OneShotConfig, epoch: int) -> float:
        """``cosine(e)``, or ``cosine(e + 1)`` with ``scheduler_first`` (see
        :class:`DartsSpaceFields`)."""
        shift = 1 if config.scheduler_first else 0  # type: ignore[attr-defined]
        return cosine_lr(config, epoch + shift)

    def split_rule(self, config: OneShotConfig) -> str:
        return str(config.split)  # type: ignore[attr-defined]

    def arch_batch_rule(self, config: OneShotConfig) -> str:
        return str(config.arch_batches)  # type: ignore[attr-defined]

    def derive(
        self,
        weights: np.ndarray,
        edge_weights: np.ndarray | None = None,
        *,
        rule: str = "edges",
        tie_break: np.ndarray | None = None,
    ) -> Genotype:
        """:func:`derive_genotype` by ``rule`` (``edges``: :func:`parse_cell`, ``pairs``:
        :func:`gdas_parse_cell`, which ignores edge weights). ``tie_break`` is not used:
        the parse rules break ties by order, as the official ``genotype()``."""
        rules = {"edges": None, "pairs": gdas_parse_cell}
        if rule not in rules:
            raise SearchError(f"derivation rule {rule!r} unknown; expected one of {sorted(rules)}")
        return derive_genotype(weights, edge_weights, rule=rules[rule])

    def arch_path(self, arch: Any) -> list[int]:
        return genotype_path(arch)

    def normalise_edges(self, betas: torch.Tensor) -> torch.Tensor:
        return normalise_cell_edges(betas)

    def node_rows(self) -> tuple[tuple[int, ...], ...]:
        return tuple(
            tuple(c * NUM_CELL_EDGES + r for r in rows) for c in range(2) for rows in node_edges()
        )

    def arch_fields(self, arch: Any) -> dict[str, Any]:
        return {"arch": arch.to_string(), "arch_index": None, "skip_share": normal_skip_share(arch)}

    def write_arch(self, arch: Any, out_dir: Path) -> dict[str, str]:
        """``genotype.json`` (what ``nasforge train --space darts --arch`` reads) and
        ``genotype.txt`` (DARTS's repr) in ``out_dir``."""
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / GENOTYPE_JSON, arch.to_dict())
        atomic_write_text(out_dir / GENOTYPE_REPR, arch.to_string() + "\n")
        return {"genotype": str(out_dir / GENOTYPE_JSON), "repr": str(out_dir / GENOTYPE_REPR)}

    def plot(
        self,
        records: list[dict[str, Any]],
        path: Any,
        title: str = "",
        *,
        warmup: int = 0,
        trained: dict[str, float] | None = None,
    ) -> Path:
        """The DARTS-space figure (warm-up and retrained accuracy are not drawn in it):
        :func:`nasforge.report.oneshot.plot_darts_search`."""
        from nasforge.report.oneshot import plot_darts_search

        return plot_darts_search(records, path, title=title)
