"""The one-shot half of ``nasforge search``: search, derive an arch, then train or look it up.

    nasforge search --algo pc-darts --dataset digits [--bench TABLE] [--epochs E] -o DIR
    nasforge search --space darts --algo pc-darts --dataset cifar10 -o DIR

In the DARTS space (``--space darts``: ``pc-darts``, ``darts-v1``, ``darts-v2``, ``gdas``,
``ddpnas``, :mod:`nasforge.search.oneshot.spaces.darts`) the derived genotype is printed in
DARTS's repr and written to ``DIR/genotype.json`` (read by ``nasforge train --space darts
--arch``) and ``DIR/genotype.txt``; it is not retrained by ``search``. The published
settings per (method, space) and the quick profiles of the embedded datasets are in
:mod:`nasforge.search.oneshot.settings`.

The shared ``search`` command (:mod:`nasforge.cli.search`) hands one-shot algorithms to
:func:`run_oneshot`, which does the whole job with progress bars and returns a summary.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nasforge.errors import SearchError

#: Datasets embedded in the package (no download): searched with the scaled-down settings
#: below so that a full search + a short training fits a laptop-size budget.
EMBEDDED = ("digits", "synthetic")

#: Epochs of the short training of the derived arch on an embedded dataset (0 = none).
QUICK_TRAIN_EPOCHS = 10
#: Network size of that training (NB201's C=16 with fewer cells per stage).
QUICK_TRAIN_SHAPE = {"C": 16, "N": 2}


def _method(algo: str, space: str = "nb201") -> Any:
    """``algo``'s one-shot method class after checking that it searches ``space`` (one-line
    errors for an unknown method or space, or a method the space cannot run)."""
    from nasforge.search.oneshot.spaces import get_adapter
    from nasforge.search.registry import ONESHOT

    adapter = get_adapter(space)
    if algo not in ONESHOT:
        raise SearchError(
            f"algorithm {algo!r} is not a one-shot method; expected one of: "
            f"{', '.join(ONESHOT.names())}"
        )
    cls = ONESHOT.get(algo)
    cls.check_space(adapter)
    cls.space_config_class(adapter)
    return cls


def is_embedded(dataset: str) -> bool:
    """Whether ``dataset`` (e.g. ``digits``, ``synthetic-...``) ships with the package and
    so runs with the scaled-down profile."""
    return dataset.split("-")[0] in EMBEDDED


def resolve_overrides(
    algo: str,
    dataset: str,
    epochs: int | None,
    overrides: dict[str, Any] | None,
    space: str = "nb201",
) -> dict[str, Any]:
    """The config overrides a run uses: the quick profile for embedded datasets
    (:func:`nasforge.search.oneshot.settings.quick_profile`), then ``epochs``, then the
    caller's ``overrides`` (which win)."""
    from nasforge.search.oneshot.settings import quick_profile
    from nasforge.search.oneshot.spaces import get_adapter

    cls = _method(algo, space)
    config_class = cls.space_config_class(get_adapter(space))
    fields = config_class.field_names()
    out: dict[str, Any] = {}
    if is_embedded(dataset):
        out.update(quick_profile(algo, space))
    if epochs is not None:
        if epochs < 1:
            raise SearchError(f"epochs={epochs} invalid; expected an int >= 1")
        if "warmup_epochs" in fields:
            # Keep the published warm-up share (PC-DARTS: 15 of 50 epochs).
            published = config_class()
            share = published.warmup_epochs / published.epochs
            out["warmup_epochs"] = round(share * epochs)
        out["epochs"] = epochs
    out.update(overrides or {})
    return {k: v for k, v in out.items() if k in fields or k in (overrides or {})}


#: Intra-op threads of an embedded-data run when ``--threads`` is not given: the demo is one
#: small job, and two OpenMP threads on a loaded 2-core machine spin-wait for each other --
#: 8.6x the CPU time and 3x the wall time of one thread, and a different result
#: (``benchmarks/results/demo_timing.json``).
EMBEDDED_THREADS = 1


def run_oneshot(algo: str, dataset: str, out: Path, **options: Any) -> dict[str, Any]:
    """:func:`search_oneshot` (see there), on :data:`EMBEDDED_THREADS` torch threads when the
    dataset is embedded and the command line gave no ``--threads`` (restored afterwards)."""
    import torch

    from nasforge.cli.options import threads_given

    if not is_embedded(dataset) or threads_given():
        return search_oneshot(algo, dataset, out, **options)
    before = torch.get_num_threads()
    torch.set_num_threads(EMBEDDED_THREADS)
    try:
        return search_oneshot(algo, dataset, out, **options)
    finally:
        torch.set_num_threads(before)


def search_oneshot(
    algo: str,
    dataset: str,
    out: Path,
    *,
    epochs: int | None = None,
    seed: int = 0,
    bench: Path | None = None,
    data_dir: Path | None = None,
    train_epochs: int | None = None,
    recipe: str | None = "nb201-12e",
    limit: int | None = None,
    quiet: bool = False,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    space: str = "nb201",
    task: str = "classification",
) -> dict[str, Any]:
    """Run one-shot ``algo`` on ``dataset``; derive an arch; train it and/or look it up.

    ``task`` other than classification: ``dataset`` is the task's (None or the
    classification default: its own), the search runs on the task's loaders, loss and
    metrics (:func:`~nasforge.search.oneshot.run_search`), and the derived arch is written
    for ``nasforge train --task`` (no retraining, no table here).

    Writes into ``out``: ``search.json`` (per-epoch records), ``search.png`` (alpha evolution
    per edge + derived-arch accuracy per epoch), ``checkpoint.pt`` (resumable), and, when the
    arch is trained, ``train.json``; plus ``summary.json`` (the returned dict).

    ``train_epochs``: epochs of training the derived arch with ``recipe``; None = a short
    training (:data:`QUICK_TRAIN_EPOCHS`) on the embedded datasets and none on the real
    ones (use ``nasforge train`` or a table there); 0 = no training. ``limit`` caps every
    split's size (tiny runs); ``overrides`` replace fields of the method's config.
    """
    import torch
    from rich.markup import escape

    from nasforge.data import load_splits
    from nasforge.io import check_output_dir
    from nasforge.progress import output_console
    from nasforge.search.oneshot import run_search
    from nasforge.train import get_recipe, train_arch

    console = output_console(quiet=quiet)
    console.print(f"torch threads: {torch.get_num_threads()}", highlight=False)
    cls = _method(algo, space)
    if task != "classification":
        return _search_task(
            cls, algo, task, dataset, out, console, epochs=epochs, seed=seed, bench=bench,
            data_dir=data_dir, train_epochs=train_epochs, limit=limit, quiet=quiet,
            overrides=overrides, device=device, space=space,
        )  # fmt: skip
    out = check_output_dir(out)
    config_overrides = resolve_overrides(algo, dataset, epochs, overrides, space)
    method = cls(space=space, **config_overrides)
    if space != "nb201" and train_epochs:
        # Checked before the search starts: retraining a derived cell is `nasforge train`'s.
        raise SearchError(
            f"--train-epochs {train_epochs}: the derived {space} arch is not retrained by "
            f"search; run `nasforge train --space {space} --arch {out}/genotype.json`"
        )
    # The retraining's settings are checked now: finding them wrong after the search
    # would waste it.
    n_train = train_epochs
    if n_train is None:
        n_train = QUICK_TRAIN_EPOCHS if is_embedded(dataset) and space == "nb201" else 0
    if n_train < 0:
        raise SearchError(f"train_epochs={n_train} invalid; expected >= 0")
    rec = get_recipe(recipe or "nb201-12e", epochs=n_train) if n_train > 0 else None
    # Splits without an official file or rule use data seed 0, never the search seed: two
    # seeds of a method (and two methods) are compared on the same validation images.
    data = load_splits(dataset, data_dir, seed=0, limit=limit)
    for note in data.notes:
        if note.startswith("limit "):  # what --limit kept, so a tiny run is read as one
            console.print(escape(note), highlight=False)
    bench_obj = None
    if bench is not None:
        from nasforge.bench import Benchmark

        bench_obj = Benchmark.open(bench)

    t0 = time.perf_counter()
    with _SearchProgress(quiet, algo, dataset) as progress:
        result = run_search(
            method,
            data,
            out,
            seed=seed,
            device=device,
            bench=bench_obj,
            callback=progress.callback,
        )
    search_wall = time.perf_counter() - t0
    arch = result.arch
    summary: dict[str, Any] = {
        "algo": algo,
        "space": space,
        "dataset": dataset,
        "seed": seed,
        **method.arch_fields(arch),
        "arch_files": method.write_arch(arch, out),
        "oneshot_valid_acc": result.final_valid_acc,
        "search_time": search_wall,
        "table": result.table,
        "config": method.config.to_dict(),
        "json": str(out / "search.json"),
        "png": result.paths.get("png"),
        "train": None,
    }
    console.print(
        f"[bold]derived arch[/] ({escape(algo)}, {escape(dataset)}): {arch.to_string()}",
        highlight=False,
    )
    console.print(
        f"  one-shot valid accuracy {result.final_valid_acc:.2f}%, "
        f"skip_connect share {summary['skip_share']:.2f}, search {search_wall:.1f}s",
        highlight=False,
    )
    if result.table is not None:
        tab = result.table
        console.print(
            escape(
                f"  table ({tab['dataset']}, hp {tab['hp']}): valid {_fmt(tab['valid_acc'])}, "
                f"test {_fmt(tab['test_acc'])}"
            ),
            highlight=False,
        )

    for kind, path in summary["arch_files"].items():
        console.print(escape(f"  {kind}: {path}"), highlight=False)
    if rec is not None:
        shape = QUICK_TRAIN_SHAPE if is_embedded(dataset) else {"C": 16, "N": 5}
        console.print(
            escape(
                f"training the derived arch: recipe {rec.name}, {n_train} epoch(s), "
                f"C={shape['C']} N={shape['N']}"
            ),
            highlight=False,
        )
        t1 = time.perf_counter()
        trained = train_arch(arch, data, rec, seed=seed, device=device, quiet=quiet, **shape)
        train_json = trained.to_json(out / "train.json")
        last = trained.epochs[-1] if trained.epochs else None
        summary["train"] = {
            "recipe": rec.name,
            "epochs": n_train,
            **shape,
            "status": trained.status,
            "eval": dict(last.eval) if last is not None else {},
            "train_acc": last.train_acc if last is not None else None,
            "time": time.perf_counter() - t1,
            "json": str(train_json),
        }
        evals = ", ".join(f"{k} {v['acc']:.2f}%" for k, v in summary["train"]["eval"].items())
        console.print(f"  trained arch accuracy: {evals}", highlight=False)
        if summary["png"]:
            from nasforge.report.oneshot import plot_result

            # the search plot gains the retrained accuracy, now that it is known
            retrained = f"retrained {n_train} ep. C={shape['C']} N={shape['N']}"
            plot_result(
                result,
                {f"{retrained} {k}": v["acc"] for k, v in summary["train"]["eval"].items()},
            )
    summary["total_time"] = time.perf_counter() - t0
    from nasforge.io import atomic_write_json

    atomic_write_json(out / "summary.json", summary)
    console.print(escape(f"records: {summary['json']}"), highlight=False)
    if summary["png"]:
        console.print(escape(f"plots:   {summary['png']}"), highlight=False)
    console.print(escape(f"summary: {out / 'summary.json'}"), highlight=False)
    return summary


def _search_task(
    cls: Any,
    algo: str,
    task: str,
    dataset: str | None,
    out: Path,
    console: Any,
    *,
    epochs: int | None,
    seed: int,
    bench: Path | None,
    data_dir: Path | None,
    train_epochs: int | None,
    limit: int | None,
    quiet: bool,
    overrides: dict[str, Any] | None,
    device: str,
    space: str,
) -> dict[str, Any]:
    """:func:`search_oneshot` on another task than classification."""
    from rich.markup import escape

    from nasforge.io import atomic_write_json, check_output_dir
    from nasforge.search.oneshot import run_search
    from nasforge.spaces import SPACES, get_space
    from nasforge.tasks import get_task

    job = get_task(task)
    cls.check_task(job.name)  # before any data is read
    if train_epochs:
        raise SearchError(
            f"--train-epochs {train_epochs}: a derived arch of task {job.name!r} is trained "
            f"by `nasforge train --task {job.name} --space {space} --arch {out}/arch.json`"
        )
    if bench is not None:
        raise SearchError(f"--bench: tables hold classification results, not task {job.name!r}")
    out = check_output_dir(out)
    if dataset in (None, "cifar10-valid"):  # the classification default: the task's own
        dataset = job.default_dataset
    config_overrides = resolve_overrides(algo, dataset, epochs, overrides, space)
    method = cls(space=space, **config_overrides)
    data = job.load(dataset, data_dir, seed=0, limit=limit)
    t0 = time.perf_counter()
    with _SearchProgress(quiet, algo, dataset) as progress:
        result = run_search(
            method, data, out, seed=seed, device=device, task=job,
            callback=progress.callback,
        )  # fmt: skip
    fields = method.arch_fields(result.arch)
    arch_json = out / "arch.json"
    # the space's string form where the space is registered (what `train --arch` reads),
    # else what the adapter's records call the arch
    arch_text = str(fields.get("arch", result.arch))
    if space in SPACES:
        arch_text = get_space(space).to_string(result.arch)
    atomic_write_json(arch_json, {"space": space, "task": job.name, "arch": arch_text})
    metric = job.primary_metric
    summary: dict[str, Any] = {
        "algo": algo,
        "task": job.name,
        "space": space,
        "dataset": dataset,
        "seed": seed,
        **fields,
        "arch_files": {"arch": str(arch_json), **method.write_arch(result.arch, out)},
        f"oneshot_valid_{metric.name}": result.final_valid_acc,
        "search_time": time.perf_counter() - t0,
        "config": method.config.to_dict(),
        "json": str(out / "search.json"),
        "png": result.paths.get("png"),
    }
    atomic_write_json(out / "summary.json", summary)
    console.print(
        escape(f"derived arch ({algo}, {job.name}, {dataset}): {arch_text}"), highlight=False
    )
    console.print(
        escape(f"  one-shot valid {metric.name} {metric.format(result.final_valid_acc)}"),
        highlight=False,
    )
    console.print(escape(f"summary: {out / 'summary.json'}"), highlight=False)
    return summary


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


class _SearchProgress:
    """Rich progress bar over all search steps (epoch, loss, derived arch's skip share)."""

    def __init__(self, quiet: bool, algo: str, dataset: str) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None
        self.label = f"{algo} on {dataset}"

    def __enter__(self) -> _SearchProgress:
        if not self.quiet:
            from nasforge.progress import make_progress

            self.bar = make_progress("{task.description}", "{task.fields[info]}")
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def callback(self, event: str, info: dict[str, Any]) -> None:
        if self.bar is None:
            return
        if event == "start":
            total = info["epochs"] * info["steps"]
            self.epochs = info["epochs"]
            self.task = self.bar.add_task(
                f"search {self.label}",
                total=total,
                completed=info["start_epoch"] * info["steps"],
                info="",
            )
        elif event == "step":
            self.bar.update(
                self.task,
                advance=1,
                info=f"epoch {info['epoch'] + 1}/{self.epochs}",
            )
        elif event == "epoch":
            self.bar.console.print(
                f"epoch {info['epoch']:>3}: train loss {info['train_loss']:.3f} "
                f"valid {info['valid_acc']:.1f}% "
                f"derived {info['derived_valid_acc']:.1f}% skip {info['skip_share']:.2f} "
                f"{info['arch']}",
                highlight=False,
            )
        elif event == "finalize":
            self.bar.update(self.task, info="selecting the final arch")
