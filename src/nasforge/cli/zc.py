"""``nasforge zc``: zero-cost proxy scores of many archs into a resumable CSV / JSON table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nasforge.cli.options import (
    OldSpellings,
    at_least,
    cells_option,
    channels_option,
    key_value_pairs,
    threads_option,
)
from nasforge.errors import NasforgeError


def _select_archs(spec: str, seed: int, space: Any) -> list[str]:
    """``all`` (a space with a finite size), a number N (N distinct archs drawn with
    ``seed``) or a file of arch strings (one per line, or a JSON list; NB201 also takes
    official indices), all through the space's interface."""
    import numpy as np

    from nasforge.inputs import check_int_text, excerpt, parse_json, read_text

    text = spec.strip()
    size = space.size()
    if text == "all":
        if size is None or size > 10**6:
            raise NasforgeError(
                f"--archs all: the {space.name} space is too large to enumerate; give a number"
            )
        return [space.to_string(a) for a in space.enumerate()]
    if text.isascii() and text.isdigit():
        check_int_text(text, "--archs")
        n = int(text)
        if n < 1 or (size is not None and n > size):
            raise NasforgeError(f"--archs {spec!r}: a count must be in 1..{size or 'inf'}")
        if size is not None and size <= 10**6:
            # a space small enough to list: a seeded permutation of its archs (NB201: in
            # official index order, so N is the same sample as a permutation of the indices)
            every = list(space.enumerate())
            idx = np.random.default_rng(seed).permutation(len(every))[:n]
            return [space.to_string(every[int(i)]) for i in idx]
        rng = np.random.default_rng(seed)
        out: dict[str, None] = {}
        for _ in range(100 * n):
            out.setdefault(space.to_string(space.sample(rng)))
            if len(out) == n:
                break
        return list(out)
    path = Path(text)
    if not path.is_file():
        raise NasforgeError(
            f"--archs {spec!r} is neither 'all', a number of archs nor an existing file"
        )
    body = read_text(path, "--archs file")
    if body.lstrip().startswith("["):
        items = parse_json(body, f"--archs file {excerpt(str(path), 256)}")
        if not isinstance(items, list):
            raise NasforgeError(
                f"--archs file {excerpt(str(path), 256)} holds JSON that is not a list"
            )
    else:
        items = body.split()
    out_list = []
    for item in items:
        value = item.get("arch") if isinstance(item, dict) else item
        if isinstance(value, str):
            check_int_text(value, "--archs file entry")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise NasforgeError(
                f"--archs file entry {excerpt(value)} is not an arch string or index"
            )
        out_list.append(space.to_string(space.from_string(str(value))))
    if not out_list:
        raise NasforgeError(f"--archs file {path} lists no architecture")
    return out_list


def zc(
    space: str = typer.Option("nb201", help="Search space with a network builder."),
    task: str = typer.Option(
        "classification", help="Task whose data, loss and networks the proxies use."
    ),
    dataset: str | None = typer.Option(
        None, help="Dataset the batch is drawn from (default: cifar10, or the task's)."
    ),
    data_dir: Path | None = typer.Option(None, help="Dataset root (NB201 datasets)."),
    proxies: str = typer.Option("all", help="'all' or a comma-separated list of proxies."),
    archs: str = typer.Option("100", help="N (seeded sample), 'all', or a file of archs."),
    out: Path = typer.Option(..., "-o", "--out", help="Output table (.csv or .json)."),
    batch_size: int = typer.Option(
        64, callback=at_least(1, "MAX_BATCH"), help="Images in the proxy batch (<= 4096)."
    ),
    num_batches: int = typer.Option(
        1, callback=at_least(1, "MAX_BATCH"), help="Batches (of batch-size images) per proxy."
    ),
    seed: int = typer.Option(0, help="Seed of the batch, the arch sample and the weights."),
    C: int | None = channels_option(None, "Network width C (default: the space's; NB201 16)."),
    N: int | None = cells_option(None, "NB201 cells per stage (default: official 5)."),
    network: list[str] | None = typer.Option(
        None, "--network", help="Other network builder option KEY=VALUE (repeatable)."
    ),
    threads: int | None = threads_option(),
    device: str = typer.Option("cpu", help="torch device."),
) -> None:
    """Score archs with zero-cost proxies: one row per arch (arch, every proxy, seconds).

    Resumable: rows are written atomically after each arch and archs already in OUT are
    skipped when the command runs again.
    """
    from rich.progress import Progress

    from nasforge.evaluate.zero_cost import (
        check_rows,
        network_config,
        parse_proxies,
        proxy_batch,
        score_archs,
        task_proxy_batch,
    )
    from nasforge.spaces import get_space
    from nasforge.tasks import get_task

    sp = get_space(space)  # an unknown name fails here, listing the spaces
    task = get_task(task).name  # likewise for the task
    classification = task == "classification"
    if dataset is None:
        dataset = "cifar10" if classification else get_task(task).default_dataset
    if out.suffix not in (".csv", ".json"):
        raise NasforgeError(f"--out {str(out)!r} must end in .csv or .json")
    if (C is not None and C < 1) or (N is not None and N < 1):
        raise NasforgeError(f"--channels {C} and --cells {N} must be >= 1")
    options = network_config(sp.name, C, N, key_value_pairs(network, "--network", "layers=8"))
    names = parse_proxies(proxies)
    if not classification:
        from nasforge.evaluate.proxies import LABEL_PROXIES

        if proxies.strip() == "all":
            names = [n for n in names if n not in LABEL_PROXIES]
        elif set(names) & LABEL_PROXIES:
            raise NasforgeError(
                f"--proxies {proxies!r}: {sorted(set(names) & LABEL_PROXIES)} read class "
                f"labels; task {task!r} has none"
            )
    selected = _select_archs(archs, seed, sp)
    done = {r["arch"] for r in check_rows(out, names)}
    todo = [a for a in selected if a not in done]
    if classification:
        batch = proxy_batch(
            dataset, root=data_dir, batch_size=batch_size, num_batches=num_batches, seed=seed
        )
    else:
        batch = task_proxy_batch(
            task,
            dataset=dataset,
            root=data_dir,
            batch_size=batch_size,
            num_batches=num_batches,
            seed=seed,
        )
    with Progress(transient=True) as progress:
        bar = progress.add_task("zero-cost proxies", total=len(todo))
        score_archs(
            todo,
            names,
            batch,
            out,
            seed=seed,
            device=device,
            space=sp.name,
            network=options,
            on_row=lambda row: progress.advance(bar),
            meta=proxy_settings(
                sp.name, dataset, batch_size, num_batches, seed, options, names, task=task
            ),
        )
    typer.echo(f"{len(todo)} archs scored, {len(selected) - len(todo)} already in {out}")


def proxy_settings(
    space: str,
    dataset: str,
    batch_size: int,
    num_batches: int,
    seed: int,
    network: dict[str, Any],
    proxies: list[str] | None = None,
    *,
    task: str = "classification",
) -> dict[str, Any]:
    """What fixes a proxy score besides the arch: recorded beside `nasforge zc` rows and
    compared by `search --zc-scores` before it reuses them (the task only when it is not
    image classification, so classification rows keep their settings)."""
    out: dict[str, Any] = {
        "space": space,
        "dataset": dataset,
        "batch_size": batch_size,
        "num_batches": num_batches,
        "seed": seed,
        "network": network,
    }
    if proxies is not None:
        out["proxies"] = list(proxies)
    if task != "classification":
        out["task"] = task
    return out


def with_proxy(
    evaluator: Any,
    proxy: str,
    *,
    dataset: str,
    data_dir: Path | None,
    batch_size: int,
    seed: int,
    C: int | None,
    N: int | None,
    device: str,
    charge: float | None,
    scores_file: Path | None = None,
) -> Any:
    """``evaluator`` with zero-cost proxy ``proxy`` answering fidelity 0 on the same clock
    (what ``nasforge search --zc-proxy`` runs): each proxy query is charged its measured
    compute seconds, or ``charge`` seconds when given. The batch is drawn lazily from
    ``dataset`` (under ``data_dir``) with ``seed``; the network is the space's at C / N
    (default the space's published size). ``scores_file``: rows of `nasforge zc` made with
    the same settings, answered without recomputing (each run still charged their seconds,
    or ``charge``)."""
    from nasforge.evaluate.zero_cost import (
        WithZeroCost,
        ZeroCostEvaluator,
        cached_scores,
        network_config,
    )

    if isinstance(batch_size, bool) or batch_size < 2:
        raise NasforgeError(f"--zc-batch-size {batch_size} must be >= 2")
    if charge is not None and charge < 0:
        raise NasforgeError(f"--zc-charge {charge} must be >= 0 seconds")
    space = evaluator.space.name
    known = None
    if scores_file is not None:
        settings = proxy_settings(space, dataset, batch_size, 1, seed, network_config(space, C, N))
        known = cached_scores(scores_file, proxy, settings, charged=charge is not None)
    zc_ev = ZeroCostEvaluator(
        proxy,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        seed=seed,
        C=C,
        N=N,
        device=device,
        charge=charge,
        space=space,
        scores=known,
    )
    return WithZeroCost(evaluator, zc_ev)


def register(app: typer.Typer) -> None:
    app.command("zc", cls=OldSpellings)(zc)
