"""How the explorer draws one arch of each space: a DAG (NB201, DARTS cells) or bars
(width configurations), plus the per-position tokens the op filter works on.

One :class:`CellView` per space, registered by space name in :data:`CELL_VIEWS`; a new
space is one class and one ``@CELL_VIEWS.register`` line. Views only talk to the space
protocol (``from_string`` / ``to_choices`` / ``choices`` / ``describe``), never to an arch
type.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.registry import Registry
from nasforge.spaces import get_space


class CellView:
    """Drawing spec and filter tokens of one space's archs.

    ``draw(arch_string)`` returns ``{"kind": "dag", "graphs": [...]}`` (each graph: ``title``,
    ``nodes`` -- labels in drawing order -- and ``edges`` of ``{"src", "dst", "op"}`` node
    positions) or ``{"kind": "bars", "labels", "values", "max"}``. ``edge_labels(n)`` names the
    rows of a one-shot run's ``probs`` matrix (``n`` rows); ``op_names(k)`` its columns.
    """

    space: str = ""

    def __init__(self) -> None:
        self._space = get_space(self.space)

    def parse(self, arch: str) -> Any:
        """The space's arch of ``arch`` (a one-line :class:`ArchError` when it is none)."""
        return self._space.from_string(arch)

    def draw(self, arch: str) -> dict[str, Any]:
        raise NotImplementedError

    def edge_labels(self, n: int) -> list[str]:
        return [f"edge {i}" for i in range(n)]

    def op_names(self, k: int) -> list[str]:
        ops = list(self._space.describe().get("ops") or [])
        return ops if len(ops) == k else [f"op {i}" for i in range(k)]

    # -- the op filter ----------------------------------------------------------------------
    def positions(self) -> list[dict[str, Any]]:
        """The filterable positions: ``[{"name", "options"}]`` (options as strings)."""
        return [
            {"name": c.name, "options": [str(o) for o in c.options]} for c in self._space.choices()
        ]

    def picks(self, strings: list[str]) -> np.ndarray:
        """``int16 [len(strings), positions]``: the option chosen at each position."""
        sp = self._space
        return np.asarray(
            [sp.to_choices(sp.from_string(s)) for s in strings], dtype=np.int16
        ).reshape(len(strings), len(self.positions()))


CELL_VIEWS: Registry[CellView] = Registry("cell view")


@CELL_VIEWS.register("nb201")
class NB201CellView(CellView):
    """The 4-node cell: node 0 the input, node 3 the output, an op on each of the 6 edges
    ``dst<-src`` (the space's ``choices`` names). ``none`` edges are kept and marked."""

    space = "nb201"

    def draw(self, arch: str) -> dict[str, Any]:
        a = self.parse(arch)
        edges = []
        for choice, pick in zip(self._space.choices(), self._space.to_choices(a), strict=True):
            dst, src = (int(x) for x in choice.name.split("<-"))
            edges.append({"src": src, "dst": dst, "op": str(choice.options[pick])})
        nodes = ["in (0)", "1", "2", "out (3)"]
        return {"kind": "dag", "graphs": [{"title": "cell", "nodes": nodes, "edges": edges}]}

    def edge_labels(self, n: int) -> list[str]:
        names = [c.name for c in self._space.choices()]
        return names if len(names) == n else super().edge_labels(n)


@CELL_VIEWS.register("darts")
class DARTSCellView(CellView):
    """The normal and the reduction cell of a genotype: inputs c_{k-2}, c_{k-1}, the
    intermediate nodes, and the output concatenating the ``*_concat`` nodes."""

    space = "darts"

    def draw(self, arch: str) -> dict[str, Any]:
        g = self.parse(arch).to_dict()
        graphs = []
        for kind in ("normal", "reduce"):
            pairs, concat = g[kind], g[f"{kind}_concat"]
            steps = len(pairs) // 2
            nodes = ["c_{k-2}", "c_{k-1}", *[str(i) for i in range(steps)], "c_{k}"]
            edges = [
                {"src": int(inp), "dst": 2 + k // 2, "op": str(op)}
                for k, (op, inp) in enumerate(pairs)
            ]
            out = len(nodes) - 1
            edges += [{"src": int(c), "dst": out, "op": ""} for c in concat]
            graphs.append({"title": f"{kind} cell", "nodes": nodes, "edges": edges})
        return {"kind": "dag", "graphs": graphs}

    def edge_labels(self, n: int) -> list[str]:
        from nasforge.spaces.darts import CELL_EDGES

        inputs = ("c_{k-2}", "c_{k-1}")
        per_cell = [f"{dst - 2}<-{inputs[src] if src < 2 else src - 2}" for dst, src in CELL_EDGES]
        if n == 2 * len(per_cell):
            return [f"{kind} {e}" for kind in ("normal", "reduce") for e in per_cell]
        return per_cell if n == len(per_cell) else super().edge_labels(n)

    def positions(self) -> list[dict[str, Any]]:
        return []  # no table holds DARTS cells: nothing to filter


class _WidthView(CellView):
    """A width configuration as one bar per layer (its channel count)."""

    def draw(self, arch: str) -> dict[str, Any]:
        a = self.parse(arch)
        names = [c.name for c in self._space.choices()]
        options = [list(c.options) for c in self._space.choices()]
        picks = self._space.to_choices(a)
        values = [float(opts[p]) for opts, p in zip(options, picks, strict=True)]
        top = max(float(x) for o in options for x in o)
        return {"kind": "bars", "labels": names, "values": values, "max": top}


@CELL_VIEWS.register("nats-sss")
class NATSSizeView(_WidthView):
    space = "nats-sss"


@cache
def cell_view(space: str) -> CellView:
    """The (shared) view of ``space``; a space without one is an :class:`ArchError`."""
    if space not in CELL_VIEWS:
        raise ArchError(f"no drawing for space {space!r}; drawn spaces: {CELL_VIEWS.names()}")
    return CELL_VIEWS.create(space)


__all__ = ["CELL_VIEWS", "CellView", "cell_view"]
