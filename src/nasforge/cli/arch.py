"""``nasforge arch ...`` and ``nasforge space ...``: any registered space (``--space``)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from nasforge.progress import output_console
from nasforge.spaces import DEFAULT_SPACE, SPACES, get_space

arch_app = typer.Typer(help="Inspect one architecture of a search space.", no_args_is_help=True)
space_app = typer.Typer(help="Inspect the search spaces.", no_args_is_help=True)

_SPACE_HELP = "Search space name (see `nasforge space list`)."


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def _print_info(title: str, info: dict[str, Any]) -> None:
    """One row per field; a list of records (NB201's edges) gets one row per record."""
    table = Table(title=title, show_header=False)
    for key, value in info.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                first, *rest = item.values()
                table.add_row(f"{key[:-1] if key.endswith('s') else key} {first}", _cell(rest))
        else:
            table.add_row(key, _cell(value))
    output_console().print(table)


@arch_app.command("info")
def arch_info(
    arch: str = typer.Argument(
        ..., help="The arch in its space's string form (NB201: official string or index)."
    ),
    space: str = typer.Option(DEFAULT_SPACE, "--space", help=_SPACE_HELP),
    dataset: str = typer.Option(
        "cifar10", help="Dataset the cost is counted for (NB201: cifar10, cifar100, ...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The arch's string, the space's details of it (NB201: index, ops, canonical form) and
    its params and FLOPs where the space counts them."""
    from nasforge.cost import space_cost

    sp = get_space(space)
    a = sp.from_string(arch)
    info: dict[str, Any] = {"space": sp.name, "arch": sp.to_string(a), **sp.describe_arch(a)}
    cost = space_cost(sp.name, a, dataset)
    if cost is not None:
        info.update({"dataset": dataset, "params_m": cost.params_m, "flops_m": cost.flops_m})
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    title = info.pop("arch")
    _print_info(title, info)


def _size_fields(sp: Any) -> dict[str, Any]:
    """What ``space list`` and ``space info`` both say of a space's size, the same way for
    every space: ``size``, the exact number of architectures (however large); ``indexed``,
    whether they have an index (``size()`` of the protocol is None when they have not)."""
    indexed = sp.size()
    count = getattr(sp, "count", None)
    return {
        "size": indexed if indexed is not None else (count() if count is not None else None),
        "indexed": indexed is not None,
    }


#: Keys every space's ``space info`` starts with, in this order (then its own details).
COMMON_INFO_KEYS = ("space", "size", "indexed", "encodings")


def space_description(name: str) -> dict[str, Any]:
    """``space info``'s record: :data:`COMMON_INFO_KEYS` for every space, then the keys of
    the space's own ``describe()`` (its ``count`` is the ``size`` here)."""
    sp = get_space(name)
    own = sp.describe()
    common = {"space": sp.name, **_size_fields(sp), "encodings": own.get("encodings")}
    return {**common, **{k: v for k, v in own.items() if k not in common and k != "count"}}


@space_app.command("info")
def space_info(
    space: str = typer.Argument(DEFAULT_SPACE, help=_SPACE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Size, encodings and structure of a space (NB201: nodes, ops, unique archs)."""
    info = space_description(space)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    _print_info(f"search space {info.get('space', space)}", info)


@space_app.command("list")
def space_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every registered space with its size (the exact number of archs) and whether its
    archs have an index (an enumerable space)."""
    rows = [{"space": n, **_size_fields(get_space(n))} for n in SPACES.names()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="search spaces")
    table.add_column("space")
    table.add_column("size", justify="right")
    table.add_column("indexed")
    for r in rows:
        size = "unknown" if r["size"] is None else f"{r['size']:,}"
        table.add_row(r["space"], size, "yes" if r["indexed"] else "no")
    output_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(arch_app, name="arch")
    app.add_typer(space_app, name="space")
