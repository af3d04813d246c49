"""Side by side with the official code: from the same weights and the same batches, one
nasforge step of DARTS-V1 / DARTS-V2 / GDAS / SETN / ENAS / RSPS gives the same loss, the same
parameter (and BatchNorm buffer) updates and the same architecture update as the official
search model of xautodl driven as ``exps/NAS-Bench-201-algos/<METHOD>.py`` drives it.

The official scripts are not part of the ``xautodl`` package, so their steps are restated in
``tests/official_reference.py`` (cited per step) with the PyTorch 1.x semantics they
ran under: ``zero_grad()`` zero-filled gradients (``set_to_none=False``). Two iterations are run, so
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

import official_reference as official
from nasforge.nn.supernet import to_xautodl_state_dict
from nasforge.search import ONESHOT
from nasforge.search.oneshot import SearchContext
from nasforge.spaces.nb201 import EDGES, OPS

pytest.importorskip(
    "xautodl.models.cell_searchs", reason="xautodl (the official code) is not installed"
)

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


def _setup(name: str, **overrides: object):
    """(our method, the official model holding the same weights/alphas, its optimizers)."""
    method = ONESHOT.create(name, C=C, N=N, **overrides)
    method.setup(CLASSES, seed=3)
    model = official.official_model(method)
    return method, model


def _assert_same(method, model) -> None:
    """Every parameter and buffer of our supernet (and alpha) equals the official one's."""
    theirs = model.state_dict()
    alphas = getattr(method, "alphas", None)
    ours = to_xautodl_state_dict(
        method.supernet.state_dict(), None if alphas is None else alphas.detach()
    )
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        torch.testing.assert_close(value, theirs[key], atol=ATOL, rtol=RTOL, msg=key)


def _our_loss(stats) -> float:
    loss_sum, _, n = stats
    return float(loss_sum) / n


@pytest.mark.parametrize("name", ["darts-v1", "gdas"])
def test_first_order_steps_match_official(name: str) -> None:
    clip = CLIP[name]
    method, model = _setup(name, grad_clip=clip)
    w_opt, a_opt = official.official_optimizers(method, model)
    if name == "gdas":
        method.begin_epoch(0)
        model.set_tau(method.config.tau_max)  # GDAS.py:237-239 at epoch 0
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        # Same Gumbel draws: the official model samples from the global generator. Seeds 0, 1
        # make GDAS' second weight step skip convs that the first weight step and the first
        # arch step used, so momentum / weight decay on unused ops are checked.
        torch.manual_seed(it)
        method.generator.manual_seed(it)
        theirs, norm = official.weight_step(model, w_opt, *base[it], clip)
        official.arch_step(model, a_opt, *arch[it])
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert norm > clip  # the clip engaged
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, model)


def test_darts_v2_step_matches_official() -> None:
    clip = CLIP["darts-v2"]
    method, model = _setup("darts-v2", grad_clip=clip)
    w_opt, a_opt = official.official_optimizers(method, model)
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        official.darts_v2_arch_step(model, w_opt, a_opt, base[it], arch[it])
        theirs, norm = official.weight_step(model, w_opt, *base[it], clip)
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert norm > clip
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, model)


def test_setn_step_matches_official() -> None:
    method, model = _setup("setn")
    assert method.config.grad_clip == 0  # SETN.py:57-61 has no clipping
    w_opt, a_opt = official.official_optimizers(method, model)
    base, arch = _batches(0, 2), _batches(1, 2)
    for it in range(2):
        # The same uniform draw: replay our generator's next draw for the official model.
        sampled = copy.deepcopy(method.rng).integers(0, len(OPS), size=len(EDGES)).tolist()
        theirs = official.setn_step(model, w_opt, a_opt, base[it], arch[it], sampled)
        ours = _our_loss(method.train_step(base[it], arch[it], epoch=0))
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, model)


def test_enas_steps_match_official() -> None:
    method, model = _setup("enas", controller_train_steps=2, controller_num_aggregate=2)
    controller = official.official_controller(method, model)
    w_opt, c_opt = official.official_optimizers(method, model, controller)
    base, valid = _batches(0, 4), _batches(1, 3)
    ctx = SearchContext(lambda: iter(()), lambda: iter(valid * 10))
    baseline = None
    for epoch in range(2):  # two epochs: the baseline is carried from one to the next
        for it in range(2):
            batch = base[2 * epoch + it]
            # The same controller draw: official from the global generator, ours from its own.
            torch.manual_seed(10 * epoch + it)
            theirs = official.enas_weight_step(model, controller, w_opt, *batch)
            method.generator.manual_seed(10 * epoch + it)
            ours = _our_loss(method.train_step(batch, None, epoch))
            assert ours == pytest.approx(theirs, rel=1e-5)
        torch.manual_seed(1000 + epoch)
        baseline = official.enas_train_controller(
            model, controller, c_opt, valid, method.config, baseline
        )
        method.generator.manual_seed(1000 + epoch)
        method.end_epoch(epoch, ctx)
        assert method.baseline == pytest.approx(baseline, rel=1e-6)
        _assert_same(method, model)
        for key, value in method.controller.state_dict().items():
            torch.testing.assert_close(value, controller.state_dict()[key], atol=1e-6, rtol=1e-5)


def test_rsps_step_matches_official() -> None:
    method, model = _setup("rsps")
    w_opt, _ = official.official_optimizers(method, model)
    base = _batches(0, 3)
    for it in range(3):
        sampled = copy.deepcopy(method.rng).integers(0, len(OPS), size=len(EDGES)).tolist()
        theirs = official.rsps_weight_step(model, w_opt, *base[it], sampled)
        ours = _our_loss(method.train_step(base[it], None, epoch=0))
        assert ours == pytest.approx(theirs, rel=1e-5)
        _assert_same(method, model)
