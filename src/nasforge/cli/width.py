"""``nasforge width ...``: width search under a FLOPs budget (CafeNet, fixed sharing, uniform).

    nasforge width space --backbone resnet20
    nasforge width search --backbone resnet20 --dataset digits --flops 50% --sharing cafenet -o DIR
    nasforge width retrain DIR
    nasforge width compare --backbone resnet20 --dataset digits --flops 30%,50% -o DIR

Recipes are NAS-Bench-201's (``nasforge.train.RECIPES``) with overrides; the defaults here
(10 epochs, batch 64) size a run on the embedded ``digits`` data to minutes on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from nasforge.cli.options import at_least, seed_option

width_app = typer.Typer(
    help="Width search under a FLOPs budget: CafeNet, fixed sharing, uniform scaling.",
    no_args_is_help=True,
)

_DATASET_HELP = "digits, synthetic[-<R>px][-<K>c], cifar10-valid, cifar10, cifar100, ImageNet16-120"
_EPOCHS = 10
_BATCH = 64


def _recipe(name: str, epochs: int | None, batch_size: int | None, lr: float | None):
    from nasforge.train import get_recipe

    return get_recipe(name, epochs=epochs, batch_size=batch_size, lr=lr)


def _threads(threads: int | None) -> None:
    # Intra-op threads; 1 avoids OpenMP spin-wait collapse on an oversubscribed machine.
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _settings(num_random: int, placements: int, population: int, generations: int, parents: int):
    from nasforge.search.width import EvolutionSettings, SupernetSettings

    return (
        SupernetSettings(num_random=num_random, num_placements=placements),
        # Refused, not clamped, when parents > population: the user asked for something else.
        EvolutionSettings(population=population, generations=generations, parents=parents),
    )


@width_app.command("space")
def space_cmd(
    backbone: str = typer.Option("resnet20", "--backbone", help="resnet20, resnet56, mobilenetv2"),
    resolution: int = typer.Option(32, "--resolution", help="Input side in pixels."),
    num_classes: int = typer.Option(10, "--num-classes"),
    bins: str = typer.Option("flops", "--bins", help="flops (FLOPs-sensitive) or uniform"),
    levels: int = typer.Option(10, "--levels", help="Grid levels (10: 10%..100%)."),
    min_ratio: float = typer.Option(0.1, "--min-ratio"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Channel groups, candidate widths, FLOPs per bin step and space size of a backbone."""
    from rich.console import Console
    from rich.table import Table

    from nasforge.spaces.width import make_space

    space = make_space(
        backbone, num_classes=num_classes, resolution=resolution, bins=bins,  # type: ignore[arg-type]
        levels=levels, min_ratio=min_ratio,
    )  # fmt: skip
    info = space.describe()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    steps = space.bin_steps()
    table = Table(
        title=f"{backbone} @ {resolution}px: {info['full_flops_m']:.3f} MFLOPs, "
        f"{info['full_params_m']:.4f} M params, 10^{info['log10_size']:.1f} configurations"
    )
    for col in ("group", "full", "candidates", "MFLOPs per step (mean)"):
        table.add_column(col)
    for (g, cands), st in zip(info["groups"].items(), steps, strict=False):
        mean = f"{st.mean():.4f}" if len(st) else "-"
        table.add_row(g, str(cands[-1]), " ".join(map(str, cands)), mean)
    Console().print(table)


@width_app.command("search")
def search_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory for search.json etc."),
    backbone: str = typer.Option("resnet20", "--backbone", help="resnet20, resnet56, mobilenetv2"),
    dataset: str = typer.Option("digits", "--dataset", help=_DATASET_HELP),
    flops: str = typer.Option("50%", "--flops", help="Budget: '50%' of the full net or '12.5M'."),
    sharing: str = typer.Option("cafenet", "--sharing", help="cafenet or fixed"),
    recipe: str = typer.Option("nb201-200e", "--recipe", help="Supernet recipe to derive from."),
    epochs: int = typer.Option(_EPOCHS, "--epochs", help="Supernet training epochs."),
    batch_size: int = typer.Option(_BATCH, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    num_random: int = typer.Option(2, "--num-random", help="Random widths per step (sandwich)."),
    placements: int = typer.Option(3, "--placements", help="Min-min candidates per width."),
    r_bins: float | None = typer.Option(
        None, "--r-bins", help="CafeNet offset r in bins (default: r = 1 channel)."
    ),
    population: int = typer.Option(16, "--population"),
    generations: int = typer.Option(6, "--generations"),
    parents: int = typer.Option(8, "--parents"),
    bins: str = typer.Option("flops", "--bins", help="flops (FLOPs-sensitive) or uniform"),
    levels: int = typer.Option(10, "--levels"),
    min_ratio: float = typer.Option(0.1, "--min-ratio"),
    seed: int = seed_option(0),
    limit: int | None = typer.Option(None, "--limit", help="Keep N samples per split."),
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    device: str = typer.Option("cpu", "--device"),
    threads: int | None = typer.Option(
        None, "--threads", callback=at_least(1), help="torch intra-op threads."
    ),
) -> None:
    """Train a supernet and search the best widths within a FLOPs budget."""
    _threads(threads)
    from rich.console import Console

    from nasforge.io import check_output_dir
    from nasforge.search.width.protocol import run_search

    check_output_dir(out)  # before the supernet training, not after it
    console = Console()
    sup, evo = _settings(num_random, placements, population, generations, parents)
    rec = _recipe(recipe, epochs, batch_size, lr)

    def on_epoch(r: dict) -> None:
        console.print(
            f"supernet epoch {r['epoch']}: largest {r['acc_largest']:.2f}% "
            f"smallest {r['acc_smallest']:.2f}% ({r['time']:.0f} s)",
            highlight=False,
        )

    record = run_search(
        backbone=backbone, dataset=dataset, budget=flops, sharing=sharing, out_dir=out,
        recipe=rec, seed=seed, supernet=sup, evolution=evo, r_bins=r_bins,
        bins=bins, levels=levels, min_ratio=min_ratio,  # type: ignore[arg-type]
        limit=limit, data_root=data_dir, device=device, on_epoch=on_epoch,
    )  # fmt: skip
    res, uni = record["result"], record["uniform"]
    console.print(
        f"[bold]{res['algorithm']}[/]: {res['flops_m']:.3f} / {res['budget_mflops']:.3f} MFLOPs, "
        f"supernet valid acc {res['supernet_acc']:.2f}% (uniform {uni['flops_m']:.3f} MFLOPs: "
        f"{uni['supernet_acc']:.2f}%)",
        highlight=False,
    )
    console.print(escape(f"widths {res['groups']}"), highlight=False)
    console.print(
        escape(f"wrote {out}/search.json, search_front.png, supernet.pt"), highlight=False
    )


@width_app.command("retrain")
def retrain_cmd(
    directory: Path = typer.Argument(..., help="A directory written by `nasforge width search`."),
    recipe: str = typer.Option("nb201-200e", "--recipe", help="Retraining recipe to derive from."),
    epochs: int = typer.Option(_EPOCHS, "--epochs"),
    batch_size: int = typer.Option(_BATCH, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    seed: int | None = seed_option(None, "Default: the search's seed."),
    with_uniform: bool = typer.Option(False, "--with-uniform", help="Also retrain uniform."),
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    device: str = typer.Option("cpu", "--device"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int | None = typer.Option(
        None, "--threads", callback=at_least(1), help="torch intra-op threads."
    ),
) -> None:
    """Retrain the searched widths from scratch; write retrain.json."""
    _threads(threads)
    from rich.console import Console

    from nasforge.io import check_output_file
    from nasforge.search.width.protocol import RETRAIN_FILE, run_retrain

    check_output_file(directory / RETRAIN_FILE)
    rec = _recipe(recipe, epochs, batch_size, lr)
    record = run_retrain(
        directory, rec, seed=seed, with_uniform=with_uniform, data_root=data_dir,
        device=device, quiet=quiet,
    )  # fmt: skip
    console = Console()
    for key, r in record["runs"].items():
        console.print(
            escape(
                f"{key} ({r['algorithm']}): {r['flops_m']:.3f} MFLOPs, valid {r['valid_acc']}%, "
                f"test {r['test_acc']}% [{r['status']}]"
            ),
            highlight=False,
        )
    console.print(escape(f"wrote {directory}/retrain.json"), highlight=False)


@width_app.command("compare")
def compare_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Directory for compare.json/png."),
    backbone: str = typer.Option("resnet20", "--backbone"),
    dataset: str = typer.Option("digits", "--dataset", help=_DATASET_HELP),
    flops: str = typer.Option("30%,50%", "--flops", help="Comma-separated budgets."),
    recipe: str = typer.Option("nb201-200e", "--recipe", help="Recipe both phases derive from."),
    epochs: int = typer.Option(_EPOCHS, "--epochs", help="Supernet training epochs."),
    retrain_epochs: int = typer.Option(_EPOCHS, "--retrain-epochs"),
    batch_size: int = typer.Option(_BATCH, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    num_random: int = typer.Option(2, "--num-random"),
    placements: int = typer.Option(3, "--placements"),
    r_bins: float | None = typer.Option(None, "--r-bins", help="Default: r = 1 channel."),
    population: int = typer.Option(16, "--population"),
    generations: int = typer.Option(6, "--generations"),
    parents: int = typer.Option(8, "--parents"),
    seed: int = seed_option(0),
    limit: int | None = typer.Option(None, "--limit"),
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    device: str = typer.Option("cpu", "--device"),
    threads: int | None = typer.Option(
        None, "--threads", callback=at_least(1), help="torch intra-op threads."
    ),
) -> None:
    """CafeNet vs fixed sharing vs uniform scaling at the same budgets, all retrained."""
    _threads(threads)
    from rich.console import Console
    from rich.table import Table

    from nasforge.io import check_output_dir
    from nasforge.search.width.protocol import run_compare

    check_output_dir(out)
    console = Console()
    sup, evo = _settings(num_random, placements, population, generations, parents)
    budgets = [b.strip() for b in flops.split(",") if b.strip()]
    record = run_compare(
        backbone=backbone, dataset=dataset, budgets=budgets, out_dir=out,
        supernet_recipe=_recipe(recipe, epochs, batch_size, lr),
        retrain_recipe=_recipe(recipe, retrain_epochs, batch_size, lr),
        seed=seed, supernet=sup, evolution=evo, r_bins=r_bins, limit=limit,
        data_root=data_dir, device=device,
        progress=lambda m: console.print(escape(m), highlight=False),
    )  # fmt: skip
    table = Table(title=escape(f"{backbone} on {dataset}: retrained accuracy (%)"))
    table.add_column("budget")
    for method in record["methods"]:
        table.add_column(f"{method} (MFLOPs)", justify="right")
        table.add_column(f"{method} test", justify="right")
    for i, b in enumerate(record["budgets"]):
        row = [f"{b} = {record['budgets_mflops'][i]:.3f}M"]
        for rows in record["methods"].values():
            r = rows[i]
            row += [f"{r['flops_m']:.3f}", "-" if r["test_acc"] is None else f"{r['test_acc']:.2f}"]
        table.add_row(*row)
    console.print(table)
    console.print(escape(f"wrote {out}/compare.json, compare.png"), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(width_app, name="width")
