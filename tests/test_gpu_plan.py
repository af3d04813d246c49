"""benchmarks/gpu_plan.py's stacking of several NB201 networks into one is exact, and the
script refuses CUDA where there is none (the GPU figures themselves need a GPU; these
checks do not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nasforge.nn.nb201 import NB201Network
from nasforge.spaces.nb201 import Arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = Arch.from_string(
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


def _nets(k: int) -> list[NB201Network]:
    torch.manual_seed(0)
    return [NB201Network(ARCH, C=4, N=1, num_classes=5) for _ in range(k)]


def test_stacked_networks_train_as_the_separate_ones():
    nets = _nets(3)
    stacked = gpu_plan.stack_networks(nets)
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(3, 4, 3, 8, 8, generator=g)
    ys = torch.randint(0, 5, (3, 4), generator=g)
    x_st = xs.permute(1, 0, 2, 3, 4).reshape(4, 9, 8, 8)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4) for m in nets]
    st_opt = torch.optim.SGD(stacked.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for _ in range(2):  # two steps: momentum and the BN running statistics both matter
        for m, o, x, y in zip(nets, opts, xs, ys, strict=True):
            o.zero_grad()
            F.cross_entropy(m(x), y).backward()
            o.step()
        st_opt.zero_grad()
        gpu_plan.stacked_loss(stacked(x_st), ys.t()).backward()
        st_opt.step()
    for m in (*nets, stacked):
        m.eval()  # running statistics now
    with torch.no_grad():
        separate = torch.stack([m(x) for m, x in zip(nets, xs, strict=True)], dim=1)
        torch.testing.assert_close(stacked(x_st), separate, atol=1e-5, rtol=1e-4)


def test_stacking_refuses_different_archs():
    other = NB201Network(Arch.from_index(0), C=4, N=1, num_classes=5)
    with pytest.raises(gpu_plan.PlanError, match="one arch"):
        gpu_plan.stack_networks([*_nets(1), other])


def test_cuda_is_refused_in_one_line_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(gpu_plan.PlanError, match="CUDA is not available"):
        gpu_plan.main(["--device", "cuda", "--tiny"])


def test_projection_counts_the_full_table():
    # 15,625 archs x 1 seed x 200 epochs x (25k + 50k + 50k + 151.7k / 4) images at 1 img/s.
    out = gpu_plan.project(1.0, seeds=1, eval_fraction=0.0)
    assert out["images_32px_equivalent"] == pytest.approx(15_625 * 200 * 162_925)
