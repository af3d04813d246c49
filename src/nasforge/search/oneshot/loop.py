"""The one search loop every one-shot method runs in.

Data: bi-level methods train the weights on the ``train`` split and the architecture on the
``valid`` split (``cifar10-valid``: the two official halves of CIFAR-10's training set; the
embedded ``digits`` / ``synthetic``: their train / valid splits). A setting without a
``valid`` split (``cifar10``, trained on all 50k) is halved as the method's ``split_rule``
says: into halves drawn from the seed (NB201 methods), or, for the DARTS-space DARTS and
PC-DARTS, into the first and second half of the training set, as their official
``train_search.py`` (``indices[:split]`` / ``indices[split:num_train]``). Arch batches follow
the method's ``arch_batch_rule``: cycled epochs of the arch split, or, as DARTS / PC-DARTS,
a fresh ``next(iter(valid_queue))`` every step (the first batch of a new permutation).

Every epoch records the supernet's train / valid loss and accuracy, the derived arch, each
edge's distribution and its entropy, the share of ``skip_connect`` in the derived arch (the
collapse indicator), the one-shot valid accuracy of the derived arch and, given a
:class:`~nasforge.bench.Benchmark`, the table's accuracy of the derived arch. The records go
to ``search.json`` (rewritten atomically after each epoch) and a plot to ``search.png``;
an atomic per-epoch checkpoint (``checkpoint.pt``) lets a killed run resume where it
stopped, with the same result as an uninterrupted run. All randomness comes from ``seed``
(weights init, loaders, the method's generators), so a run is reproducible on CPU for a
given number of intra-op threads (a different thread count changes float reduction order).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasforge.data import DatasetSplits, DeviceLoader, Split
from nasforge.errors import BenchError, SearchError
from nasforge.io import atomic_torch_save, atomic_write_json, to_jsonable
from nasforge.report.oneshot import plot_result
from nasforge.search.oneshot.base import Batch, OneShotSearch, SearchContext, entropy
from nasforge.train.checkpoint import (
    check_identity,
    data_fingerprint,
    load_checkpoint,
    restoring,
)
from nasforge.train.device import resolve_device
from nasforge.train.trainer import evaluate

CHECKPOINT_NAME = "checkpoint.pt"
RESULT_NAME = "search.json"
PLOT_NAME = "search.png"
#: Stride between the loader "epochs" of consecutive search epochs: the arch loader cycles
#: through the valid split several times per epoch, each cycle with its own permutation.
_CYCLE_STRIDE = 100_000

Callback = Callable[[str, dict[str, Any]], None]


@dataclass
class SearchResult:
    """Outcome of one one-shot search."""

    algo: str
    dataset: str
    seed: int
    #: The final arch, a value of the searched space (NB201 ``Arch``, DARTS ``Genotype``).
    arch: Any
    config: dict[str, Any]
    epochs: list[dict[str, Any]]
    search_time: float
    final_valid_acc: float
    table: dict[str, Any] | None = None
    paths: dict[str, str] = field(default_factory=dict)
    #: The method's ``arch_fields(arch)`` (string, index, skip share; the arch's string
    #: alone if empty).
    arch_fields: dict[str, Any] = field(default_factory=dict)
    #: The metric ``final_valid_acc`` holds: ``acc`` (classification), else the task's
    #: primary metric, recorded as ``final_valid_<metric>`` with the task's name.
    metric: str = "acc"
    task: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "algo": self.algo,
                "dataset": self.dataset,
                "seed": self.seed,
                **(self.arch_fields or {"arch": self.arch.to_string()}),
                f"final_valid_{self.metric}": self.final_valid_acc,
                **({"task": self.task} if self.task is not None else {}),
                "search_time": self.search_time,
                "table": self.table,
                "config": self.config,
                "epochs": self.epochs,
                "paths": self.paths,
            }
        )


SPLIT_RULES = ("random", "prefix")
ARCH_BATCH_RULES = ("cycle", "fresh")


def search_splits(data: DatasetSplits, seed: int, rule: str = "random") -> tuple[Split, Split]:
    """(weights split, architecture split) of a dataset setting (see the module docstring);
    ``rule`` ``prefix`` is the official DARTS / PC-DARTS ``indices[:split]`` /
    ``indices[split:]`` with ``split = floor(0.5 * n)`` (PC-DARTS ``train_search.py:94-104``)."""
    if rule not in SPLIT_RULES:
        raise SearchError(f"split rule {rule!r} is unknown; expected one of {SPLIT_RULES}")
    if "valid" in data.evals:
        return data.train, data.evals["valid"]
    n = len(data.train)
    if n < 2:
        raise SearchError(f"{data.name}: {n} training sample(s) cannot be split in two halves")
    half = n // 2
    if rule == "prefix":
        return (
            data.train.subset(torch.arange(half), "train"),
            data.train.subset(torch.arange(half, n), "valid"),
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return (
        data.train.subset(perm[:half].sort().values, "train"),
        data.train.subset(perm[half:].sort().values, "valid"),
    )


def resolve_table(bench: Any, dataset: str, hp: str | None = None) -> tuple[str, str]:
    """The (dataset, hp) of ``bench`` to look derived archs up in.

    The search dataset if the table has it, else ``cifar10-valid`` (the NB201 search
    setting), else the table's first dataset; hp ``200`` (NB201's reported figures) if
    present, else the table's last hp.
    """
    datasets = list(bench.datasets)
    if not datasets:
        raise BenchError("the benchmark table holds no dataset")
    if dataset in datasets:
        ds = dataset
    elif "cifar10-valid" in datasets:
        ds = "cifar10-valid"
    else:
        ds = datasets[0]
    hps = list(bench.hps(ds))
    if hp is not None:
        if hp not in hps:
            raise BenchError(f"the table has no hp {hp!r} for {ds}; expected one of {hps}")
        return ds, hp
    return ds, ("200" if "200" in hps else hps[-1])


def table_lookup(bench: Any, arch: Any, dataset: str, hp: str) -> dict[str, Any]:
    """The table's final valid/test accuracy of ``arch`` (None where the table lacks it)."""
    try:
        rec = bench.query(arch, dataset, hp=hp)
    except BenchError as exc:
        return {
            "dataset": dataset,
            "hp": hp,
            "valid_acc": None,
            "test_acc": None,
            "missing": str(exc),
        }
    return {
        "dataset": dataset,
        "hp": hp,
        "valid_acc": rec.final.get("valid_acc", float("nan")),
        "test_acc": rec.final.get("test_acc", float("nan")),
    }


def _cycle(loader: DeviceLoader, epoch: int, offset: int = 0) -> Iterator[Batch]:
    """Endless batches of ``loader``; cycle c of search epoch e uses loader epoch
    ``e * stride + offset + c``, so each search epoch's stream is fixed by (seed, e)."""
    cycle = 0
    while True:
        loader.set_epoch(epoch * _CYCLE_STRIDE + offset + cycle)
        yield from loader
        cycle += 1


def _fresh(loader: DeviceLoader, epoch: int) -> Iterator[Batch]:
    """One batch per step, each the first of its own permutation: the official
    ``next(iter(valid_queue))`` (PC-DARTS ``train_search.py:147``, DARTS
    ``cnn/train_search.py:143``); step s of search epoch e uses loader epoch
    ``e * stride + s``, so the stream is fixed by (seed, e) and survives a resume."""
    for step in itertools.count():
        loader.set_epoch(epoch * _CYCLE_STRIDE + step)
        yield next(iter(loader))


def _evaluate(batches: list[Batch], method: OneShotSearch, derived: Any) -> tuple[float, float]:
    """Valid loss and accuracy of ``method``'s search-mode forward; BN mode is the caller's."""
    res = evaluate(lambda x: method.eval_logits(x, derived), batches)
    return res["loss"], res["acc"]


def _task_job(task: Any, data: Any) -> Any:
    """The :class:`~nasforge.tasks.Task` a search runs, None for image classification (the
    official path); another task's data must hold the ``valid`` split the arch trains on."""
    if task is None:
        return None
    from nasforge.tasks import get_task

    job = get_task(task)
    if job.name == "classification":
        return None
    if "valid" not in getattr(data, "evals", {}):
        raise SearchError(
            f"task {job.name!r}: data {getattr(data, 'name', '?')!r} has no 'valid' split "
            f"(it has {sorted(getattr(data, 'evals', {}))}); a one-shot search trains the "
            "weights on 'train' and the architecture on 'valid'"
        )
    return job


def _search_mode(method: OneShotSearch, measure: Callable[[], Any]) -> Any:
    """``measure()`` with the supernet in the mode the official ``valid_func`` evaluates its
    search-mode forward in: a single-path method's derived path as it scores candidates
    (``score_bn``; default eval mode), a weighted-sum supernet in eval mode (BN on the
    running statistics gathered in the same mixed mode)."""
    if method.eval_is_derived:
        with method.scoring_statistics():
            return measure()
    assert method.supernet is not None
    method.supernet.eval()
    return measure()


def _classification_scores(
    method: OneShotSearch, derived: Any, valid: list[Batch]
) -> tuple[dict[str, float], dict[str, float]]:
    """Valid loss / accuracy of the supernet's search-mode forward and the one-shot
    accuracy of the derived arch, as the official ``valid_func`` measures them."""
    valid_loss, valid_acc = _search_mode(method, lambda: _evaluate(valid, method, derived))
    # The one-shot accuracy of the derived arch (already measured if that is the method's
    # search-mode forward).
    derived_acc = valid_acc if method.eval_is_derived else method.evaluate_arch(derived, valid)
    return {"valid_loss": valid_loss, "valid_acc": valid_acc}, {"derived_valid_acc": derived_acc}


def _task_scores(
    job: Any,
    method: OneShotSearch,
    derived: Any,
    valid: list[Batch],
    counts: dict[str, torch.Tensor],
    seen: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """The classification scores' counterparts for another task: its training metrics,
    every metric of the search-mode forward on the valid split (``valid_<name>``) and the
    derived arch's primary metric (``derived_valid_<primary>``)."""
    train = {f"train_{k}": v for k, v in job.train_summary(counts, max(seen, 1)).items()}
    res = _search_mode(
        method, lambda: job.evaluate(lambda x: method.eval_logits(x, derived), valid)
    )
    primary = job.primary
    scores = {f"valid_{k}": float(v) for k, v in res.items()}
    derived_value = res[primary] if method.eval_is_derived else method.evaluate_arch(derived, valid)
    return {**train, **scores}, {f"derived_valid_{primary}": float(derived_value)}


def run_search(
    method: OneShotSearch,
    data: DatasetSplits,
    out_dir: str | Path,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    bench: Any = None,
    bench_dataset: str | None = None,
    bench_hp: str | None = None,
    resume: bool = True,
    plot: bool = True,
    callback: Callback | None = None,
    task: Any = None,
) -> SearchResult:
    """Run ``method`` on ``data``; write ``search.json`` / ``search.png`` into ``out_dir``.

    ``task`` (a name or :class:`~nasforge.tasks.Task`; default image classification, the
    official path, records unchanged): ``data`` is that task's data (with a ``valid``
    split: weights train on ``train``, the architecture on ``valid``), batches come from
    the task's loaders, the loss is the task's, and the records hold the task's metrics
    (``valid_<metric>``, ``derived_valid_<primary>``, ``final_valid_<primary>``) where
    classification records accuracies. The method's space adapter must build a supernet
    for the task's data (:meth:`SupernetAdapter.build_task_supernet`).

    With ``resume`` (default) an existing checkpoint of the same algorithm, config, seed and
    dataset is continued; a checkpoint of a different run is an error (choose another
    ``out_dir`` or pass ``resume=False`` to start over).
    """
    device = resolve_device(device, SearchError)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = method.config
    emit = callback or (lambda event, info: None)
    job = _task_job(task, data)
    method.set_task(job)
    if job is None:
        weights_split, arch_split = search_splits(data, seed, method.split_rule())
    arch_rule = method.arch_batch_rule()
    if arch_rule not in ARCH_BATCH_RULES:
        raise SearchError(
            f"arch batch rule {arch_rule!r} is unknown; expected one of {ARCH_BATCH_RULES}"
        )
    arch_stream = _fresh if arch_rule == "fresh" else _cycle
    method.setup(data.num_classes if job is None else job.network_io(data), seed, device)
    assert method.supernet is not None
    table_key = None
    if bench is not None:
        if bench_dataset is not None and bench_dataset not in bench.datasets:
            raise BenchError(
                f"the table has no dataset {bench_dataset!r}; expected one of {bench.datasets}"
            )
        table_key = resolve_table(bench, bench_dataset or data.name, bench_hp)

    bs = cfg.batch_size
    if job is None:
        train_loader: Any = DeviceLoader(
            weights_split,
            data,
            bs,
            train=True,
            seed=seed,
            device=device,
            drop_last=len(weights_split) >= bs,
        )
        arch_loader: Any = DeviceLoader(
            arch_split,
            data,
            bs,
            train=True,
            seed=seed + 1,
            device=device,
            drop_last=len(arch_split) >= bs,
        )
        eval_loader: Any = DeviceLoader(
            arch_split, data, cfg.eval_batch_size, train=False, device=device
        )
    else:
        train_loader = job.loader(data, "train", bs, train=True, seed=seed, device=device)
        arch_loader = job.loader(data, "valid", bs, train=True, seed=seed + 1, device=device)
        eval_loader = job.loader(data, "valid", cfg.eval_batch_size, train=False, device=device)
    identity = {
        "algo": method.name,
        "space": method.space_name,
        "dataset": data.name,
        "seed": int(seed),
        "config": cfg.to_dict(),
        "splits": {"train": train_loader.num_samples, "valid": arch_loader.num_samples},
        "data": data_fingerprint(data),
    }
    if job is not None:
        identity["task"] = job.name
    records: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)  # safe load; a damaged file is a clear error
        check_identity(ckpt_path, ckpt.get("identity"), identity)
        with restoring(ckpt_path):
            method.load_state_dict(ckpt["state"])
            records = list(ckpt["records"])
            start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed"])

    def valid_pass() -> Iterator[Batch]:
        for i, batch in enumerate(eval_loader):
            if cfg.valid_batches is not None and i >= cfg.valid_batches:
                return
            yield batch

    steps = len(train_loader)
    if cfg.steps_per_epoch is not None:
        steps = min(steps, cfg.steps_per_epoch)
    method.steps_per_epoch = steps
    emit(
        "start",
        {"epochs": cfg.epochs, "start_epoch": start_epoch, "steps": steps, "algo": method.name},
    )
    net = method.supernet
    t_last = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        ctx = SearchContext(valid_pass, lambda e=epoch: _cycle(arch_loader, e, _CYCLE_STRIDE // 2))
        method.begin_epoch(epoch)
        net.train()
        arch_iter = arch_stream(arch_loader, epoch) if method.uses_arch_batches else None
        train_loader.set_epoch(epoch)
        # On-device accumulators: one host sync per epoch, not per step (as Trainer).
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        correct_acc: Any = torch.zeros((), dtype=torch.int64, device=device)
        counts: dict[str, torch.Tensor] = {}  # another task's training counts
        seen = 0
        # Set once per epoch: xautodl's cosine ignores the within-epoch step (base.cosine_lr).
        lr = method.epoch_lr(epoch)
        for group in method.w_optimizer.param_groups:
            group["lr"] = lr
        for step, base in enumerate(train_loader):
            if step >= steps:
                break
            arch_batch = next(arch_iter) if arch_iter is not None else None
            batch_loss, batch_correct, n = method.train_step(base, arch_batch, epoch)
            loss_acc += batch_loss
            if isinstance(batch_correct, dict):
                for key, value in batch_correct.items():
                    counts[key] = counts[key] + value if key in counts else value
            else:
                correct_acc += batch_correct
            seen += n
            emit("step", {"epoch": epoch, "step": step})
        loss_sum = float(loss_acc)
        if not math.isfinite(loss_sum):
            raise SearchError(
                f"{method.name}: the training loss diverged in epoch {epoch + 1} (summed loss "
                f"{loss_sum}); lower lr={cfg.lr}?"
            )
        method.end_epoch(epoch, ctx)
        derived = method.derive(ctx)
        valid = list(valid_pass())
        if job is None:
            metrics, derived_metrics = _classification_scores(method, derived, valid)
            metrics = {"train_acc": 100.0 * int(correct_acc) / max(seen, 1), **metrics}
        else:
            metrics, derived_metrics = _task_scores(job, method, derived, valid, counts, seen)
        net.train()
        probs = method.probabilities()
        now = time.perf_counter()
        elapsed += now - t_last
        t_last = now
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / max(seen, 1),
            **metrics,
            **method.arch_fields(derived),
            **derived_metrics,
            "entropy": entropy(probs).tolist(),
            "probs": probs.tolist(),
            "elapsed": elapsed,
            **method.extra_record(),
        }
        if table_key is not None:
            tab = table_lookup(bench, derived, *table_key)
            record["table"] = tab
            record["table_acc"] = tab["test_acc"]
        records.append(to_jsonable(record))
        atomic_torch_save(
            {
                "identity": identity,
                "epoch": epoch + 1,
                "elapsed": elapsed,
                "state": method.state_dict(),
                "records": records,
            },
            ckpt_path,
        )
        atomic_write_json(out / RESULT_NAME, {**identity, "status": "running", "epochs": records})
        emit("epoch", records[-1])
        t_last = time.perf_counter()

    # The final choice: the candidate batches come from the epoch after the last one.
    final_ctx = SearchContext(
        valid_pass, lambda: _cycle(arch_loader, cfg.epochs, _CYCLE_STRIDE // 2)
    )
    emit("finalize", {})
    t0 = time.perf_counter()
    net.eval()
    final = method.finalize(final_ctx)
    final_acc = method.evaluate_arch(final, list(valid_pass()))
    elapsed += time.perf_counter() - t0
    table = table_lookup(bench, final, *table_key) if table_key is not None else None
    paths = {"json": str(out / RESULT_NAME), "checkpoint": str(ckpt_path)}
    if plot:
        paths["png"] = str(out / PLOT_NAME)
    result = SearchResult(
        algo=method.name,
        dataset=data.name,
        seed=int(seed),
        arch=final,
        config=cfg.to_dict(),
        epochs=records,
        search_time=elapsed,
        final_valid_acc=final_acc,
        table=table,
        paths=paths,
        arch_fields=method.arch_fields(final),
        metric="acc" if job is None else job.primary,
        task=None if job is None else job.name,
    )
    payload = {**identity, "status": "done", **result.to_dict()}
    atomic_write_json(out / RESULT_NAME, payload)
    if plot and job is None:
        plot_result(result, plotter=method.plot)
    elif plot:
        # the space's figure is a classifier's: another task gets the generic one
        from nasforge.report.oneshot import plot_task_search

        metric = job.primary_metric
        plot_task_search(
            records,
            out / PLOT_NAME,
            metric=metric.name,
            unit=metric.unit,
            ops=tuple(getattr(method.space, "ops", ())),
            title=f"{method.name} on {data.name}, task {job.name}",
            warmup=int(cfg.to_dict().get("warmup_epochs", 0) or 0),
        )
    return result
