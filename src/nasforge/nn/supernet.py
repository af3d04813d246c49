"""The weight-sharing supernet of the NAS-Bench-201 space.

Every edge of every searched cell holds all five NB201 primitives (built with
``affine=False`` as in the official search models, ``xautodl/models/cell_searchs/``); a
one-shot method only decides how an edge *mixes* its ops. One forward signature covers
every method:

* ``weights`` only (``E x O``): the softmax-weighted sum of all ops (DARTS, SETN's
  "joint" mode, PC-DARTS, single-level DARTS);
* ``index`` only (``E`` op ids): one op per edge, the single-path forward of a sampled
  arch (ENAS, RSPS, SETN's "dynamic" mode, evaluating a derived arch);
* ``weights`` + ``index``: GDAS' straight-through form, ``w[k] * op_k(x) + sum_{j != k} w[j]``
  (the official ``forward_gdas``), so that the hard one-hot sample passes gradients to
  every logit while only the sampled op is computed;
* ``edge_weights`` (``E``), with any of the above: PC-DARTS' edge normalisation, each edge's
  output multiplied by its (node-normalised) weight.

With ``partial_k = K > 1`` (PC-DARTS) an edge's ops see only the first ``C/K`` channels; the
other channels bypass the edge and a channel shuffle mixes the two parts (Xu et al., 2020).
``pool_bn`` follows the pooling op with a ``BatchNorm2d(affine=False)``, as PC-DARTS' (and
DARTS') mixed op does (PC-DARTS ``model_search.py:34-35``); the NB201 search models of
xautodl have no such BN.

The module names follow xautodl's search models except for the edge container: our
``cells.i.edges.<e>.ops.<k>`` is xautodl's ``cells.i.edges.<j<-i>.<k>``, and xautodl keeps
the architecture logits in the model (``arch_parameters``); :func:`to_xautodl_state_dict` /
:func:`from_xautodl_state_dict` translate between the two.

The macro skeleton is :class:`~nasforge.nn.nb201.NB201Network`'s (C=16, N=5 in the official
NB201 search runs): the supernet is built by composition, swapping its cells for
:class:`SearchCell` s, so the stem / residual blocks / classifier are the same modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.nb201 import InferCell, NB201Network, stage_layout
from nasforge.nn.ops import build_op
from nasforge.spaces.nb201 import EDGES, NUM_EDGES, NUM_NODES, NUM_OPS, OPS, Arch

_NONE_ID = OPS.index("none")
#: A placeholder cell arch with no parameters (all ``none``): the skeleton is built with it and
#: its cells are then replaced, so building it consumes no random numbers for the cells.
_EMPTY_ARCH = Arch(("none",) * NUM_EDGES)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (as PC-DARTS uses it): interleave ``groups`` channel groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def shuffle_concat(y: torch.Tensor, rest: torch.Tensor, groups: int) -> torch.Tensor:
    """``channel_shuffle(torch.cat([y, rest], 1), groups)`` (PC-DARTS' edge output,
    ``model_search.py:45-50``) with ``y`` holding ``1/groups`` of the channels, in one copy
    and in the layout of ``y``: output channel ``j * groups + g`` is channel ``j`` of part
    ``g`` (``y``, then ``rest`` in ``groups - 1`` equal chunks). The reshape of
    :func:`channel_shuffle` returns an NCHW tensor whatever its input's layout, which sends
    every later op of a channels_last supernet through a layout conversion; this keeps a
    channels_last ``y`` channels_last. The values are the same (a permutation)."""
    parts = [y, *rest.chunk(groups - 1, dim=1)]
    b, c, h, w = y.shape
    if y.dim() == 4 and y.is_contiguous(memory_format=torch.channels_last):
        # Stack in NHWC order: channels fastest, so the result is channels_last.
        stacked = torch.stack([p.permute(0, 2, 3, 1) for p in parts], dim=-1)
        return stacked.reshape(b, h, w, c * groups).permute(0, 3, 1, 2)
    return torch.stack(parts, dim=2).reshape(b, c * groups, h, w)


class MixedEdge(nn.Module):
    """One edge holding the five NB201 ops (in the official order :data:`OPS`).

    The forward serves every space's supernet; a space's edge (e.g.
    :class:`~nasforge.nn.darts_supernet.DartsMixedOp`) only builds another op set through
    :meth:`_build_ops`, whose op 0 must be ``none``.
    """

    def __init__(
        self,
        channels: int,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self._build_ops(
            channels,
            partial_k,
            pool_bn,
            OPS,
            lambda name, c: build_op(name, c, c, 1, affine, track_running_stats),
        )

    def _build_ops(
        self,
        channels: int,
        partial_k: int,
        pool_bn: bool,
        names: Sequence[str],
        build: Callable[[str, int], nn.Module],
        bypass_pool: nn.Module | None = None,
    ) -> None:
        """``ops``: ``build(name, C / partial_k)`` for each op name, each pooling op followed
        by a ``BatchNorm2d(affine=False)`` when ``pool_bn``; ``bypass_pool`` is applied to the
        channels that bypass the ops."""
        if partial_k < 1 or channels % partial_k:
            raise ValueError(
                f"partial_k={partial_k} must be >= 1 and divide the edge's {channels} channels"
            )
        self.channels, self.partial_k = channels, partial_k
        self.op_channels = channels // partial_k
        ops = []
        for name in names:
            op = build(name, self.op_channels)
            if pool_bn and name.endswith("pool_3x3"):
                # PC-DARTS model_search.py:34-35 (DARTS :17-18): ``nn.BatchNorm2d(C // k,
                # affine=False)`` after every pooling op (default running statistics).
                op = nn.Sequential(op, nn.BatchNorm2d(self.op_channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        # Ops that start with a ReLU of the edge input (ReLU-conv-BN, separable, dilated,
        # factorized-reduce): a weighted sum applies that ReLU once for all of them.
        led = [getattr(op, "leads_with_relu", lambda: False)() for op in ops]
        self.relu_led = tuple(led)
        #: Applied to the bypassed channels (DARTS-space reduction edges max-pool them).
        self.bypass_pool = bypass_pool

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None = None,
        index: int | None = None,
        scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The edge output; ``scale`` (a scalar tensor) multiplies all of it (edge weights)."""
        return self.combine(*self.parts(EdgeInput(x), weights, index, scale))

    def parts(
        self,
        inp: EdgeInput,
        weights: torch.Tensor | None = None,
        index: int | None = None,
        scale: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The edge output before :meth:`combine`: the ops' part (on the first ``C/K``
        channels) and, with ``partial_k > 1``, the bypassed channels (pooled on a strided
        edge), each multiplied by ``scale``. Summing the parts of a node's edges and
        combining once equals summing the combined edges (the shuffle is a permutation)."""
        x_op = inp.op_input(self.op_channels)
        scale_y = scale
        if index is not None:
            y = self.ops[index](x_op)
            if weights is not None:
                # GDAS straight-through: the unselected weights are ~0 in value but carry the
                # gradient to their logits (official ``forward_gdas``).
                y = y * weights[index] + (weights.sum() - weights[index])
        else:
            if weights is None:
                raise ValueError("MixedEdge needs mixing weights or an op index")
            if scale is not None:
                # sum_k (w_k s) op_k(x) == s sum_k w_k op_k(x), and autograd then keeps no
                # extra copy of the op sum for the scale's gradient.
                weights, scale_y = weights * scale, None
            # The ``none`` op's output is identically zero, so its term contributes neither a
            # value nor a gradient (d/dw of w*0 is 0): skipping it is exact and saves memory.
            y = None
            for k, op in enumerate(self.ops):
                if k == _NONE_ID:
                    continue
                if self.relu_led[k]:
                    term = op.forward_activated(inp.activated(self.op_channels)) * weights[k]
                else:
                    term = op(x_op) * weights[k]
                y = term if y is None else y + term
        if scale_y is not None:
            y = y * scale_y
        bypass = None
        if self.partial_k > 1:
            bypass = inp.bypass(self.op_channels, self.bypass_pool)
            if scale is not None:
                # Scaling after the pool, as the official edge output (PC-DARTS
                # model_search.py:46-53, 85) is scaled after its max pool; a max pool
                # commutes with a positive factor, so the values are the same either way.
                bypass = bypass * scale
        return y, bypass

    def combine(self, y: torch.Tensor, bypass: torch.Tensor | None) -> torch.Tensor:
        """The edge (or node) output from its :meth:`parts`: the ops' part alone, or the
        channel shuffle of the ops' part and the bypassed channels (PC-DARTS)."""
        if bypass is None:
            return y
        return shuffle_concat(y, bypass, self.partial_k)


class EdgeInput:
    """One node's output as the edges leaving it read it, each derived view computed once
    for all of them: the first ``C/K`` channels (``op_input``), their ReLU (``activated``:
    what every ReLU-led candidate op of every edge from the node starts with) and the
    bypassed channels after the edge's bypass pool (``bypass``; PC-DARTS' reduction edges
    from one cell input all max-pool the same channels). Sharing them computes the same
    values once and lets autograd keep one copy."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self._cache: dict[tuple[object, ...], torch.Tensor] = {}

    def op_input(self, channels: int) -> torch.Tensor:
        if channels == self.x.shape[1]:
            return self.x
        # One slice for all edges: its backward then zero-fills a full-width gradient once
        # per node, not once per reading op.
        key = ("slice", channels)
        if key not in self._cache:
            self._cache[key] = self.x[:, :channels]
        return self._cache[key]

    def activated(self, channels: int) -> torch.Tensor:
        key = ("relu", channels)
        if key not in self._cache:
            self._cache[key] = torch.relu(self.op_input(channels))
        return self._cache[key]

    def bypass(self, channels: int, pool: nn.Module | None) -> torch.Tensor:
        key = ("bypass", channels, None if pool is None else type(pool))
        if key not in self._cache:
            rest = self.x[:, channels:]
            self._cache[key] = rest if pool is None else pool(rest)
        return self._cache[key]


def mixed_nodes(
    edges: Sequence[nn.Module],
    states: list[torch.Tensor],
    steps: int,
    weights: torch.Tensor | None,
    index: Sequence[int] | None,
    edge_weights: torch.Tensor | None,
) -> list[torch.Tensor]:
    """The dense DAG of a search cell, in both spaces: append ``steps`` nodes to ``states``,
    each the sum of the mixed edges from every earlier state. Edge ``e`` (and row ``e`` of
    ``weights`` / ``index`` / ``edge_weights``) runs node by node, source by source: NB201's
    ``(1<-0), (2<-0), (2<-1), ...`` and DARTS's :data:`~nasforge.spaces.darts.CELL_EDGES`.

    Each node's edges are summed part by part (:meth:`MixedEdge.parts`) and combined once
    (one concatenation and channel shuffle per node instead of one per edge, PC-DARTS), and
    the edges leaving one node share its :class:`EdgeInput` (one ReLU of a node for all its
    edges' ReLU-led ops). The values are those of summing every edge's own output."""
    inputs = [EdgeInput(h) for h in states]
    e = 0
    for _ in range(steps):
        total = bypass = None
        for inp in inputs:
            y, b = edges[e].parts(
                inp,
                None if weights is None else weights[e],
                None if index is None else index[e],
                None if edge_weights is None else edge_weights[e],
            )
            total = y if total is None else total + y
            if b is not None:
                bypass = b if bypass is None else bypass + b
            e += 1
        node = edges[e - 1].combine(total, bypass)
        states.append(node)
        inputs.append(EdgeInput(node))
    return states


class SearchCell(nn.Module):
    """A searched NB201 cell: node i = sum over j < i of edge_{i<-j}(node j)."""

    def __init__(self, edges: Sequence[MixedEdge], channels: int) -> None:
        super().__init__()
        if len(edges) != NUM_EDGES:
            raise ValueError(f"an NB201 cell has {NUM_EDGES} edges, got {len(edges)}")
        self.edges = nn.ModuleList(edges)
        self.out_dim = channels

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None = None,
        index: Sequence[int] | None = None,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return mixed_nodes(self.edges, [x], NUM_NODES - 1, weights, index, edge_weights)[-1]


class NB201Supernet(nn.Module):
    """The NB201 skeleton whose every cell edge holds all five ops with shared weights.

    Args:
        C, N: channels of the first stage and cells per stage (official search: 16, 5).
        num_classes: classifier outputs.
        partial_k: PC-DARTS partial-channel factor (1 = every channel through every op).
        pool_bn: a BN(affine=False) after each pooling op (PC-DARTS' mixed op).
        affine, track_running_stats: of the candidate ops' BatchNorms (official search
            models: ``affine=False``; the NB201 search scripts pass ``track_running_stats 1``).
    """

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if partial_k < 1 or C % partial_k:
            raise ValueError(f"partial_k={partial_k} must be >= 1 and divide C={C}")
        skeleton = NB201Network(_EMPTY_ARCH, C=C, N=N, num_classes=num_classes)
        self.C, self.N, self.num_classes, self.partial_k = C, N, num_classes, partial_k
        self.stem = skeleton.stem
        self.cells = skeleton.cells
        for i, (channels, reduction) in enumerate(stage_layout(C, N)):
            if not reduction:
                assert isinstance(self.cells[i], InferCell)
                edges = [
                    MixedEdge(
                        channels,
                        partial_k=partial_k,
                        pool_bn=pool_bn,
                        affine=affine,
                        track_running_stats=track_running_stats,
                    )
                    for _ in EDGES
                ]
                self.cells[i] = SearchCell(edges, channels)
        self.lastact = skeleton.lastact
        self.global_pooling = skeleton.global_pooling
        self.classifier = skeleton.classifier

    def forward(
        self,
        x: torch.Tensor,
        *,
        weights: torch.Tensor | None = None,
        index: Sequence[int] | None = None,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits; see the module docstring for how ``weights`` / ``index`` mix the ops."""
        index = check_mixing(weights, index, edge_weights, NUM_EDGES, NUM_OPS, "NB201Supernet")
        feature = self.stem(x)
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                feature = cell(feature, weights, index, edge_weights)
            else:
                feature = cell(feature)
        feature = self.global_pooling(self.lastact(feature)).flatten(1)
        return self.classifier(feature)

    def path_parameters(self, index: Sequence[int]) -> list[nn.Parameter]:
        """The parameters of the single path ``index`` (one op id per edge): the sampled ops
        of every searched cell plus every parameter outside the searched cells."""
        index = [int(i) for i in index]
        out: list[nn.Parameter] = []
        for module in (self.stem, self.lastact, self.classifier):
            out.extend(module.parameters())
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                for edge, k in zip(cell.edges, index, strict=True):
                    out.extend(edge.ops[k].parameters())
            else:
                out.extend(cell.parameters())
        return out

    def forward_arch(self, x: torch.Tensor, arch: Arch | str | int) -> torch.Tensor:
        """Logits of the single path of ``arch`` through the shared weights."""
        return self(x, index=Arch.parse(arch).op_ids)


def check_prefix(cells: int, C: int, N: int) -> None:
    """Raise an :class:`ArchError` unless ``cells`` is a prefix length :func:`share_prefix`
    accepts for a C, N skeleton: 0 (the stem only) to all cells but the last."""
    total = len(stage_layout(C, N))
    if isinstance(cells, bool) or not isinstance(cells, int) or not 0 <= cells < total:
        raise ArchError(
            f"prefix of {cells!r} cells invalid; expected an int in 0..{total - 1} "
            f"(C={C}, N={N} has {total} cells incl. reduction blocks)"
        )


def share_prefix(supernets: Sequence[NB201Supernet], cells: int) -> None:
    """Make every supernet of ``supernets`` use the first one's stem and first ``cells``
    modules of the skeleton's cell list (searched cells and residual reduction blocks, in
    network order): the same module objects, so the prefix's parameters and BN statistics
    are shared and the rest (the suffix and the classifier) stays each supernet's own.

    Partial weight sharing in a ranking study: g supernets over a partition of the space
    that share only their first layers. ``cells`` is checked against the skeleton (0 =
    the stem only; at most all cells but the last, so every supernet keeps a suffix).
    """
    if not supernets:
        raise ArchError("share_prefix needs at least one supernet")
    first = supernets[0]
    check_prefix(cells, first.C, first.N)
    for net in supernets[1:]:
        if (net.C, net.N, net.num_classes) != (first.C, first.N, first.num_classes):
            raise ArchError(
                f"cannot share a prefix between a C={net.C}, N={net.N} supernet and a "
                f"C={first.C}, N={first.N} one; expected the same skeleton"
            )
        net.stem = first.stem
        for i in range(cells):
            net.cells[i] = first.cells[i]


_EDGE_KEYS = tuple(f"{dst}<-{src}" for dst, src in EDGES)


def _edge_key_map(name: str, to_xautodl: bool) -> str:
    parts = name.split(".")
    # cells.<i>.edges.<e>.ops.<k>... <-> cells.<i>.edges.<dst<-src>.<k>...
    if len(parts) > 4 and parts[0] == "cells" and parts[2] == "edges":
        if to_xautodl and parts[4] == "ops":
            return ".".join([*parts[:3], _EDGE_KEYS[int(parts[3])], *parts[5:]])
        if not to_xautodl and parts[3] in _EDGE_KEYS:
            return ".".join([*parts[:3], str(_EDGE_KEYS.index(parts[3])), "ops", *parts[4:]])
    return name


def to_xautodl_state_dict(
    state: dict[str, torch.Tensor], alphas: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """An :class:`NB201Supernet` state dict (``partial_k=1``, no ``pool_bn``) under the module
    names of xautodl's NB201 search models (``TinyNetworkDarts`` / ``GDAS`` / ``SETN`` /
    ``ENAS`` / ``RANDOM``), with ``alphas`` as their ``arch_parameters`` if given."""
    out = {_edge_key_map(k, True): v for k, v in state.items()}
    if alphas is not None:
        out["arch_parameters"] = alphas
    return out


def from_xautodl_state_dict(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """(our state dict, xautodl's ``arch_parameters`` or None): the inverse of
    :func:`to_xautodl_state_dict`."""
    alphas = state.get("arch_parameters")
    ours = {_edge_key_map(k, False): v for k, v in state.items() if k != "arch_parameters"}
    return ours, alphas


def check_mixing(
    weights: torch.Tensor | None,
    index: Sequence[int] | None,
    edge_weights: torch.Tensor | None,
    rows: int,
    ops: int,
    owner: str,
) -> list[int] | None:
    """Check a supernet forward's mixing arguments (``rows`` edges x ``ops`` ops) and return
    ``index`` as a list of ints; one check for every supernet of every space."""
    if weights is not None and tuple(weights.shape) != (rows, ops):
        raise ValueError(
            f"mixing weights have shape {tuple(weights.shape)}; expected ({rows}, {ops})"
        )
    if index is not None:
        index = [int(i) for i in index]
        if len(index) != rows or any(not 0 <= i < ops for i in index):
            raise ArchError(f"op index {index} invalid; expected {rows} ints in 0..{ops - 1}")
    if weights is None and index is None:
        raise ValueError(f"{owner}.forward needs mixing weights and/or an op index")
    if edge_weights is not None and tuple(edge_weights.shape) != (rows,):
        raise ValueError(f"edge weights have shape {tuple(edge_weights.shape)}; expected ({rows},)")
    return None if index is None else list(index)
