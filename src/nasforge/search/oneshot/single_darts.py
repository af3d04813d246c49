"""Single-level DARTS (Hou, Jin & Chen, "Single-DARTS: Towards Stable Architecture Search",
arXiv:2108.08128, 2021).

Weights and alphas are updated together from the same batch: one forward, one backward,
then an SGD step on the weights and an Adam step on alpha. The paper attributes DARTS'
performance collapse to the bi-level optimisation and reports that the single-level update
alleviates it.

What is verified and what is not: the update rule (weights and architecture parameters
"updated simultaneously with the same data batch") is from the paper's abstract. The
authors' code (github.com/PencilAndBike/Single-DARTS) could not be read from this project's
sources, so its NB201 hyper-parameters and which data it trains on (the 25k ``train`` half
or all 50k CIFAR-10 training images) are unverified. Until they are, this method keeps
DARTS' NB201 settings (:class:`~nasforge.search.oneshot.base.OneShotConfig`) and, like
every nasforge one-shot method, trains on the weights split of the search loop (the
``train`` half of ``cifar10-valid``); the ``valid`` half is used only for the per-epoch
evaluation.
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.search.oneshot.base import AlphaSearch, Batch, StepStats
from nasforge.search.registry import ONESHOT


@ONESHOT.register("single-darts")
class SingleDarts(AlphaSearch):
    """Single-level DARTS: one loss, one backward, both optimizers step."""

    name = "single-darts"
    uses_arch_batches = False

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        x, y = base
        self.w_optimizer.zero_grad(set_to_none=True)
        self.a_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, weights=self.mix_weights())
        loss = self.criterion(logits, y)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.grad_clip)
        self.w_optimizer.step()
        self.a_optimizer.step()
        return self.step_stats(loss, logits, y)

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: object) -> torch.Tensor:
        assert self.supernet is not None
        return self.supernet(x, weights=self.mix_weights(detach=True))
