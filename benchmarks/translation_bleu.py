"""Benchmark: BLEU of a rev-darts-derived architecture vs a standard Transformer of the same
parameter count, trained with the same recipe, budget and seeds, on the embedded
``numbers-en-de`` task (CPU scale).

    PYTHONPATH=src .venv/bin/python benchmarks/translation_bleu.py [--out FILE] [--quick]

1. Search: ``rev-darts`` (backpropagation by reconstruction for both updates) on the
   training split, supernet ``SEARCH`` settings, ``SEARCH_EPOCHS`` epochs; derive the arch.
2. Retrain the derived arch (ordinary backprop, as the paper retrains) with ``RETRAIN``
   network settings, and the Vaswani post-norm Transformer of the same depth and heads
   sized to the derived network's parameter count (:func:`matched_transformer`);
   both with ``translation-adam`` at ``LR``, ``EPOCHS`` epochs, for each seed.
3. Report test BLEU (sacreBLEU, beam 4, length penalty 0.6; the signature is printed), the
   teacher-forced test loss, parameter counts and wall times; with
   ``--with-transformer-like`` also the same-space arch of self-attention + FFN splits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasforge.nn import build_network
from nasforge.nn.seq2seq import StandardTransformer
from nasforge.search.task_search import TaskSearchSpec, run_task_search
from nasforge.spaces import get_space
from nasforge.spaces.rev_transformer import TRANSFORMER_LIKE
from nasforge.tasks import get_task
from nasforge.train import fit_fresh, get_recipe

DATA = {"n_train": 2000, "n_valid": 200, "n_test": 200}
SEARCH = {
    "d_model": 48,
    "heads": 4,
    "enc_layers": 2,
    "dec_layers": 2,
    "embed_dim": None,
    "batch_size": 32,
    "lr": 1e-3,
}
SEARCH_EPOCHS = 3
RETRAIN = {"d_model": 96, "heads": 4, "enc_layers": 2, "dec_layers": 2}
EPOCHS, LR, BATCH = 10, 1e-3, 32
SEEDS = (0,)


def params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _tf(vocab: int, d: int, ffn: int) -> StandardTransformer:
    return StandardTransformer(
        vocab_size=vocab,
        d_model=d,
        heads=RETRAIN["heads"],
        ffn=ffn,
        enc_layers=RETRAIN["enc_layers"],
        dec_layers=RETRAIN["dec_layers"],
        dropout=0.1,
    )


def matched_transformer(vocab: int, target: int) -> tuple[int, int, int]:
    """A standard Transformer of the same depth and heads with about ``target``
    parameters: the widest d_model (multiple of 2 x heads) whose base-ratio model (FFN
    4 x d_model) stays under ``target``, then the FFN width (multiple of 8, at least 4 x
    d_model) that brings the count closest. Returns (d_model, ffn, params)."""
    step = 2 * RETRAIN["heads"]
    d = step
    while params(_tf(vocab, d + step, 4 * (d + step))) <= target:
        d += step
    best = (4 * d, params(_tf(vocab, d, 4 * d)))
    ffn = 4 * d
    while True:
        ffn += 8
        n = params(_tf(vocab, d, ffn))
        if abs(n - target) < abs(best[1] - target):
            best = (ffn, n)
        if n > target:
            break
    return d, best[0], best[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--search-d-model", type=int, help="supernet width (default 48)")
    ap.add_argument("--search-epochs", type=int, help=f"search epochs (default {SEARCH_EPOCHS})")
    ap.add_argument(
        "--with-transformer-like",
        action="store_true",
        help="also train the space's self-attention + FFN arch (a third model)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    data_opts = dict(DATA)
    epochs, search_epochs, seeds = EPOCHS, args.search_epochs or SEARCH_EPOCHS, SEEDS
    search = dict(SEARCH)
    if args.search_d_model:
        search["d_model"] = args.search_d_model
    if args.quick:
        data_opts = {"n_train": 200, "n_valid": 20, "n_test": 20}
        epochs, search_epochs, seeds = 1, 1, (0,)
    task = get_task("translation")
    data = task.load("numbers-en-de", seed=0, **data_opts)
    t0 = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        spec = TaskSearchSpec(
            task=_DataTask(task, data),
            space="rev-transformer",
            seed=0,
            epochs=search_epochs,
            params=search,
        )
        res = run_task_search("rev-darts", spec, Path(tmp) / "search")
    search_s = time.perf_counter() - t0
    space = get_space("rev-transformer")
    derived = space.from_string(res.arch)
    recipe = get_recipe("translation-adam", epochs=epochs, lr=LR, batch_size=BATCH)
    io = task.network_io(data)
    derived_params = params(build_network("rev-transformer", derived, io=io, **RETRAIN))
    tf_d, tf_ffn, tf_params = matched_transformer(io["vocab_size"], derived_params)
    models: dict[str, Any] = {
        "derived": lambda: build_network("rev-transformer", derived, io=io, **RETRAIN),
        "standard_transformer": lambda: _tf(io["vocab_size"], tf_d, tf_ffn),
    }
    if args.with_transformer_like:
        models["transformer_like_arch"] = lambda: build_network(
            "rev-transformer", TRANSFORMER_LIKE, io=io, **RETRAIN
        )
    rows: dict[str, Any] = {}
    for name, build in models.items():
        runs = []
        for seed in seeds:
            # No per-epoch evaluation (beam search is the slow part on CPU): the test split
            # is scored once, after the last epoch.
            r, model = fit_fresh(build, data, recipe, seed=seed, task=task, eval_splits=[])
            t1 = time.perf_counter()
            last = task.evaluate(model, task.loader(data, "test", 64, train=False))
            r.total_eval_time = time.perf_counter() - t1
            runs.append(
                {
                    "seed": seed,
                    "test_bleu": last["bleu"],
                    "test_loss": last["loss"],
                    "train_s": r.total_train_time,
                    "eval_s": r.total_eval_time,
                    "params": r.num_params,
                }
            )
            print(name, json.dumps(runs[-1]), flush=True)
        rows[name] = {
            "params": runs[0]["params"],
            "test_bleu_mean": statistics.mean(x["test_bleu"] for x in runs),
            "runs": runs,
        }
    doc = {
        "data": {"dataset": "numbers-en-de", **data_opts, "vocab_size": io["vocab_size"]},
        "search": {
            "settings": search,
            "epochs": search_epochs,
            "arch": res.arch,
            "wall_s": search_s,
            "supernet_valid_loss": res.metrics.get("loss"),
        },
        "retrain": {**RETRAIN, "epochs": epochs, "lr": LR, "batch": BATCH, "recipe": recipe.name},
        "standard_transformer": {"d_model": tf_d, "ffn": tf_ffn},
        "param_match": {"derived": derived_params, "standard_transformer": tf_params},
        "bleu_signature": task.bleu_signature,
        "decoding": {"beam": task.beam, "lenpen": task.lenpen},
        "results": rows,
        "threads": 1,
        "note": "CPU, shared loaded machine; seeds " + ",".join(map(str, seeds)),
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        from nasforge.io import atomic_write_text

        atomic_write_text(args.out, text + "\n")


class _DataTask:
    """The translation task with its ``load`` answering the benchmark's data (so the
    search sees the same split as the retraining); everything else is the task's."""

    def __init__(self, task: Any, data: Any) -> None:
        self._task, self._data = task, data
        self.name = task.name

    def load(self, *args: Any, **kwargs: Any) -> Any:
        return self._data

    def __getattr__(self, item: str) -> Any:
        return getattr(self._task, item)


if __name__ == "__main__":
    main()
