"""A slimmable supernet of a width-configurable backbone, and the channel-sharing patterns.

The supernet holds the full-width backbone. A sub-network is named by a :class:`Placement`:
for every searchable channel group, the (sorted) indices of the supernet channels it uses.
Its forward pass slices every weight/BN tensor along its channel dims with those indices
and runs the standalone architecture of the same widths on the slices
(``torch.func.functional_call`` on a parameter-free skeleton), so a sub-network computes by
construction what :meth:`SlimmableNetwork.extract` -- a standalone module with the copied
weights -- computes, and gradients flow back into the shared supernet weights.

Sharing patterns (who uses which channels):

* :class:`FixedSharing` -- width ``c`` uses channels ``[0, c)`` (slimmable networks /
  AutoSlim).
* :class:`LocallyFreeSharing` -- CafeNet (Su et al., "Locally Free Weight Sharing for Network
  Width Search", ICLR 2021): width ``c`` uses *base* channels below the zone plus *free*
  channels placed in a local zone of ``r`` FLOPs-sensitive bins around ``c`` (or of ``r``
  channels). The free channels are chosen per batch by min-min optimisation (see
  :func:`select_placement`).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nasforge.errors import ArchError, SearchError
from nasforge.nn.backbones import build_from_spec
from nasforge.spaces.width import BackboneSpec, WidthSpace


@dataclass(frozen=True)
class Placement:
    """The supernet channels of one sub-network: one sorted index tuple per searchable group."""

    channels: tuple[tuple[int, ...], ...]

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.channels)

    @property
    def is_prefix(self) -> bool:
        """True when every group uses its first ``c`` channels (the fixed pattern)."""
        return all(c == tuple(range(len(c))) for c in self.channels)

    @classmethod
    def prefix(cls, widths: Sequence[int]) -> Placement:
        """The fixed-pattern placement: channels ``[0, c)`` of every group."""
        return cls(tuple(tuple(range(int(w))) for w in widths))

    def free_channels(self) -> list[list[int]]:
        """Per group, the channels that are not in the prefix ``[0, c)`` (for reports)."""
        return [[i for i in c if i >= len(c)] for c in self.channels]

    def to_json(self) -> list[list[int]]:
        return [list(c) for c in self.channels]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[int]]) -> Placement:
        return cls(tuple(tuple(int(i) for i in c) for c in data))


# ---------------------------------------------------------------------------------------
# Sharing patterns
# ---------------------------------------------------------------------------------------


class FixedSharing:
    """Width ``c`` always uses channels ``[0, c)``: one placement per width."""

    name = "fixed"

    def __init__(self, space: WidthSpace) -> None:
        self.space = space

    def placements(
        self, widths: Sequence[int], rng: np.random.Generator, k: int = 1
    ) -> list[Placement]:
        """The candidate placements of ``widths`` (here always the prefix)."""
        return [Placement.prefix(widths)]

    def describe(self) -> dict:
        return {"sharing": self.name}


def default_offsets(space: WidthSpace, r_bins: float = 1.0) -> tuple[int, ...]:
    """CafeNet offset ``r`` per group in channels: ``r_bins`` of the group's bin size.

    The paper's toy example uses ``r = 1`` channel, which is also the default of
    :class:`LocallyFreeSharing`; scaling ``r`` with the bin size is the alternative this
    function gives. On ResNet-20/digits, ``r`` of a whole bin (up to 12 channels) trained the
    supernet far slower than ``r = 1`` (largest-width train accuracy 18% vs 44% after 3
    epochs): a wide zone turns free channels into random channel dropout.
    """
    if r_bins <= 0:
        raise SearchError(f"r_bins must be > 0, got {r_bins}")
    out = []
    for c in space.candidates:
        step = float(np.mean(np.diff(c))) if len(c) > 1 else float(c[-1])
        out.append(max(1, round(r_bins * step)))
    return tuple(out)


class LocallyFreeSharing:
    """CafeNet's locally free sharing: base channels + free channels in a local zone.

    **Bins (default, the paper's unit).** With FLOPs-sensitive bins the free zone is
    measured in bins of the group's candidate widths ``c_0 < c_1 < ... < c_n``: width ``w``
    keeps the channels below the ``r``-th bin boundary under ``w`` as base channels and
    places the remaining ``w - base`` channels, as one contiguous run starting on a bin
    boundary, anywhere in the zone that ends ``r`` boundaries above ``w``. With ``r = 1``
    (``r_bins=1``) a width ``c_k`` has exactly the two placements of the paper's Fig. 1
    toy example scaled to bins: its last bin where the fixed pattern puts it (the prefix)
    or shifted one bin right (``C(2r, r) = 2`` choices of r of the 2r zone bins); the full
    width has one. For ``r > 1`` the free bins stay contiguous, ``r + 1`` placements.

    **Channels (``offsets``).** ``offsets`` gives ``r`` in channels per group instead:
    ``c - r`` base channels plus ``r`` free channels anywhere in ``[c - r, c + r)``
    (clipped to the full width; ``r`` shrinks to ``c`` for a narrower width).
    """

    name = "cafenet"

    def __init__(
        self,
        space: WidthSpace,
        offsets: Sequence[int] | None = None,
        *,
        r_bins: int = 1,
    ) -> None:
        self.space = space
        self.unit = "channels" if offsets is not None else "bins"
        self.r_bins = int(r_bins)
        if self.r_bins < 1:
            raise SearchError(f"r_bins must be >= 1 bin, got {r_bins}")
        self.offsets = tuple(int(r) for r in (offsets or [1] * len(space.groups)))
        if len(self.offsets) != len(space.groups) or min(self.offsets) < 1:
            raise SearchError(
                f"offsets must be {len(space.groups)} positive ints, got {self.offsets}"
            )

    def zone(self, group: int, width: int) -> tuple[int, int, int]:
        """``(base_end, zone_end, free)``: base ``[0, base_end)``, ``free`` channels in
        ``[base_end, zone_end)``."""
        full, w = int(self.space.full[group]), int(width)
        if self.unit == "channels":
            r = min(self.offsets[group], w)
            return w - r, min(w + r, full), r
        cands = [int(c) for c in self.space.candidates[group]]
        below = [0, *(c for c in cands if c < w)]
        above = [*(c for c in cands if c > w), full]
        base = below[max(0, len(below) - self.r_bins)]
        end = full if w >= full else above[min(self.r_bins, len(above)) - 1]
        return base, end, w - base

    def starts(self, group: int, width: int) -> list[int]:
        """Bins unit: the possible first channels of the free run (prefix first)."""
        base, end, free = self.zone(group, width)
        bounds = {0, *(int(c) for c in self.space.candidates[group])}
        out = sorted({b for b in bounds if base <= b <= end - free} | {base})
        if len(out) == 1 and end - free > base:
            # The next bin is narrower than this one (channel rounding): flush right.
            out.append(end - free)
        return out

    def num_placements(self, widths: Sequence[int]) -> int:
        """How many distinct placements the widths admit (product over groups)."""
        total = 1
        for g, w in enumerate(widths):
            if self.unit == "bins":
                total *= len(self.starts(g, int(w)))
            else:
                base, end, r = self.zone(g, int(w))
                total *= math.comb(end - base, r)
        return total

    def _group(self, g: int, w: int, rng: np.random.Generator, pick: str) -> tuple[int, ...]:
        base, end, free = self.zone(g, int(w))
        if self.unit == "bins":
            st = self.starts(g, int(w))
            s0 = st[-1] if pick == "right" else st[int(rng.integers(len(st)))]
            return tuple(range(base)) + tuple(range(s0, s0 + free))
        if pick == "right":
            return tuple(range(base)) + tuple(range(end - free, end))
        chosen = np.sort(rng.choice(np.arange(base, end), size=free, replace=False))
        return tuple(range(base)) + tuple(int(i) for i in chosen)

    def random_placement(self, widths: Sequence[int], rng: np.random.Generator) -> Placement:
        return Placement(tuple(self._group(g, int(w), rng, "random") for g, w in enumerate(widths)))

    def placements(
        self, widths: Sequence[int], rng: np.random.Generator, k: int = 3
    ) -> list[Placement]:
        """Up to ``k`` distinct candidate placements for min-min's inner minimum: the prefix
        (every group left), then every group at its rightmost placement, then random
        mixes (each group's placement drawn uniformly)."""
        if k < 1:
            raise SearchError(f"the number of candidate placements must be >= 1, got {k}")
        out = [Placement.prefix(widths)]
        k = min(k, self.num_placements(widths))
        right = Placement(tuple(self._group(g, int(w), rng, "right") for g, w in enumerate(widths)))
        seen = {out[0]}
        if len(out) < k and right not in seen:
            seen.add(right)
            out.append(right)
        tries = 0
        while len(out) < k and tries < 20 * k:
            p = self.random_placement(widths, rng)
            tries += 1
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out

    def describe(self) -> dict:
        if self.unit == "bins":
            return {"sharing": self.name, "zone_unit": "bins", "r_bins": self.r_bins}
        return {"sharing": self.name, "zone_unit": "channels", "offsets": list(self.offsets)}


SHARINGS = {"fixed": FixedSharing, "cafenet": LocallyFreeSharing}


def make_sharing(
    name: str, space: WidthSpace, **kwargs: object
) -> FixedSharing | LocallyFreeSharing:
    """``"fixed"`` or ``"cafenet"`` sharing over ``space``."""
    if name not in SHARINGS:
        raise SearchError(f"unknown sharing {name!r}; expected one of: {', '.join(SHARINGS)}")
    return SHARINGS[name](space, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# The supernet
# ---------------------------------------------------------------------------------------


def channel_map(spec: BackboneSpec) -> dict[str, tuple[str | None, str | None]]:
    """For each parameter/buffer name of the backbone, the groups indexing its dims 0 and 1.

    ``None`` marks a dim that is never sliced (a fixed group, a depthwise conv's unit input
    dim, a scalar buffer).
    """
    fixed = {g.name for g in spec.groups if not g.searchable}

    def s(g: str) -> str | None:
        return None if g in fixed else g

    out: dict[str, tuple[str | None, str | None]] = {}
    for layer in spec.layers:
        n = layer.name
        if layer.kind == "conv" or layer.kind == "linear":
            out[f"{n}.weight"] = (s(layer.cout), s(layer.cin))
        elif layer.kind == "dwconv":
            out[f"{n}.weight"] = (s(layer.cout), None)
        if layer.kind == "bn":
            for t in ("weight", "bias", "running_mean", "running_var"):
                out[f"{n}.{t}"] = (s(layer.cout), None)
            out[f"{n}.num_batches_tracked"] = (None, None)
        elif layer.bias:
            out[f"{n}.bias"] = (s(layer.cout), None)
    return out


class SlimmableNetwork(nn.Module):
    """The full-width backbone as a supernet whose sub-networks are :class:`Placement` s."""

    def __init__(self, spec: BackboneSpec, *, skeleton_cache: int = 64) -> None:
        super().__init__()
        self.spec = spec
        # A spec with conditional layers (NATS-Bench skip projections) keeps the weights of
        # all of them; each sub-network uses those its widths call for.
        self.net = build_from_spec(spec, all_projections=True)
        self._map = channel_map(spec)
        names = {n for n, _ in self.net.named_parameters()} | {
            n for n, _ in self.net.named_buffers()
        }
        if names != set(self._map):
            raise ArchError(
                f"backbone {spec.name!r} module and spec disagree: "
                f"module-only {sorted(names - set(self._map))}, "
                f"spec-only {sorted(set(self._map) - names)}"
            )
        self._group_pos = {g: i for i, g in enumerate(spec.searchable)}
        self._skeletons: OrderedDict[tuple[int, ...], tuple[nn.Module, frozenset[str]]] = (
            OrderedDict()
        )
        self._skeleton_cache = int(skeleton_cache)

    def _skeleton(self, widths: tuple[int, ...]) -> tuple[nn.Module, frozenset[str]]:
        # A parameter-free (meta) module of the sub-network's shapes and its tensor names;
        # all tensors are supplied at call time, so building it costs no memory and no init.
        hit = self._skeletons.get(widths)
        if hit is None:
            with torch.device("meta"):
                sk = build_from_spec(self.spec, widths)
            hit = (sk, frozenset(sk.state_dict()))
            self._skeletons[widths] = hit
            if len(self._skeletons) > self._skeleton_cache:
                self._skeletons.popitem(last=False)
        else:
            self._skeletons.move_to_end(widths)
        return hit

    def _check(self, placement: Placement) -> None:
        full = self.spec.full_widths
        if len(placement.channels) != len(full):
            raise ArchError(
                f"a {self.spec.name} placement has {len(full)} groups, got "
                f"{len(placement.channels)}"
            )
        for g, (c, f) in enumerate(zip(placement.channels, full, strict=False)):
            if (
                len(c) == 0
                or c[0] < 0
                or c[-1] >= f
                or any(a >= b for a, b in itertools.pairwise(c))
            ):
                raise ArchError(
                    f"group {self.spec.searchable[g]!r}: channels must be sorted, distinct, in "
                    f"0..{f - 1} and non-empty; got {list(c)}"
                )

    def sliced_tensors(
        self, placement: Placement, *, detach: bool = False
    ) -> dict[str, torch.Tensor]:
        """Every parameter/buffer of the sub-network, sliced out of the supernet.

        Parameters stay in the autograd graph (unless ``detach``); buffers are copies, so a
        sub-network's BN statistics never overwrite the supernet's. Conditional layers the
        placement's widths do not have are left out.
        """
        names = self._skeleton(placement.widths)[1] if self.spec.conditional else None
        self._check(placement)
        device = next(self.net.parameters()).device
        idx: dict[str, torch.Tensor | int] = {}
        for g, c in zip(self.spec.searchable, placement.channels, strict=False):
            # A prefix is a narrow (a view, no gather); anything else an index_select.
            idx[g] = len(c) if c == tuple(range(len(c))) else torch.tensor(c, device=device)

        def cut(t: torch.Tensor, dim: int, g: str | None) -> torch.Tensor:
            if g is None:
                return t
            i = idx[g]
            return t.narrow(dim, 0, i) if isinstance(i, int) else t.index_select(dim, i)

        out: dict[str, torch.Tensor] = {}
        for name, p in self.net.named_parameters():
            if names is not None and name not in names:
                continue
            g0, g1 = self._map[name]
            t = cut(cut(p, 0, g0), 1, g1)
            out[name] = t.detach().clone() if detach else t
        for name, b in self.net.named_buffers():
            if names is not None and name not in names:
                continue
            g0, g1 = self._map[name]
            out[name] = cut(cut(b, 0, g0), 1, g1).detach().clone()
        return out

    def forward(self, x: torch.Tensor, placement: Placement | None = None) -> torch.Tensor:
        """Logits of the sub-network ``placement`` (the full network when None)."""
        if placement is None:
            if not self.spec.conditional:
                return self.net(x)
            placement = Placement.prefix(self.spec.full_widths)
        sk = self._skeleton(placement.widths)[0]
        sk.train(self.training)
        return functional_call(sk, self.sliced_tensors(placement), (x,))

    def extract(self, placement: Placement) -> nn.Module:
        """A standalone module of the placement's widths holding copies of its weights."""
        device = next(self.net.parameters()).device
        module = build_from_spec(self.spec, placement.widths).to(device)
        module.load_state_dict(self.sliced_tensors(placement, detach=True))
        module.train(self.training)
        return module


def placement_outputs(
    supernet: SlimmableNetwork,
    placements: Sequence[Placement],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[int, list[torch.Tensor], list[torch.Tensor]]:
    """Min-min's inner minimum, computed once for scoring and training alike.

    CafeNet optimises ``min_W E_c [ min_{free channels} L(W; c, free) ]``: for a sampled
    width the free channels giving the smallest training loss represent it, and only that
    sub-network is updated. Returns (index of the lowest loss, logits per placement,
    cross-entropy per placement), computed in the caller's grad mode: under ``no_grad`` to
    score, with grad in training, where the winner's loss is back-propagated without a
    second forward pass. Ties go to the first placement.
    """
    if not placements:
        raise SearchError("select_placement needs at least one placement")
    logits = [supernet(x, p) for p in placements]
    losses = [F.cross_entropy(o, y) for o in logits]
    values = torch.stack([v.detach() for v in losses]).tolist()  # one host sync
    return int(np.argmin(values)), logits, losses


@torch.no_grad()
def placement_losses(
    supernet: SlimmableNetwork,
    placements: Sequence[Placement],
    x: torch.Tensor,
    y: torch.Tensor,
) -> list[float]:
    """Cross-entropy of each placement on the batch ``(x, y)``, in the supernet's mode."""
    _, _, losses = placement_outputs(supernet, placements, x, y)
    return [float(v) for v in losses]


@torch.no_grad()
def select_placement(
    supernet: SlimmableNetwork,
    placements: Sequence[Placement],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[int, list[float]]:
    """The index of the placement with the lowest loss on the batch, and the losses (see
    :func:`placement_outputs`). With a single candidate no forward pass is spent."""
    if not placements:
        raise SearchError("select_placement needs at least one placement")
    if len(placements) == 1:
        return 0, [float("nan")]
    best, _, losses = placement_outputs(supernet, placements, x, y)
    return best, [float(v) for v in losses]


@torch.no_grad()
def recalibrate_bn(
    module: nn.Module, batches: Sequence[torch.Tensor] | object, *, max_batches: int | None = None
) -> nn.Module:
    """Reset every BN's running statistics and re-estimate them as an exact average.

    Shared supernet BN statistics do not fit any one sub-network (Yu & Huang, "Universally
    Slimmable Networks", 2019, Sec. 3.3), so a sub-network is evaluated only after its own
    statistics are recomputed on training batches (``momentum=None``: cumulative average).
    ``batches`` yields inputs or ``(inputs, labels)`` pairs. Returns ``module`` in eval mode.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    try:
        for i, batch in enumerate(batches):  # type: ignore[arg-type]
            if max_batches is not None and i >= max_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            module(x)
    finally:
        for m, mom in zip(bns, saved, strict=False):
            m.momentum = mom
        module.eval()
    return module


__all__ = [
    "SHARINGS",
    "FixedSharing",
    "LocallyFreeSharing",
    "Placement",
    "SlimmableNetwork",
    "channel_map",
    "default_offsets",
    "make_sharing",
    "placement_losses",
    "placement_outputs",
    "recalibrate_bn",
    "select_placement",
]
