"""``nasforge bench build``: train a search space into a benchmark table (resumable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from nasforge.cli.options import OldSpellings, cells_option, channels_option, threads_option
from nasforge.errors import NasforgeError


def _seeds(ctx: typer.Context, seeds: list[int]) -> tuple[int, ...]:
    """``--seeds 777 888 999`` (the values after the first are left over as extra args)."""
    extra = list(ctx.args)
    bad = [a for a in extra if not (a.isascii() and a.lstrip("-").isdigit())]
    if bad:
        raise typer.BadParameter(
            f"unexpected argument(s) {bad}; seeds are integers, e.g. --seeds 777 888 999",
            param_hint="--seeds",
        )
    return tuple(seeds) + tuple(int(a) for a in extra)


def _check_task(task: str) -> None:
    """Refuse, before any work, a task whose metrics a benchmark table cannot hold."""
    from nasforge.tasks import get_task

    name = get_task(task).name  # an unknown task fails here, listing the tasks
    if name != "classification":
        raise NasforgeError(
            f"--task {name!r} cannot be built into a benchmark table (tables record "
            "classification accuracy); expected --task classification"
        )


def build_command(
    ctx: typer.Context,
    dataset: str = typer.Option(
        ...,
        "--dataset",
        "-d",
        help="cifar10-valid, cifar10, cifar100, ImageNet16-120, "
        "or the embedded digits / synthetic[-<R>px][-<K>c].",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Table directory (created or resumed)."
    ),
    space: str = typer.Option("nb201", help="Search space."),
    task: str = typer.Option(
        "classification",
        "--task",
        help="Task (see `nasforge task list`); a table records classification accuracy, so "
        "only classification builds one.",
    ),
    recipe: str = typer.Option("nb201-12e", help="Training recipe: nb201-12e, nb201-200e."),
    seeds: list[int] = typer.Option(
        [777], "--seeds", help="Seeds to train each arch with: --seeds 777 888 999."
    ),
    archs: str = typer.Option(
        "all",
        help="all (15,625), unique (6,466 class representatives), N (the first N of a "
        "random order drawn with --order-seed), or a file of arch strings / indices.",
    ),
    order_seed: int = typer.Option(0, help="Seed of the random arch order used by --archs N."),
    executor: str = typer.Option("local", help="local or ray."),
    workers: int | None = typer.Option(
        None, help="local: worker processes (1 = in-process); ray: CPUs of a new local instance."
    ),
    address: str | None = typer.Option(
        None, help="Ray cluster address (auto, ray://host:10001); default: a local instance."
    ),
    epochs: int | None = typer.Option(None, help="Override the recipe's epochs (tiny runs)."),
    hp: str | None = typer.Option(None, help="Table key of the recipe (default: its epochs)."),
    data_dir: Path | None = typer.Option(None, help="Dataset root (NB201 datasets)."),
    limit: int | None = typer.Option(None, help="Keep only the first LIMIT samples per split."),
    channels: int = channels_option(16, "Channels of the first stage (NB201: 16)."),
    cells: int = cells_option(5, "Cells per stage (NB201: 5)."),
    threads: int | None = threads_option(),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu, cuda, cuda:1."),
    max_retries: int = typer.Option(2, help="Retries of a failed or diverged training."),
    retry_failed: bool = typer.Option(
        True, help="On resume, train again entries recorded as failed/diverged."
    ),
    progress: bool = typer.Option(True, help="Show the progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Train every (arch, seed) into the table at -o; re-running the same command resumes.

    Each finished training is appended at once (crash-safe); completed entries are skipped
    on resume; failures are recorded and retried, never stopping the build. Exits 1 when
    any entry still failed after its retries (they are in the table; re-run to retry them).
    """
    from nasforge.bench.build import BuildConfig, build

    all_seeds = _seeds(ctx, seeds)
    _check_task(task)
    if workers is not None and workers < 1:
        raise NasforgeError(f"--workers {workers} must be >= 1")
    config = BuildConfig(
        dataset=dataset,
        space=space,
        recipe=recipe,
        seeds=all_seeds,
        archs=archs,
        order_seed=order_seed,
        epochs=epochs,
        hp=hp,
        data_dir=None if data_dir is None else str(data_dir),
        limit=limit,
        C=channels,
        N=cells,
        device=device,
        max_retries=max_retries,
        retry_failed=retry_failed,
    )
    if executor == "local":
        kwargs: dict = {"workers": 1 if workers is None else workers}
        if threads is not None and kwargs["workers"] > 1:
            kwargs["threads_per_worker"] = threads  # in-process: already set by --threads
        if address is not None:
            raise NasforgeError("--address is for --executor ray; the local executor has none")
    elif executor == "ray":
        kwargs = {"address": address, "workers": workers}
    else:
        raise NasforgeError(f"unknown executor {executor!r}; expected 'local' or 'ray'")
    report = build(
        config, output, executor_name=executor, executor_kwargs=kwargs, progress=progress
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    from rich.markup import escape

    from nasforge.progress import output_console

    console = output_console()
    console.print(
        f"[bold]{escape(report.path)}[/] {escape(report.dataset)}/hp={escape(report.hp)}: "
        f"{report.skipped + report.trained}/{report.total} done "
        f"({report.skipped} already there, {report.ok} trained ok, {report.failed} failed "
        f"after retries), {report.trainings_per_min:.1f} trainings/min on {report.executor}",
        highlight=False,
    )
    for err in report.errors[:5]:
        last = (err["error"] or "").strip().splitlines()[-1:] or [""]
        console.print(f"  [red]failed[/] {err['arch']} seed {err['seed']}: {escape(last[0])}")


def register(app: typer.Typer) -> None:
    """Add ``build`` to the ``bench`` command group."""
    from nasforge.cli.bench import bench_app

    bench_app.command(
        "build",
        cls=OldSpellings,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )(build_command)
