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


#: Exit status of a run ended by SIGTERM (128 + 15, as the shell reports a killed one).
TERMINATED_EXIT = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so every ``finally`` / ``except KeyboardInterrupt``
    cleanup (temporary import folders, spill files, atomic writes) runs before the exit."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def handle_sigterm() -> bool:
    """Deliver SIGTERM as :class:`Terminated` (a ``KeyboardInterrupt``) in this process,
    unless a handler other than the default is installed or this is not the main thread.
    True when installed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def main() -> None:
    """Console-script entry point: library errors become one clear line and exit code 2;
    SIGTERM cleans up like Ctrl-C and exits with 143."""
    import signal

    from rich.console import Console
    from rich.markup import escape

    installed = handle_sigterm()
    try:
        app()
    except Terminated:
        raise SystemExit(TERMINATED_EXIT) from None
    except SystemExit as exc:
        # click turns a KeyboardInterrupt into "Aborted!" and exit 1: report SIGTERM as such
        if installed and _terminated(exc):
            raise SystemExit(TERMINATED_EXIT) from None
        raise
    except NasforgeError as exc:
        # escape: messages carry user and package text ("pip install 'nasforge[ray]'")
        # that rich would otherwise take for markup and drop.
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(2) from None
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _terminated(exc: SystemExit) -> bool:
    """Whether click's abort ``exc`` came from a SIGTERM (a :class:`Terminated` in its chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Terminated):
            return True
        seen = seen.__context__ or seen.__cause__
    return False
