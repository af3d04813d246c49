"""Trilevel NAS's search space for super-resolution (Wu et al., arXiv 2101.06658).

Three levels, as the authors' search code structures them (``NAS_GAN`` in their
``model_search_flexible.py``, found in the code index by content; repository name not
resolved):

- network level: ``stem`` fixed cells, then up to ``path`` more cells; the network's
  output is taken after one of them (the depth: ``stem <= depth <= stem + path``);
- cell level: a cell is ``ops`` operations in sequence with a residual
  ``0.2 * cell(x) + x``; each picks one of :data:`OPS`;
- kernel level: the channel width between consecutive operations of a cell, a fraction
  of ``nf`` from :data:`WIDTHS` (the last op of a cell returns to ``nf``).

Authors' configuration: 5 cells (1 stem + 4 searched), 5 ops per cell, widths
``[4/12, 6/12, 8/12, 10/12, 1]``, ``nf = 64`` (their ``config_train_from_search.py``).
Op set: ``['skip', 'conv', 'conv_di', 'conv_2x', 'conv_2x_di']``, the list of the
AutoGAN-Distiller code the trilevel code derives from; the trilevel ``genotypes.py`` itself
could not be read, so this list is unverified for trilevel NAS.

String form: cells joined by ``" | "``; a cell is its ops joined by ``/``, each
``op:width`` (width index into :data:`WIDTHS`, absent on the last op). Example::

    conv:4/conv_di:2/skip:4/conv_2x:0/conv | conv:1/...
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.spaces.registry import SPACES

OPS: tuple[str, ...] = ("skip", "conv", "conv_di", "conv_2x", "conv_2x_di")
WIDTHS: tuple[float, ...] = (4 / 12, 6 / 12, 8 / 12, 10 / 12, 1.0)

#: One op of a cell: (op name, width index of its output; -1 for the cell's last op).
TriOp = tuple[str, int]


@dataclass(frozen=True)
class TrilevelArch:
    """The cells of the derived network, in order (its depth is ``len(cells)``)."""

    cells: tuple[tuple[TriOp, ...], ...]

    @property
    def depth(self) -> int:
        return len(self.cells)


@SPACES.register("trilevel-sr")
class TrilevelSpace:
    """Trilevel space with ``stem`` fixed + ``path`` searched cells of ``ops`` ops."""

    name = "trilevel-sr"

    def __init__(self, stem: int = 1, path: int = 4, ops: int = 5) -> None:
        if stem < 1 or path < 0 or ops < 1:
            raise ArchError(f"trilevel-sr space: stem={stem}, path={path}, ops={ops}")
        self.stem, self.path, self.ops = int(stem), int(path), int(ops)

    def check(self, arch: TrilevelArch) -> TrilevelArch:
        if not arch.cells:
            raise ArchError("a trilevel arch needs at least one cell")
        n = len(arch.cells[0])
        for cell in arch.cells:
            if len(cell) != n:
                raise ArchError(f"every cell needs the same number of ops; got {len(cell)} and {n}")
            for k, (op, w) in enumerate(cell):
                if op not in OPS:
                    raise ArchError(f"trilevel op {op!r}; expected one of {list(OPS)}")
                last = k == len(cell) - 1
                if (last and w != -1) or (not last and not 0 <= w < len(WIDTHS)):
                    raise ArchError(
                        f"trilevel width index {w} at op {k}; expected 0..{len(WIDTHS) - 1} "
                        "(none on a cell's last op)"
                    )
        return arch

    def size(self) -> int | None:
        return None

    def _random_cell(self, rng: np.random.Generator) -> tuple[TriOp, ...]:
        return tuple(
            (
                OPS[int(rng.integers(len(OPS)))],
                -1 if k == self.ops - 1 else int(rng.integers(len(WIDTHS))),
            )
            for k in range(self.ops)
        )

    def sample(self, rng: np.random.Generator) -> TrilevelArch:
        depth = self.stem + int(rng.integers(self.path + 1))
        return TrilevelArch(tuple(self._random_cell(rng) for _ in range(depth)))

    def neighbors(self, arch: TrilevelArch) -> list[TrilevelArch]:
        out = []
        for c, cell in enumerate(arch.cells):
            for k, (op, w) in enumerate(cell):
                alts = [(o, w) for o in OPS if o != op]
                if w >= 0:
                    alts += [(op, v) for v in range(len(WIDTHS)) if v != w]
                for alt in alts:
                    new = (*cell[:k], alt, *cell[k + 1 :])
                    out.append(TrilevelArch((*arch.cells[:c], new, *arch.cells[c + 1 :])))
        if arch.depth > self.stem:
            out.append(TrilevelArch(arch.cells[:-1]))
        return out

    def mutate(self, arch: TrilevelArch, rng: np.random.Generator) -> TrilevelArch:
        options = self.neighbors(arch)
        return options[int(rng.integers(len(options)))]

    def to_string(self, arch: TrilevelArch) -> str:
        return " | ".join(
            "/".join(op if w < 0 else f"{op}:{w}" for op, w in cell) for cell in arch.cells
        )

    def from_string(self, text: str) -> TrilevelArch:
        form = "op:width/op:width/.../op | ... (op one of " + ", ".join(OPS) + ")"
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"a trilevel-sr arch string is {form}; got {text!r}")
        cells = []
        for cell_text in text.split("|"):
            tokens = [t.strip() for t in cell_text.split("/")]
            cell = []
            for k, t in enumerate(tokens):
                op, sep, w = t.partition(":")
                last = k == len(tokens) - 1
                if (sep and not w.isdigit()) or (sep == "") != last:
                    raise ArchError(f"trilevel token {t!r} in {text!r}; expected {form}")
                cell.append((op, int(w) if sep else -1))
            cells.append(tuple(cell))
        return self.check(TrilevelArch(tuple(cells)))

    def encodings(self) -> tuple[str, ...]:
        return ("onehot",)

    def encode(self, arch: TrilevelArch, kind: str = "onehot") -> np.ndarray:
        if kind != "onehot":
            raise ArchError(f"space 'trilevel-sr' has no {kind!r} encoding; expected ['onehot']")
        n = self.stem + self.path
        out = np.zeros((n + 1) + n * self.ops * (len(OPS) + len(WIDTHS)), np.float32)
        out[arch.depth] = 1
        base = n + 1
        for c, cell in enumerate(arch.cells):
            for k, (op, w) in enumerate(cell):
                at = base + (c * self.ops + k) * (len(OPS) + len(WIDTHS))
                out[at + OPS.index(op)] = 1
                if w >= 0:
                    out[at + len(OPS) + w] = 1
        return out

    def canonical(self, arch: TrilevelArch) -> TrilevelArch:
        return arch

    def enumerate(self) -> Iterator[TrilevelArch]:
        raise ArchError("space 'trilevel-sr' is too large to enumerate")

    def index(self, arch: TrilevelArch) -> int | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "size": None,
            "stem": self.stem,
            "path": self.path,
            "ops_per_cell": self.ops,
            "ops": list(OPS),
            "widths": list(WIDTHS),
        }

    def describe_arch(self, arch: TrilevelArch) -> dict[str, Any]:
        return {
            "depth": arch.depth,
            "cells": [
                [f"{op}@{'nf' if w < 0 else round(WIDTHS[w], 3)}" for op, w in c]
                for c in arch.cells
            ],
        }
