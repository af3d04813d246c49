"""GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours",
CVPR 2019).

Every forward draws one op per edge by the Gumbel-max trick on ``log_softmax(alpha)``; the
hard one-hot sample is made differentiable with the straight-through estimator
(``one_hot - probs.detach() + probs``, xautodl ``search_model_gdas.py``), so only the
sampled op is computed. The temperature anneals linearly from ``tau_max`` = 10 to
``tau_min`` = 0.1 over the epochs, ``tau_max - (tau_max - tau_min) * epoch / (epochs - 1)``
(``exps/NAS-Bench-201-algos/GDAS.py:237-239``; 10 and 0.1 from
``scripts-search/NAS-Bench-201-algos/GDAS.sh``). Weight step (train half) then alpha step
(valid half), as ``GDAS.py:49-69``: the weight step's forward samples with alpha in the
graph and clips ``network.parameters()``, which include the alphas (``GDAS.py:54``).
Schedule from ``configs/nas-benchmark/algos/GDAS.config``: 250 epochs (+0 warm-up), SGD lr
0.025 nesterov cosine to 0.001, batch 64, weight decay 5e-4; arch Adam lr 3e-4, wd 1e-3
(``GDAS.sh``), betas (0.5, 0.999).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import AlphaSearch, Batch, StepStats, fill_missing_grads
from nasforge.search.oneshot.config import OneShotConfig, check_float
from nasforge.search.registry import ONESHOT


@dataclass(frozen=True)
class GDASConfig(OneShotConfig):
    """GDAS' NB201 settings (``configs/nas-benchmark/algos/GDAS.config``: 250 epochs)."""

    epochs: int = 250
    tau_max: float = 10.0
    tau_min: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float(self, "tau_max", positive=True)
        check_float(self, "tau_min", positive=True)
        if not 0 < self.tau_min <= self.tau_max:
            raise SearchError(
                f"tau_min={self.tau_min}, tau_max={self.tau_max} invalid; "
                "expected 0 < tau_min <= tau_max"
            )


@ONESHOT.register("gdas")
class GDAS(AlphaSearch):
    """Gumbel-softmax sampled single path with straight-through gradients. Derived by the
    ``pairs`` rule where a node chooses its inputs (xautodl's NASNet-space GDAS model,
    ``search_model_gdas_nasnet.py:128-143``: the 2 strongest (op, input) pairs per node)."""

    name = "gdas"
    config_class = GDASConfig
    eval_is_derived = True
    derive_rule = "pairs"

    def setup_arch(self) -> None:
        super().setup_arch()
        self.tau = float(self.config.tau_max)  # type: ignore[attr-defined]

    def begin_epoch(self, epoch: int) -> None:
        cfg = self.config
        span = max(cfg.epochs - 1, 1)
        self.tau = cfg.tau_max - (cfg.tau_max - cfg.tau_min) * epoch / span  # type: ignore[attr-defined]

    def sample(self, detach: bool) -> tuple[torch.Tensor, list[int]]:
        """(straight-through hard weights, sampled op per edge)."""
        alphas = self.alphas.detach() if detach else self.alphas
        while True:
            # Gumbel(0, 1) noise from our own generator; redrawn on the (rare) inf/nan as
            # the official code does.
            noise = torch.empty(alphas.shape).exponential_(generator=self.generator)
            gumbels = -noise.log().to(alphas.device)
            logits = (alphas.log_softmax(dim=1) + gumbels) / self.tau
            probs = torch.softmax(logits, dim=1)
            if torch.isfinite(gumbels).all() and torch.isfinite(probs).all():
                break
        index = probs.argmax(dim=-1, keepdim=True)
        one_hot = torch.zeros_like(probs).scatter_(-1, index, 1.0)
        hard = one_hot - probs.detach() + probs
        return hard, index.view(-1).tolist()

    def _forward(self, x: torch.Tensor, detach: bool) -> torch.Tensor:
        assert self.supernet is not None
        weights, index = self.sample(detach)
        self._last_index = index
        return self.supernet(x, weights=weights, index=index)

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert arch is not None and self.supernet is not None
        stats = self.weight_step(
            lambda x: self._forward(x, detach=False), base, clip_also=[self.alphas]
        )
        self.arch_step(lambda x: self._forward(x, detach=False), arch)
        # The official arch step back-propagates into the weights too, so a weight sampled
        # only there has a (zero-filled) gradient, hence weight decay and momentum, from
        # then on; we skip computing it and give it the zero gradient it would keep.
        fill_missing_grads(self.supernet.path_parameters(self._last_index))
        return stats

    def extra_record(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def arch_state(self) -> dict[str, Any]:
        return {**super().arch_state(), "tau": self.tau}

    def load_arch_state(self, state: dict[str, Any]) -> None:
        super().load_arch_state(state)
        self.tau = float(state["tau"])
