"""``nasforge zc``: zero-cost proxy scores of many archs into a resumable CSV / JSON table."""

from __future__ import annotations

from pathlib import Path

import typer

from nasforge.cli.options import OldSpellings, cells_option, channels_option, threads_option
from nasforge.errors import NasforgeError


def _select_archs(spec: str, seed: int) -> list[str]:
    """``all``, a number N (N distinct archs drawn with ``seed``) or a file of arch strings /
    indices (one per line, or a JSON list)."""
    import json

    import numpy as np

    from nasforge.spaces.nb201 import NUM_ARCHS, Arch, all_archs

    text = spec.strip()
    if text == "all":
        return [a.to_string() for a in all_archs()]
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= NUM_ARCHS:
            raise NasforgeError(f"--archs {spec!r}: a count must be in 1..{NUM_ARCHS}")
        idx = np.random.default_rng(seed).permutation(NUM_ARCHS)[:n]
        return [Arch.from_index(int(i)).to_string() for i in idx]
    path = Path(text)
    if not path.is_file():
        raise NasforgeError(
            f"--archs {spec!r} is neither 'all', a number of archs nor an existing file"
        )
    body = path.read_text()
    items = json.loads(body) if body.lstrip().startswith("[") else body.split()
    out = []
    for item in items:
        value = item.get("arch") if isinstance(item, dict) else item
        out.append(Arch.parse(value).to_string())
    if not out:
        raise NasforgeError(f"--archs file {path} lists no architecture")
    return out


def zc(
    space: str = typer.Option("nb201", help="Search space (nb201)."),
    dataset: str = typer.Option("cifar10", help="Dataset setting the batch is drawn from."),
    data_dir: Path | None = typer.Option(None, help="Dataset root (NB201 datasets)."),
    proxies: str = typer.Option("all", help="'all' or a comma-separated list of proxies."),
    archs: str = typer.Option("100", help="N (seeded sample), 'all', or a file of archs."),
    out: Path = typer.Option(..., "-o", "--out", help="Output table (.csv or .json)."),
    batch_size: int = typer.Option(64, help="Images in the proxy batch."),
    num_batches: int = typer.Option(1, help="Batches (of batch-size images) per proxy."),
    seed: int = typer.Option(0, help="Seed of the batch, the arch sample and the weights."),
    C: int = channels_option(16, "Channels of the first stage (official 16)."),
    N: int = cells_option(5, "Cells per stage (official 5)."),
    threads: int | None = threads_option(),
    device: str = typer.Option("cpu", help="torch device."),
) -> None:
    """Score archs with zero-cost proxies: one row per arch (arch, every proxy, seconds).

    Resumable: rows are written atomically after each arch and archs already in OUT are
    skipped when the command runs again.
    """
    from rich.progress import Progress

    from nasforge.evaluate.zero_cost import check_rows, parse_proxies, proxy_batch, score_archs

    if space != "nb201":
        raise NasforgeError(f"unknown space {space!r}; expected 'nb201'")
    if out.suffix not in (".csv", ".json"):
        raise NasforgeError(f"--out {str(out)!r} must end in .csv or .json")
    if C < 1 or N < 1:
        raise NasforgeError(f"--C {C} and --N {N} must be >= 1")
    names = parse_proxies(proxies)
    selected = _select_archs(archs, seed)
    done = {r["arch"] for r in check_rows(out, names)}
    todo = [a for a in selected if a not in done]
    batch = proxy_batch(
        dataset,
        root=data_dir,
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
    )
    with Progress(transient=True) as progress:
        task = progress.add_task("zero-cost proxies", total=len(todo))
        score_archs(
            todo,
            names,
            batch,
            out,
            seed=seed,
            C=C,
            N=N,
            device=device,
            on_row=lambda row: progress.advance(task),
        )
    typer.echo(f"{len(todo)} archs scored, {len(selected) - len(todo)} already in {out}")


def register(app: typer.Typer) -> None:
    app.command("zc", cls=OldSpellings)(zc)
