"""``nasforge train``: train one architecture of a space with a recipe and write its record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from nasforge.cli.options import (
    OldSpellings,
    cells_option,
    channels_option,
    seed_option,
    threads_option,
)


class _SpaceTraining:
    """How ``train`` parses ``--arch`` and checks the network options (both before any data
    is loaded) and trains it."""

    def __init__(
        self,
        parse: Callable[[str], tuple[Any, str]],
        fit: Callable[..., Any],
        check_cells: Callable[[int], Any] | None = None,
    ) -> None:
        self.parse, self.fit, self.check_cells = parse, fit, check_cells


def _nb201_parse(arch: str) -> tuple[Any, str]:
    from nasforge.spaces.nb201 import Arch

    a = Arch.parse(arch)
    return a, a.to_string()


def _nb201_fit(a: Any, data: Any, rec: Any, C: int | None, cells: int | None, **kw: Any) -> Any:
    from nasforge.train import train_arch

    return train_arch(a, data, rec, C=C or 16, N=cells or 5, **kw)


def _darts_parse(arch: str) -> tuple[Any, str]:
    from nasforge.cli.darts import read_genotype

    g = read_genotype(arch)
    return g, g.to_string()


def _darts_fit(g: Any, data: Any, rec: Any, C: int | None, cells: int | None, **kw: Any) -> Any:
    from nasforge.train.darts import train_genotype

    return train_genotype(g, data, rec, C=C, layers=cells, **kw)


def _darts_check_cells(cells: int) -> None:
    from nasforge.nn.darts import check_cells

    check_cells(cells)


_SPACES: dict[str, _SpaceTraining] = {
    "nb201": _SpaceTraining(_nb201_parse, _nb201_fit),
    "darts": _SpaceTraining(_darts_parse, _darts_fit, _darts_check_cells),
}


def _generic_parse(space: str, arch: str) -> tuple[Any, str]:
    """An arch of any registered space from its string form, or from a file holding it
    (plain text, or JSON with an ``"arch"`` field, as ``search -o DIR`` writes arch.json)."""
    import json

    from nasforge.errors import ArchError
    from nasforge.spaces import SPACES, get_space

    if space not in SPACES:
        raise typer.BadParameter(f"unknown space {space!r}; expected one of {SPACES.names()}")
    sp = get_space(space)
    text = arch
    path = Path(arch)
    if len(arch) < 4096 and path.is_file():
        if path.stat().st_size > 1 << 20:
            raise ArchError(
                f"{arch}: an arch file of {path.stat().st_size} bytes; expected < 1 MiB"
            )
        try:
            text = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ArchError(f"{arch} is not a UTF-8 text file holding an arch") from None
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except (json.JSONDecodeError, RecursionError, ValueError):
                raise ArchError(f"{arch} is not valid JSON") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("arch"), str):
                raise ArchError(f"{arch}: expected a JSON object with an 'arch' string")
            text = doc["arch"]
    value = sp.from_string(text)
    return value, sp.to_string(value)


def _generic_fit(space: str, task: Any, options: dict[str, Any]) -> Callable[..., Any]:
    """Training of an arch of any space with a network builder, for any task: the
    network comes from the space's builder with the task's data keywords."""
    from nasforge.nn import build_network, network_options

    accepted = network_options(space)  # fails early for a space without a network
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        from nasforge.errors import ArchError

        raise ArchError(
            f"--network {', '.join(unknown)}: the {space} network has no such option; "
            f"expected some of {sorted(accepted)}"
        )

    def fit(value: Any, data: Any, rec: Any, C: int | None, cells: int | None, **kw: Any) -> Any:
        from nasforge.train import fit_fresh

        opts = dict(options)
        if C is not None:
            opts.setdefault("C", C)
        if cells is not None:
            opts.setdefault("N", cells)
        io = task.network_io(data)
        # fit_fresh builds the network before any training: a bad option fails there.
        result, _ = fit_fresh(
            lambda: build_network(space, value, io=io, **opts), data, rec, task=task, **kw
        )
        result.meta.update(opts)
        return result

    return fit


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
        help="KEY=VALUE option of the space's network builder (repeatable); for spaces "
        "other than nb201/darts, whose width and depth are --channels / --cells.",
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
    from nasforge.io import check_output_dir, check_output_file
    from nasforge.progress import output_console
    from nasforge.tasks import get_task
    from nasforge.train import CHECKPOINT_NAME, get_recipe
    from nasforge.train.checkpoint import resume_path

    tk = get_task(task)
    legacy = tk.name == "classification" and space in _SPACES
    if legacy:
        value, arch_text = _SPACES[space].parse(arch)
        check = _SPACES[space].check_cells
        if cells is not None and check is not None:
            from nasforge.errors import NetworkError

            try:
                check(cells)
            except NetworkError as exc:
                raise typer.BadParameter(str(exc), param_hint="'--cells'") from None
        if network:
            raise typer.BadParameter(
                f"the {space} network takes --channels / --cells, not --network"
            )
    else:
        value, arch_text = _generic_parse(space, arch)
    options = key_value_pairs(network, "--network", "C=16")
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
    fit = _SPACES[space].fit if legacy else _generic_fit(space, tk, options)
    result = fit(
        value,
        data,
        rec,
        channels,
        cells,
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
