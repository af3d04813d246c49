"""The weight-sharing supernet of the DARTS cell space (DARTS, PC-DARTS, GDAS).

One class serves every method, as :class:`~nasforge.nn.supernet.NB201Supernet` does for
NB201: the method only decides how an edge mixes its 8 ops. The macro skeleton is the
official search ``Network`` (quark0/darts ``cnn/model_search.py:61-97``, PC-DARTS
``model_search.py:92-126``): a stem conv 3 -> 3C + BN, ``layers`` cells (8 in the official
search), reduction cells at ``layers // 3`` and ``2 * layers // 3`` doubling the channels,
each cell with two preprocessing ops (``FactorizedReduce`` after a reduction, else a 1x1
``ReLUConvBN``), ``steps`` = 4 intermediate nodes fed by every earlier node (14 edges) and
the last ``multiplier`` = 4 nodes concatenated; global average pooling and a linear
classifier. Every BatchNorm of a cell is ``affine=False`` (the official ``OPS[...](C,
stride, False)``, ``model_search.py:33`` / ``:16``); the stem BN is affine, as in both
official search models (``model_search.py:104-107``). Convolutions are bias-free as in the
official ``operations.py`` (``bias=False`` on every op, :data:`~nasforge.nn.ops.DARTS_OPS`).

Architecture tensors cover both cell types in one array of ``2 * 14`` rows: rows
``0..13`` the normal cell's edges, rows ``14..27`` the reduction cell's (the official
``alphas_normal`` / ``alphas_reduce``), edge ``e`` of a cell being ``j -> i`` in the order of
:data:`~nasforge.spaces.darts.CELL_EDGES`. The forward accepts, as NB201's:

* ``weights`` (28 x 8): the weighted sum of all ops of every edge (DARTS, PC-DARTS);
* ``index`` (28 op ids): one op per edge, and ``weights`` + ``index``: GDAS'
  straight-through form ``w[k] * op_k(x) + sum_{j != k} w[j]``;
* ``edge_weights`` (28): PC-DARTS' edge normalisation, each edge's output multiplied by its
  node-normalised beta (``model_search.py:85``).

``partial_k = K > 1`` is PC-DARTS' partial channel connection (``model_search.py:39-53``):
the first ``C/K`` channels go through the mixed op, the other channels bypass it (through a
2x2 max pool on a stride-2 edge) and a channel shuffle with ``K`` groups mixes the two.
``pool_bn`` follows each pooling op with ``BatchNorm2d(affine=False)`` (both official
DARTS-space search models; xautodl's NASNet-space GDAS model has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.nn.darts import cell_inputs, reduction_layers
from nasforge.nn.ops import FactorizedReduce, build_darts_op
from nasforge.nn.supernet import MixedEdge, check_mixing, mixed_nodes
from nasforge.spaces.darts import CELL_EDGES, PRIMITIVES, STEPS, Genotype

NUM_CELL_EDGES = len(CELL_EDGES)  # 14
NUM_DARTS_OPS = len(PRIMITIVES)  # 8
#: Rows of the architecture tensors: the normal cell's edges then the reduction cell's.
NUM_ARCH_ROWS = 2 * NUM_CELL_EDGES
# MixedEdge skips op 0 of a weighted sum: ``none`` in both spaces.
assert PRIMITIVES.index("none") == 0


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2, 2)`` as a max over a 2x2-blocked view on even sizes: autograd then
    keeps the float output instead of int64 indices (half the bytes; gradient ties, of
    measure zero here, are shared instead of routed to one element)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            return nn.functional.max_pool2d(x, 2, 2)
        return x.view(b, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))


class DartsMixedOp(MixedEdge):
    """One edge of a DARTS search cell: the 8 primitives on ``C / partial_k`` channels.

    The forward (weighted sum, single op, GDAS' straight-through form, edge scale, partial
    channels and shuffle) is :class:`~nasforge.nn.supernet.MixedEdge`'s; what differs is the
    op set and, with ``partial_k > 1`` on a stride-2 edge, the 2x2 max pool of the bypassed
    channels (PC-DARTS ``model_search.py:30,46-49``).
    """

    def __init__(self, channels: int, stride: int, *, partial_k: int = 1, pool_bn: bool = True):
        nn.Module.__init__(self)
        self.stride = stride
        self._build_ops(
            channels,
            partial_k,
            pool_bn,
            PRIMITIVES,
            lambda name, c: build_darts_op(name, c, stride, affine=False),
            MaxPool2x2() if partial_k > 1 and stride == 2 else None,
        )


class DartsSearchCell(nn.Module):
    """A searched DARTS cell: node ``i`` sums the mixed ops of its edges from nodes ``j < i``."""

    def __init__(
        self,
        steps: int,
        multiplier: int,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        *,
        partial_k: int = 1,
        pool_bn: bool = True,
    ) -> None:
        super().__init__()
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.preprocess0, self.preprocess1 = cell_inputs(
            c_prev_prev, c_prev, c, reduction_prev, affine=False
        )
        # Both preprocessing ops start with a ReLU of a previous cell's output, and every
        # output feeds two later cells: the network applies that ReLU once per output
        # (DartsSupernet._cells) instead of once per use, so autograd keeps one copy.
        if isinstance(self.preprocess0, FactorizedReduce):
            self.preprocess0.relu = nn.Identity()
        else:
            self.preprocess0.op[0] = nn.Identity()
        self.preprocess1.op[0] = nn.Identity()
        # Only the edges from the two cell inputs stride in a reduction cell (model_search.py:74).
        self.edges = nn.ModuleList(
            DartsMixedOp(c, 2 if reduction and j < 2 else 1, partial_k=partial_k, pool_bn=pool_bn)
            for i in range(steps)
            for j in range(2 + i)
        )

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | None,
        index: Sequence[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        states = mixed_nodes(self.edges, states, self.steps, weights, index, edge_weights)
        return torch.cat(states[-self.multiplier :], dim=1)

    def forward_pairs(
        self, s0: torch.Tensor, s1: torch.Tensor, pairs: Sequence[tuple[int, int]]
    ) -> torch.Tensor:
        """The single path of a derived cell: node ``2 + k // 2`` sums ``op(input)`` over its
        pairs ``(op id, input)`` through the shared edge ``input -> node``."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.steps):
            total = None
            for op_id, src in pairs[2 * node : 2 * node + 2]:
                e = node * (node + 3) // 2 + src  # edges of earlier nodes: 2 + 3 + ...
                y = self.edges[e](states[src], index=op_id)
                total = y if total is None else total + y
            states.append(total)
        return torch.cat(states[-self.multiplier :], dim=1)


class DartsSupernet(nn.Module):
    """The DARTS-space search network (see the module docstring).

    Args:
        C: channels of the first cells (official search: 16).
        layers: total cells (official search: 8).
        num_classes: classifier outputs.
        steps, multiplier, stem_multiplier: 4, 4, 3 as published.
        partial_k: PC-DARTS' K (1 = every channel through every op, DARTS).
        pool_bn: BN(affine=False) after each pooling op of the mixed op.
        in_channels: image channels.
    """

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        *,
        steps: int = STEPS,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        partial_k: int = 1,
        pool_bn: bool = True,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if steps != STEPS:
            raise ValueError(f"steps={steps}: the DARTS space has {STEPS} nodes per cell")
        if partial_k < 1 or C % partial_k:
            raise ValueError(f"partial_k={partial_k} must be >= 1 and divide C={C}")
        if layers < 1:
            raise ValueError(f"layers={layers} must be >= 1")
        self.C, self.layers, self.num_classes, self.partial_k = C, layers, num_classes, partial_k
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_pp, c_p, c_curr = c_curr, c_curr, C
        reductions = reduction_layers(layers)
        cells = []
        reduction_prev = False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cells.append(
                DartsSearchCell(
                    steps,
                    multiplier,
                    c_pp,
                    c_p,
                    c_curr,
                    reduction,
                    reduction_prev,
                    partial_k=partial_k,
                    pool_bn=pool_bn,
                )
            )
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    @staticmethod
    def _rows(t: torch.Tensor | Sequence[int] | None, reduction: bool) -> object:
        if t is None:
            return None
        start = NUM_CELL_EDGES if reduction else 0
        return t[start : start + NUM_CELL_EDGES]

    def forward(
        self,
        x: torch.Tensor,
        *,
        weights: torch.Tensor | None = None,
        index: Sequence[int] | None = None,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits; ``weights`` (28 x 8), ``index`` (28) and ``edge_weights`` (28) mix the ops
        as the module docstring says (rows 0..13 normal cells, 14..27 reduction cells)."""
        index = check_mixing(
            weights, index, edge_weights, NUM_ARCH_ROWS, NUM_DARTS_OPS, "DartsSupernet"
        )
        return self._cells(
            x,
            lambda cell, s0, s1: cell(
                s0,
                s1,
                self._rows(weights, cell.reduction),
                self._rows(index, cell.reduction),
                self._rows(edge_weights, cell.reduction),
            ),
        )

    def _cells(self, x: torch.Tensor, run: Any) -> torch.Tensor:
        """Stem, ``run(cell, s0, s1)`` for every cell, pooling and classifier; each cell
        output is ReLU-ed once for the two later cells that read it (the preprocessing ops
        have no ReLU of their own)."""
        s0 = s1 = torch.relu(self.stem(x))
        out = s1
        for i, cell in enumerate(self.cells):
            out = run(cell, s0, s1)
            s0, s1 = s1, (torch.relu(out) if i < len(self.cells) - 1 else None)
        return self.classifier(self.global_pooling(out).flatten(1))

    def forward_arch(self, x: torch.Tensor, arch: Genotype | str | Sequence[int]) -> torch.Tensor:
        """Logits of the derived genotype's single path through the shared weights (the
        edges it does not name are left out); a sequence of 28 op ids is the single path
        with that op on every edge (``forward(x, index=arch)``, as DDPNAS scores paths)."""
        if not isinstance(arch, (Genotype, str)):
            return self(x, index=list(arch))
        g = Genotype.parse(arch)
        cells = {r: [(PRIMITIVES.index(op), j) for op, j in g.cell(r)[0]] for r in (False, True)}
        return self._cells(
            x, lambda cell, s0, s1: cell.forward_pairs(s0, s1, cells[cell.reduction])
        )

    def path_parameters(self, index: Sequence[int]) -> list[nn.Parameter]:
        """The parameters of the single path ``index`` (28 op ids): the chosen op of every
        edge plus every parameter outside the mixed ops."""
        index = [int(i) for i in index]
        out: list[nn.Parameter] = [*self.stem.parameters(), *self.classifier.parameters()]
        for cell in self.cells:
            rows = self._rows(index, cell.reduction)
            out += [*cell.preprocess0.parameters(), *cell.preprocess1.parameters()]
            for edge, k in zip(cell.edges, rows, strict=True):  # type: ignore[call-overload]
                out.extend(edge.ops[k].parameters())
        return out
