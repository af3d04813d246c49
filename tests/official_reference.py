"""The official NAS-Bench-201 search steps, restated against xautodl's search models.

D-X-Y/AutoDL-Projects drives its search models from scripts (``exps/NAS-Bench-201-algos/``)
that the ``xautodl`` package does not ship. To check a nasforge method against the official
code side by side (``tests/test_oneshot_official.py``) and to measure both at the same
configuration (``benchmarks/oneshot_vs_official.py``), this module builds the official
search model with a method's weights and restates each script's step, citing its lines.
The scripts ran on PyTorch 1.x, whose ``zero_grad()`` zero-filled gradients; that is
restated as ``zero_grad(set_to_none=False)``.

``xautodl`` is optional (``pip install --no-deps xautodl`` plus ``pyyaml``): it is imported
only when an official model is built. Nothing here is used by a search.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.nn.supernet import to_xautodl_state_dict
from nasforge.search.oneshot.base import OneShotSearch
from nasforge.spaces.nb201 import EDGES, OPS

#: nasforge method -> the name of its search model in ``xautodl.models.cell_searchs``.
OFFICIAL_MODELS = {
    "darts-v1": "DARTS-V1",
    "darts-v2": "DARTS-V2",
    "gdas": "GDAS",
    "setn": "SETN",
    "enas": "ENAS",
    "rsps": "RANDOM",
}


def official_model(method: OneShotSearch) -> nn.Module:
    """xautodl's search model for ``method`` (after ``setup``) holding its weights, BN
    buffers and alphas."""
    from xautodl.models.cell_searchs import nas201_super_nets

    net = method.supernet
    assert net is not None
    cfg = method.config
    model = nas201_super_nets[OFFICIAL_MODELS[method.name]](
        cfg.C, cfg.N, 4, net.num_classes, list(OPS), False, cfg.track_running_stats
    )
    alphas = getattr(method, "alphas", None)
    model.load_state_dict(
        to_xautodl_state_dict(net.state_dict(), None if alphas is None else alphas.detach())
    )
    return model.to(method.device)


def official_controller(method: OneShotSearch, model: nn.Module) -> nn.Module:
    """The official ENAS controller (``model.create_controller()``) with ``method``'s
    controller weights (the same parameter names)."""
    controller = model.create_controller()
    controller.load_state_dict(method.controller.state_dict())  # type: ignore[attr-defined]
    return controller.to(method.device)


def official_optimizers(
    method: OneShotSearch, model: nn.Module, controller: nn.Module | None = None
) -> tuple[torch.optim.SGD, torch.optim.Adam | None]:
    """(weight SGD, architecture / controller Adam or None) as the scripts build them."""
    cfg = method.config
    # DARTS/GDAS/SETN optimise ``get_weights()``; ENAS/RANDOM ``parameters()`` of a model
    # without architecture parameters. xautodl procedures/optimizers.py get_optim_scheduler.
    params = model.get_weights() if hasattr(model, "get_weights") else model.parameters()
    w_opt = torch.optim.SGD(
        params, cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
    )
    a_opt: torch.optim.Adam | None = None
    if controller is not None:  # ENAS.py:313-318
        a_opt = torch.optim.Adam(
            controller.parameters(),
            lr=cfg.arch_lr,
            betas=cfg.arch_betas,
            eps=cfg.arch_eps,  # type: ignore[attr-defined]
        )
    elif hasattr(model, "get_alphas"):  # e.g. DARTS-V1.py, SETN.py:231-236
        a_opt = torch.optim.Adam(
            model.get_alphas(),
            lr=cfg.arch_lr,
            betas=(0.5, 0.999),
            weight_decay=cfg.arch_weight_decay,
        )
    return w_opt, a_opt


def structure(op_ids: Sequence[int]) -> Any:
    """xautodl's ``Structure`` of an arch given as nasforge op ids (edge order ``EDGES``)."""
    from xautodl.models.cell_searchs.genotypes import Structure

    nodes: dict[int, list[tuple[str, int]]] = {}
    for (dst, src), k in zip(EDGES, op_ids, strict=True):
        nodes.setdefault(dst, []).append((OPS[int(k)], src))
    return Structure([tuple(nodes[d]) for d in sorted(nodes)])


def weight_step(
    model: nn.Module, w_opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, clip: float
) -> tuple[float, float]:
    """The weight step of DARTS-V1.py:53-59, DARTS-V2.py:162-167, GDAS.py:50-55,
    RANDOM-NAS.py:45-50 and ENAS.py:58-64 (clip over ``network.parameters()``, which holds
    the architecture parameters of DARTS / GDAS); ``clip <= 0``: SETN.py:57-61, no clip.
    Returns (loss, gradient norm before clipping)."""
    w_opt.zero_grad(set_to_none=False)
    _, logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    norm = 0.0
    if clip > 0:
        norm = float(nn.utils.clip_grad_norm_(model.parameters(), clip))
    w_opt.step()
    return float(loss.detach()), norm


def arch_step(
    model: nn.Module, a_opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> float:
    """The first-order architecture step of DARTS-V1.py:69-73 / GDAS.py:65-69."""
    a_opt.zero_grad(set_to_none=False)
    _, logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    a_opt.step()
    return float(loss.detach())


def _hessian_vector_product(
    model: nn.Module, vector: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, r: float
) -> torch.Tensor:
    """DARTS-V2.py:31-49: central difference on the model itself (train mode)."""
    weights = model.get_weights()
    radius = float(r / torch.cat([v.reshape(-1) for v in vector]).norm())
    grads = []
    for sign in (1.0, -2.0):
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=sign * radius)
        _, logits = model(x)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(logits, y), model.get_alphas())
        grads.append(g)
    with torch.no_grad():
        for w, v in zip(weights, vector, strict=True):
            w.add_(v, alpha=radius)
    return (grads[0] - grads[1]) / (2 * radius)


def darts_v2_arch_step(
    model: nn.Module,
    w_opt: torch.optim.Optimizer,
    a_opt: torch.optim.Optimizer,
    base: tuple[torch.Tensor, torch.Tensor],
    arch: tuple[torch.Tensor, torch.Tensor],
) -> float:
    """DARTS-V2.py:141-152 with ``backward_step_unrolled`` (:52-113): the virtual SGD step
    (momentum * buffer + grad + wd * w, no Nesterov) on a deep copy, its valid loss, the
    implicit term by finite differences; returns the unrolled valid loss."""
    (xb, yb), (xa, ya) = base, arch
    a_opt.zero_grad(set_to_none=False)
    weights = model.get_weights()
    _, logits = model(xb)
    loss = nn.functional.cross_entropy(logits, yb)
    group = w_opt.param_groups[0]
    lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
    with torch.no_grad():
        theta = torch.cat([w.reshape(-1) for w in weights])
        if all("momentum_buffer" in w_opt.state[w] for w in weights):
            moment = momentum * torch.cat(
                [w_opt.state[w]["momentum_buffer"].reshape(-1) for w in weights]
            )
        else:  # the script's ``except`` branch: no buffers before the first step
            moment = torch.zeros_like(theta)
        grads = torch.autograd.grad(loss, weights)
        new_theta = theta - lr * (moment + torch.cat([g.reshape(-1) for g in grads]) + wd * theta)
    unrolled = copy.deepcopy(model)
    offset = 0
    with torch.no_grad():
        for w in unrolled.get_weights():
            w.copy_(new_theta[offset : offset + w.numel()].view_as(w))
            offset += w.numel()
    unrolled.zero_grad(set_to_none=False)
    _, ulogits = unrolled(xa)
    unrolled_loss = nn.functional.cross_entropy(ulogits, ya)
    unrolled_loss.backward()
    dalpha = unrolled.arch_parameters.grad.clone()
    vector = [w.grad for w in unrolled.get_weights()]
    implicit = _hessian_vector_product(model, vector, xb, yb, 1e-2)
    model.arch_parameters.grad = dalpha - lr * implicit
    a_opt.step()
    return float(unrolled_loss.detach())


def setn_step(
    model: nn.Module,
    w_opt: torch.optim.Optimizer,
    a_opt: torch.optim.Optimizer,
    base: tuple[torch.Tensor, torch.Tensor],
    arch: tuple[torch.Tensor, torch.Tensor],
    op_ids: Sequence[int],
) -> float:
    """SETN.py:54-76 with the uniformly sampled arch ``op_ids``: a dynamic (single-path)
    weight step without clipping, then a joint (weighted-sum) arch step. Returns the
    weight-step loss."""
    model.set_cal_mode("dynamic", structure(op_ids))
    model.zero_grad(set_to_none=False)
    _, logits = model(base[0])
    loss = nn.functional.cross_entropy(logits, base[1])
    loss.backward()
    w_opt.step()
    model.set_cal_mode("joint")
    model.zero_grad(set_to_none=False)
    _, logits = model(arch[0])
    nn.functional.cross_entropy(logits, arch[1]).backward()
    a_opt.step()
    return float(loss.detach())


def enas_weight_step(
    model: nn.Module,
    controller: nn.Module,
    w_opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
) -> float:
    """ENAS.py:55-64: a controller sample (global generator), then the clip-5 weight step."""
    model.train()
    with torch.no_grad():
        _, _, sampled = controller()
    model.update_arch(sampled)
    return weight_step(model, w_opt, x, y, 5.0)[0]


def rsps_weight_step(
    model: nn.Module,
    w_opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    op_ids: Sequence[int] | None = None,
) -> float:
    """RANDOM-NAS.py:44-50: a uniform arch (Python's ``random``; or ``op_ids``, set as the
    model's ``arch_cache`` as ``random_genotype(True)`` would), the clip-5 weight step."""
    if op_ids is None:
        model.random_genotype(True)
    else:
        model.arch_cache = structure(op_ids)
    return weight_step(model, w_opt, x, y, 5.0)[0]


def enas_train_controller(
    model: nn.Module,
    controller: nn.Module,
    c_opt: torch.optim.Optimizer,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    cfg: Any,
    baseline: float | None,
) -> float:
    """ENAS.py:123-172 (``train_controller``); returns the next epoch's baseline (:199)."""
    model.eval()
    controller.train()
    controller.zero_grad(set_to_none=False)
    aggregate = cfg.controller_num_aggregate
    step_baseline = torch.zeros(1)
    for step in range(cfg.controller_train_steps * aggregate):
        x, y = batches[step % len(batches)]
        log_prob, entropy, sampled = controller()
        with torch.no_grad():
            model.update_arch(sampled)
            _, logits = model(x)
            acc = (logits.argmax(1) == y).float().mean().view(-1)
        reward = acc + cfg.controller_entropy_weight * entropy
        if baseline is None:
            step_baseline = acc
        else:
            step_baseline = baseline - (1 - cfg.controller_bl_dec) * (baseline - reward)
        loss = -1 * log_prob * (reward - step_baseline) / aggregate
        loss.backward(retain_graph=True)
        if (step + 1) % aggregate == 0:
            nn.utils.clip_grad_norm_(controller.parameters(), 5.0)
            c_opt.step()
            controller.zero_grad(set_to_none=False)
    return float(step_baseline.item())
