"""DARTS (Liu et al., ICLR 2019): first order (V1) and second order (V2), in any space.

Every edge outputs the softmax(alpha)-weighted sum of its ops. V1 alternates an SGD step on
the weights (train half) with an Adam step on alpha (valid half), in that order
(``exps/NAS-Bench-201-algos/DARTS-V1.py``). V2 first updates alpha with the gradient of the
validation loss *after* a virtual SGD step of the weights,

    grad_alpha L_val(w', alpha) - lr * (d^2 L_train / d alpha d w) . grad_w' L_val(w', alpha),
    w' = w - lr * (momentum * buf + grad_w L_train(w, alpha) + wd * w),

the Hessian-vector product being the central finite difference of DARTS eq. 8, then steps
the weights (``exps/NAS-Bench-201-algos/DARTS-V2.py``). Hyper-parameters:
``configs/nas-benchmark/algos/DARTS.config`` +
``scripts-search/NAS-Bench-201-algos/DARTS-V1.sh`` (the
defaults of :class:`~nasforge.search.oneshot.config.OneShotConfig`).

As in the official scripts, the weight step's forward keeps alpha in the graph and its
gradient clipping covers ``network.parameters()`` -- the shared weights *and* the model's
``arch_parameters`` (``DARTS-V1.py:56-58``, ``DARTS-V2.py:165-166``), whose gradient there is
the one left from the architecture step plus this step's: the official weight-step
``w_optimizer.zero_grad()`` clears only the weights. That gradient only enters the clipping
norm; the architecture step replaces it before Adam reads it.

In the DARTS cell space the official code is quark0/darts (``cnn/train_search.py``), whose
iteration takes the arch step first and clips only the weights (``:147-155``; the alphas
are plain tensors outside ``model.parameters()``): the DARTS-space config class says so
(``arch_step_first`` / ``clip_alphas``, :mod:`~nasforge.search.oneshot.settings`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasforge.search.oneshot.base import AlphaSearch, Batch, StepStats, preserved_buffers
from nasforge.search.oneshot.config import OneShotConfig
from nasforge.search.registry import ONESHOT


def _flat_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors]).norm()


def finite_difference_hvp(
    loss_fn: Callable[[], torch.Tensor],
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    vector: Sequence[torch.Tensor],
    r: float = 1e-2,
) -> list[torch.Tensor]:
    """``(d^2 L / d alpha d w) . v`` by the central difference of DARTS eq. 8.

    ``[grad_alpha L(w + eps v) - grad_alpha L(w - eps v)] / (2 eps)`` with
    ``eps = r / ||v||`` (r = 0.01 in DARTS and xautodl). ``loss_fn`` evaluates the loss at
    the current values of ``weights``, which are perturbed in place and restored exactly.
    """
    norm = float(_flat_norm(vector))
    if norm == 0.0:
        return [torch.zeros_like(a) for a in alphas]
    eps = r / norm
    backup = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=eps)
        grads_pos = torch.autograd.grad(loss_fn(), list(alphas))
        with torch.no_grad():
            for w, b, v in zip(weights, backup, vector, strict=True):
                w.copy_(b).sub_(v, alpha=eps)
        grads_neg = torch.autograd.grad(loss_fn(), list(alphas))
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    return [(gp - gn) / (2 * eps) for gp, gn in zip(grads_pos, grads_neg, strict=True)]


def unrolled_arch_gradients(
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    train_loss_fn: Callable[[], torch.Tensor],
    valid_loss_fn: Callable[[], torch.Tensor],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffers: Sequence[torch.Tensor | None] | None = None,
    r: float = 1e-2,
    virtual_buffers: nn.Module | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """DARTS' second-order architecture gradient and the validation loss at ``w'``.

    The virtual step follows xautodl's ``backward_step_unrolled`` (``DARTS-V2.py:52-113``):
    the SGD update with the current momentum buffers (``momentum * buf``) and weight decay,
    ignoring Nesterov. The weights are restored exactly afterwards. Official forwards: the
    train loss at ``w`` and the two finite-difference forwards run on the network itself
    (in train mode, so they move its BatchNorm running statistics, as here), the forward at
    ``w'`` on a deep copy (``DARTS-V2.py:84-99``); pass the module as ``virtual_buffers``
    to leave its buffers as that forward found them.
    """
    weights = list(weights)
    alphas = list(alphas)
    grads = torch.autograd.grad(train_loss_fn(), weights, allow_unused=True)
    buffers = momentum_buffers or [None] * len(weights)
    backup = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            for w, g, buf in zip(weights, grads, buffers, strict=True):
                step = w.detach() * weight_decay
                if g is not None:
                    step = step + g
                if buf is not None and momentum:
                    step = step + momentum * buf
                w.sub_(step, alpha=lr)
        keep = (
            preserved_buffers(virtual_buffers)
            if virtual_buffers is not None
            else contextlib.nullcontext()
        )
        with keep:
            valid_loss = valid_loss_fn()
            all_grads = torch.autograd.grad(valid_loss, alphas + weights, allow_unused=True)
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    d_alpha = [
        torch.zeros_like(a) if g is None else g
        for a, g in zip(alphas, all_grads[: len(alphas)], strict=True)
    ]
    d_weights = [
        torch.zeros_like(w) if g is None else g
        for w, g in zip(weights, all_grads[len(alphas) :], strict=True)
    ]
    implicit = finite_difference_hvp(train_loss_fn, weights, alphas, d_weights, r)
    return [da - lr * h for da, h in zip(d_alpha, implicit, strict=True)], valid_loss.detach()


@ONESHOT.register("darts-v1")
class DartsV1(AlphaSearch):
    """First-order DARTS: weight step (train half) then alpha step (valid half); in the
    order the config class fixes (``arch_step_first``: the alpha step first)."""

    name = "darts-v1"

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        net = self.supernet
        assert net is not None and arch is not None
        if self.config.arch_step_first:
            self.arch_step(lambda x: net(x, weights=self.mix_weights()), arch)
            return self.mixed_weight_step(base)
        stats = self.mixed_weight_step(base)
        self.arch_step(lambda x: net(x, weights=self.mix_weights()), arch)
        return stats

    def mixed_weight_step(self, base: Batch) -> StepStats:
        """The official weight step: xautodl's with alpha in the graph and the clipping over
        weights + alpha; with ``clip_alphas`` off (quark0/darts) alpha detached and only the
        weights clipped."""
        net = self.supernet
        assert net is not None
        if not self.config.clip_alphas:
            return self.weight_step(lambda x: net(x, weights=self.mix_weights(detach=True)), base)
        return self.weight_step(
            lambda x: net(x, weights=self.mix_weights()), base, clip_also=[self.alphas]
        )

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: object) -> torch.Tensor:
        assert self.supernet is not None
        return self.supernet(x, weights=self.mix_weights(detach=True))


@dataclass(frozen=True)
class DartsV2Config(OneShotConfig):
    """DARTS' settings plus ``unroll_r``, the finite-difference radius (r = 0.01)."""

    unroll_r: float = 1e-2


@ONESHOT.register("darts-v2")
class DartsV2(DartsV1):
    """Second-order DARTS: unrolled alpha step (valid half) then weight step (train half)."""

    name = "darts-v2"
    config_class = DartsV2Config

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None and arch is not None
        net = self.supernet
        (xb, yb), (xa, ya) = base, arch
        weights = list(net.parameters())
        group = self.w_optimizer.param_groups[0]
        buffers = [self.w_optimizer.state.get(w, {}).get("momentum_buffer") for w in weights]

        def train_loss() -> torch.Tensor:
            return self.criterion(net(xb, weights=self.mix_weights()), yb)

        def valid_loss() -> torch.Tensor:
            return self.criterion(net(xa, weights=self.mix_weights()), ya)

        (grad,), _ = unrolled_arch_gradients(
            weights,
            [self.alphas],
            train_loss,
            valid_loss,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            momentum_buffers=buffers,
            r=self.config.unroll_r,  # type: ignore[attr-defined]
            virtual_buffers=net,
        )
        self.alphas.grad = grad
        self.a_optimizer.step()
        return self.mixed_weight_step(base)
