"""``rev-darts``: DARTSformer's memory-efficient DARTS search (Zhao et al., "Memory-
Efficient Differentiable Transformer Architecture Search", Findings of ACL 2021,
Algorithm 2).

The supernet (:class:`~nasforge.nn.rev_transformer.RevTransformer` with ``arch=None``:
every searched split a mixed operation over all candidates) trains with backpropagation
by reconstruction (:mod:`nasforge.nn.reversible`) for both updates: alternately one Adam
step of the network weights on a batch of the weight split and one Adam step of the
architecture weights on a batch of the architecture split (first-order DARTS). The
training pairs are divided into those two splits, 2.5 : 2.0 as the paper divides WMT'14
En-De's 4.5M pairs. The derived arch is the argmax of every position's architecture
weights.

Settings (``--param KEY=VALUE``), with the paper's values where it fixes one (as a
third-party summary of the paper reports them; the paper's text and official code could
not be read from here): ``d_model`` 960, ``embed_dim`` 256 (factorized embedding),
``heads`` 8, ``dropout`` 0.1, ``pooling`` max, ``lr`` 5e-4 and ``betas`` (0.9, 0.98) for
the weights, ``arch_lr`` 3e-4 and ``arch_weight_decay`` 1e-3 for the architecture weights,
``label_smoothing`` 0.1. This implementation's choices: ``enc_layers`` / ``dec_layers`` 6
(the searched 2-layer block three times), ``batch_size`` 64 sentences, ``epochs`` 10, a
constant learning rate (the paper warms the weights' rate up over 10k steps), and
``reversible`` true (false: the same supernet with ordinary backprop, for comparison).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data.translation import PAD_ID, ParallelSplit, TranslationLoader
from nasforge.errors import SearchError
from nasforge.search.task_search import (
    TASK_SEARCHES,
    TaskSearch,
    TaskSearchResult,
    TaskSearchSpec,
)

#: Settings and their defaults (see the module docstring).
DEFAULTS: dict[str, Any] = {
    "d_model": 960,
    "embed_dim": 256,
    "heads": 8,
    "enc_layers": 6,
    "dec_layers": 6,
    "dropout": 0.1,
    "pooling": "max",
    "batch_size": 64,
    "lr": 5e-4,
    "betas": [0.9, 0.98],
    "arch_lr": 3e-4,
    "arch_weight_decay": 1e-3,
    "label_smoothing": 0.1,
    "reversible": True,
    "weight_fraction": 2.5 / 4.5,
}
_INTS = ("d_model", "heads", "enc_layers", "dec_layers", "batch_size")
_FLOATS = ("dropout", "lr", "arch_lr", "arch_weight_decay", "label_smoothing", "weight_fraction")


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in; a one-line :class:`SearchError` for an
    unknown key or a bad value (before any data is read)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise SearchError(
            f"rev-darts has no setting {unknown}; expected some of {sorted(DEFAULTS)}"
        )
    p = {**DEFAULTS, **params}
    for k in _INTS:
        if isinstance(p[k], bool) or not isinstance(p[k], int) or p[k] < 1:
            raise SearchError(f"rev-darts {k}={p[k]!r}; expected an int >= 1")
    for k in _FLOATS:
        if isinstance(p[k], bool) or not isinstance(p[k], (int, float)) or p[k] < 0:
            raise SearchError(f"rev-darts {k}={p[k]!r}; expected a number >= 0")
    if not 0 < p["weight_fraction"] < 1:
        raise SearchError(f"rev-darts weight_fraction={p['weight_fraction']}; expected in (0, 1)")
    if not 0 <= p["dropout"] < 1 or not 0 <= p["label_smoothing"] < 1:
        raise SearchError("rev-darts dropout and label_smoothing must lie in [0, 1)")
    if p["embed_dim"] is not None and (
        isinstance(p["embed_dim"], bool)
        or not isinstance(p["embed_dim"], int)
        or p["embed_dim"] < 1
    ):
        raise SearchError(f"rev-darts embed_dim={p['embed_dim']!r}; expected an int >= 1 or null")
    if not isinstance(p["reversible"], bool):
        raise SearchError(f"rev-darts reversible={p['reversible']!r}; expected true or false")
    b = p["betas"]
    if not (isinstance(b, (list, tuple)) and len(b) == 2 and all(0 <= float(v) < 1 for v in b)):
        raise SearchError(f"rev-darts betas={b!r}; expected two numbers in [0, 1)")
    d, h = p["d_model"], p["heads"]
    if d % 6 or (d // 3) % h or (d // 2) % h:
        raise SearchError(
            f"rev-darts d_model={d} with heads={h}: 2 and 3 splits must each be divisible "
            f"by heads; expected a multiple of {6 * h}"
        )
    return p


def _subset(split: ParallelSplit, idx: np.ndarray) -> ParallelSplit:
    ii = idx.tolist()
    return ParallelSplit(
        [split.src[i] for i in ii],
        [split.ref[i] for i in ii],
        [split.src_ids[i] for i in ii],
        [split.ref_ids[i] for i in ii],
    )


@TASK_SEARCHES.register("rev-darts")
class RevDarts(TaskSearch):
    """Memory-efficient DARTS over the rev-transformer space."""

    spaces = ("rev-transformer",)
    tasks = ("translation", "translation-greedy")

    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        from nasforge.nn.rev_transformer import RevTransformer
        from nasforge.spaces import get_space
        from nasforge.train import set_seed

        p = check_params(dict(spec.params))
        epochs = 10 if spec.epochs is None else int(spec.epochs)
        if epochs < 1:
            raise SearchError(f"--epochs {epochs}; expected >= 1")
        task = spec.task
        data = task.load(spec.dataset, spec.data_dir, seed=spec.seed, limit=spec.limit)
        n = len(data.train)
        if n < 2:
            raise SearchError(f"rev-darts needs >= 2 training pairs to split, got {n}")
        order = np.random.default_rng([spec.seed, 1]).permutation(n)
        cut = min(n - 1, max(1, round(n * p["weight_fraction"])))
        w_split, a_split = _subset(data.train, order[:cut]), _subset(data.train, order[cut:])
        dev = torch.device(spec.device)
        set_seed(spec.seed)
        net = RevTransformer(
            None,
            vocab_size=data.tokenizer.vocab_size,
            d_model=p["d_model"],
            heads=p["heads"],
            enc_layers=p["enc_layers"],
            dec_layers=p["dec_layers"],
            dropout=p["dropout"],
            pooling=p["pooling"],
            reversible=p["reversible"],
            embed_dim=p["embed_dim"],
        ).to(dev)
        betas = (float(p["betas"][0]), float(p["betas"][1]))
        w_opt = torch.optim.Adam(net.weight_parameters(), lr=p["lr"], betas=betas)
        a_opt = torch.optim.Adam(
            net.arch_parameters(),
            lr=p["arch_lr"],
            betas=betas,
            weight_decay=p["arch_weight_decay"],
        )
        bs = p["batch_size"]
        w_loader = TranslationLoader(
            w_split, data.tokenizer, bs, train=True, seed=spec.seed, device=dev
        )
        a_loader = TranslationLoader(
            a_split, data.tokenizer, bs, train=True, seed=spec.seed + 1, device=dev
        )

        def loss_of(x: Any, y: Any) -> torch.Tensor:
            logits = net(*x)
            return F.cross_entropy(
                logits.float().flatten(0, 1),
                y.ids.flatten(),
                ignore_index=PAD_ID,
                label_smoothing=p["label_smoothing"],
            )

        torch.manual_seed(spec.seed)  # dropout
        history = []
        t0 = time.perf_counter()
        for epoch in range(epochs):
            w_loader.set_epoch(epoch)
            a_loader.set_epoch(epoch)
            net.train()
            a_iter = iter(a_loader)
            w_sum = a_sum = 0.0
            steps = 0
            for x, y in w_loader:
                loss = loss_of(x, y)
                w_opt.zero_grad(set_to_none=True)
                loss.backward()
                w_opt.step()
                try:
                    xa, ya = next(a_iter)
                except StopIteration:
                    a_loader.set_epoch(epoch + 1000 * (steps + 1))
                    a_iter = iter(a_loader)
                    xa, ya = next(a_iter)
                a_loss = loss_of(xa, ya)
                a_opt.zero_grad(set_to_none=True)
                a_loss.backward()
                a_opt.step()
                w_sum += float(loss.detach())
                a_sum += float(a_loss.detach())
                steps += 1
            history.append(
                {
                    "epoch": epoch,
                    "weight_loss": w_sum / steps,
                    "arch_loss": a_sum / steps,
                    "time_s": time.perf_counter() - t0,
                    "arch": get_space(spec.space).to_string(net.derive()),
                }
            )
        search_time = time.perf_counter() - t0
        arch = net.derive()
        metrics: dict[str, float] = {}
        if "valid" in data.evals:
            # The supernet's teacher-forced loss on the held-out split (decoding the
            # supernet is not what the search optimises; BLEU comes from retraining).
            valid = TranslationLoader(
                data.evals["valid"], data.tokenizer, bs, train=False, device=dev
            )
            metrics["loss"] = task.evaluate_loss(net, valid)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
        return TaskSearchResult(
            get_space(spec.space).to_string(arch),
            metrics,
            search_time_s=search_time,
            peak_memory_mb=peak,
            extra={
                "settings": p,
                "epochs": epochs,
                "splits": {"weights": len(w_split), "arch": len(a_split)},
                "supernet_params": sum(t.numel() for t in net.weight_parameters()),
                "alphas": net.alpha_weights(),
                "history": history,
            },
        )
