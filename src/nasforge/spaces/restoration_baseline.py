"""Hand-designed restoration networks as a (tiny) space, so that ``nasforge train`` trains
them like any searched arch: ``--space restoration-baseline --arch net=edsr``.

``fsrcnn`` (Dong et al., ECCV 2016) and ``edsr`` (EDSR-baseline style, Lim et al., CVPRW
2017) for super-resolution, ``dncnn`` (Zhang et al., TIP 2017) for denoising; widths and
depths are network options (``--network C=... --network depth=...``) so that baselines can
be matched to a searched net's parameter count (see :mod:`nasforge.nn.restoration_baselines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.errors import ArchError
from nasforge.spaces.base import CategoricalBase, Choice
from nasforge.spaces.registry import SPACES

BASELINES: tuple[str, ...] = ("fsrcnn", "edsr", "dncnn")


@SPACES.register("restoration-baseline")
class RestorationBaselineSpace(CategoricalBase):
    """One position, ``net``: which hand-designed network."""

    name = "restoration-baseline"

    def choices(self) -> tuple[Choice, ...]:
        return (Choice("net", BASELINES),)

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        if arch not in BASELINES:
            raise ArchError(f"restoration baseline {arch!r}; expected one of {list(BASELINES)}")
        return (BASELINES.index(arch),)

    def from_choices(self, picks: Sequence[int]) -> Any:
        if len(picks) != 1 or not 0 <= int(picks[0]) < len(BASELINES):
            raise ArchError(
                f"restoration baseline picks {list(picks)}; expected one index < {len(BASELINES)}"
            )
        return BASELINES[int(picks[0])]
