"""The DARTS branch of ``nasforge arch info`` (called by the command's space dispatch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from nasforge.spaces.darts import PUBLISHED, Genotype, GenotypeError


def read_genotype(value: str) -> Genotype:
    """A genotype from a published name, a repr, a JSON string, or a path to a file holding
    a repr or JSON (the forms ``--arch`` accepts)."""
    text = value.strip()
    if text in PUBLISHED or "(" in text or text.startswith("{"):
        return Genotype.parse(text)
    path = Path(text)
    if path.is_file():
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise GenotypeError(f"cannot read genotype file {value!r} ({exc})") from None
    elif "/" in text or path.suffix:
        raise GenotypeError(
            f"genotype file {value!r} does not exist; expected a published name "
            f"{sorted(PUBLISHED)}, a Genotype(...) repr, JSON, or a file holding one"
        )
    return Genotype.parse(text)


def darts_arch_info_dict(arch: str, dataset: str = "cifar10") -> dict[str, Any]:
    """Genotype, its JSON form, whether it is in the DARTS space, params and multiply-adds."""
    from nasforge.cost.darts import darts_cost, darts_setting
    from nasforge.spaces.darts import DartsSpace

    g = read_genotype(arch)
    res, classes, kind, c, layers = darts_setting(dataset)
    cost = darts_cost(g, dataset)
    try:
        details = DartsSpace().describe_arch(g)
        in_space = True
    except GenotypeError:  # e.g. NASNet: 5 nodes, ops outside the 8 primitives
        details, in_space = {"genotype": g.to_dict()}, False
    return {
        "space": "darts",
        "arch": g.to_string(),
        **details,
        "in_space": in_space,
        "dataset": dataset,
        "network": f"Network{'ImageNet' if kind == 'imagenet' else 'CIFAR'}",
        "C": c,
        "layers": layers,
        "input": [3, res, res],
        "classes": classes,
        "params_m": cost.params_m,
        "flops_m": cost.flops_m,
    }


def darts_arch_info(arch: str, dataset: str = "cifar10", as_json: bool = False) -> None:
    """Print :func:`darts_arch_info_dict` as JSON or as a table."""
    info = darts_arch_info_dict(arch, dataset)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title=info["arch"], show_header=False)
    g = info["genotype"]
    for cell in ("normal", "reduce"):
        for k in range(0, len(g[cell]), 2):
            pairs = ", ".join(f"{op}<-{i}" for op, i in g[cell][k : k + 2])
            table.add_row(f"{cell} node {k // 2 + 2}", pairs)
        table.add_row(f"{cell} concat", str(g[f"{cell}_concat"]))
    table.add_row("in DARTS space", str(info["in_space"]))
    setting = f"{info['network']} C={info['C']} cells={info['layers']}, {dataset}"
    table.add_row(f"params ({setting})", f"{info['params_m']:.6f} M")
    table.add_row(f"multiply-adds ({setting})", f"{info['flops_m']:.6f} M")
    Console().print(table)
