"""HiNAS's search space (Zhang et al., CVPR 2020 / arXiv 2012.13212; hkzhang91/HiNAS).

An arch is a network of ``L`` cells, one per layer, and a width path:

- the inner space: a cell of ``B`` blocks; block ``i`` sums two ops, each applied to one
  of the states ``0`` (the input of the previous cell), ``1`` (this cell's input) or an
  earlier block ``2..i+1``; the cell outputs the concatenation of its ``B`` blocks
  (one_stage_nas/darts/cell.py:21-63, FixCell :92-133). Ops are the official
  ``NO_DEF_L`` primitives (one_stage_nas/darts/genotypes.py:11-19): LeakyReLU(0.2)-conv-BN
  3x3, separable 3x3 / 5x5 (twice), dilated (2) 3x3 / 5x5, skip; ``none`` exists only in
  the supernet (a derived cell never keeps it: cell.py:65-89);
- the outer space: each layer's width level ``h`` (width ``C * WIDTH_FACTORS[h]``,
  defaults.py:28 ``WS_FACTORS = [1, 1.5, 2]``), starting at level 0 and moving at most one
  level per layer (the routers of dn_supernet.py:15-56).

Official searches: denoising 3 layers x 4 blocks, C = 10 (configs/dn/BSD500_3c4n/
03_search_CR_R0.yaml:15-18); super-resolution 2 layers x 3 blocks, C = 8 (configs/sr/
DIV2K_2c3n/03_search_CR.yaml:15-18). An instance has a fixed ``layers`` / ``blocks`` for
sampling and encoding; :meth:`HinasSpace.from_string` reads an arch of any shape.

String form: layers joined by ``" | "``; a layer is ``w<level>:`` then its blocks joined
by ``/``, a block two ``op@input`` joined by ``+``. Example (2 layers, 2 blocks)::

    w1:sep_c_3x3@1+con_c_3x3@0/dil_c_3x3@2+skip_connect@1 | w1:con_c_3x3@1+con_c_3x3@0/...
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.spaces.registry import SPACES

#: Derivable ops (NO_DEF_L without ``none``; the activation suffix ``_leaky`` dropped).
OPS: tuple[str, ...] = (
    "con_c_3x3",
    "sep_c_3x3",
    "sep_c_5x5",
    "dil_c_3x3",
    "dil_c_5x5",
    "skip_connect",
)
#: The supernet's candidate ops, in the official order (genotypes.py:11-19).
SUPERNET_OPS: tuple[str, ...] = (*OPS, "none")
#: Width multipliers of the levels (one_stage_nas/config/defaults.py:28).
WIDTH_FACTORS: tuple[float, ...] = (1.0, 1.5, 2.0)

Entry = tuple[str, int]


@dataclass(frozen=True)
class HinasArch:
    """``cells[li]``: the ``2 * blocks`` (op, input state) entries of layer ``li``'s cell;
    ``path[li]``: its width level."""

    cells: tuple[tuple[Entry, ...], ...]
    path: tuple[int, ...]

    @property
    def layers(self) -> int:
        return len(self.path)

    @property
    def blocks(self) -> int:
        return len(self.cells[0]) // 2


def check_arch(arch: HinasArch, levels: int = len(WIDTH_FACTORS)) -> HinasArch:
    """``arch`` if it is a valid HiNAS arch (:class:`ArchError` saying what is wrong)."""
    if not arch.path or len(arch.cells) != len(arch.path):
        raise ArchError(
            f"a HiNAS arch needs one cell per layer, got {len(arch.cells)} cells for path {arch.path}"
        )
    prev = 0
    for level in arch.path:
        if not 0 <= level < levels or abs(level - prev) > 1:
            raise ArchError(
                f"width path {list(arch.path)}: levels in 0..{levels - 1}, starting from 0, moving at most 1 per layer"
            )
        prev = level
    blocks = len(arch.cells[0]) // 2
    for cell in arch.cells:
        if len(cell) != 2 * blocks or blocks < 1:
            raise ArchError(
                f"every cell needs 2 entries per block and the same blocks; got {len(cell)} entries"
            )
        for k, (op, inp) in enumerate(cell):
            if op not in OPS:
                raise ArchError(f"op {op!r}; expected one of {list(OPS)}")
            if not 0 <= inp <= k // 2 + 1:
                raise ArchError(f"block {k // 2} reads state {inp}; expected 0..{k // 2 + 1}")
    return arch


@SPACES.register("hinas")
class HinasSpace:
    """The HiNAS space with ``layers`` cells of ``blocks`` blocks (denoising defaults)."""

    name = "hinas"

    def __init__(self, layers: int = 3, blocks: int = 4, levels: int = len(WIDTH_FACTORS)) -> None:
        if layers < 1 or blocks < 1 or levels < 1:
            raise ArchError(
                f"hinas space: layers={layers}, blocks={blocks}, levels={levels}; expected >= 1"
            )
        self.layers, self.blocks, self.levels = int(layers), int(blocks), int(levels)

    # -- moves ------------------------------------------------------------------------------
    def size(self) -> int | None:
        return None

    def _sample_path(self, rng: np.random.Generator) -> tuple[int, ...]:
        path, prev = [], 0
        for _ in range(self.layers):
            options = [v for v in (prev - 1, prev, prev + 1) if 0 <= v < self.levels]
            prev = options[int(rng.integers(len(options)))]
            path.append(prev)
        return tuple(path)

    def sample(self, rng: np.random.Generator) -> HinasArch:
        cells = []
        for _ in range(self.layers):
            cell = []
            for b in range(self.blocks):
                inputs = rng.choice(b + 2, size=2, replace=False)
                cell += [(OPS[int(rng.integers(len(OPS)))], int(i)) for i in inputs]
            cells.append(tuple(cell))
        return self.canonical(HinasArch(tuple(cells), self._sample_path(rng)))

    def neighbors(self, arch: HinasArch) -> list[HinasArch]:
        out = []
        for li, cell in enumerate(arch.cells):
            for k, (op, inp) in enumerate(cell):
                for o in OPS:
                    if o != op:
                        out.append(self._with_entry(arch, li, k, (o, inp)))
                for i in range(k // 2 + 2):
                    if i != inp:
                        out.append(self._with_entry(arch, li, k, (op, i)))
        for li in range(arch.layers):
            for v in range(self.levels):
                path = (*arch.path[:li], v, *arch.path[li + 1 :])
                if v != arch.path[li] and self._valid_path(path):
                    out.append(HinasArch(arch.cells, path))
        return [self.canonical(a) for a in out]

    def mutate(self, arch: HinasArch, rng: np.random.Generator) -> HinasArch:
        options = self.neighbors(arch)
        return options[int(rng.integers(len(options)))]

    def _valid_path(self, path: tuple[int, ...]) -> bool:
        prev = 0
        for v in path:
            if not 0 <= v < self.levels or abs(v - prev) > 1:
                return False
            prev = v
        return True

    @staticmethod
    def _with_entry(arch: HinasArch, li: int, k: int, entry: Entry) -> HinasArch:
        cell = list(arch.cells[li])
        cell[k] = entry
        cells = (*arch.cells[:li], tuple(cell), *arch.cells[li + 1 :])
        return HinasArch(cells, arch.path)

    # -- strings ----------------------------------------------------------------------------
    def to_string(self, arch: HinasArch) -> str:
        layers = []
        for cell, level in zip(arch.cells, arch.path, strict=True):
            blocks = [
                "+".join(f"{op}@{i}" for op, i in cell[2 * b : 2 * b + 2])
                for b in range(len(cell) // 2)
            ]
            layers.append(f"w{level}:" + "/".join(blocks))
        return " | ".join(layers)

    def from_string(self, text: str) -> HinasArch:
        form = "w<level>:<op>@<input>+<op>@<input>/... | w<level>:..."
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"a hinas arch string is {form}; got {text!r}")
        cells, path = [], []
        for layer in text.split("|"):
            head, sep, body = layer.strip().partition(":")
            if not sep or not head.startswith("w") or not head[1:].isdigit():
                raise ArchError(f"hinas layer {layer.strip()!r}; expected {form}")
            path.append(int(head[1:]))
            cell = []
            for block in body.split("/"):
                entries = block.split("+")
                if len(entries) != 2:
                    raise ArchError(
                        f"hinas block {block!r} in {text!r}; expected <op>@<input>+<op>@<input>"
                    )
                for e in entries:
                    op, at, inp = e.strip().partition("@")
                    if not at or not inp.isdigit():
                        raise ArchError(
                            f"hinas entry {e!r}; expected <op>@<input> with op one of {list(OPS)}"
                        )
                    cell.append((op, int(inp)))
            cells.append(tuple(cell))
        return self.canonical(check_arch(HinasArch(tuple(cells), tuple(path)), self.levels))

    # -- encodings --------------------------------------------------------------------------
    def encodings(self) -> tuple[str, ...]:
        return ("onehot",)

    def encode(self, arch: HinasArch, kind: str = "onehot") -> np.ndarray:
        if kind != "onehot":
            raise ArchError(f"space 'hinas' has no {kind!r} encoding; expected one of ['onehot']")
        if arch.layers != self.layers or arch.blocks != self.blocks:
            raise ArchError(
                f"arch of {arch.layers}x{arch.blocks}; this space encodes {self.layers}x{self.blocks}"
            )
        parts = []
        for cell, level in zip(arch.cells, arch.path, strict=True):
            for op, inp in cell:
                v = np.zeros(len(OPS) + self.blocks + 1, np.float32)
                v[OPS.index(op)] = 1
                v[len(OPS) + inp] = 1
                parts.append(v)
            w = np.zeros(self.levels, np.float32)
            w[level] = 1
            parts.append(w)
        return np.concatenate(parts)

    # -- identity ---------------------------------------------------------------------------
    def canonical(self, arch: HinasArch) -> HinasArch:
        """The two entries of a block are summed: their order is irrelevant (sorted)."""
        cells = []
        for cell in arch.cells:
            c: list[Entry] = []
            for b in range(len(cell) // 2):
                c += sorted(cell[2 * b : 2 * b + 2], key=lambda e: (e[1], e[0]))
            cells.append(tuple(c))
        return HinasArch(tuple(cells), tuple(arch.path))

    def enumerate(self) -> Iterator[HinasArch]:
        raise ArchError("space 'hinas' is too large to enumerate")

    def index(self, arch: HinasArch) -> int | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "size": None,
            "layers": self.layers,
            "blocks": self.blocks,
            "ops": list(OPS),
            "width_factors": list(WIDTH_FACTORS[: self.levels]),
            "encodings": {"onehot": int(self.encode(self.sample(np.random.default_rng(0))).size)},
        }

    def describe_arch(self, arch: HinasArch) -> dict[str, Any]:
        return {
            "path": list(arch.path),
            "widths": [WIDTH_FACTORS[v] for v in arch.path],
            "cells": [[f"{op}@{i}" for op, i in cell] for cell in arch.cells],
        }
