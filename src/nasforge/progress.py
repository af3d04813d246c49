"""The one Rich progress-bar layout of nasforge's long-running loops, and the hooks that let
a command show the progress of work done deep inside the library.

``label | bar | done/total | fields... | elapsed | ETA remaining``: the training loop, the
table build and the search commands differ only in their label and field columns.

Two hooks feed a command's bar without the library knowing about it:

* :func:`report_epoch` -- every training (the one ``Trainer``) reports each finished epoch
  of the process it runs in; :func:`epoch_listener` subscribes to it;
* :class:`CountingEvaluator` -- wraps an evaluator and counts the evaluations it answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = [
    "CountingEvaluator",
    "epoch_listener",
    "make_progress",
    "output_console",
    "report_epoch",
]

#: Layout width when the output is not a terminal (a pipe, a log file, CI): wide enough
#: that no line -- an arch string, a table row, a progress bar's last state -- is wrapped
#: or cut; tables still size to their content.
PIPED_WIDTH = 1_000_000


def output_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """The console a command writes to. In a terminal: Rich's defaults (its width, colour,
    live progress bars). Elsewhere (``| tee``, ``> log``, CI): plain lines that are never
    wrapped or truncated -- arch strings can be copied back from a log -- and progress bars,
    which cannot redraw there, leave at most their complete final line."""
    console = Console(stderr=stderr, quiet=quiet)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, quiet=quiet, width=PIPED_WIDTH, soft_wrap=True)


def make_progress(
    label_column_text: str,
    *field_columns: str,
    transient: bool = False,
    console: Console | None = None,
) -> Progress:
    """A (not yet started) progress bar.

    Args:
        label_column_text: Rich markup of the first column (e.g. ``"{task.description}"``).
        field_columns: markup of text columns between the count and the times, typically
            ``{task.fields[...]}`` of values the caller updates.
        transient: remove the bar when it stops.
        console: where to draw (default: :func:`output_console`, stdout).
    """
    return Progress(
        TextColumn(label_column_text),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(text) for text in field_columns),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=transient,
        console=console if console is not None else output_console(),
    )


#: Listeners of :func:`report_epoch` in this process (see :func:`epoch_listener`).
_EPOCH_LISTENERS: list[Callable[[int, int], None]] = []


def report_epoch(done: int, total: int) -> None:
    """A training in this process has finished ``done`` of its ``total`` epochs (``done``
    counts from 1; a training starting from scratch reports ``0`` first)."""
    for listener in tuple(_EPOCH_LISTENERS):
        listener(done, total)


@contextlib.contextmanager
def epoch_listener(listener: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``listener(done, total)`` for every epoch a training of this process finishes
    while the block runs (trainings in worker processes report to their own process)."""
    _EPOCH_LISTENERS.append(listener)
    try:
        yield
    finally:
        _EPOCH_LISTENERS.remove(listener)


class CountingEvaluator:
    """An evaluator that answers as ``inner`` does and calls ``on_evaluated(k)`` after every
    ``k`` evaluations it answered (one per :meth:`evaluate`, one per request of
    :meth:`evaluate_batch`). Everything else is ``inner``'s own."""

    def __init__(self, inner: Any, on_evaluated: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_evaluated = on_evaluated

    def evaluate(
        self, arch: Any, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Any:
        obs = self._inner.evaluate(arch, fidelity, resume_key=resume_key)
        self._on_evaluated(1)
        return obs

    def evaluate_batch(
        self, requests: Sequence[tuple[Any, int | None, Hashable | None]], *, executor: Any = None
    ) -> list[Any]:
        out = self._inner.evaluate_batch(requests, executor=executor)
        self._on_evaluated(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
