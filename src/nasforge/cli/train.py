"""``nasforge train``: train one NB201 architecture with a recipe and write its record."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    arch: str = typer.Option(..., "--arch", help="Official NB201 arch string or index."),
    dataset: str = typer.Option(
        "digits",
        "--dataset",
        help="digits, synthetic[-<R>px][-<K>c], cifar10-valid, cifar10, cifar100, ImageNet16-120",
    ),
    recipe: str = typer.Option("nb201-12e", "--recipe", help="nb201-12e or nb201-200e"),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the recipe's epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Override batch size."),
    lr: float | None = typer.Option(None, "--lr", help="Override the learning rate."),
    seed: int = typer.Option(0, "--seed"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Dataset directory."),
    split_dir: Path | None = typer.Option(None, "--split-dir", help="NB201 split files."),
    download: bool = typer.Option(False, "--download", help="Fetch CIFAR if absent."),
    limit: int | None = typer.Option(None, "--limit", help="Keep N samples per split."),
    # --channels / --cells as in `search`; --C / --N kept as the old spellings.
    channels: int = typer.Option(
        16, "--channels", "--C", help="Channels of the first stage (NB201: 16)."
    ),
    cells: int = typer.Option(5, "--cells", "--N", help="Cells per stage (NB201: 5)."),
    device: str = typer.Option("cpu", "--device"),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir"),
    resume: bool = typer.Option(False, "--resume", help="Continue from --checkpoint-dir."),
    out: Path | None = typer.Option(None, "--out", help="Write the run record as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train an NB201 network; print a per-epoch table and optionally write JSON."""
    from rich.console import Console
    from rich.table import Table

    from nasforge.data import load_splits
    from nasforge.spaces.nb201 import Arch
    from nasforge.train import get_recipe, train_arch

    a = Arch.parse(int(arch) if arch.isdigit() else arch)
    rec = get_recipe(recipe, epochs=epochs, batch_size=batch_size, lr=lr)
    if resume and checkpoint_dir is None:
        raise typer.BadParameter("--resume needs --checkpoint-dir")
    data = load_splits(
        dataset, data_dir, download=download, split_file_dir=split_dir, seed=seed, limit=limit
    )
    console = Console()
    console.print(
        f"[bold]{a.to_string()}[/] on {data.name} {data.summary()} with {rec.name}, seed {seed}",
        highlight=False,
    )
    result = train_arch(
        a,
        data,
        rec,
        seed=seed,
        C=channels,
        N=cells,
        device=device,
        quiet=quiet,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    table = Table(title=f"{data.name} / {rec.name} / {result.num_params / 1e6:.3f} M params")
    names = list(data.evals)
    for col in ["epoch", "lr", "train loss", "train acc"]:
        table.add_column(col, justify="right")
    for n in names:
        table.add_column(f"{n} loss", justify="right")
        table.add_column(f"{n} acc", justify="right")
    table.add_column("time (s)", justify="right")
    for r in result.epochs:
        cells_ = [str(r.epoch), f"{r.lr:.4f}", f"{r.train_loss:.4f}", f"{r.train_acc:.2f}"]
        for n in names:
            cells_ += [f"{r.eval[n]['loss']:.4f}", f"{r.eval[n]['acc']:.2f}"]
        cells_.append(f"{r.epoch_time + r.eval_time:.1f}")
        table.add_row(*cells_)
    console.print(table)
    console.print(
        f"status {result.status}; train {result.total_train_time:.1f} s, "
        f"eval {result.total_eval_time:.1f} s" + (f"; {result.error}" if result.error else ""),
        highlight=False,
    )
    if out is not None:
        result.to_json(out)
        console.print(f"wrote {out}", highlight=False)
    if result.status != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
