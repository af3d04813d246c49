"""SETN (Dong & Yang, "One-Shot Neural Architecture Search via Self-Evaluated Template
Network", ICCV 2019) as run for NAS-Bench-201.

The shared weights are trained on one uniformly sampled op per edge (``dync_genotype(True)``
in xautodl ``search_model_setn.py``, ``exps/NAS-Bench-201-algos/SETN.py:54-61``); the
architecture distribution softmax(alpha) is learned on the valid half with the
weighted-sum ("joint") forward (``SETN.py:71-76``). To choose, the ``select_num`` most
probable archs under that distribution (``return_topK``) are each evaluated with the shared
weights in eval mode (running BN statistics) on the next 512-image validation batch and
the best is kept (``get_best_arch``, ``SETN.py:117-140``), every epoch and at the end
(``SETN.py:329,389``).

Settings: ``configs/nas-benchmark/algos/SETN.config`` (250 epochs, SGD lr 0.025 nesterov
cosine to 0.001, batch 64, wd 5e-4, test batch 512) and
``scripts-search/NAS-Bench-201-algos/SETN.sh`` (arch Adam lr 3e-4, wd 1e-3, select_num
100); betas (0.5, 0.999) at ``SETN.py:231-236``. The official weight step has no gradient
clipping (``SETN.py:57-61``). Its ``network.zero_grad()`` zero-filled every gradient
(PyTorch 1.x), and the joint arch step reaches every weight, so from the second step on
every shared weight gets weight decay and momentum at each step, as here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from nasforge.search.oneshot.base import (
    AlphaSearch,
    Batch,
    OneShotConfig,
    SearchContext,
    StepStats,
    check_int,
    fill_missing_grads,
)
from nasforge.search.registry import ALGORITHMS
from nasforge.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch


@dataclass(frozen=True)
class SelectConfig(OneShotConfig):
    """Settings of a search that picks its arch by :func:`best_of` (SETN, RSPS):
    ``select_num`` candidates (official: 100), each scored on ``select_batches`` validation
    batch(es) (official: 1)."""

    select_num: int = 100
    select_batches: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("select_num", "select_batches"):
            check_int(self, name)


@dataclass(frozen=True)
class SETNConfig(SelectConfig):
    """SETN's NB201 settings."""

    epochs: int = 250
    grad_clip: float = 0.0


@lru_cache(maxsize=1)
def _all_op_ids() -> np.ndarray:
    """(15625, 6) op ids of every arch in code order (first edge most significant)."""
    codes = np.arange(NUM_ARCHS)
    cols = [(codes // NUM_OPS ** (NUM_EDGES - 1 - e)) % NUM_OPS for e in range(NUM_EDGES)]
    out = np.stack(cols, axis=1)
    out.flags.writeable = False
    return out


def top_k_archs(log_probs: np.ndarray, k: int) -> list[Arch]:
    """The ``k`` archs of highest log-probability under independent per-edge distributions
    (``return_topK``); ties keep the enumeration order."""
    ops = _all_op_ids()
    scores = log_probs[np.arange(NUM_EDGES)[None, :], ops].sum(axis=1)
    order = np.argsort(-scores, kind="stable")[: min(k, NUM_ARCHS)]
    return [Arch.from_op_ids(ops[i].tolist()) for i in order]


def best_of(
    method: AlphaSearch | object,
    candidates: list[Arch],
    ctx: SearchContext,
    batches_each: int,
    batches: Iterator[Batch] | None = None,
) -> Arch:
    """The candidate of highest one-shot accuracy, each on the next ``batches_each`` batches
    of ``batches`` (default: the un-augmented validation batches) -- the official
    ``get_best_arch`` / ``search_find_best``; the first best wins ties (``np.argmax``)."""
    it = ctx.valid_batches() if batches is None else batches
    best, best_acc = candidates[0], -1.0
    for arch in candidates:
        batches = [next(it) for _ in range(batches_each)]
        acc = method.evaluate_arch(arch, batches)  # type: ignore[attr-defined]
        if acc > best_acc:
            best, best_acc = arch, acc
    return best


@ALGORITHMS.register("setn")
class SETN(AlphaSearch):
    """Uniform single-path weight training + learned template distribution + selection."""

    name = "setn"
    config_class = SETNConfig
    eval_is_derived = True

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None and arch is not None
        net = self.supernet
        sampled = self.rng.integers(0, NUM_OPS, size=NUM_EDGES).tolist()
        stats = self.weight_step(lambda x: net(x, index=sampled), base)
        self.arch_step(lambda x: net(x, weights=self.mix_weights()), arch)
        # The official joint-mode ``arch_loss.backward()`` reaches every weight; we compute
        # only alpha's gradient and give the weights the zero gradient they would keep.
        fill_missing_grads(net.parameters())
        return stats

    def derive(self, ctx: SearchContext) -> Arch:
        cfg = self.config
        log_probs = torch.log_softmax(self.alphas.detach(), dim=-1).cpu().double().numpy()
        candidates = top_k_archs(log_probs, cfg.select_num)  # type: ignore[attr-defined]
        return best_of(self, candidates, ctx, cfg.select_batches)  # type: ignore[attr-defined]
