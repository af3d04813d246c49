"""Single-level DARTS (Hou & Jin, "Single-DARTS: Towards Stable Architecture Search", 2021).

Weights and alphas are updated together from the same batch of the training split: one
forward, one backward, then an SGD step on the weights and an Adam step on alpha. The
authors show that dropping the bi-level split avoids DARTS' collapse onto skip
connections. Hyper-parameters are DARTS' NB201 settings (they change only the update rule).
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.search.oneshot.base import AlphaSearch, Batch, StepStats, step_stats
from nasforge.search.registry import ALGORITHMS


@ALGORITHMS.register("single-darts")
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
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.grad_clip)
        self.w_optimizer.step()
        self.a_optimizer.step()
        return step_stats(loss, logits, y)

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: object) -> torch.Tensor:
        assert self.supernet is not None
        return self.supernet(x, weights=self.mix_weights(detach=True))
