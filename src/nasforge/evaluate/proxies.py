"""Zero-cost proxies: scores of an untrained network that rank architectures.

Each proxy is one function ``proxy(net, inputs, targets, loss=None) -> float`` registered
in :data:`PROXIES` (adding a proxy = one function + one ``@PROXIES.register`` line).
``loss(output, targets)`` is the task's loss (None: cross-entropy of logits and class
labels, image classification as in the references); the loss-gradient proxies (snip,
grad_norm, plain, grasp, fisher) back-propagate it, so they score networks of any task
whose batches are float tensors (restoration: noisy image -> clean image, L1). Proxies in
:data:`LABEL_PROXIES` read class labels and serve classification only. A proxy
receives the freshly initialised network and may change its parameters (synflow takes
absolute weights in float64, zen re-draws them) but leaves no hook or patched method behind;
the caller restores the initial weights before the next proxy plus one batch of normalised images and labels;
the caller (:func:`nasforge.evaluate.zero_cost.compute_proxies`) fixes the seed, so a score
is a pure function of (arch, batch, seed).

Definitions follow the papers; where a paper leaves a detail open we follow the reference
implementation the published NB201 scores were computed with, NAS-Bench-Suite-Zero / NASLib
(``naslib/predictors/utils/pruners/measures/*.py``, itself from SamsungLabs/zero-cost-nas
``foresight/pruners/measures/*.py``), read, not copied:

- ``synflow``, ``snip``, ``grasp``, ``fisher``, ``grad_norm``, ``plain``, ``l2_norm``:
  Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, summing the
  per-weight saliency of every Conv2d / Linear weight (``get_layer_metric_array``; biases
  and BN parameters are not scored). synflow: Tanaka et al., NeurIPS 2020; snip: Lee et al.,
  ICLR 2019; grasp: Wang et al., ICLR 2020; fisher: Theis et al. 2018 / Turner et al.,
  ICLR 2020.
- ``jacov``: Mellor et al., "Neural Architecture Search without Training" (arXiv v1,
  2020), Jacobian covariance. ``nwot``: the same paper's ICML 2021 version, log-determinant
  of the ReLU activation-pattern kernel.
- ``epe_nas``: Lopes et al., "EPE-NAS", ICANN 2021 (VascoLopes/EPE-NAS ``search.py``).
- ``zen``: Lin et al., "Zen-NAS", ICCV 2021 (idstcv/ZenNAS ``compute_zen_score.py``).
- ``params`` / ``flops``: the NB201 counting convention of :mod:`nasforge.cost`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.cost.counter import count_flops, count_params
from nasforge.registry import Registry

__all__ = ["LABEL_PROXIES", "PROXIES", "LossFn", "Proxy", "scored_layers"]

#: ``proxy(net, inputs, targets, loss=None) -> score``; higher is meant to be better.
Proxy = Callable[..., float]
#: ``loss(network output, targets) -> scalar``: a task's loss (None = cross-entropy).
LossFn = Callable[[Any, Any], torch.Tensor]
#: Proxies defined on class labels (EPE-NAS groups the Jacobians by class): classification only.
LABEL_PROXIES = frozenset({"epe_nas"})

PROXIES: Registry[float] = Registry("zero-cost proxy")

# numerical floor of the NASLib jacov / epe_nas scores (``k = 1e-5`` in both references)
_EPS = 1e-5


def scored_layers(net: nn.Module) -> list[nn.Module]:
    """The layers whose weights the saliency proxies score: every Conv2d and Linear."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None) -> torch.Tensor:
    """The batch loss of ``net``: the task's ``loss`` or, by default, cross-entropy."""
    out = net(inputs)
    return F.cross_entropy(out, targets) if loss is None else loss(out, targets)


def _loss_backward(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> None:
    net.zero_grad(set_to_none=True)
    _loss(net, inputs, targets, loss).backward()


def _sum_over_weights(net: nn.Module, per_weight: Callable[[nn.Module], torch.Tensor]) -> float:
    total = 0.0
    for layer in scored_layers(net):
        if layer.weight.grad is None:  # an unused layer (e.g. behind a ``none`` edge) scores 0
            continue
        total += float(per_weight(layer).detach().sum())
    return total


def _input_jacobian(net: nn.Module, inputs: torch.Tensor) -> tuple[np.ndarray, int]:
    """d(sum of logits)/d(input) per sample, flattened: the Jacobian both jacov and EPE-NAS
    use (``y.backward(ones_like(y))`` on the input); and the number of outputs."""
    x = inputs.detach().clone().requires_grad_(True)
    net.zero_grad(set_to_none=True)
    y = net(x)
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    return x.grad.detach().reshape(x.shape[0], -1).double().cpu().numpy(), int(y.shape[-1])


# ----------------------------------------------------------------------------------------
# saliency proxies (sum over all Conv/Linear weights)
# ----------------------------------------------------------------------------------------
@PROXIES.register("synflow")
def synflow(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    """Sum of |w * dR/dw| with R = sum of the outputs of the network with |weights|, BN
    switched off and an all-ones input (Tanaka et al. 2020, eq. 5). Independent of the data:
    only the input shape is used. In float64, as the reference (the product of weights over
    depth overflows float32)."""
    # the reference runs synflow with ``bn=False`` (BN forward is the identity): a forward
    # hook returning the BN input does that without changing the module
    handles = [
        m.register_forward_hook(lambda m, i, o: i[0])
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    try:
        net.double()
        with torch.no_grad():
            for p in net.state_dict().values():
                p.abs_()
        net.zero_grad(set_to_none=True)
        ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
        net(ones).sum().backward()
    finally:
        for h in handles:
            h.remove()
    return _sum_over_weights(net, lambda layer: (layer.weight * layer.weight.grad).abs())


def _loss_grad_pass(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> None:
    _loss_backward(net, inputs, targets, loss)


def _snip_from(
    net: nn.Module, state: Any, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    return _sum_over_weights(net, lambda layer: (layer.weight * layer.weight.grad).abs())


def _grad_norm_from(
    net: nn.Module, state: Any, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    return _sum_over_weights(net, lambda layer: layer.weight.grad.norm())


def _plain_from(
    net: nn.Module, state: Any, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    return _sum_over_weights(net, lambda layer: layer.weight * layer.weight.grad)


@PROXIES.register("snip")
def snip(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """Sum of |dL/dc| over a multiplicative mask c = 1 on every weight, i.e. |w * dL/dw|
    (Lee et al. 2019, eq. 6; the reference's weight_mask gradient is exactly this)."""
    return shared_proxy("snip", net, inputs, targets, loss)


@PROXIES.register("grad_norm")
def grad_norm(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    """Sum over layers of the Euclidean norm of the loss gradient w.r.t. the layer's weight."""
    return shared_proxy("grad_norm", net, inputs, targets, loss)


@PROXIES.register("plain")
def plain(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """Sum of w * dL/dw (signed; the first-order Taylor term, Mozer & Smolensky 1989)."""
    return shared_proxy("plain", net, inputs, targets, loss)


@PROXIES.register("grasp")
def grasp(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """Sum of -w * (H g) with g = dL/dw and H the Hessian of the loss (Wang et al. 2020,
    eq. 8): a Hessian-gradient product by double back-propagation."""
    layers = scored_layers(net)
    weights = [layer.weight for layer in layers]
    net.zero_grad(set_to_none=True)
    value = _loss(net, inputs, targets, loss)
    g = torch.autograd.grad(value, weights, allow_unused=True)
    value = _loss(net, inputs, targets, loss)
    g_graph = torch.autograd.grad(value, weights, create_graph=True, allow_unused=True)
    z = sum(
        (gi.detach() * gg).sum()
        for gi, gg in zip(g, g_graph, strict=True)
        if gi is not None and gg is not None
    )
    if not isinstance(z, torch.Tensor):
        return 0.0  # no weight reaches the loss
    z.backward()  # weight.grad = H g
    return _sum_over_weights(net, lambda layer: -layer.weight.detach() * layer.weight.grad)


@PROXIES.register("fisher")
def fisher(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """Fisher information of the channels (Theis et al. 2018): per output channel of each
    Conv/Linear, 0.5 * mean over the batch of (sum over positions of activation * dL/d
    activation)^2. As in the reference, a channel's value is counted once per weight of that
    channel (``reshape_elements`` broadcasts it over ``weight.shape[1:]``) before summing."""
    layers = scored_layers(net)
    per_layer: dict[int, torch.Tensor] = {}
    handles = []

    def make_hook(idx: int) -> Callable[..., None]:
        def forward_hook(module: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor):
            act = out.detach()

            def grad_hook(grad: torch.Tensor) -> None:
                prod = act * grad.detach()
                g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
                value = g_nk.pow(2).mean(0).mul(0.5)
                per_layer[idx] = per_layer[idx] + value if idx in per_layer else value

            if out.requires_grad:
                out.register_hook(grad_hook)

        return forward_hook

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(make_hook(i)))
    try:
        _loss_backward(net, inputs, targets, loss)
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for i, layer in enumerate(layers):
        if i in per_layer:
            fan = math.prod(layer.weight.shape[1:])
            total += float(per_layer[i].abs().sum()) * fan
    return total


@PROXIES.register("l2_norm")
def l2_norm(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    """Sum over layers of the Euclidean norm of the layer's weight (data-free)."""
    return float(sum(float(layer.weight.detach().norm()) for layer in scored_layers(net)))


# ----------------------------------------------------------------------------------------
# activation / Jacobian proxies
# ----------------------------------------------------------------------------------------
def _jacov_from(
    net: nn.Module, state: Any, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    jac, _ = state
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return math.nan  # a constant Jacobian row (dead network): no correlation defined
    eig = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(eig + _EPS) + 1.0 / (eig + _EPS)))


@PROXIES.register("jacov")
def jacov(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """-sum_i [log(l_i + k) + 1/(l_i + k)] over the eigenvalues l_i of the correlation
    matrix of the per-sample input Jacobians (Mellor et al. 2020 v1, k = 1e-5)."""
    return shared_proxy("jacov", net, inputs, targets, loss)


@PROXIES.register("nwot")
def nwot(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """log|K_H| with K_H[i, j] = number of ReLU units on which samples i and j agree (both
    active or both inactive), over every ReLU of the network (Mellor et al., ICML 2021,
    eq. 2; the units are the ReLUs' inputs, binarised at 0)."""
    n = inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(module: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        codes = (inp[0].detach().reshape(n, -1) > 0).double().cpu()
        kernel.add_(codes @ codes.T).add_((1.0 - codes) @ (1.0 - codes).T)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    _, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet)


def _epe_nas_from(
    net: nn.Module, state: Any, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    jac, num_classes = state
    labels = targets.detach().cpu().numpy()
    scores: list[float] = []
    for c in np.unique(labels):
        rows = jac[labels == c]
        if rows.shape[0] < 2:
            # one sample has no correlation matrix: the reference's corrcoef of a single
            # row is 1.0 (s_c ~ 1e-5) or raises and is skipped; we skip it
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(rows)
        s = float(np.sum(np.log(np.abs(corr) + _EPS)))
        if num_classes > 100:
            s /= len(corr)
        scores.append(s)
    if not scores or not all(math.isfinite(s) for s in scores):
        return math.nan
    if num_classes <= 100:
        return float(sum(abs(s) for s in scores))
    arr = np.asarray(scores)
    return float(np.abs(arr[:, None] - arr[None, :]).sum() / len(arr))


@PROXIES.register("epe_nas")
def epe_nas(
    net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    """Per class c: s_c = sum log(|corr of the class's input Jacobians| + k); the score is
    sum_c |s_c| for <= 100 classes, else the mean over classes of sum_c' |s_c - s_c'| with
    s_c divided by the class's sample count (Lopes et al. 2021, eqs. 3-5; k = 1e-5)."""
    return shared_proxy("epe_nas", net, inputs, targets, loss)


@PROXIES.register("zen")
def zen(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """log E|f(x) - f(x + 0.01 e)|_1 + sum over BN layers of log sqrt(mean BN variance), with
    f the pre-global-pooling feature map, x, e ~ N(0, 1) and all weights re-drawn from
    N(0, 1) (Lin et al. 2021, Alg. 1; ZenNAS ``compute_zen_score.py``, mixup_gamma=1e-2).
    The BN variance is that of the batch each BN layer normalises in training mode (the
    running variance with momentum 1), so the score does not depend on BN's momentum."""
    # the caller seeds torch's global generator before each proxy: draws come from it
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
    pools = [m for m in net.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d))]
    features: list[torch.Tensor] = []
    bn_vars: list[torch.Tensor] = []
    handles = []
    if pools and isinstance(pools[-1], nn.AdaptiveAvgPool2d):
        handles.append(
            pools[-1].register_forward_hook(lambda m, i, o: features.append(i[0].detach()))
        )
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(
                m.register_forward_hook(
                    lambda m, i, o: (
                        bn_vars.append(i[0].detach().var(dim=(0, 2, 3), unbiased=False))
                        if i[0].dim() == 4
                        else None
                    )
                )
            )
    x = torch.randn(inputs.shape).to(inputs.device, inputs.dtype)
    e = torch.randn(inputs.shape).to(inputs.device, inputs.dtype)
    net.train()
    try:
        with torch.no_grad():
            out = net(x)
            f1 = features[-1] if features else out
            variances = list(bn_vars)
            out = net(x + 1e-2 * e)
            f2 = features[-1] if features else out
    finally:
        for h in handles:
            h.remove()
    diff = (f1 - f2).abs().reshape(f1.shape[0], -1).sum(1).mean()
    bn_term = sum(0.5 * math.log(float(v.mean())) for v in variances if float(v.mean()) > 0)
    return float(math.log(float(diff)) + bn_term) if float(diff) > 0 else -math.inf


# ----------------------------------------------------------------------------------------
# proxies that are functions of one shared pass
# ----------------------------------------------------------------------------------------
#: proxy -> (pass name, finish(net, pass result, inputs, targets) -> score). Proxies with the
#: same pass read the same quantity of the same initial network (snip, grad_norm and plain the
#: loss gradient; jacov and epe_nas the input Jacobian), so scoring several of them together
#: runs that pass once (:func:`nasforge.evaluate.zero_cost.compute_proxies`); each is
#: computed exactly as on its own.
SHARED: dict[str, tuple[str, Callable[..., float]]] = {
    "snip": ("loss_grad", _snip_from),
    "grad_norm": ("loss_grad", _grad_norm_from),
    "plain": ("loss_grad", _plain_from),
    "jacov": ("input_jacobian", _jacov_from),
    "epe_nas": ("input_jacobian", _epe_nas_from),
}
#: pass name -> pass(net, inputs, targets) -> what the finishing functions read
PASSES: dict[str, Callable[..., Any]] = {
    "loss_grad": _loss_grad_pass,
    "input_jacobian": lambda net, inputs, targets, loss=None: _input_jacobian(net, inputs),
}


def shared_proxy(
    name: str, net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None
) -> float:
    """Proxy ``name`` of :data:`SHARED` on its own: its pass, then its finishing step."""
    pass_name, finish = SHARED[name]
    return finish(net, PASSES[pass_name](net, inputs, targets, loss), inputs, targets, loss)


# ----------------------------------------------------------------------------------------
# cost proxies
# ----------------------------------------------------------------------------------------
@PROXIES.register("params")
def params(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """Parameters in millions (the NB201 convention of :func:`nasforge.cost.count_params`)."""
    return count_params(net)


@PROXIES.register("flops")
def flops(net: nn.Module, inputs: torch.Tensor, targets: Any, loss: LossFn | None = None) -> float:
    """FLOPs in millions of one sample (:func:`nasforge.cost.count_flops` on the input shape)."""
    return count_flops(net, (1, *inputs.shape[1:]))
