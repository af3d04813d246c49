"""Side by side with the official code: from the same weights and the same batches, one
nasforge step of DARTS-V1 / DARTS-V2 / GDAS / SETN / ENAS gives the same loss, the same
parameter (and BatchNorm buffer) updates and the same architecture update as the official
search model of xautodl driven as ``exps/NAS-Bench-201-algos/<METHOD>.py`` drives it.

The official scripts are not part of the ``xautodl`` package, so their step is restated here
(from D-X-Y/AutoDL-Projects, cited per step) with the PyTorch 1.x semantics they ran under:
``zero_grad()`` zero-filled gradients (``set_to_none=False``). Two iterations are run, so
momentum, weight decay on the ops a step does not use and the gradient left in the
architecture parameters all matter. Sampling is matched by seeding xautodl's global
generator and the method's own generator identically (or, for SETN, by handing the official
model our sampled arch). Skipped when xautodl is not importable (install it with
``pip install --no-deps xautodl`` plus ``pyyaml``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nasforge.nn.supernet import to_xautodl_state_dict
from nasforge.search import ALGORITHMS
from nasforge.search.oneshot import SearchContext
from nasforge.spaces.nb201 import EDGES, OPS

cell_searchs = pytest.importorskip(
    "xautodl.models.cell_searchs", reason="xautodl (the official code) is not installed"
)
genotypes = pytest.importorskip("xautodl.models.cell_searchs.genotypes")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C, N, CLASSES, BATCH, SIZE = 4, 1, 10, 8, 16
#: Gradient clips small enough that the clip engages at these tiny sizes (asserted below),
#: so the test sees which gradients the clipping norm covers; both sides use the same value.
CLIP = {"darts-v1": 1.0, "darts-v2": 1.0, "gdas": 0.1}
ATOL, RTOL = 1e-6, 1e-5


def _batches(seed: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(BATCH, 3, SIZE, SIZE, generator=g),
            torch.randint(0, CLASSES, (BATCH,), generator=g),
        )
        for _ in range(n)
    ]


def _setup(name: str, official_name: str, **overrides: object):
    """(our method, the official model loaded with our weights/alphas)."""
    method = ALGORITHMS.create(name, C=C, N=N, **overrides)
    method.setup(CLASSES, seed=3)
    official = cell_searchs.nas201_super_nets[official_name](
        C, N, 4, CLASSES, list(OPS), False, True
    )
    alphas = getattr(method, "alphas", None)
    state = to_xautodl_state_dict(
        method.supernet.state_dict(), None if alphas is None else alphas.detach().clone()
    )
    official.load_state_dict(state)
    return method, official


def _official_sgd(params, cfg) -> torch.optim.SGD:
    # xautodl procedures/optimizers.py get_optim_scheduler: SGD(LR, momentum, decay, nesterov).
    return torch.optim.SGD(
        params, cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
    )


def _official_adam(model, cfg) -> torch.optim.Adam:
    return torch.optim.Adam(
        model.get_alphas(), lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay
    )


def _assert_same(method, official) -> None:
    """Every parameter and buffer of our supernet (and alpha) equals the official one's."""
    theirs = official.state_dict()
    alphas = getattr(method, "alphas", None)
    ours = to_xautodl_state_dict(
        method.supernet.state_dict(), None if alphas is None else alphas.detach()
    )
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        torch.testing.assert_close(value, theirs[key], atol=ATOL, rtol=RTOL, msg=key)


def _clip_engaged(params, clip: float) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    return float(torch.cat([g.reshape(-1) for g in grads]).norm()) > clip


def _official_weight_step(model, w_opt, x, y, clip: float):
    """The weight step of DARTS-V1.py:53-59 / GDAS.py:50-55 (``network.parameters()`` clip)."""
    w_opt.zero_grad(set_to_none=False)
    _, logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    engaged = _clip_engaged(model.parameters(), clip)
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    w_opt.step()
    return float(loss.detach()), engaged


def _official_arch_step(model, a_opt, x, y) -> None:
    """DARTS-V1.py:69-73 / GDAS.py:65-69."""
    a_opt.zero_grad(set_to_none=False)
    _, logits = model(x)
    nn.functional.cross_entropy(logits, y).backward()
    a_opt.step()


def _our_loss(stats) -> float:
    loss_sum, _, n = stats
    return float(loss_sum) / n


@pytest.mark.parametrize("name", ["darts-v1", "gdas"])
def test_first_order_steps_match_official(name: str) -> None:
    clip = CLIP[name]
    method, official = _setup(name, {"darts-v1": "DARTS-V1", "gdas": "GDAS"}[name], grad_clip=clip)
    cfg = method.config
    w_opt = _official_sgd(official.get_weights(), cfg)
    a_opt = _official_adam(official, cfg)
    if name == "gdas":
        method.begin_epoch(0)
        official.set_tau(cfg.tau_max)  # GDAS.py:237-239 at epoch 0
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        # Same Gumbel draws: the official model samples from the global generator. Seeds 0, 1
        # make GDAS' second weight step skip convs that the first weight step and the first
        # arch step used, so momentum / weight decay on unused ops are checked.
        torch.manual_seed(it)
        method.generator.manual_seed(it)
        theirs, engaged = _official_weight_step(official, w_opt, *base[it], clip)
        _official_arch_step(official, a_opt, *arch[it])
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert engaged
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, official)


def _official_darts_v2_step(model, w_opt, a_opt, base, arch, clip: float) -> float:
    """DARTS-V2.py:141-167: the unrolled arch step (``backward_step_unrolled``, :52-113) then
    the weight step, restated."""
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
            moment = torch.cat([w_opt.state[w]["momentum_buffer"].reshape(-1) for w in weights])
            moment = moment * momentum
        else:
            moment = torch.zeros_like(theta)
        grads = torch.autograd.grad(loss, weights)
        dtheta = torch.cat([g.reshape(-1) for g in grads]) + wd * theta
        new_theta = theta - lr * (moment + dtheta)
    unrolled = copy.deepcopy(model)
    offset = 0
    with torch.no_grad():
        for w in unrolled.get_weights():
            w.copy_(new_theta[offset : offset + w.numel()].view_as(w))
            offset += w.numel()
    unrolled.zero_grad(set_to_none=False)
    _, ulogits = unrolled(xa)
    nn.functional.cross_entropy(ulogits, ya).backward()
    dalpha = unrolled.arch_parameters.grad.clone()
    vector = [w.grad for w in unrolled.get_weights()]
    # _hessian_vector_product, DARTS-V2.py:31-49 (r = 1e-2).
    radius = 1e-2 / torch.cat([v.reshape(-1) for v in vector]).norm()
    with torch.no_grad():
        for w, v in zip(weights, vector, strict=True):
            w.add_(v, alpha=float(radius))
    _, lp = model(xb)
    (gp,) = torch.autograd.grad(nn.functional.cross_entropy(lp, yb), model.get_alphas())
    with torch.no_grad():
        for w, v in zip(weights, vector, strict=True):
            w.sub_(v, alpha=2 * float(radius))
    _, ln = model(xb)
    (gn,) = torch.autograd.grad(nn.functional.cross_entropy(ln, yb), model.get_alphas())
    with torch.no_grad():
        for w, v in zip(weights, vector, strict=True):
            w.add_(v, alpha=float(radius))
    implicit = (gp - gn) / (2 * radius)
    model.arch_parameters.grad = dalpha - lr * implicit
    a_opt.step()
    loss, engaged = _official_weight_step(model, w_opt, xb, yb, clip)
    assert engaged
    return loss


def test_darts_v2_step_matches_official() -> None:
    method, official = _setup("darts-v2", "DARTS-V2", grad_clip=CLIP["darts-v2"])
    cfg = method.config
    w_opt = _official_sgd(official.get_weights(), cfg)
    a_opt = _official_adam(official, cfg)
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        theirs = _official_darts_v2_step(
            official, w_opt, a_opt, base[it], arch[it], CLIP["darts-v2"]
        )
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, official)


def _structure(op_ids: list[int]):
    """The official ``Structure`` of an arch given as our op ids (edge order of EDGES)."""
    nodes: dict[int, list[tuple[str, int]]] = {}
    for (dst, src), k in zip(EDGES, op_ids, strict=True):
        nodes.setdefault(dst, []).append((OPS[k], src))
    return genotypes.Structure([tuple(nodes[d]) for d in sorted(nodes)])


def test_setn_step_matches_official() -> None:
    method, official = _setup("setn", "SETN")
    cfg = method.config
    assert cfg.grad_clip == 0  # SETN.py:57-61 has no clipping
    w_opt = _official_sgd(official.get_weights(), cfg)
    a_opt = _official_adam(official, cfg)
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        # The same uniform draw: replay our generator's next draw for the official model.
        sampled = copy.deepcopy(method.rng).integers(0, len(OPS), size=len(EDGES)).tolist()
        # SETN.py:54-61: dynamic (single-path) weight step, no clipping.
        official.set_cal_mode("dynamic", _structure(sampled))
        official.zero_grad(set_to_none=False)
        _, logits = official(base[it][0])
        theirs = nn.functional.cross_entropy(logits, base[it][1])
        theirs.backward()
        w_opt.step()
        # SETN.py:71-76: joint (weighted-sum) arch step.
        official.set_cal_mode("joint")
        official.zero_grad(set_to_none=False)
        _, logits = official(arch[it][0])
        nn.functional.cross_entropy(logits, arch[it][1]).backward()
        a_opt.step()
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert ours == pytest.approx(float(theirs.detach()), rel=1e-5)
        _assert_same(method, official)


def _official_train_controller(model, controller, c_opt, batches, cfg, baseline):
    """ENAS.py:123-172 (``train_controller``) restated; returns the next epoch's baseline."""
    model.eval()
    controller.train()
    controller.zero_grad(set_to_none=False)
    aggregate = cfg.controller_num_aggregate
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
    return step_baseline.item()


def test_enas_steps_match_official() -> None:
    method, official = _setup("enas", "ENAS", controller_train_steps=2, controller_num_aggregate=2)
    cfg = method.config
    controller = official.create_controller()
    controller.load_state_dict(method.controller.state_dict())
    w_opt = _official_sgd(official.parameters(), cfg)
    c_opt = torch.optim.Adam(  # ENAS.py:313-318
        controller.parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas, eps=cfg.arch_eps
    )
    base, valid = _batches(0, 4), _batches(1, 3)
    ctx = SearchContext(lambda: iter(()), lambda: iter(valid * 10))
    baseline = None
    for epoch in range(2):  # two epochs: the baseline is carried from one to the next
        for it in range(2):
            seed = 10 * epoch + it
            # ENAS.py:55-64: controller sample (global generator), weight step, clip 5.
            torch.manual_seed(seed)
            with torch.no_grad():
                _, _, sampled = controller()
            official.update_arch(sampled)
            official.train()
            w_opt.zero_grad(set_to_none=False)
            _, logits = official(base[2 * epoch + it][0])
            theirs = nn.functional.cross_entropy(logits, base[2 * epoch + it][1])
            theirs.backward()
            nn.utils.clip_grad_norm_(official.parameters(), 5)
            w_opt.step()
            method.generator.manual_seed(seed)
            ours = _our_loss(method.train_step(base[2 * epoch + it], None, epoch))
            assert ours == pytest.approx(float(theirs.detach()), rel=1e-5)
        torch.manual_seed(1000 + epoch)
        baseline = _official_train_controller(official, controller, c_opt, valid, cfg, baseline)
        method.generator.manual_seed(1000 + epoch)
        method.end_epoch(epoch, ctx)
        assert method.baseline == pytest.approx(baseline, rel=1e-6)
        _assert_same(method, official)
        for key, value in method.controller.state_dict().items():
            torch.testing.assert_close(value, controller.state_dict()[key], atol=1e-6, rtol=1e-5)
