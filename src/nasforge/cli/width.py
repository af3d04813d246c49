"""``nasforge width ...``: width search under a FLOPs budget or a latency target
(CafeNet, fixed sharing, uniform scaling, AOWS).

    nasforge width space --backbone resnet20
    nasforge width search --backbone resnet20 --dataset digits --flops 50% --method cafenet -o DIR
    nasforge width search --method aows --latency-target 0.5 --device cpu -o DIR
    nasforge width retrain DIR
    nasforge width compare --backbone resnet20 --dataset digits --flops 30%,50% -o DIR

Recipes are NAS-Bench-201's (``nasforge.train.RECIPES``) with overrides; the defaults here
(10 epochs, batch 64) size a run on the embedded ``digits`` data to minutes on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from nasforge.cli.options import EvaluatorOptions as E
from nasforge.cli.options import check_seed, seed_option, threads_option

width_app = typer.Typer(
    help="Width search under a FLOPs budget or latency target: CafeNet, fixed sharing, "
    "uniform scaling, AOWS.",
    no_args_is_help=True,
)

_DATASET_HELP = "digits, synthetic[-<R>px][-<K>c], cifar10-valid, cifar10, cifar100, ImageNet16-120"
_EPOCHS = 10
_BATCH = 64


class W:
    """The options of the width commands, declared once (one definition, one meaning):
    ``width search`` and ``width compare`` share all but their method choice; each command
    gives the default."""

    Out = Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (search.json / compare.json).")
    ]
    Backbone = Annotated[
        str, typer.Option("--backbone", help="resnet20, resnet56, mobilenetv2, nats-sss")
    ]
    Dataset = Annotated[str, typer.Option("--dataset", help=_DATASET_HELP)]
    Flops = Annotated[
        str,
        typer.Option(
            "--flops", help="Budget: '50%' of the full net or '12.5M' (compare: comma-separated)."
        ),
    ]
    LatencyTarget = Annotated[
        str | None,
        typer.Option(
            "--latency-target",
            help="Latency target in ms per image (replaces --flops; required by aows); every "
            "method searches under the same measured latency model. compare: comma-separated "
            "targets, cafenet, fixed, aows and uniform compared at equal measured latency.",
        ),
    ]
    Bins = Annotated[
        str | None,
        typer.Option(
            "--bins", help="flops (FLOPs-sensitive) or uniform; default: the backbone's grid"
        ),
    ]
    Levels = Annotated[
        int | None,
        typer.Option(
            "--levels", help="Grid levels (default 10: 10%..100%; nats-sss: 8, its 8..64)."
        ),
    ]
    MinRatio = Annotated[
        float | None, typer.Option("--min-ratio", help="Smallest width ratio (default 0.1).")
    ]
    LatencyModel = Annotated[
        Path | None,
        typer.Option(
            "--latency-model", help="Fitted latency model JSON: reused if it exists, else written."
        ),
    ]
    LatencySamples = Annotated[
        int,
        typer.Option(
            "--latency-samples", help="Measured configurations to fit on (official: 8000)."
        ),
    ]
    LatencyVal = Annotated[int, typer.Option("--latency-val", help="Held-out configurations.")]
    LatencyBatch = Annotated[int, typer.Option("--latency-batch", help="Batch size when timing.")]
    LatencyWarmup = Annotated[int, typer.Option("--latency-warmup", help="Untimed passes.")]
    LatencyRepeats = Annotated[int, typer.Option("--latency-repeats", help="Timed passes (mean).")]
    LatencyPenalty = Annotated[float, typer.Option("--latency-penalty", help="Monotonicity K.")]
    LatencyKeying = Annotated[
        str,
        typer.Option(
            "--latency-keying",
            help="Latency variables per layer type and channels (official 'layer-type') or "
            "per channel-group pair ('group-pair').",
        ),
    ]
    AowsWarmup = Annotated[
        int, typer.Option("--aows-warmup", help="Epochs before adaptive sampling.")
    ]
    Recipe = Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Recipe to derive from (default nb201-200e; AOWS's supernet: aows-20e).",
        ),
    ]
    Epochs = Annotated[
        int | None,
        typer.Option("--epochs", help="Supernet training epochs (default: 20 for aows, else 10)."),
    ]
    BatchSize = Annotated[int, typer.Option("--batch-size")]
    Lr = Annotated[float | None, typer.Option("--lr")]
    NumRandom = Annotated[
        int | None,
        typer.Option(
            "--num-random", help="Random widths per step (sandwich; search default 2, aows 1)."
        ),
    ]
    Placements = Annotated[int, typer.Option("--placements", help="Min-min candidates per width.")]
    RBins = Annotated[
        float | None,
        typer.Option(
            "--r-bins", help="CafeNet free zone r in FLOPs-sensitive bins (default 1 bin)."
        ),
    ]
    Population = Annotated[int, typer.Option("--population")]
    Generations = Annotated[int, typer.Option("--generations")]
    Parents = Annotated[int, typer.Option("--parents")]
    Seed = Annotated[
        int, typer.Option("--seed", callback=check_seed, help="Random seed. (0..2**63-1)")
    ]
    Limit = Annotated[int | None, typer.Option("--limit", help="Keep N samples per split.")]
    DataDir = Annotated[Path | None, typer.Option("--data-dir")]
    Device = Annotated[str, typer.Option("--device", help="cpu or cuda (training and latency).")]
    Threads = E.Threads


def _latency_setup(
    path: Path | None, samples: int, val: int, batch: int, warmup: int, repeats: int,
    penalty: float, keying: str = "layer-type",
):  # fmt: skip
    from nasforge.cost.latency_model import LatencyFitSettings, MeasureSettings
    from nasforge.search.width.protocol import LatencySetup

    return LatencySetup(
        model_path=path,
        fit=LatencyFitSettings(samples=samples, val_samples=val, penalty=penalty, keying=keying),
        measure=MeasureSettings(batch_size=batch, warmup=warmup, repeats=repeats),
    )


def _recipe(name: str, epochs: int | None, batch_size: int | None, lr: float | None):
    from nasforge.train import get_recipe

    return get_recipe(name, epochs=epochs, batch_size=batch_size, lr=lr)


def _supernet_recipe(
    method: str, name: str | None, epochs: int | None, batch_size: int, lr: float | None
):
    """The supernet recipe of ``method``: ``--recipe`` if given; else AOWS's own
    (``aows-20e``: 20 epochs, constant lr 0.1 x batch / 256, wd 1e-5) for aows and
    ``nb201-200e`` for the others; ``--epochs`` (default: the recipe's 20 for aows,
    10 otherwise) and ``--lr`` override it."""
    from nasforge.train.recipe import aows_20e

    if name is None and method == "aows":
        return _recipe(aows_20e(batch_size), epochs, batch_size, lr)
    return _recipe(name or "nb201-200e", _EPOCHS if epochs is None else epochs, batch_size, lr)


def _settings(num_random: int, placements: int, population: int, generations: int, parents: int):
    from nasforge.search.width import EvolutionSettings, SupernetSettings

    return (
        SupernetSettings(num_random=num_random, num_placements=placements),
        # Refused, not clamped, when parents > population: the user asked for something else.
        EvolutionSettings(population=population, generations=generations, parents=parents),
    )


@width_app.command("space")
def space_cmd(
    backbone: W.Backbone = "resnet20",
    resolution: int = typer.Option(32, "--resolution", help="Input side in pixels."),
    num_classes: int = typer.Option(10, "--num-classes"),
    bins: W.Bins = None,
    levels: W.Levels = None,
    min_ratio: W.MinRatio = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Channel groups, candidate widths, FLOPs per bin step and space size of a backbone."""
    from rich.table import Table

    from nasforge.progress import output_console
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
    output_console().print(table)


@width_app.command("search")
def search_cmd(
    out: W.Out = ...,  # type: ignore[assignment]
    backbone: W.Backbone = "resnet20",
    dataset: W.Dataset = "digits",
    method: str = typer.Option(
        "cafenet",
        "--method",
        help="cafenet, fixed-width (fixed sharing), uniform-width (uniform scaling) or aows",
    ),
    sharing: str | None = typer.Option(None, "--sharing", hidden=True),
    flops: W.Flops = "50%",
    latency_target: W.LatencyTarget = None,
    latency_model: W.LatencyModel = None,
    latency_samples: W.LatencySamples = 8000,
    latency_val: W.LatencyVal = 200,
    latency_batch: W.LatencyBatch = 64,
    latency_warmup: W.LatencyWarmup = 10,
    latency_repeats: W.LatencyRepeats = 60,
    latency_penalty: W.LatencyPenalty = 100.0,
    latency_keying: W.LatencyKeying = "layer-type",
    aows_warmup: W.AowsWarmup = 5,
    distill: bool | None = typer.Option(
        None, "--distill/--no-distill", help="In-place distillation (default: the method's)."
    ),
    recipe: W.Recipe = None,
    epochs: W.Epochs = None,
    batch_size: W.BatchSize = _BATCH,
    lr: W.Lr = None,
    num_random: W.NumRandom = None,
    placements: W.Placements = 3,
    r_bins: W.RBins = None,
    population: W.Population = 16,
    generations: W.Generations = 6,
    parents: W.Parents = 8,
    bins: W.Bins = None,
    levels: W.Levels = None,
    min_ratio: W.MinRatio = None,
    seed: W.Seed = 0,
    limit: W.Limit = None,
    data_dir: W.DataDir = None,
    device: W.Device = "cpu",
    threads: W.Threads = None,
) -> None:
    """Train a supernet and search the best widths within a FLOPs budget or latency target."""
    from dataclasses import replace

    from nasforge.io import check_output_dir
    from nasforge.progress import make_progress, output_console
    from nasforge.search.width.aows import AOWSSettings
    from nasforge.search.width.protocol import WidthJob, check_method

    check_output_dir(out)  # before the supernet training, not after it
    console = output_console()
    algo = check_method(sharing if sharing is not None else method)
    sup, evo = _settings(2 if num_random is None else num_random, placements, population,
                         generations, parents)  # fmt: skip
    if algo == "aows":
        # AOWS's own sandwich (one random width, in-place distillation) unless overridden.
        sup = replace(sup, num_random=1 if num_random is None else num_random)
    rec = _supernet_recipe(algo, recipe, epochs, batch_size, lr)
    setup = _latency_setup(latency_model, latency_samples, latency_val, latency_batch,
                           latency_warmup, latency_repeats, latency_penalty,
                           latency_keying)  # fmt: skip
    bar = make_progress("{task.description}", console=console, transient=False)
    tasks: dict[str, int] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        record = WidthJob(
            backbone=backbone, dataset=dataset, out_dir=out, seed=seed, supernet=sup,
            evolution=evo, r_bins=r_bins, bins=bins, levels=levels,  # type: ignore[arg-type]
            min_ratio=min_ratio, limit=limit, data_root=data_dir, device=device,
            latency=setup, aows=AOWSSettings(warmup=aows_warmup),
        ).search(
            recipe=rec, method=algo, budget=flops, latency_target=latency_target,
            distill=distill, progress=progress,
        )  # fmt: skip
    res, uni = record["result"], record["uniform"]

    def describe(r: dict) -> str:
        acc = "-" if r["supernet_acc"] is None else f"{r['supernet_acc']:.2f}%"
        lat = ""
        if r.get("measured_latency_ms") is not None:
            lat = (f", {r['measured_latency_ms']:.4f} ms measured "
                   f"({r['pred_latency_ms']:.4f} predicted)")  # fmt: skip
        return f"{r['flops_m']:.3f} MFLOPs{lat}, supernet valid acc {acc}"

    target = (f"target {record['latency_target_ms']:.4g} ms" if record["latency_target_ms"]
              else f"budget {res['budget_mflops']:.3f} MFLOPs")  # fmt: skip
    console.print(
        f"[bold]{res['algorithm']}[/] ({escape(target)}): {escape(describe(res))}",
        highlight=False,
    )
    console.print(escape(f"uniform: {describe(uni)}"), highlight=False)
    if record.get("latency_model"):
        info = record["latency_model"]
        if "val_rmse_ms" in info:
            console.print(
                f"latency model: held-out RMSE {info['val_rmse_ms']:.4f} ms "
                f"({100 * info['val_nrmse']:.1f}% of {info['val_mean_ms']:.4f} ms)",
                highlight=False,
            )
    console.print(escape(f"widths {res['groups']}"), highlight=False)
    console.print(escape(f"wrote {out}/search.json"), highlight=False)
    _print_warnings(record)


def _print_warnings(record: dict) -> None:
    """The record's warnings (a latency target missed), on stderr: a log or a CI run keeps
    them apart from the results."""
    from nasforge.progress import output_console

    err = output_console(stderr=True)
    for message in record.get("warnings") or []:
        err.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


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
    threads: int | None = threads_option(),
) -> None:
    """Retrain the searched widths from scratch; write retrain.json."""
    from nasforge.io import check_output_file
    from nasforge.progress import output_console
    from nasforge.search.width.protocol import RETRAIN_FILE, run_retrain

    check_output_file(directory / RETRAIN_FILE)
    rec = _recipe(recipe, epochs, batch_size, lr)
    record = run_retrain(
        directory, rec, seed=seed, with_uniform=with_uniform, data_root=data_dir,
        device=device, quiet=quiet,
    )  # fmt: skip
    console = output_console()
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
    out: W.Out = ...,  # type: ignore[assignment]
    backbone: W.Backbone = "resnet20",
    dataset: W.Dataset = "digits",
    flops: W.Flops = "30%,50%",
    latency_target: W.LatencyTarget = None,
    latency_model: W.LatencyModel = None,
    latency_samples: W.LatencySamples = 8000,
    latency_val: W.LatencyVal = 200,
    latency_batch: W.LatencyBatch = 64,
    latency_warmup: W.LatencyWarmup = 10,
    latency_repeats: W.LatencyRepeats = 60,
    latency_penalty: W.LatencyPenalty = 100.0,
    latency_keying: W.LatencyKeying = "layer-type",
    aows_warmup: W.AowsWarmup = 5,
    recipe: W.Recipe = None,
    epochs: W.Epochs = None,
    retrain_epochs: int = typer.Option(_EPOCHS, "--retrain-epochs"),
    batch_size: W.BatchSize = _BATCH,
    lr: W.Lr = None,
    num_random: W.NumRandom = 2,
    placements: W.Placements = 3,
    r_bins: W.RBins = None,
    population: W.Population = 16,
    generations: W.Generations = 6,
    parents: W.Parents = 8,
    bins: W.Bins = None,
    levels: W.Levels = None,
    min_ratio: W.MinRatio = None,
    seed: W.Seed = 0,
    limit: W.Limit = None,
    data_dir: W.DataDir = None,
    device: W.Device = "cpu",
    threads: W.Threads = None,
) -> None:
    """CafeNet vs fixed sharing vs uniform scaling (and AOWS under latency targets) at the
    same budgets, all retrained."""
    from rich.table import Table

    from nasforge.io import check_output_dir
    from nasforge.progress import output_console
    from nasforge.search.width.aows import AOWSSettings, parse_latency_target
    from nasforge.search.width.protocol import WidthJob

    check_output_dir(out)
    console = output_console()
    sup, evo = _settings(num_random, placements, population, generations, parents)
    budgets = [b.strip() for b in flops.split(",") if b.strip()]
    targets = None
    if latency_target is not None:
        # Parsed here so a bad target fails before any measurement or training.
        targets = [parse_latency_target(t) for t in latency_target.split(",") if t.strip()]
    setup = _latency_setup(latency_model, latency_samples, latency_val, latency_batch,
                           latency_warmup, latency_repeats, latency_penalty,
                           latency_keying)  # fmt: skip
    record = WidthJob(
        backbone=backbone, dataset=dataset, out_dir=out, seed=seed, supernet=sup,
        evolution=evo, r_bins=r_bins, bins=bins, levels=levels,  # type: ignore[arg-type]
        min_ratio=min_ratio, limit=limit, data_root=data_dir, device=device,
        latency=setup, aows=AOWSSettings(warmup=aows_warmup),
    ).compare(
        budgets=budgets,
        supernet_recipe=_supernet_recipe("cafenet", recipe, epochs, batch_size, lr),
        aows_recipe=_supernet_recipe("aows", recipe, epochs, batch_size, lr),
        retrain_recipe=_recipe(recipe or "nb201-200e", retrain_epochs, batch_size, lr),
        progress=lambda m: console.print(escape(m), highlight=False),
        latency_targets=targets,
    )  # fmt: skip
    latency = record["mode"] == "latency"
    unit = "ms measured" if latency else "MFLOPs"
    table = Table(title=escape(f"{backbone} on {dataset}: retrained accuracy (%)"))
    table.add_column("budget")
    for method in record["methods"]:
        table.add_column(f"{method} ({unit})", justify="right")
        table.add_column(f"{method} test", justify="right")
    for i, b in enumerate(record["budgets"]):
        row = [b if latency else f"{b} = {record['budgets_mflops'][i]:.3f}M"]
        for rows in record["methods"].values():
            r = rows[i]
            cost = f"{r['measured_latency_ms']:.4f}" if latency else f"{r['flops_m']:.3f}"
            row += [cost, "-" if r["test_acc"] is None else f"{r['test_acc']:.2f}"]
        table.add_row(*row)
    console.print(table)
    console.print(escape(f"wrote {out}/compare.json, compare.png"), highlight=False)
    _print_warnings(record)


def register(app: typer.Typer) -> None:
    app.add_typer(width_app, name="width")
