"""Option checks several commands share, declared once so that they validate alike.

They run while the command line is parsed, so a bad value is refused (a usage error,
exit code 2, naming the option, the value and what was expected) before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand

from nasforge.errors import NasforgeError

#: Seeds reach numpy (``SeedSequence``: non-negative integers only) and torch
#: (``manual_seed``: at most 64 bits); 2**63 - 1 leaves room for ``seed + k`` offsets.
SEED_MAX = 2**63 - 1


def _check_seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(
            f"{value} is not a seed; expected an integer in 0..2**63-1 (numpy and torch "
            "take non-negative seeds only)"
        )
    return value


def at_least(low: int) -> Callable[[int | None], int | None]:
    """An option callback refusing an integer below ``low`` (None passes: "not given")."""

    def check(value: int | None) -> int | None:
        if value is not None and value < low:
            raise typer.BadParameter(f"{value} is invalid; expected an integer >= {low}")
        return value

    return check


def seed_option(default: int | None = 0, help: str = "Random seed.", name: str = "--seed") -> Any:
    """A seed option (``--seed`` unless ``name`` says otherwise) refusing what numpy and
    torch cannot take (negative, > 63 bits)."""
    return typer.Option(default, name, callback=_check_seed, help=f"{help} (0..2**63-1)")


def channels_option(
    default: int | None = None, help: str = "Network width C (train evaluator; NB201 default 16)."
) -> Any:
    """``--channels``: network width C of the trained networks (None: the space's default).
    The old spelling ``--C`` is read too by commands registered with :class:`OldSpellings`."""
    return typer.Option(default, "--channels", callback=at_least(1), help=help)


def cells_option(
    default: int | None = None, help: str = "Cells per stage N (train evaluator; NB201 default 5)."
) -> Any:
    """``--cells``: cells per stage N of the trained networks (None: the space's default).
    The old spelling ``--N`` is read too by commands registered with :class:`OldSpellings`."""
    return typer.Option(default, "--cells", callback=at_least(1), help=help)


def _set_threads(value: int | None) -> int | None:
    if value is None:
        return None
    at_least(1)(value)
    import torch

    torch.set_num_threads(value)
    return value


def threads_option() -> Any:
    """``--threads``: torch intra-op threads of the command's process (and of each worker a
    build starts), set as soon as the command line is read; None keeps torch's default (one
    per core). 1 avoids OpenMP spin-wait collapse on an oversubscribed machine. Every
    CPU-heavy command (bench build, train, search, compare, zc, study, width) takes it."""
    return typer.Option(
        None,
        "--threads",
        callback=_set_threads,
        help="torch intra-op threads (default: one per core; 1 on a shared machine).",
    )


#: Old option spellings still accepted (not shown in --help): old -> current name.
OLD_SPELLINGS: dict[str, str] = {"--C": "--channels", "--N": "--cells"}


class OldSpellings(TyperCommand):
    """A command that also reads the old spellings of its options (:data:`OLD_SPELLINGS`),
    hidden from its help: ``--C 8`` is read as ``--channels 8`` (and errors name
    ``--channels``). Register with ``app.command(name, cls=OldSpellings)``."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        names = {opt for p in self.params for opt in getattr(p, "opts", ())}
        out: list[str] = []
        for k, arg in enumerate(args):
            if arg == "--":  # everything after it is an argument, never an option
                out += args[k:]
                break
            flag, eq, value = arg.partition("=")
            new = OLD_SPELLINGS.get(flag)
            if new is not None and new in names and flag not in names:
                arg = new + eq + value
            out.append(arg)
        return super().parse_args(ctx, out)


def key_value_pairs(
    items: list[str] | None, option: str, example: str, error: type[Exception] = NasforgeError
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs of a repeatable option (``--param``, ``--network``); VALUE is
    read as JSON where it parses (numbers, booleans, lists), else kept as a string."""
    import json

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{option} {item!r} must look like KEY=VALUE, e.g. {example}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _check_objectives(value: str | None) -> str | None:
    if value is None:
        return None
    from nasforge.evaluate.objectives import parse_objectives

    try:
        parse_objectives(value)
    except NasforgeError as exc:
        # a NasforgeError, not a usage box: the CLI prints it as one line, exit code 2
        raise type(exc)(f"--objectives {value!r}: {exc}") from None
    return value


def objectives_option() -> Any:
    """``--objectives``: the objectives of a multi-objective search (``valid_acc,latency_s``,
    ``valid_acc:max,params_m:min``), checked against the registered ones while the command
    line is read (see :mod:`nasforge.evaluate.objectives`)."""
    return typer.Option(
        None,
        "--objectives",
        callback=_check_objectives,
        help="Multi-objective search: comma-separated objectives, each NAME or NAME:max|min "
        "(valid_acc, params_m, flops_m / madds_m, latency_s, train_time_s), e.g. "
        "valid_acc,latency_s. Adds the fronts, hypervolume over the budget (95% CI over "
        "runs), pareto.json and fronts.png / hypervolume.png to OUT.",
    )
