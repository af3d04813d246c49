"""``nasforge zc``: zero-cost proxy scores of many archs into a resumable CSV / JSON table."""

from __future__ import annotations

from pathlib import Path

import typer

from nasforge.cli.options import (
    OldSpellings,
    at_least,
    cells_option,
    channels_option,
    key_value_pairs,
    threads_option,
)
from nasforge.errors import NasforgeError


def zc(
    space: str = typer.Option("nb201", help="Search space with a network builder."),
    task: str = typer.Option(
        "classification", help="Task whose data, loss and networks the proxies use."
    ),
    dataset: str | None = typer.Option(
        None, help="Dataset the batch is drawn from (default: cifar10, or the task's)."
    ),
    data_dir: Path | None = typer.Option(None, help="Dataset root (NB201 datasets)."),
    proxies: str = typer.Option("all", help="'all' or a comma-separated list of proxies."),
    archs: str = typer.Option("100", help="N (seeded sample), 'all', or a file of archs."),
    out: Path = typer.Option(..., "-o", "--out", help="Output table (.csv or .json)."),
    batch_size: int = typer.Option(
        64, callback=at_least(1, "MAX_BATCH"), help="Images in the proxy batch (<= 4096)."
    ),
    num_batches: int = typer.Option(
        1, callback=at_least(1, "MAX_BATCH"), help="Batches (of batch-size images) per proxy."
    ),
    seed: int = typer.Option(0, help="Seed of the batch, the arch sample and the weights."),
    C: int | None = channels_option(None, "Network width C (default: the space's; NB201 16)."),
    N: int | None = cells_option(None, "NB201 cells per stage (default: official 5)."),
    network: list[str] | None = typer.Option(
        None, "--network", help="Other network builder option KEY=VALUE (repeatable)."
    ),
    threads: int | None = threads_option(),
    device: str = typer.Option("cpu", help="torch device."),
) -> None:
    """Score archs with zero-cost proxies: one row per arch (arch, every proxy, seconds).

    Resumable: rows are written atomically after each arch and archs already in OUT are
    skipped when the command runs again.
    """
    from rich.progress import Progress

    from nasforge.evaluate.zero_cost import (
        check_rows,
        network_config,
        parse_proxies,
        proxy_batch,
        proxy_settings,
        score_archs,
        task_proxy_batch,
    )
    from nasforge.spaces import get_space
    from nasforge.spaces.select import select_archs
    from nasforge.tasks import get_task

    sp = get_space(space)  # an unknown name fails here, listing the spaces
    task = get_task(task).name  # likewise for the task
    classification = task == "classification"
    if dataset is None:
        dataset = "cifar10" if classification else get_task(task).default_dataset
    if out.suffix not in (".csv", ".json"):
        raise NasforgeError(f"--out {str(out)!r} must end in .csv or .json")
    if (C is not None and C < 1) or (N is not None and N < 1):
        raise NasforgeError(f"--channels {C} and --cells {N} must be >= 1")
    options = network_config(sp.name, C, N, key_value_pairs(network, "--network", "layers=8"))
    names = parse_proxies(proxies)
    if not classification:
        from nasforge.evaluate.proxies import LABEL_PROXIES

        if proxies.strip() == "all":
            names = [n for n in names if n not in LABEL_PROXIES]
        elif set(names) & LABEL_PROXIES:
            raise NasforgeError(
                f"--proxies {proxies!r}: {sorted(set(names) & LABEL_PROXIES)} read class "
                f"labels; task {task!r} has none"
            )
    selected = select_archs(archs, seed, sp)
    done = {r["arch"] for r in check_rows(out, names)}
    todo = [a for a in selected if a not in done]
    if classification:
        batch = proxy_batch(
            dataset, root=data_dir, batch_size=batch_size, num_batches=num_batches, seed=seed
        )
    else:
        batch = task_proxy_batch(
            task,
            dataset=dataset,
            root=data_dir,
            batch_size=batch_size,
            num_batches=num_batches,
            seed=seed,
        )
    with Progress(transient=True) as progress:
        bar = progress.add_task("zero-cost proxies", total=len(todo))
        score_archs(
            todo,
            names,
            batch,
            out,
            seed=seed,
            device=device,
            space=sp.name,
            network=options,
            on_row=lambda row: progress.advance(bar),
            meta=proxy_settings(
                sp.name, dataset, batch_size, num_batches, seed, options, names, task=task
            ),
        )
    typer.echo(f"{len(todo)} archs scored, {len(selected) - len(todo)} already in {out}")


def register(app: typer.Typer) -> None:
    app.command("zc", cls=OldSpellings)(zc)
