"""``nasforge train``: train one architecture of a space with a recipe and write its record.

The arch is read through the space (:func:`nasforge.spaces.select.read_arch`), the network
built and trained by the space's :func:`nasforge.train.arch.arch_training` (its network
builder, or a training the space registered): no space is named here."""

from __future__ import annotations

from pathlib import Path

import typer

from nasforge.cli.options import (
    OldSpellings,
    cells_option,
    channels_option,
    seed_option,
    threads_option,
)


def train(
    arch: str = typer.Option(
        ...,
        "--arch",
        help="nb201: official arch string or index. darts: a published genotype name "
        "(PC_DARTS_cifar, DARTS_V2, ...), a Genotype(...) repr, JSON, or a file holding one.",
    ),
    space: str = typer.Option("nb201", "--space", help="Search space (see `nasforge space list`)."),
    task: str = typer.Option("classification", "--task", help="Task (see `nasforge task list`)."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Dataset of the task (default: the task's). Classification: digits, "
        "synthetic[-<R>px][-<K>c], cifar10-valid, cifar10, cifar100, ImageNet16-120.",
    ),
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="Recipe (default: the task's). Classification: nb201-12e, nb201-200e, "
        "darts-cifar-600e, darts-imagenet-250e.",
    ),
    network: list[str] | None = typer.Option(
        None,
        "--network",
        help="KEY=VALUE option of the space's network builder (repeatable); width and "
        "depth are --channels / --cells (darts takes only those).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the recipe's epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Override batch size."),
    lr: float | None = typer.Option(None, "--lr", help="Override the learning rate."),
    seed: int = seed_option(0, "Training seed (init, batch order, augmentation)."),
    data_seed: int = seed_option(
        0,
        "Seed of splits that have no official file or rule (digits, synthetic, fallbacks); "
        "independent of --seed so every training seed sees the same split.",
        name="--data-seed",
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Dataset directory."),
    split_dir: Path | None = typer.Option(None, "--split-dir", help="NB201 split files."),
    download: bool = typer.Option(False, "--download", help="Fetch CIFAR if absent."),
    limit: int | None = typer.Option(None, "--limit", help="Keep N samples per split."),
    # --channels / --cells as in `search`; --C / --N still read (OldSpellings), not shown.
    channels: int | None = channels_option(
        help="Channels of the first stage (NB201: 16; DARTS: 36, ImageNet 48)."
    ),
    cells: int | None = cells_option(
        help="NB201: cells per stage (5). DARTS: total cells (20, ImageNet 14)."
    ),
    threads: int | None = threads_option(),
    device: str = typer.Option("cpu", "--device"),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir"),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run checkpointed in --checkpoint-dir (must exist)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the run record as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train one network of a space; print a per-epoch table and optionally write JSON."""
    from rich.markup import escape
    from rich.table import Table

    from nasforge.cli.options import key_value_pairs
    from nasforge.data import load_splits
    from nasforge.errors import NetworkError
    from nasforge.io import check_output_dir, check_output_file
    from nasforge.progress import output_console
    from nasforge.spaces import SPACES, get_space
    from nasforge.spaces.select import read_arch
    from nasforge.tasks import get_task
    from nasforge.train import CHECKPOINT_NAME, get_recipe
    from nasforge.train.arch import NetworkOptionError, arch_training
    from nasforge.train.checkpoint import resume_path

    tk = get_task(task)
    if space not in SPACES:
        raise typer.BadParameter(f"unknown space {space!r}; expected one of {SPACES.names()}")
    value, arch_text = read_arch(get_space(space), arch)
    options = key_value_pairs(network, "--network", "C=16")
    training = arch_training(space)
    try:
        training.check(tk, channels, cells, options)  # before any data is loaded
    except NetworkOptionError as exc:
        raise typer.BadParameter(exc.detail, param_hint=f"'{exc.option}'") from None
    except NetworkError as exc:
        raise typer.BadParameter(str(exc)) from None
    rec = get_recipe(recipe or tk.default_recipe, epochs=epochs, batch_size=batch_size, lr=lr)
    tk.check_recipe(rec)
    if resume and checkpoint_dir is None:
        raise typer.BadParameter("--resume needs --checkpoint-dir")
    # Every output is checked before the data is loaded and the training starts: a bad
    # path found afterwards would lose the run.
    if out is not None:
        check_output_file(out)
    if checkpoint_dir is not None:
        check_output_dir(checkpoint_dir)
    if resume:
        resume_path(checkpoint_dir, CHECKPOINT_NAME)
    # The split never follows the training seed: two seeds of one arch are compared on the
    # same validation images, as in NB201 (one split file for all its seeds).
    if tk.name == "classification":
        data = load_splits(
            dataset or tk.default_dataset,
            data_dir,
            download=download,
            split_file_dir=split_dir,
            seed=data_seed,
            limit=limit,
        )
    else:
        data = tk.load(dataset, data_dir, seed=data_seed, limit=limit)
    console = output_console()
    console.print(
        f"[bold]{escape(arch_text)}[/] on {escape(data.name)} {data.summary()} with "
        f"{escape(rec.name)}, seed {seed}",
        highlight=False,
    )
    for note in getattr(data, "notes", ()):
        if note.startswith("limit "):  # what --limit kept, so a tiny run is read as one
            console.print(escape(note), highlight=False)
    result = training.fit(
        value,
        data,
        rec,
        task=tk,
        channels=channels,
        cells=cells,
        options=options,
        seed=seed,
        device=device,
        quiet=quiet,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        identity={"limit": limit},
    )
    table = Table(
        title=escape(f"{data.name} / {rec.name} / {result.num_params / 1e6:.3f} M params")
    )
    names = list(data.evals)
    # Per split the loss first, then the task's other metrics (classification: acc).
    metrics = [tk.metric("loss"), *(m for m in tk.metrics if m.name != "loss")]
    train_acc = "acc" in tk.train_metrics
    for col in ["epoch", "lr", "train loss", *(["train acc"] if train_acc else [])]:
        table.add_column(col, justify="right")
    for n in names:
        for m in metrics:
            table.add_column(f"{n} {m.name}", justify="right")
    table.add_column("time (s)", justify="right")
    for r in result.epochs:
        # Epochs are counted from 1 wherever nasforge prints them (as the progress bar does).
        cells_ = [str(r.epoch + 1), f"{r.lr:.4f}", f"{r.train_loss:.4f}"]
        if train_acc:
            cells_.append(f"{r.train_acc:.2f}")
        for n in names:
            cells_ += [m.format(r.eval[n][m.name]) for m in metrics]
        cells_.append(f"{r.epoch_time + r.eval_time:.1f}")
        table.add_row(*cells_)
    console.print(table)
    console.print(
        escape(
            f"status {result.status}; train {result.total_train_time:.1f} s, "
            f"eval {result.total_eval_time:.1f} s" + (f"; {result.error}" if result.error else "")
        ),
        highlight=False,
    )
    if out is not None:
        result.to_json(out)
        console.print(f"wrote {escape(str(out))}", highlight=False)
    if result.status != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train", cls=OldSpellings)(train)
