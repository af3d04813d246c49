"""PC-DARTS (Xu et al., ICLR 2020): partial channel connections + edge normalisation, in any
space whose adapter normalises edges per node (NB201, the DARTS cell space).

Only ``1/K`` of an edge's channels go through its mixed op (the rest bypass it, then a
channel shuffle), which cuts the memory and time of a search step; to stabilise the
now-noisier choice, every edge output is also multiplied by an edge weight: per node, a
softmax over the betas of its input edges (the space adapter's ``normalise_edges``). The
derived arch is the space's derivation of ``softmax(alpha)`` with the normalised betas as
edge weights: in NB201 every edge is kept, so beta, one positive factor per edge, scales
but does not reorder an edge's ops (it is recorded per epoch); in the DARTS cell space it
ranks each node's inputs (``model_search.py:188-210``).

The mixed op follows its pooling op with a ``BatchNorm2d(C/K, affine=False)``
(``model_search.py:34-35``; ``pool_bn``, default on).

Settings from the official ``train_search.py`` (github.com/yuhuixu1993/PC-DARTS): K=4,
50 epochs, arch updates from epoch 15 on (``if epoch>=15``, ``train_search.py:156-157``),
first order, the alpha step before the weight step; SGD lr 0.1 (momentum 0.9, no Nesterov,
``train_search.py:81-85``) cosine to ``learning_rate_min`` = 0 (``train_search.py:26,107-108``),
weight decay 3e-4, batch 256, gradient clip 5 over ``model.parameters()``, which do not hold
the alphas/betas (``train_search.py:164``); arch Adam lr 6e-4, betas (0.5, 0.999), weight
decay 1e-3 (``architect.py:17-18``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import AlphaSearch, Batch, StepStats
from nasforge.search.oneshot.config import OneShotConfig, check_bool, check_int
from nasforge.search.registry import ONESHOT


@dataclass(frozen=True)
class PCDartsConfig(OneShotConfig):
    """PC-DARTS' published settings; ``partial_k`` = K, ``warmup_epochs`` = epochs before
    the first architecture update, ``edge_norm`` toggles the betas, ``pool_bn`` the BN after
    the pooling op."""

    epochs: int = 50
    batch_size: int = 256
    lr: float = 0.1
    eta_min: float = 0.0
    nesterov: bool = False
    weight_decay: float = 3e-4
    arch_lr: float = 6e-4
    partial_k: int = 4
    warmup_epochs: int = 15
    edge_norm: bool = True
    pool_bn: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.partial_k, bool)
            or not isinstance(self.partial_k, int)
            or (self.partial_k < 1 or self.C % self.partial_k)
        ):
            raise SearchError(
                f"partial_k={self.partial_k!r} invalid; expected an int >= 1 dividing C={self.C}"
            )
        check_int(self, "warmup_epochs", minimum=0)
        check_bool(self, "edge_norm")
        check_bool(self, "pool_bn")


@ONESHOT.register("pc-darts")
class PCDarts(AlphaSearch):
    """PC-DARTS (partial channels K, edge normalisation, warm-up)."""

    name = "pc-darts"
    config_class = PCDartsConfig

    def partial_k(self) -> int:
        return int(self.config.partial_k)  # type: ignore[attr-defined]

    def setup_arch(self) -> None:
        self.alphas = self.new_alphas()
        # One beta per alpha row (edge), drawn after the alphas with the same official init
        # 1e-3 * randn (PC-DARTS model_search.py:172-175).
        init = 1e-3 * torch.randn(self.alphas.shape[0], generator=self.generator)
        self.betas = torch.nn.Parameter(init.to(self.device))
        params = [self.alphas, self.betas] if self.config.edge_norm else [self.alphas]  # type: ignore[attr-defined]
        self.a_optimizer = self.arch_adam(params)

    def edge_weights(self, detach: bool = False) -> torch.Tensor | None:
        """Per node, the softmax of its input edges' betas (the space's normalisation);
        None with ``edge_norm`` off."""
        if not self.config.edge_norm:  # type: ignore[attr-defined]
            return None
        return self.space.normalise_edges(self.betas.detach() if detach else self.betas)

    def _forward(self, x: torch.Tensor, detach: bool) -> torch.Tensor:
        assert self.supernet is not None
        return self.supernet(
            x, weights=self.mix_weights(detach=detach), edge_weights=self.edge_weights(detach)
        )

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert arch is not None
        if epoch >= self.config.warmup_epochs:  # type: ignore[attr-defined]
            x, y = arch
            loss = self.criterion(self._forward(x, detach=False), y)
            params = [p for group in self.a_optimizer.param_groups for p in group["params"]]
            grads = torch.autograd.grad(loss, params)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            self.a_optimizer.step()
        return self.weight_step(lambda x: self._forward(x, detach=True), base)

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: object) -> torch.Tensor:
        return self._forward(x, detach=True)

    def derive_edge_weights(self) -> np.ndarray | None:
        """The normalised betas the derivation multiplies in (None with ``edge_norm`` off)."""
        ew = self.edge_weights(detach=True)
        return None if ew is None else ew.cpu().double().numpy()

    def extra_record(self) -> dict[str, Any]:
        ew = self.edge_weights(detach=True)
        return {"edge_weights": None if ew is None else [float(v) for v in ew.cpu()]}

    def arch_state(self) -> dict[str, Any]:
        state = super().arch_state()
        state["betas"] = self.betas.detach().clone()
        return state

    def load_arch_state(self, state: dict[str, Any]) -> None:
        super().load_arch_state(state)
        with torch.no_grad():
            self.betas.copy_(state["betas"])
