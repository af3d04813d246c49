"""What the sampling / pruning methods (DDPNAS, FP-NAS, BN-NAS, DA-NAS) share: single-path
training through the supernet, scoring in the path's own mode, and their config checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import Batch, OneShotSearch, StepStats


def check_int(config: Any, name: str, low: int, high: int | None = None, why: str = "") -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is an int (not a
    bool) >= ``low`` (and <= ``high`` when given); ``why`` is appended to the message."""
    value = getattr(config, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        expected = f"an int >= {low}" if high is None else f"an int in {low}..{high}"
        raise SearchError(
            f"config field {name}={value!r} invalid; expected {expected}"
            + (f" ({why})" * bool(why))
        )


class SinglePathSearch(OneShotSearch):
    """A method that trains one sampled path per step (no architecture batches) and whose
    search-mode forward is that single path, so the derived arch is scored as the method
    scores candidates (``score_bn``)."""

    uses_arch_batches: ClassVar[bool] = False
    eval_is_derived: ClassVar[bool] = True

    def path_step(self, batch: Batch, path: Sequence[int]) -> StepStats:
        """One SGD step of the shared weights on the single path ``path`` (op id per edge)."""
        assert self.supernet is not None
        net, ids = self.supernet, list(path)
        return self.weight_step(lambda x: net(x, index=ids), batch)
