"""The ``local-stages`` space: which token mixer each stage of a small hierarchical network
uses -- Swin's window attention, DWNet's depth-wise convolution or its dynamic variant
(Han et al., ICLR 2022; blocks and network in :mod:`nasforge.nn.local_blocks`).

An arch is one block name per stage, e.g. ``("window_attn", "dwconv", "dynamic_dwconv")``,
printed ``stage0=window_attn,stage1=dwconv,stage2=dynamic_dwconv``; 3 stages x 3 blocks =
27 archs, indexed as a base-3 number with stage 0 most significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.errors import ArchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.registry import SPACES

#: The block options of every stage (the names registered in ``nn.local_blocks.LOCAL_BLOCKS``).
BLOCKS: tuple[str, ...] = ("window_attn", "dwconv", "dynamic_dwconv")
#: Stages of the network (32 px CIFAR input, patch 2: 16x16, 8x8 and 4x4 maps).
NUM_STAGES = 3


@SPACES.register("local-stages")
class LocalStagesSpace(CategoricalBase):
    """One of :data:`BLOCKS` per stage; an arch is a tuple of block names."""

    name = "local-stages"

    def __init__(self) -> None:
        self._choices = tuple(Choice(f"stage{i}", BLOCKS) for i in range(NUM_STAGES))

    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def to_choices(self, arch: Sequence[str]) -> tuple[int, ...]:
        if (
            not isinstance(arch, (tuple, list))
            or len(arch) != NUM_STAGES
            or any(b not in BLOCKS for b in arch)
        ):
            raise ArchError(
                f"a local-stages arch is {NUM_STAGES} block names from {list(BLOCKS)}, got {arch!r}"
            )
        return tuple(BLOCKS.index(b) for b in arch)

    def from_choices(self, picks: Sequence[int]) -> tuple[str, ...]:
        picks = list(picks)
        if len(picks) != NUM_STAGES or any(not 0 <= int(p) < len(BLOCKS) for p in picks):
            raise ArchError(
                f"local-stages picks must be {NUM_STAGES} indices in 0..{len(BLOCKS) - 1}, "
                f"got {picks}"
            )
        return tuple(BLOCKS[int(p)] for p in picks)

    def describe_arch(self, arch: Sequence[str]) -> dict[str, Any]:
        return {**super().describe_arch(arch), "index": self.index(arch)}


__all__ = ["BLOCKS", "NUM_STAGES", "LocalStagesSpace"]
