"""``nasforge explore``: a local web page over tables and run directories.

    nasforge explore TABLE_OR_RUN_DIR... [--port N] [--host ADDR]

Binds the loopback interface (127.0.0.1) on a free port unless ``--port`` / ``--host`` say
otherwise, prints the URL and serves until interrupted (Ctrl-C). Read-only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from nasforge.errors import NasforgeError

DEFAULT_HOST = "127.0.0.1"


def explore(
    paths: list[Path] = typer.Argument(
        ...,
        help="Table directories, run directories (`nasforge search -o DIR`, `compare`, "
        "`study ranking`), or directories holding them.",
    ),
    port: int = typer.Option(0, "--port", help="Port to listen on (0: a free one)."),
    host: str | None = typer.Option(
        None,
        "--host",
        help="Address to listen on (default 127.0.0.1, this machine only). Any other "
        "address makes the page reachable from the network: a warning says so.",
    ),
) -> None:
    """Serve a read-only web page to explore benchmark tables and search / one-shot /
    ranking runs: filters, Pareto scatter, cells, per-seed curves, trajectories."""
    import sys

    from rich.console import Console
    from rich.markup import escape

    try:
        from nasforge.explore import Explorer, serve
        from nasforge.explore.server import is_loopback
    except ImportError as exc:  # the optional extra is missing
        raise NasforgeError(
            f"nasforge explore needs the explore extra ({exc.name} is missing): "
            "pip install 'nasforge[explore]'"
        ) from None
    if not 0 <= port <= 65535:
        raise NasforgeError(f"--port {port} invalid; expected 0..65535 (0: a free port)")
    bind_host = DEFAULT_HOST if host is None else host
    err = Console(stderr=True)
    if not is_loopback(bind_host):
        err.print(
            escape(
                f"warning: --host {bind_host} makes this page reachable from other machines; "
                "it serves every opened table and run to anyone who can connect"
            ),
            style="bold yellow",
            highlight=False,
        )
    explorer = Explorer(paths)
    info = explorer.sources()

    def ready(url: str) -> None:
        print(
            f"nasforge explore: {len(info['tables'])} table(s), {len(info['runs'])} run(s) "
            f"at {url}  (Ctrl-C to stop)",
            flush=True,
        )
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop
        serve(explorer, host=bind_host, port=port, on_ready=ready)


def register(app: typer.Typer) -> None:
    app.command("explore")(explore)
