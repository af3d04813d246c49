"""SETN (Dong & Yang, "One-Shot Neural Architecture Search via Self-Evaluated Template
Network", ICCV 2019) as run for NAS-Bench-201.

The shared weights are trained on one uniformly sampled op per edge (``dync_genotype(True)``
in xautodl ``search_model_setn.py``, ``exps/NAS-Bench-201-algos/SETN.py:54-61``); the
architecture distribution softmax(alpha) is learned on the valid half with the
weighted-sum ("joint") forward (``SETN.py:71-76``). To choose, the ``select_num`` most
probable archs under that distribution (``return_topK``, the space's ``top_k``) are each evaluated with the shared
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
from typing import Any

import torch

from nasforge.search.oneshot.base import (
    AlphaSearch,
    Batch,
    SearchContext,
    StepStats,
    fill_missing_grads,
)
from nasforge.search.oneshot.config import OneShotConfig, check_int
from nasforge.search.registry import ONESHOT


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


def best_of(
    method: AlphaSearch | object,
    candidates: list[Any],
    ctx: SearchContext,
    batches_each: int,
    batches: Iterator[Batch] | None = None,
) -> Any:
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


@ONESHOT.register("setn")
class SETN(AlphaSearch):
    """Uniform single-path weight training + learned template distribution + selection
    among the space's top-k archs (a space whose paths are archs and that ranks them)."""

    name = "setn"
    config_class = SETNConfig
    eval_is_derived = True
    needs = frozenset({"path-archs", "top-k"})

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None and arch is not None
        net = self.supernet
        sampled = self.uniform_path()
        stats = self.weight_step(lambda x: net(x, index=sampled), base)
        self.arch_step(lambda x: net(x, weights=self.mix_weights()), arch)
        # The official joint-mode ``arch_loss.backward()`` reaches every weight; we compute
        # only alpha's gradient and give the weights the zero gradient they would keep.
        fill_missing_grads(net.parameters())
        return stats

    def derive(self, ctx: SearchContext) -> Any:
        cfg = self.config
        log_probs = torch.log_softmax(self.alphas.detach(), dim=-1).cpu().double().numpy()
        candidates = self.space.top_k(log_probs, cfg.select_num)  # type: ignore[attr-defined]
        return best_of(self, candidates, ctx, cfg.select_batches)  # type: ignore[attr-defined]
