"""``nasforge search`` and ``nasforge compare``: the NAS-Bench-201 protocol from the shell,
on any registered space (``--space``, default nb201).

    nasforge search --algo rea --bench TABLE --dataset cifar10-valid --budget 12000s \\
        --runs 100 --seed 0 -o DIR
    nasforge compare --algos random,rea,reinforce,bohb,local-search --bench TABLE \\
        --dataset cifar10-valid --runs 100 -o DIR
    nasforge search --algo rea --evaluator train --dataset digits --recipe nb201-12e \\
        --budget 20evals -o DIR
    nasforge compare --algos nsga2,mo-rea,random,rea-scalar --bench TABLE --dataset cifar100 \\
        --objectives valid_acc,flops_m --runs 100 -o DIR     # fronts + hypervolume too

Black-box algorithms run through :mod:`nasforge.search.protocol`; a one-shot algorithm
(``kind == "oneshot"``) is handed to :func:`nasforge.cli.oneshot.run_oneshot`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nasforge.cli.options import EvaluatorOptions as E
from nasforge.cli.options import key_value_pairs
from nasforge.errors import SearchError
from nasforge.progress import output_console

if TYPE_CHECKING:
    from nasforge.evaluate.spec import EvaluatorSpec, ZeroCostSettings


def _parse_params(params: list[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` pairs (VALUE read as JSON when it parses)."""
    return key_value_pairs(params, "--param", "population_size=20", SearchError)


def _synthetic_note(ev: Any) -> str:
    """A suffix for titles when the evaluator reads a synthetic (made-up) table, and the
    metric the values are when the evaluator trains another task than classification."""
    facts = ev.describe()
    note = " (synthetic table)" if facts.get("synthetic") else ""
    if facts.get("task", "classification") != "classification":
        from nasforge.tasks import get_task

        metric = get_task(facts["task"]).primary_metric
        unit = f" in {metric.unit}" if metric.unit else ""
        note += f"; values: {facts['task']} {metric.name}{unit}"
    return note


def _shown_dataset(ev: Any, dataset: str) -> str:
    """The dataset a figure names: the one given, or, for another task than classification
    (whose command-line default stands for the task's own dataset), the one it trained on."""
    facts = ev.describe()
    if facts.get("task", "classification") == "classification":
        return dataset
    return str(facts.get("dataset", dataset))


def _print_summaries(console: Console, summaries: list[dict[str, Any]], note: str = "") -> None:
    from nasforge.search.protocol import format_pm

    table = Table(title=f"search results (returned arch, mean ± std over runs){note}")
    for col in ("algorithm", "runs", "budget", "evals", "search valid", "valid", "test"):
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for s in summaries:
        table.add_row(
            s["algo"],
            str(s["runs"]),
            s["budget"],
            f"{s['evals_mean']:.1f}",
            format_pm(s["search_valid_mean"], s["search_valid_std"]),
            format_pm(s["report_valid_mean"], s["report_valid_std"]),
            format_pm(s["test_mean"], s["test_std"]),
        )
    console.print(table)


def _evaluator_spec(
    *,
    task: str,
    space: str,
    dataset: str,
    evaluator: str | None,
    bench: Path | None,
    hp: str,
    seed_policy: str,
    report_hp: str | None,
    recipe: str | None,
    epochs: int | None,
    data_dir: Path | None,
    limit: int | None,
    channels: int | None,
    cells: int | None,
    device: str,
    budget: str | None,
    objectives: str | None,
    seed: int,
    zero_cost: ZeroCostSettings | None = None,
) -> EvaluatorSpec:
    """The evaluator spec of a `search` / `compare` command line, field by field. The
    command's default dataset (cifar10-valid) stands for the task's own with other tasks."""
    from nasforge.evaluate.spec import EvaluatorSpec, TableSettings, TrainingSettings

    own_default = task != "classification" and dataset == "cifar10-valid"
    return EvaluatorSpec(
        space=space,
        dataset=None if own_default else dataset,
        task=task,
        evaluator=evaluator,
        bench=bench,
        table=TableSettings(hp=hp, seed_policy=seed_policy, report_hp=report_hp),
        training=TrainingSettings(
            recipe=recipe,
            epochs=epochs,
            data_dir=data_dir,
            limit=limit,
            channels=channels,
            cells=cells,
            device=device,
        ),
        zero_cost=zero_cost,
        objectives=objectives,
        budget=budget,
        seed=seed,
    )


def _build(spec: EvaluatorSpec, console: Console) -> tuple[Any, Any]:
    """:func:`nasforge.evaluate.spec.build_evaluator`, its notes (a default budget) printed."""
    from nasforge.evaluate.spec import build_evaluator

    return build_evaluator(spec, note=lambda text: console.print(escape(text), highlight=False))


def _progress(console: Console) -> Any:
    from nasforge.progress import make_progress

    return make_progress(
        "[progress.description]{task.description}", transient=True, console=console
    )


@contextlib.contextmanager
def _training_progress(bar: Any, ev: Any, evals_total: int | None) -> Iterator[Any]:
    """With real training (a wall-clock evaluator): two more lines on ``bar`` -- the
    evaluations answered so far and the epochs of the training in progress (in-process
    trainings; with --workers they run in workers and only evaluations are counted). Yields
    the evaluator to search with."""
    if ev.clock != "wall":
        yield ev
        return
    from nasforge.progress import CountingEvaluator, epoch_listener

    evals = bar.add_task("evaluations", total=evals_total)
    epochs = bar.add_task("epochs of this training", total=None)

    def on_epoch(done: int, total: int) -> None:
        bar.update(epochs, completed=done, total=total)

    with epoch_listener(on_epoch):
        yield CountingEvaluator(ev, lambda k: bar.advance(evals, k))


def _require_objectives(names: list[str], objectives: str | None) -> None:
    """Multi-objective algorithms need --objectives: refused before any data is loaded."""
    from nasforge.search import BLACKBOX

    if objectives is not None:
        return
    needing = [
        n for n in names if n in BLACKBOX and getattr(BLACKBOX.get(n), "multi_objective", False)
    ]
    if needing:
        raise SearchError(
            f"{', '.join(map(repr, needing))}: multi-objective, needs --objectives (e.g. "
            "--objectives valid_acc,params_m)"
        )


def _save_fronts(
    out: Path,
    results: dict[str, Any],
    ev: Any,
    meta: dict[str, Any],
    title: str,
    console: Console,
) -> None:
    """With --objectives: the fronts and hypervolume of every algorithm's runs
    (:func:`nasforge.report.fronts.save_mo`), printed and written to OUT."""
    from nasforge.report.fronts import save_mo
    from nasforge.search.fronts import make_box

    box = make_box(ev.objectives, ev, results)
    paths = save_mo(out, results, box, meta=meta, title=title, evaluator=ev)
    table = Table(
        title=f"hypervolume ({', '.join(box.names)}; normalised, reference {box.ref}; "
        f"max {box.max_hypervolume:.4g}){_synthetic_note(ev)}"
    )
    cols = ("algorithm", "runs", "evals", "hypervolume (95% CI)", "std", "front size", "reported")
    for col in cols:
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for s in json.loads(paths["json"].read_text(encoding="utf-8"))["summaries"]:
        table.add_row(
            s["algo"],
            str(s["runs"]),
            f"{s['evals_mean']:.1f}",
            f"{s['hv_mean']:.4f} ± {s['hv_ci95']:.4f}",
            f"{s['hv_std']:.4f}",
            f"{s['front_size_mean']:.1f}",
            f"{s['report_hv_mean']:.4f} ± {s['report_hv_ci95']:.4f}"
            if "report_hv_mean" in s
            else "n/a",
        )
    console.print(table)
    console.print(
        escape(
            f"wrote {paths['json']}, {paths['markdown']}, {paths['fronts']}, {paths['hypervolume']}"
        )
    )


def _is_task_search(algo: str) -> bool:
    from nasforge.search.task_search import task_searches

    return algo in task_searches()


def _run_task_search(algo: str, task: str, space: str, out: Path, **options: Any) -> None:
    """``search --task``: a task's own search method (arch.json + summary.json in OUT)."""
    from rich.markup import escape

    from nasforge.search.task_search import TaskSearchSpec, run_task_search
    from nasforge.tasks import get_task

    spec = TaskSearchSpec(task=get_task(task), space=space, **options)
    result = run_task_search(algo, spec, out)
    console = Console(soft_wrap=True)
    console.print(f"derived arch ({escape(algo)}, {escape(task)}):", highlight=False)
    console.print(escape(result.arch), highlight=False, soft_wrap=True)
    names = {m.name for m in spec.task.metrics}
    for name, value in result.metrics.items():
        shown = spec.task.metric(name).format(value) if name in names else f"{value:.4g}"
        console.print(f"  {escape(name)} {shown}", highlight=False)
    console.print(f"search {result.search_time_s:.1f}s; wrote {escape(str(out))}/arch.json")


def search(
    algo: str = typer.Option(..., "--algo", help="Registered algorithm name."),
    task: E.Task = "classification",
    dataset: E.Dataset = "cifar10-valid",
    out: E.Out = ...,  # type: ignore[assignment]
    bench: E.Bench = None,
    evaluator: E.Evaluator = None,
    space: E.Space = "nb201",
    budget: E.Budget = None,
    runs: E.Runs = 1,
    seed: E.Seed = 0,
    hp: E.Hp = "12",
    seed_policy: E.SeedPolicy = "random",
    report_hp: E.ReportHp = None,
    param: list[str] | None = typer.Option(
        None, "--param", help="Algorithm setting KEY=VALUE (repeatable)."
    ),
    recipe: E.Recipe = None,
    data_dir: E.DataDir = None,
    limit: E.Limit = None,
    channels: E.Channels = None,
    cells: E.Cells = None,
    threads: E.Threads = None,
    device: E.Device = "cpu",
    epochs: E.Epochs = None,
    train_epochs: int | None = typer.Option(
        None, "--train-epochs", help="One-shot: epochs to retrain the derived arch."
    ),
    max_evals: E.MaxEvals = None,
    workers: int = typer.Option(
        1,
        "--workers",
        help="Train evaluator: evaluate up to K asked archs at once on a local process pool "
        "of K workers (searchers that need each outcome first, e.g. bohb, stay sequential).",
    ),
    quiet: E.Quiet = False,
    zc_proxy: str | None = typer.Option(
        None,
        "--zc-proxy",
        help="Zero-cost proxy answering fidelity 0 next to the evaluator, its compute time "
        "charged to the search clock (used by zc-* searchers; see `nasforge zc`).",
    ),
    zc_dataset: str | None = typer.Option(
        None, "--zc-dataset", help="Dataset of the proxy batch (default: --dataset)."
    ),
    zc_batch_size: int = typer.Option(64, "--zc-batch-size", help="Images in the proxy batch."),
    zc_scores: Path | None = typer.Option(
        None,
        "--zc-scores",
        help="Rows of `nasforge zc` scored with the same settings (dataset, batch size, seed, "
        "network): reused instead of recomputed, each run still charged their seconds.",
    ),
    zc_charge: float | None = typer.Option(
        None,
        "--zc-charge",
        help="Seconds charged per proxy query instead of the measured time (reproducible "
        "clocks under a seconds budget).",
    ),
    objectives: E.Objectives = None,
) -> None:
    """Run one algorithm N times under the NAS-Bench-201 protocol; write trajectories,
    summary.json and curve.png to OUT."""
    from nasforge.io import check_output_dir
    from nasforge.report.search import plot_facts, save_search
    from nasforge.search import algorithm_kind
    from nasforge.search.protocol import run_protocol, search_algorithm, summarize

    # --quiet silences progress and notes; the result table and paths are the output.
    console = output_console(quiet=quiet)
    out_console = output_console()
    from nasforge.search.registry import algorithm_names

    # another task's own search method, or a task other than classification with a name
    # no black-box / one-shot registry holds (the error lists the task's methods)
    if _is_task_search(algo) or (task != "classification" and algo not in algorithm_names()):
        _run_task_search(
            algo,
            task,
            space,
            out,
            seed=seed,
            # cifar10-valid is the classification default: other tasks use their own.
            dataset=None if dataset == "cifar10-valid" else dataset,
            data_dir=data_dir,
            epochs=epochs,
            limit=limit,
            recipe=recipe,
            device=device,
            quiet=quiet,
            params=_parse_params(param) or {},
        )
        return
    search_algorithm(algo)  # a width method is refused, pointing at `width search`
    kind = algorithm_kind(algo)  # which registry holds it: blackbox or oneshot
    check_output_dir(out)  # before any work: a bad -o found at the end would lose the run
    if zc_proxy is not None and kind != "blackbox":
        raise SearchError(f"--zc-proxy serves black-box searchers; {algo!r} is {kind!r}")
    if objectives is not None and kind != "blackbox":
        raise SearchError(f"--objectives serves black-box searchers; {algo!r} is {kind!r}")
    _require_objectives([algo], objectives)
    if kind == "oneshot":
        from nasforge.cli.oneshot import run_oneshot

        # --recipe is passed only when given, so run_oneshot keeps its own default
        extra: dict[str, Any] = {} if recipe is None else {"recipe": recipe}
        if task != "classification":
            extra["task"] = task
        run_oneshot(
            algo,
            dataset,
            out,
            epochs=epochs,
            seed=seed,
            bench=bench,
            data_dir=data_dir,
            train_epochs=train_epochs,
            limit=limit,
            quiet=quiet,
            device=device,
            overrides=_parse_params(param) or None,
            space=space,
            **extra,
        )
        return
    from nasforge.evaluate.spec import ZeroCostSettings

    # the proxy's settings are checked first, then the budget, then the evaluator
    zero_cost = None
    if zc_proxy is not None:
        zero_cost = ZeroCostSettings(
            proxy=zc_proxy,
            dataset=zc_dataset,
            batch_size=zc_batch_size,
            charge=zc_charge,
            scores=zc_scores,
        )
    spec = _evaluator_spec(
        task=task,
        space=space,
        dataset=dataset,
        evaluator=evaluator,
        bench=bench,
        hp=hp,
        seed_policy=seed_policy,
        report_hp=report_hp,
        recipe=recipe,
        epochs=epochs,
        data_dir=data_dir,
        limit=limit,
        channels=channels,
        cells=cells,
        device=device,
        budget=budget,
        objectives=objectives,
        seed=seed,
        zero_cost=zero_cost,
    )
    params = _parse_params(param)
    ev, b = _build(spec, console)

    if workers < 1:
        raise SearchError(f"--workers {workers} must be >= 1")
    if workers > 1 and ev.clock != "wall":
        raise SearchError(
            f"--workers {workers} needs real training (--evaluator train): a table answers "
            "instantly and its simulated clock charges evaluations one after another"
        )
    executor = None
    if workers > 1:
        from nasforge.run import create_executor

        executor = create_executor("local", workers=workers)
    try:
        # evaluations to expect, where the budget or --max-evals says (else the bar counts up)
        caps = [int(b.amount)] if b.kind == "evals" else []
        caps += [] if max_evals is None else [max_evals]
        evals_total = min(caps) * runs if caps else None
        with _progress(console) as bar:
            bar_task = bar.add_task(f"{algo} on {dataset}", total=runs)
            with _training_progress(bar, ev, evals_total) as run_ev:
                results = run_protocol(
                    algo,
                    run_ev,
                    b,
                    runs=runs,
                    seed=seed,
                    algo_kwargs=params,
                    max_evals=max_evals,
                    progress=lambda i, r: bar.advance(bar_task),
                    parallel=workers,
                    executor=executor,
                )
    finally:
        if executor is not None:
            executor.shutdown()
    meta = {
        "command": "search",
        "space": ev.space.name,
        "evaluator": ev.describe(),
        "params": params,
    }
    note = _synthetic_note(ev)
    paths = save_search(
        out,
        results,
        meta=meta,
        title=f"{algo} on {_shown_dataset(ev, dataset)} ({b})",
        **plot_facts(ev),
    )
    _print_summaries(out_console, [summarize(results)], note)
    out_console.print(escape(f"wrote {paths['summary']}, {paths['trajectories']}, {paths['plot']}"))
    if objectives is not None:
        _save_fronts(out, {algo: results}, ev, meta, f"{algo} on {dataset} ({b})", out_console)


def compare(
    algos: str = typer.Option(
        "random,rea,reinforce,bohb,local-search", help="Comma-separated algorithm names."
    ),
    task: E.Task = "classification",
    dataset: E.Dataset = "cifar10-valid",
    out: E.Out = ...,  # type: ignore[assignment]
    bench: E.Bench = None,
    evaluator: E.Evaluator = None,
    space: E.Space = "nb201",
    budget: E.Budget = None,
    runs: E.Runs = 1,
    seed: E.Seed = 0,
    hp: E.Hp = "12",
    seed_policy: E.SeedPolicy = "random",
    report_hp: E.ReportHp = None,
    recipe: E.Recipe = None,
    data_dir: E.DataDir = None,
    limit: E.Limit = None,
    channels: E.Channels = None,
    cells: E.Cells = None,
    threads: E.Threads = None,
    device: E.Device = "cpu",
    epochs: E.Epochs = None,
    max_evals: E.MaxEvals = None,
    quiet: E.Quiet = False,
    objectives: E.Objectives = None,
) -> None:
    """Run several algorithms under the same protocol and seeds; write one comparison
    figure (comparison.png) and table (comparison.md / comparison.json) to OUT."""
    from nasforge.io import check_output_dir
    from nasforge.report.search import plot_facts, save_comparison
    from nasforge.search import BLACKBOX, algorithm_kind
    from nasforge.search.protocol import check_algos, summarize
    from nasforge.search.protocol import compare as run_compare

    names = [a.strip() for a in algos.split(",") if a.strip()]
    if not names:
        raise SearchError(f"--algos {algos!r} names no algorithm")
    check_algos(names)
    check_output_dir(out)
    for name in names:
        kind = algorithm_kind(name)
        if kind is None:
            BLACKBOX.get(name)  # unknown: a one-line error listing the black-box names
        if kind != "blackbox":
            raise SearchError(
                f"compare runs black-box algorithms; {name!r} is {kind!r} — run it with "
                "`nasforge search`"
            )
    _require_objectives(names, objectives)
    # --quiet silences progress and notes; the result table and paths are the output.
    console = output_console(quiet=quiet)
    out_console = output_console()
    spec = _evaluator_spec(
        task=task,
        space=space,
        dataset=dataset,
        evaluator=evaluator,
        bench=bench,
        hp=hp,
        seed_policy=seed_policy,
        report_hp=report_hp,
        recipe=recipe,
        epochs=epochs,
        data_dir=data_dir,
        limit=limit,
        channels=channels,
        cells=cells,
        device=device,
        budget=budget,
        objectives=objectives,
        seed=seed,
    )
    ev, b = _build(spec, console)

    with _progress(console) as bar:
        bar_task = bar.add_task(f"{len(names)} algorithms on {dataset}", total=runs * len(names))
        results = run_compare(
            names,
            ev,
            b,
            runs=runs,
            seed=seed,
            max_evals=max_evals,
            progress=lambda algo, i, r: bar.advance(bar_task),
        )
    meta = {"command": "compare", "space": ev.space.name, "evaluator": ev.describe()}
    note = _synthetic_note(ev)
    paths = save_comparison(
        out,
        results,
        meta=meta,
        title=f"{_shown_dataset(ev, dataset)}, budget {b}, {runs} runs",
        **plot_facts(ev),
    )
    _print_summaries(out_console, [summarize(r) for r in results.values()], note)
    out_console.print(escape(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}"))
    if objectives is not None:
        _save_fronts(out, results, ev, meta, f"{dataset}, budget {b}, {runs} runs", out_console)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("compare")(compare)
