"""Option checks several commands share, declared once so that they validate alike.

They run while the command line is parsed, so a bad value is refused (a usage error,
exit code 2, naming the option, the value and what was expected) before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from nasforge.errors import NasforgeError

#: Seeds reach numpy (``SeedSequence``: non-negative integers only) and torch
#: (``manual_seed``: at most 64 bits); 2**63 - 1 leaves room for ``seed + k`` offsets.
SEED_MAX = 2**63 - 1


def check_seed(value: int | None) -> int | None:
    """An option callback refusing what numpy and torch cannot take as a seed."""
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(
            f"{value} is not a seed; expected an integer in 0..2**63-1 (numpy and torch "
            "take non-negative seeds only)"
        )
    return value


def at_least(
    low: int, high: str | int | None = "MAX_SETTING"
) -> Callable[[int | None], int | None]:
    """An option callback refusing an integer below ``low`` or above ``high`` (None passes:
    "not given"). ``high`` names a limit of :mod:`nasforge.inputs` (``MAX_SETTING`` by
    default, raised with ``NASFORGE_MAX_SETTING``) or is a plain number; None: no maximum."""

    def check(value: int | None) -> int | None:
        if value is None:
            return value
        if value < low:
            raise typer.BadParameter(f"{value} is invalid; expected an integer >= {low}")
        if high is not None:
            cap = high if isinstance(high, int) else option_limit(high)
            if value > cap:
                env = f"NASFORGE_{high}" if isinstance(high, str) else None
                raise typer.BadParameter(
                    f"{value} is invalid; expected an integer in {low}..{cap}"
                    + (f" ({env} raises the maximum)" if env else "")
                )
        return value

    return check


#: Maxima of numeric options beside :data:`nasforge.inputs.MAX_SETTING` (the default);
#: each raised with the environment variable ``NASFORGE_<NAME>``.
OPTION_LIMITS: dict[str, Callable[[], int]] = {
    "MAX_RUNS": lambda: 10_000,  # independent search runs (the NB201 protocol: 100 or 500)
    "MAX_NETWORK_INT": lambda: 1024,  # width C / cells N (NB201 16 / 5, DARTS 36 / 20)
    "MAX_THREADS": lambda: available_cores(),  # more only oversubscribes the cores
    "MAX_BATCH": lambda: 4096,  # images per batch of a proxy / study evaluation
}


def option_limit(name: str) -> int:
    """The maximum ``name`` (``MAX_SETTING``, ``MAX_RUNS``, ``MAX_THREADS`` ...): its
    ``NASFORGE_<name>`` environment value, else its default."""
    from nasforge.inputs import env_limit, limit

    return env_limit(name, OPTION_LIMITS[name]()) if name in OPTION_LIMITS else limit(name)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def seed_option(default: int | None = 0, help: str = "Random seed.", name: str = "--seed") -> Any:
    """A seed option (``--seed`` unless ``name`` says otherwise) refusing what numpy and
    torch cannot take (negative, > 63 bits)."""
    return typer.Option(default, name, callback=check_seed, help=f"{help} (0..2**63-1)")


def channels_option(
    default: int | None = None, help: str = "Network width C (train evaluator; NB201 default 16)."
) -> Any:
    """``--channels``: network width C of the trained networks (None: the space's default).
    The old spelling ``--C`` is read too by commands registered with :class:`OldSpellings`."""
    return typer.Option(default, "--channels", callback=at_least(1, "MAX_NETWORK_INT"), help=help)


def cells_option(
    default: int | None = None, help: str = "Cells per stage N (train evaluator; NB201 default 5)."
) -> Any:
    """``--cells``: cells per stage N of the trained networks (None: the space's default).
    The old spelling ``--N`` is read too by commands registered with :class:`OldSpellings`."""
    return typer.Option(default, "--cells", callback=at_least(1, "MAX_NETWORK_INT"), help=help)


#: Whether this command line gave ``--threads`` (its callback runs for every command that
#: has the option, given or not, so the flag never carries over from an earlier command).
_THREADS_GIVEN = [False]


def threads_given() -> bool:
    """Whether ``--threads`` was given to the command being run."""
    return _THREADS_GIVEN[0]


def _set_threads(value: int | None) -> int | None:
    _THREADS_GIVEN[0] = value is not None
    if value is None:
        return None
    # more threads than cores only oversubscribes; 100,000 of them exhausted the process
    # limit and crashed OpenBLAS (issue 23)
    at_least(1, "MAX_THREADS")(value)
    import torch

    torch.set_num_threads(value)
    return value


_THREADS_HELP = (
    "torch intra-op threads (default: one per core; 1 on a shared machine); at most the "
    "cores available unless NASFORGE_MAX_THREADS raises it."
)


def threads_option() -> Any:
    """``--threads``: torch intra-op threads of the command's process (and of each worker a
    build starts), set as soon as the command line is read; None keeps torch's default (one
    per core). 1 avoids OpenMP spin-wait collapse on an oversubscribed machine. Every
    CPU-heavy command (bench build, train, search, compare, zc, study, width) takes it."""
    return typer.Option(
        None,
        "--threads",
        callback=_set_threads,
        help=_THREADS_HELP,
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
    read as JSON where it parses (numbers, booleans, lists), else kept as a string, within
    the limits of :func:`nasforge.inputs.parse_setting` (digits, depth, magnitude, NaN)."""
    from nasforge.inputs import excerpt, parse_setting

    kind = error if isinstance(error, type) and issubclass(error, NasforgeError) else NasforgeError
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{option} {excerpt(item)} must look like KEY=VALUE, e.g. {example}")
        out[key.strip()] = parse_setting(value, f"{option} {excerpt(key.strip(), 40)}", kind)
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


_OBJECTIVES_HELP = (
    "Multi-objective search: comma-separated objectives, each NAME or NAME:max|min "
    "(valid_acc, params_m, flops_m / madds_m, latency_s, train_time_s), e.g. "
    "valid_acc,latency_s. Adds the fronts, hypervolume over the budget (95% CI over runs), "
    "pareto.json and fronts.png / hypervolume.png to OUT."
)


def objectives_option() -> Any:
    """``--objectives``: the objectives of a multi-objective search (``valid_acc,latency_s``,
    ``valid_acc:max,params_m:min``), checked against the registered ones while the command
    line is read (see :mod:`nasforge.evaluate.objectives`)."""
    return typer.Option(
        None,
        "--objectives",
        callback=_check_objectives,
        help=_OBJECTIVES_HELP,
    )


class EvaluatorOptions:
    """The options ``nasforge search`` and ``nasforge compare`` share, declared once: the
    evaluator (:class:`nasforge.evaluate.spec.EvaluatorSpec` holds their values), the runs
    and the output. Each is an ``Annotated`` type; a command gives the default::

        def compare(dataset: EvaluatorOptions.Dataset = "cifar10-valid", ...)
    """

    Out = Annotated[Path, typer.Option("-o", "--out", help="Output directory.")]
    Task = Annotated[
        str,
        typer.Option(
            "--task",
            help="Task (see `nasforge task list`). search: tasks other than classification "
            "run their own search methods (e.g. --task sr-x2 --space hinas --algo hinas); "
            "compare: they need --evaluator train, which trains with the task's loss and "
            "reports its primary metric.",
        ),
    ]
    Dataset = Annotated[
        str,
        typer.Option(
            "--dataset",
            help="Dataset (as the table / loader names it; another task's default where "
            "this default is left).",
        ),
    ]
    Bench = Annotated[Path | None, typer.Option("--bench", help="Benchmark table directory.")]
    Evaluator = Annotated[
        str | None,
        typer.Option(
            "--evaluator",
            help="'table' (needs --bench; simulated clock) or 'train' (real training; wall "
            "clock). Default: table with --bench, else train.",
        ),
    ]
    Space = Annotated[
        str,
        typer.Option(
            "--space",
            help="Search space (see `nasforge space list`). Tables answer for nb201; any "
            "space with a network builder can be searched by real training.",
        ),
    ]
    Budget = Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="'12000s', '30m', '1h' (simulated or wall seconds, as the evaluator's clock) "
            "or '20evals'. Default: the per-dataset NB201/NATS budget (cifar10-valid 12000s, "
            "cifar100 40000s, ImageNet16-120 120000s).",
        ),
    ]
    Runs = Annotated[
        int,
        typer.Option(
            "--runs",
            callback=at_least(1, "MAX_RUNS"),
            help="Independent runs (of each algorithm: seeds seed..seed+runs-1, the same for "
            "every algorithm); at most 10000 unless NASFORGE_MAX_RUNS raises it.",
        ),
    ]
    Seed = Annotated[
        int,
        typer.Option("--seed", callback=check_seed, help="Seed of the first run. (0..2**63-1)"),
    ]
    Hp = Annotated[
        str, typer.Option("--hp", help="Table recipe the search sees (the 12-epoch proxy).")
    ]
    SeedPolicy = Annotated[
        str,
        typer.Option(
            "--seed-policy", help="Which table seed answers: random (official), mean, or a seed."
        ),
    ]
    ReportHp = Annotated[
        str | None, typer.Option("--report-hp", help="Table recipe reported (default '200').")
    ]
    Recipe = Annotated[
        str | None,
        typer.Option("--recipe", help="Training recipe (train evaluator; one-shot search)."),
    ]
    DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Dataset root directory.")]
    Limit = Annotated[
        int | None, typer.Option("--limit", help="Cap on samples per split (tiny runs).")
    ]
    Channels = Annotated[
        int | None,
        typer.Option(
            "--channels",
            callback=at_least(1, "MAX_NETWORK_INT"),
            help="Network width C (train evaluator; NB201 default 16).",
        ),
    ]
    Cells = Annotated[
        int | None,
        typer.Option(
            "--cells",
            callback=at_least(1, "MAX_NETWORK_INT"),
            help="Cells per stage N (train evaluator; NB201 default 5).",
        ),
    ]
    Threads = Annotated[
        int | None,
        typer.Option(
            "--threads",
            callback=_set_threads,
            help=_THREADS_HELP,
        ),
    ]
    Device = Annotated[str, typer.Option("--device", help="Device for real training.")]
    Epochs = Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="Epochs: of each trained arch (train evaluator) / of the supernet (one-shot).",
        ),
    ]
    MaxEvals = Annotated[
        int | None,
        typer.Option(
            "--max-evals", callback=at_least(1), help="Safety cap on evaluations per run."
        ),
    ]
    Quiet = Annotated[
        bool,
        typer.Option("--quiet", help="No progress output (the result table is still printed)."),
    ]
    Objectives = Annotated[
        str | None,
        typer.Option(
            "--objectives",
            callback=_check_objectives,
            help=_OBJECTIVES_HELP,
        ),
    ]
