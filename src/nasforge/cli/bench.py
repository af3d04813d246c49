"""``nasforge bench ...``: import, inspect and query benchmark tables.

``bench_app`` is the Typer group; other modules may add commands to it (e.g. ``build``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from nasforge.errors import BenchError
from nasforge.progress import output_console

bench_app = typer.Typer(
    help="Tabular benchmarks: import official files or CSVs, inspect and query tables.",
    no_args_is_help=True,
)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "missing"
    if isinstance(x, float):
        return f"{x:.4f}"
    return str(x)


@bench_app.command("import")
def bench_import(
    src: Path = typer.Argument(..., help="Official .pth / NATS directory / CSV / Parquet."),
    output: Path = typer.Option(..., "-o", "--output", help="Table directory to create."),
    fmt: str = typer.Option(
        "auto", "--format", help="auto | nb201 | nats-tss | nats-sss | nb201-export | csv | parquet"
    ),
    dataset: str | None = typer.Option(
        None, help="Dataset of a single-dataset plain table without a dataset column."
    ),
    hp: str = typer.Option("final", help="Recipe key for a plain final-metrics table."),
    column: list[str] = typer.Option(
        [], "--column", help="ROLE=NAME column assignment for plain tables (repeatable)."
    ),
    acc_scale: str = typer.Option("auto", help="auto | percent | fraction (plain tables)."),
    overwrite: bool = typer.Option(False, help="Replace an existing table at --output."),
) -> None:
    """Import an official NAS-Bench-201 / NATS-Bench file or a plain table."""
    from nasforge.bench import Benchmark
    from nasforge.bench.importers import import_table

    columns = {}
    for item in column:
        role, sep, name = item.partition("=")
        if not sep or not role or not name:
            raise BenchError(f"--column {item!r} must look like ROLE=NAME, e.g. valid_acc=val_top1")
        columns[role.strip()] = name.strip()
    path = import_table(
        src,
        output,
        format=fmt,
        dataset=dataset,
        hp=hp,
        columns=columns or None,
        acc_scale=acc_scale,
        overwrite=overwrite,
    )
    bench = Benchmark.open(path)
    typer.echo(f"imported {len(bench)} archs into {path} (datasets: {', '.join(bench.datasets)})")


@bench_app.command("info")
def bench_info(
    table: Path = typer.Argument(..., help="Table directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Datasets, recipes, epochs, seeds and coverage of a table."""
    from nasforge.bench import Benchmark

    info = Benchmark.open(table).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    console = output_console()
    console.print(
        f"[bold]{escape(str(info['path']))}[/]  {info['format']}  space={info['space']}  "
        f"archs={info['archs']}/{info['space_size']}  journal={info['journal_records']} pending"
    )
    meta = info.get("meta") or {}
    if meta.get("synthetic") or meta.get("source") == "synthetic":
        console.print(
            "[bold yellow]SYNTHETIC table[/]: made-up accuracies for testing the machinery, "
            "not NAS-Bench-201 results"
        )
    t = Table("dataset", "hp", "epochs", "seeds", "archs", "runs ok", "failed", "time", "metrics")
    for g in info["groups"]:
        t.add_row(
            g["dataset"],
            g["hp"],
            "final only" if g["epochs"] is None else str(g["epochs"]),
            f"{g['aggregate']} of seeds" if g.get("aggregate") else ",".join(map(str, g["seeds"])),
            str(g["archs"]),
            str(g["runs_ok"]),
            str(g["runs_failed"] + g["runs_diverged"]),
            "yes" if g["has_time"] else "no",
            ", ".join(g["metrics"]),
        )
    console.print(t)
    if info["costs"]:
        c = Table("dataset", "cost coverage (archs)", "latency_s batch")
        for ds, cov in info["costs"].items():
            batch = info["latency_batch"].get(ds)
            c.add_row(
                ds,
                ", ".join(f"{k}={v}" for k, v in cov.items()),
                "-" if batch is None or "latency_s" not in cov else str(batch),
            )
        console.print(c)


@bench_app.command("query")
def bench_query(
    table: Path = typer.Argument(..., help="Table directory."),
    arch: str = typer.Argument(..., help="Official arch string or index."),
    dataset: str = typer.Option(..., help="Dataset, e.g. cifar10-valid, cifar100."),
    hp: str | None = typer.Option(None, help="Recipe key (default: the longest in the table)."),
    epoch: int | None = typer.Option(None, help="Report the state after this many epochs."),
    seed: int | None = typer.Option(None, help="One seed (default: mean over seeds)."),
    curves: bool = typer.Option(False, help="Include per-epoch curves (JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Final metrics and costs of one arch."""
    from nasforge.bench import Benchmark

    bench = Benchmark.open(table)
    if hp is None:
        hps = bench.hps(dataset)
        hp = max(hps, key=lambda h: (bench.num_epochs(dataset, h) or 0, h))
    rec = bench.query(arch, dataset, hp=hp, seed=seed, epochs=epoch)
    out = rec.to_dict()
    if not curves:
        out.pop("curves")
    out["epochs"] = epoch if epoch is not None else bench.num_epochs(rec.dataset, rec.hp)
    agg = bench.aggregate(rec.dataset, rec.hp)
    if agg is not None:  # seed means: the placeholder seed is not a training seed
        out["seeds"], out["aggregate"] = [], agg
    if as_json:
        typer.echo(json.dumps(_clean(out), indent=2))
        return
    t = Table(title=f"{out['arch']} (index {out['index']})", show_header=False)
    t.add_row("dataset / hp", f"{rec.dataset} / {rec.hp}")
    t.add_row("epochs", _fmt(out["epochs"]))
    t.add_row("seeds", f"{agg} of seeds" if agg else ", ".join(map(str, rec.seeds)))
    for k, v in rec.final.items():
        t.add_row(k, _fmt(v))
    for k, v in rec.cost.items():
        t.add_row(k, _fmt(v))
    output_console().print(t)


@bench_app.command("top")
def bench_top(
    table: Path = typer.Argument(..., help="Table directory."),
    dataset: str = typer.Option(..., help="Dataset."),
    metric: str = typer.Option("valid_acc", help="Metric to rank by (final, seed-averaged)."),
    k: int = typer.Option(10, "-k", help="How many archs."),
    hp: str | None = typer.Option(None, help="Recipe key (default: the longest in the table)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The best archs of a table by a metric."""
    from nasforge.bench import Benchmark

    bench = Benchmark.open(table)
    if hp is None:
        hps = bench.hps(dataset)
        hp = max(hps, key=lambda h: (bench.num_epochs(dataset, h) or 0, h))
    top = bench.top(dataset, metric, hp=hp, k=k)
    rows = [
        {"rank": i + 1, "index": bench.arch_index(a), "arch": bench.arch_string(a), metric: v}
        for i, (a, v) in enumerate(top)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table("rank", "index", "arch", metric, title=f"{dataset} / hp={hp}")
    for r in rows:
        t.add_row(str(r["rank"]), str(r["index"]), r["arch"], _fmt(r[metric]))
    output_console().print(t)


@bench_app.command("verify")
def bench_verify(table: Path = typer.Argument(..., help="Table directory.")) -> None:
    """Check every column file's sha256 and the journal's CRCs (slow on big tables)."""
    from nasforge.bench import verify

    out = verify(table)
    typer.echo(
        f"ok: {out['files']} files, {out['bytes']} bytes, {out['journal_records']} journal "
        f"records{' (torn tail ignored)' if out['journal_torn_tail'] else ''}"
    )


@bench_app.command("repair")
def bench_repair(table: Path = typer.Argument(..., help="Table directory.")) -> None:
    """Salvage a table whose journal is damaged: keep every record that passes its CRC.

    The records are compacted into a new generation (atomically); the damaged journal is
    kept aside in the table directory. An intact table is left untouched.
    """
    from nasforge.bench.writer import repair_table

    out = repair_table(table)
    if not out["damaged"]:
        typer.echo(f"{table}: journal intact, nothing to repair")
        return
    dropped = ", ".join(f"bytes {a}-{b}" for a, b in out["skipped"]) or "none"
    typer.echo(
        f"{table}: repaired; kept {out['kept']} journal records that pass their CRC, "
        f"dropped {dropped}"
    )
    if out["aside"] is not None:
        typer.echo(f"the damaged journal is kept as {Path(table) / out['aside']}")


@bench_app.command("export")
def bench_export(
    table: Path = typer.Argument(..., help="Table directory."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write."),
    fmt: str | None = typer.Option(
        None, "--format", help="parquet | csv (default: from the suffix; no suffix: parquet)."
    ),
    curves: bool = typer.Option(False, help="Add per-epoch curves (lists; JSON arrays in CSV)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --output file."),
) -> None:
    """One row per arch x dataset x hp x seed (final metrics, costs) for pandas / DuckDB."""
    from nasforge.bench.export import export_format, export_table

    fmt = export_format(output, fmt)
    path = export_table(table, output, format=fmt, curves=curves, overwrite=overwrite)
    typer.echo(f"wrote {path} ({fmt}{', with curves' if curves else ''})")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
