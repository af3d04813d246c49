"""Option checks several commands share, declared once so that they validate alike.

They run while the command line is parsed, so a bad value is refused (click's usage error,
exit code 2, naming the option, the value and what was expected) before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

#: Seeds reach numpy (``SeedSequence``: non-negative integers only) and torch
#: (``manual_seed``: at most 64 bits); 2**63 - 1 leaves room for ``seed + k`` offsets.
SEED_MAX = 2**63 - 1


def _check_seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(
            f"{value} is not a seed; expected an integer in 0..2**63-1 (numpy and torch "
            "take non-negative seeds only)"
        )
    return value


def at_least(low: int) -> Callable[[int | None], int | None]:
    """An option callback refusing an integer below ``low`` (None passes: "not given")."""

    def check(value: int | None) -> int | None:
        if value is not None and value < low:
            raise typer.BadParameter(f"{value} is invalid; expected an integer >= {low}")
        return value

    return check


def seed_option(default: int | None = 0, help: str = "Random seed.", name: str = "--seed") -> Any:
    """A seed option (``--seed`` unless ``name`` says otherwise) refusing what numpy and
    torch cannot take (negative, > 63 bits)."""
    return typer.Option(default, name, callback=_check_seed, help=f"{help} (0..2**63-1)")


def channels_option() -> Any:
    """``--channels``: network width C of the trained networks (None: the space's default)."""
    return typer.Option(
        None,
        "--channels",
        callback=at_least(1),
        help="Network width C (train evaluator; NB201 default 16).",
    )


def cells_option() -> Any:
    """``--cells``: cells per stage N of the trained networks (None: the space's default)."""
    return typer.Option(
        None,
        "--cells",
        callback=at_least(1),
        help="Cells per stage N (train evaluator; NB201 default 5).",
    )
