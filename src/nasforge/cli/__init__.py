"""The ``nasforge`` command line: a Typer app; every command is a thin call into the library.

Each command family lives in its own module exposing ``register(app)``; adding a family is
adding one module and one line to ``_FAMILIES``.
"""

from __future__ import annotations

import importlib

import typer

from nasforge.errors import NasforgeError

app = typer.Typer(
    name="nasforge",
    help="Neural architecture search: tabular benchmarks, search algorithms, width search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_FAMILIES = [
    "nasforge.cli.arch",
    "nasforge.cli.bench",
    "nasforge.cli.build",
    "nasforge.cli.train",
    "nasforge.cli.search",
    "nasforge.cli.width",
    "nasforge.cli.zc",
    "nasforge.cli.study",
    "nasforge.cli.task",
    "nasforge.cli.explore",
]

for _name in _FAMILIES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point: library errors become one clear line and exit code 2."""
    from rich.console import Console
    from rich.markup import escape

    try:
        app()
    except NasforgeError as exc:
        # escape: messages carry user and package text ("pip install 'nasforge[ray]'")
        # that rich would otherwise take for markup and drop.
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(2) from None
