"""``nasforge arch ...`` and ``nasforge space ...``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from nasforge.spaces import nb201

arch_app = typer.Typer(help="Inspect one NB201 architecture.", no_args_is_help=True)
space_app = typer.Typer(help="Inspect a search space.", no_args_is_help=True)


@arch_app.command("info")
def arch_info(
    arch: str = typer.Argument(..., help="Official arch string or index 0..15624."),
    dataset: str = typer.Option("cifar10", help="cifar10, cifar10-valid, cifar100, ImageNet16-120"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Ops, official index, canonical form, params and FLOPs of an arch."""
    from nasforge.cost import arch_cost

    a = nb201.Arch.parse(arch)
    canon = a.canonical()
    cost = arch_cost(a, dataset)
    info = {
        "arch": a.to_string(),
        "index": a.to_index(),
        "ops": [
            {"edge": f"{dst}<-{src}", "op": op}
            for (dst, src), op in zip(nb201.EDGES, a.ops, strict=False)
        ],
        "canonical": canon.to_string(),
        "canonical_index": canon.to_index(),
        "is_canonical": canon == a,
        "dataset": dataset,
        "params_m": cost.params_m,
        "flops_m": cost.flops_m,
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title=info["arch"], show_header=False)
    table.add_row("index", str(info["index"]))
    for e in info["ops"]:
        table.add_row(f"edge {e['edge']}", e["op"])
    table.add_row("canonical", f"{info['canonical']} (index {info['canonical_index']})")
    table.add_row(f"params ({dataset})", f"{cost.params_m:.6f} M")
    table.add_row(f"FLOPs ({dataset})", f"{cost.flops_m:.6f} M")
    Console().print(table)


@space_app.command("info")
def space_info(
    space: str = typer.Argument("nb201", help="Search space name."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Size, number of unique (non-isomorphic) archs and op set of a space."""
    if space != "nb201":
        raise typer.BadParameter(f"unknown space {space!r}; expected 'nb201'")
    info = {
        "space": "nb201",
        "nodes": nb201.NUM_NODES,
        "edges": nb201.NUM_EDGES,
        "ops": list(nb201.OPS),
        "size": nb201.NUM_ARCHS,
        "unique": nb201.num_unique(),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title="NB201 search space", show_header=False)
    for k, v in info.items():
        table.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(arch_app, name="arch")
    app.add_typer(space_app, name="space")
