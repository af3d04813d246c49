"""The NATS-Bench size search space (``nats-sss``; Dong et al., TPAMI 2021, Sec. 3.2).

A fixed cell -- the NB201 architecture with the best CIFAR-100 validation accuracy,
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``
(index 9930) -- in the NB201 skeleton with one cell per stage, and a free channel count
for each of its 5 layers (stem + cell 1, reduction block 1, cell 2, reduction block 2,
cell 3) from {8, 16, ..., 64}: 8^5 = 32,768 architectures.

The arch string is the official one, the channels joined by ``:`` (``"8:16:32:64:64"``).
The official index is the order in which the benchmark enumerates the space
(``traverse_net`` in AutoDL-Projects ``exps/NATS-Bench/main-sss.py``): positions nested
first-outermost over ascending candidates, i.e. the base-8 number of the candidate
indices with the first layer most significant -- ``"8:8:8:8:8"`` is 0, ``"8:8:8:8:16"``
is 1, ``"16:8:8:8:8"`` is 4096, ``"64:64:64:64:64"`` is 32767.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.errors import ArchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.registry import SPACES

#: Channel candidates of every layer (``--candidateC`` of ``main-sss.py``).
CANDIDATES: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
#: Number of channel positions (``--num_layers 5``).
NUM_LAYERS = 5
#: The cell every size-space network uses (``main-sss.py``: arch-index 9930).
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#: Size of the space (``--check_N 32768``).
SIZE = len(CANDIDATES) ** NUM_LAYERS


@SPACES.register("nats-sss")
class NATSSizeSpace(CategoricalBase):
    """NATS-Bench's size space: an arch is a tuple of 5 channel counts."""

    name = "nats-sss"

    def __init__(self) -> None:
        options = tuple(str(c) for c in CANDIDATES)
        self._choices = tuple(Choice(f"layer{i}", options) for i in range(NUM_LAYERS))

    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def to_choices(self, arch: Sequence[int]) -> tuple[int, ...]:
        self._check(arch)
        return tuple(CANDIDATES.index(int(c)) for c in arch)

    def from_choices(self, picks: Sequence[int]) -> tuple[int, ...]:
        picks = list(picks)
        if len(picks) != NUM_LAYERS or any(not 0 <= int(p) < len(CANDIDATES) for p in picks):
            raise ArchError(
                f"nats-sss picks must be {NUM_LAYERS} indices in 0..{len(CANDIDATES) - 1}, "
                f"got {picks}"
            )
        return tuple(CANDIDATES[int(p)] for p in picks)

    def _check(self, arch: Sequence[int]) -> None:
        if (
            not isinstance(arch, (tuple, list))
            or len(arch) != NUM_LAYERS
            or any(c not in CANDIDATES for c in arch)
        ):
            raise ArchError(
                f"a nats-sss arch is {NUM_LAYERS} channel counts from {list(CANDIDATES)}, "
                f"got {arch!r}"
            )

    # The official string: channels joined by ':'.
    def to_string(self, arch: Sequence[int]) -> str:
        self._check(arch)
        return ":".join(str(int(c)) for c in arch)

    def from_string(self, text: str) -> tuple[int, ...]:
        form = ":".join(["<c>"] * NUM_LAYERS)
        if not isinstance(text, str):
            raise ArchError(f"a nats-sss arch string must be a str, got {text!r}")
        tokens = text.strip().split(":")
        if len(tokens) != NUM_LAYERS:
            raise ArchError(
                f"nats-sss arch {text!r} has {len(tokens)} channel count(s); expected "
                f"{NUM_LAYERS} in the form {form} with <c> in {list(CANDIDATES)}"
            )
        out = []
        for t in tokens:
            t = t.strip()
            if not t.isdigit() or int(t) not in CANDIDATES:
                raise ArchError(
                    f"nats-sss channel count {t!r} in {text!r}; expected one of {list(CANDIDATES)}"
                )
            out.append(int(t))
        return tuple(out)

    def arch_from_index(self, index: int) -> tuple[int, ...]:
        """The arch at the official ``index`` (0 .. 32767)."""
        if not 0 <= int(index) < SIZE:
            raise ArchError(f"nats-sss index {index} outside 0..{SIZE - 1}")
        picks = []
        i = int(index)
        for _ in range(NUM_LAYERS):
            i, p = divmod(i, len(CANDIDATES))
            picks.append(p)
        return self.from_choices(picks[::-1])

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "cell": CELL,
            "index_rule": "base-8, first layer most significant",
        }

    def describe_arch(self, arch: Sequence[int]) -> dict[str, Any]:
        return {"index": self.index(arch), "channels": [int(c) for c in arch], "cell": CELL}


__all__ = ["CANDIDATES", "CELL", "NUM_LAYERS", "SIZE", "NATSSizeSpace"]
