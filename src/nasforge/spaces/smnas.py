"""SM-NAS's detector space (Yao et al., AAAI 2020), at CPU scale.

An arch is a module combination -- backbone, neck, head, input resolution -- plus the
backbone's modular description: a stride code (Vega's SM-NAS encoding,
vega/algorithms/nas/sm_nas/smnas_codec.py:33-36: one ``-``-separated group per stage, one
digit per residual block, the digit its stride; ``11-21-21-21`` is ResNet-18) and a base
width (channels of the first stage, doubled per stage).

Structural stage (paper, "structural-level searching"): the combination is searched with
standard backbones. The paper's grid (ResNet-18/34/50/101, ResNeXt-50/101, MobileNetV2
backbones; no FPN / FPN necks; RPN / no RPN; RetinaNet / two-stage RCNN heads incl.
Cascade; inputs 512x512 to 1333x800) is scaled here to what trains on a CPU in minutes:
backbones ``r10`` / ``r18`` / ``r34`` (basic-block ResNets, codes from the codec's table,
plus ResNet-10 ``1-2-2-2``), necks ``none`` / ``fpn-p2p4`` / ``fpn-p3p5``, one-stage heads
``retina`` / ``fcos`` (no two-stage head: not implemented), inputs 32 / 48 / 64 px for
64 px images. Only the abstract and introduction of the paper could be read here, so the
published option lists above are as remembered, not re-checked; Vega ships only the modular
stage, so no official code fixes the structural grid either.

Modular stage: :meth:`SmNasSpace.mutate_backbone` applies Vega's ``SMNasM.ea_sample``
(smnas_m.py:54-100): per stage, ``num_mutate`` (3) random operations, each one of insert
a ``1`` block at a random position, remove a random ``1`` block, swap a non-``1`` digit
with a random other position -- so depth changes and the down-sampling block moves while
every stage keeps its stride (no operation adds or removes a ``2``). Unlike Vega, a
stage never loses its last block (an empty stage cannot be built there either). The
base width is
mutated too (one step in :data:`WIDTHS`), the paper's "width" dimension of the modular
search; its exact published choices could not be checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.spaces.registry import SPACES

#: Structural backbones: name -> stride code (smnas_codec.py:33-34 for 18 / 34).
BACKBONES: dict[str, str] = {"r10": "1-2-2-2", "r18": "11-21-21-21", "r34": "111-2111-211111-211"}
NECKS = ("none", "fpn-p2p4", "fpn-p3p5")
HEADS = ("retina", "fcos")
RESOLUTIONS = (32, 48, 64)
#: Base widths (channels of stage 1); 16 is the structural stage's.
WIDTHS = (8, 12, 16, 24, 32)
STRUCTURAL_WIDTH = 16
#: Stride-2 digits per stage: the stages always run at strides 4, 8, 16, 32.
_TWOS = (0, 1, 1, 1)
MAX_BLOCKS_PER_STAGE = 12


@dataclass(frozen=True)
class SmNasArch:
    """A detector: backbone stride code, base width, neck, head, input resolution."""

    backbone: str
    width: int
    neck: str
    head: str
    resolution: int

    def __str__(self) -> str:
        return (
            f"backbone={self.backbone},width={self.width},neck={self.neck},"
            f"head={self.head},res={self.resolution}"
        )

    def to_string(self) -> str:
        return str(self)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(g) for g in self.backbone.split("-"))


def check_code(code: str) -> str:
    """``code`` if it is a valid backbone code, else :class:`ArchError` saying why."""
    groups = code.split("-") if isinstance(code, str) else []
    form = "4 '-'-separated groups of 1/2 digits, stage 1 without a 2, stages 2-4 with one"
    if len(groups) != 4 or any(not g or set(g) - {"1", "2"} for g in groups):
        raise ArchError(f"backbone code {code!r}: expected {form}")
    for i, g in enumerate(groups):
        if g.count("2") != _TWOS[i]:
            raise ArchError(
                f"backbone code {code!r}: stage {i + 1} has {g.count('2')} stride-2 blocks; expected {form}"
            )
        if len(g) > MAX_BLOCKS_PER_STAGE:
            raise ArchError(
                f"backbone code {code!r}: stage {i + 1} has more than {MAX_BLOCKS_PER_STAGE} blocks"
            )
    return code


def _insert(code: str, rng: np.random.Generator) -> str:
    # smnas_m.py:54-60: random.randint(0, len - 1) -> a new '1' anywhere but at the end.
    i = int(rng.integers(0, len(code)))
    return code[:i] + "1" + code[i:]


def _remove(code: str, rng: np.random.Generator) -> str:
    # smnas_m.py:62-71: drop a random '1' (here: never the stage's last block).
    ones = [i for i, c in enumerate(code) if c == "1"]
    if not ones or len(code) == 1:
        return code
    i = ones[int(rng.integers(len(ones)))]
    return code[:i] + code[i + 1 :]


def _swap(code: str, rng: np.random.Generator) -> str:
    # smnas_m.py:73-85: swap a random non-'1' digit with a random other position.
    not_ones = [i for i, c in enumerate(code) if c != "1"]
    if not not_ones or len(code) == 1:
        return code
    i = not_ones[int(rng.integers(len(not_ones)))]
    others = [j for j in range(len(code)) if j != i]
    j = others[int(rng.integers(len(others)))]
    chars = list(code)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


_OPS = (_insert, _remove, _swap)


@SPACES.register("smnas")
class SmNasSpace:
    """The SM-NAS detector space (module docstring); not enumerable (codes are open)."""

    name = "smnas"

    # -- sizes and moves ------------------------------------------------------------------------
    def size(self) -> int | None:
        return None

    def structural_grid(self, width: int = STRUCTURAL_WIDTH) -> list[SmNasArch]:
        """Every structural combination (standard backbones at base ``width``)."""
        if width not in WIDTHS:
            raise ArchError(f"structural width {width} not in {list(WIDTHS)}")
        return [
            SmNasArch(code, width, n, h, r)
            for code in BACKBONES.values()
            for n in NECKS
            for h in HEADS
            for r in RESOLUTIONS
        ]

    def sample(self, rng: np.random.Generator) -> SmNasArch:
        """A uniformly drawn structural combination."""
        grid = self.structural_grid()
        return grid[int(rng.integers(len(grid)))]

    def mutate(self, arch: SmNasArch, rng: np.random.Generator) -> SmNasArch:
        """Change one structural position (backbone, neck, head or resolution)."""
        options = self.neighbors(arch)
        return options[int(rng.integers(len(options)))]

    def neighbors(self, arch: SmNasArch) -> list[SmNasArch]:
        """All archs differing from ``arch`` in one structural position."""
        out = []
        for code in BACKBONES.values():
            if code != arch.backbone:
                out.append(SmNasArch(code, arch.width, arch.neck, arch.head, arch.resolution))
        for n in NECKS:
            if n != arch.neck:
                out.append(SmNasArch(arch.backbone, arch.width, n, arch.head, arch.resolution))
        for h in HEADS:
            if h != arch.head:
                out.append(SmNasArch(arch.backbone, arch.width, arch.neck, h, arch.resolution))
        for r in RESOLUTIONS:
            if r != arch.resolution:
                out.append(SmNasArch(arch.backbone, arch.width, arch.neck, arch.head, r))
        return out

    def mutate_backbone(
        self, arch: SmNasArch, rng: np.random.Generator, num_mutate: int = 3
    ) -> SmNasArch:
        """The modular move: Vega's ``ea_sample`` on every stage of the code
        (smnas_m.py:87-100, ``num_mutate=3`` there) and, with probability 1/2, the base
        width one step up or down :data:`WIDTHS`. Codes that would exceed
        :data:`MAX_BLOCKS_PER_STAGE` keep the stage unchanged."""
        groups = []
        for g in arch.backbone.split("-"):
            new = g
            for _ in range(num_mutate):
                new = _OPS[int(rng.integers(3))](new, rng)
            groups.append(new if len(new) <= MAX_BLOCKS_PER_STAGE else g)
        width = arch.width
        if rng.random() < 0.5:
            i = WIDTHS.index(width) if width in WIDTHS else WIDTHS.index(STRUCTURAL_WIDTH)
            step = int(rng.choice([-1, 1]))
            width = WIDTHS[min(len(WIDTHS) - 1, max(0, i + step))]
        return SmNasArch(check_code("-".join(groups)), width, arch.neck, arch.head, arch.resolution)

    # -- strings ----------------------------------------------------------------------------------
    def to_string(self, arch: SmNasArch) -> str:
        return str(arch)

    def from_string(self, text: str) -> SmNasArch:
        form = "backbone=<code>,width=<int>,neck=<...>,head=<...>,res=<int>"
        if not isinstance(text, str):
            raise ArchError(f"an smnas arch string must be a str, got {text!r}")
        fields: dict[str, str] = {}
        for token in text.strip().split(","):
            key, sep, value = token.partition("=")
            if not sep:
                raise ArchError(f"smnas arch token {token!r} in {text!r}; expected {form}")
            fields[key.strip()] = value.strip()
        if set(fields) != {"backbone", "width", "neck", "head", "res"}:
            raise ArchError(f"smnas arch {text!r} names {sorted(fields)}; expected {form}")
        code = BACKBONES.get(fields["backbone"], fields["backbone"])
        try:
            width, res = int(fields["width"]), int(fields["res"])
        except ValueError:
            raise ArchError(f"smnas arch {text!r}: width and res must be integers") from None
        if width not in WIDTHS:
            raise ArchError(f"smnas arch {text!r}: width {width} not in {list(WIDTHS)}")
        if fields["neck"] not in NECKS:
            raise ArchError(f"smnas arch {text!r}: neck {fields['neck']!r} not in {list(NECKS)}")
        if fields["head"] not in HEADS:
            raise ArchError(f"smnas arch {text!r}: head {fields['head']!r} not in {list(HEADS)}")
        if res not in RESOLUTIONS:
            raise ArchError(f"smnas arch {text!r}: res {res} not in {list(RESOLUTIONS)}")
        return SmNasArch(check_code(code), width, fields["neck"], fields["head"], res)

    # -- encodings and identity ---------------------------------------------------------------------
    def encodings(self) -> tuple[str, ...]:
        return ("onehot",)

    def encode(self, arch: SmNasArch, kind: str = "onehot") -> np.ndarray:
        """One-hot neck, head, resolution and width, then blocks per stage and the
        position of each stage's stride-2 block (fraction of the stage)."""
        if kind != "onehot":
            raise ArchError(f"space 'smnas' has no {kind!r} encoding; expected one of ['onehot']")
        parts = [
            np.eye(len(NECKS))[NECKS.index(arch.neck)],
            np.eye(len(HEADS))[HEADS.index(arch.head)],
            np.eye(len(RESOLUTIONS))[RESOLUTIONS.index(arch.resolution)],
            np.eye(len(WIDTHS))[WIDTHS.index(arch.width)],
            np.array(arch.depths, dtype=np.float64),
            np.array([g.find("2") / len(g) if "2" in g else 0.0 for g in arch.backbone.split("-")]),
        ]
        return np.concatenate(parts).astype(np.float32)

    def canonical(self, arch: SmNasArch) -> SmNasArch:
        return arch

    def enumerate(self) -> Iterator[SmNasArch]:
        raise ArchError("space 'smnas' is not enumerable (backbone codes are open-ended)")

    def index(self, arch: SmNasArch) -> int | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "size": None,
            "backbones": dict(BACKBONES),
            "necks": list(NECKS),
            "heads": list(HEADS),
            "resolutions": list(RESOLUTIONS),
            "widths": list(WIDTHS),
            "structural_combinations": len(self.structural_grid()),
            "encodings": {"onehot": len(self.encode(self.structural_grid()[0]))},
        }

    def describe_arch(self, arch: SmNasArch) -> dict[str, Any]:
        return {
            "backbone": arch.backbone,
            "blocks_per_stage": list(arch.depths),
            "width": arch.width,
            "neck": arch.neck,
            "head": arch.head,
            "resolution": arch.resolution,
        }
