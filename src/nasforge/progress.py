"""The one Rich progress-bar layout of nasforge's long-running loops.

``label | bar | done/total | fields... | elapsed | ETA remaining``: the training loop, the
table build and the search commands differ only in their label and field columns.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["make_progress"]


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
        console: where to draw (default: Rich's global console, stdout).
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
        console=console,
    )
