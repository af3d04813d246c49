"""``nasforge study``: how well a weight-sharing supernet ranks a table's archs.

nasforge study ranking --bench TABLE --dataset cifar10 --data-dir DIR --epochs 10 -o OUT
nasforge study compare OUT1 OUT2 ... -o FIGURE.png   (sharing variants side by side)
"""

from __future__ import annotations

from pathlib import Path

import typer

from nasforge.cli.options import at_least, threads_option
from nasforge.cli.search import _parse_params

study_app = typer.Typer(help="Studies of search methods.", no_args_is_help=True)


@study_app.command("ranking")
def ranking(
    bench: Path = typer.Option(..., "--bench", help="Table with the ground truth."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    dataset: str = typer.Option("digits", "--dataset", help="Data the supernet trains on."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Dataset root directory."),
    limit: int | None = typer.Option(
        None, "--limit", callback=at_least(1), help="Cap on samples per split."
    ),
    epochs: int = typer.Option(10, "--epochs", callback=at_least(1), help="Supernet epochs."),
    archs: int = typer.Option(
        50, "--archs", callback=at_least(1), help="Archs of the table to rank."
    ),
    arch_set: str | None = typer.Option(
        None,
        "--arch-set",
        help="Rank exactly these archs instead (the --archs syntax of 'bench build': N = the "
        "first N of its --order-seed order, or a file); their truth is read after training.",
    ),
    order_seed: int = typer.Option(0, "--order-seed", help="Order seed of --arch-set N."),
    wait: float = typer.Option(
        0.0, "--wait", help="With --arch-set: seconds to wait for a table still being built."
    ),
    partition: str = typer.Option("none", "--partition", help="none, edge or random."),
    edge: int = typer.Option(
        0, "--edge", callback=at_least(0), help="Edge whose op splits the space (edge)."
    ),
    groups: int = typer.Option(
        2, "--groups", callback=at_least(1), help="Parts of a random partition."
    ),
    prefix: int | None = typer.Option(
        None,
        "--prefix",
        help="Share the stem and the first K cells (reduction blocks count) between the "
        "parts' supernets; default: nothing shared.",
    ),
    step_every: int = typer.Option(
        5, "--step-every", callback=at_least(1), help="Last epoch: score every K steps."
    ),
    eval_batches: int = typer.Option(
        2, "--eval-batches", callback=at_least(1), help="Validation batches per arch."
    ),
    top_k: int = typer.Option(5, "--top-k", callback=at_least(1), help="k of the top-k report."),
    truth: str = typer.Option("test_acc", "--truth", help="test_acc or valid_acc."),
    hp: str | None = typer.Option(None, "--hp", help="Table recipe of the truth."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    param: list[str] | None = typer.Option(None, "--param", help="Supernet KEY=VALUE."),
    threads: int | None = threads_option(),
) -> None:
    """Train a uniform single-path supernet, score a fixed arch set every epoch (and every
    K steps of the last one) and compare with the table: tau, rho, stability, top-k."""
    from nasforge.bench.build import resolve_archs
    from nasforge.data import load_splits
    from nasforge.errors import SearchError
    from nasforge.study.ranking import RankingConfig, run_ranking_study

    cfg = RankingConfig(
        num_archs=archs,
        partition=partition,
        edge=edge,
        groups=groups,
        prefix=prefix,
        step_every=step_every,
        eval_batches=eval_batches,
        top_k=top_k,
        truth=truth,
    )
    if wait < 0:
        raise SearchError(f"--wait {wait} invalid; expected seconds >= 0")
    chosen = None if arch_set is None else resolve_archs(arch_set, order_seed=order_seed)
    data = load_splits(dataset, data_dir, seed=seed, limit=limit)
    result = run_ranking_study(
        bench,
        data,
        out,
        config=cfg,
        supernet={"epochs": epochs, **_parse_params(param)},
        seed=seed,
        bench_hp=hp,
        archs=chosen,
        wait_s=wait,
    )
    last = result["snapshots"][-1]
    typer.echo(
        f"{len(result['archs'])} archs, {result['groups']} supernet(s): final tau "
        f"{last['tau']:.3f}, rho {last['rho']:.3f}; wrote {out / 'ranking.json'}"
    )


@study_app.command("compare")
def compare(
    runs: list[Path] = typer.Argument(..., help="Study directories (or ranking.json files)."),
    out: Path = typer.Option(..., "--out", "-o", help="Combined JSON (the figure: .png)."),
    bench: Path | None = typer.Option(None, "--bench", help="The studies' table."),
    replicate: Path | None = typer.Option(
        None, "--replicate", help="The same archs trained with another seed (needs --bench)."
    ),
    meta: Path | None = typer.Option(None, "--meta", help="A JSON object stored as 'meta'."),
) -> None:
    """Put sharing variants side by side: one JSON and one figure of tau / rho over
    training per variant, with the table's seed-to-seed tau as its noise floor."""
    import json

    from nasforge.errors import SearchError
    from nasforge.report.study import RESULT_NAME
    from nasforge.study.ranking import compare_variants, truth_agreement

    if (replicate is None) != (bench is None):
        raise SearchError("--replicate and --bench go together; expected both or neither")
    files = [r / RESULT_NAME if r.is_dir() else r for r in runs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SearchError(f"no study result at {missing[0]}; expected a ranking.json")
    results = [json.loads(f.read_text()) for f in files]
    extra = None if meta is None else json.loads(meta.read_text())
    noise = None
    if bench is not None and replicate is not None:
        from nasforge.bench import Benchmark

        table = results[0]["table"]
        noise = truth_agreement(
            Benchmark.open(bench),
            Benchmark.open(replicate),
            results[0]["archs"],
            table["dataset"],
            table["hp"],
            table["truth"],
        )
    combined = compare_variants(results, out, noise=noise, meta=extra)
    for v in combined["variants"]:
        typer.echo(
            f"{v['variant']}: final tau {v['final']['tau']:.3f}, rho {v['final']['rho']:.3f}"
        )
    typer.echo(f"wrote {out} and {out.with_suffix('.png')}")


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
