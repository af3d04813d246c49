"""What the restoration searches share: settings from ``--param``, data halves, cost meters."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from nasforge.data.restoration import RestorationData, RestorationSplit
from nasforge.errors import SearchError

#: Every restoration task a restoration search serves.
RESTORATION_TASKS: tuple[str, ...] = (
    *(f"denoise-{k}{s}" for s in (15, 25, 50) for k in ("g", "c")),
    "sr-x2",
    "sr-x3",
    "sr-x4",
)


def settings_from_params(defaults: Any, params: dict[str, Any], algo: str) -> Any:
    """``defaults`` (a dataclass) with the ``--param`` values, type-checked before any work."""
    known = {f.name: f for f in fields(defaults)}
    changes = {}
    for key, value in params.items():
        if key not in known:
            raise SearchError(f"{algo}: unknown --param {key!r}; expected some of {sorted(known)}")
        want = type(getattr(defaults, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise SearchError(f"{algo}: --param {key}={value!r}; expected a {want.__name__}")
        changes[key] = value
    out = replace(defaults, **changes)
    check = getattr(out, "check", None)
    if check is not None:
        check(algo)
    return out


def halves(data: RestorationData) -> tuple[RestorationData, RestorationData]:
    """Two datasets over disjoint halves of the training images (even / odd positions):
    one trains the weights, the other the architecture (HiNAS ``SEARCH.PORTION = 0.5``,
    defaults.py:12). A single training image is shared by both."""
    tr = data.train

    def part(idx: list[int]) -> RestorationData:
        split = RestorationSplit(
            [tr.names[i] for i in idx],
            [tr.hr[i] for i in idx],
            None if tr.lr is None else [tr.lr[i] for i in idx],
        )
        return replace(data, train=split)

    n = len(tr)
    even, odd = list(range(0, n, 2)), list(range(1, n, 2))
    return part(even), part(odd or even)


def cycle(make: Callable[[int], Any]) -> Iterator[Any]:
    """Batches of ``make(epoch)`` forever, one epoch after another."""
    epoch = 0
    while True:
        yield from make(epoch)
        epoch += 1


@dataclass
class ActivationMeter:
    """Bytes of the tensors autograd saves for the backward pass of one forward (the
    activation memory a search step needs; what HiNAS's cell sharing reduces). Counted
    once per storage, on any device."""

    bytes: int = 0

    def __enter__(self) -> ActivationMeter:
        self._seen: set[int] = set()

        def pack(t: torch.Tensor) -> torch.Tensor:
            try:
                key = t.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):
                key = id(t)
            if key not in self._seen:
                self._seen.add(key)
                self.bytes += t.untyped_storage().nbytes()
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB; ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
