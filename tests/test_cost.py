"""Params / FLOPs in the NAS-Bench-201 convention, checked against the official figures."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nasforge.cost import arch_cost, count_flops, count_params, latency, module_cost
from nasforge.cost.nb201 import network_cost
from nasforge.errors import NasforgeError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

# (dataset, arch, params_m, flops_m) as published in the official benchmark (copied from the
# reference export; C=16, N=5; 32x32 input for the CIFARs, 16x16 for ImageNet16-120).
OFFICIAL = [
    ("cifar10", "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|", 0.615386, 86.42625),
    ("cifar10", "|skip_connect~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|", 0.073306, 7.78305),
    ("cifar10", "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|", 0.344346, 47.10465),
    ("cifar10", "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|", 0.372346, 51.03681),
    ("cifar10", "|nor_conv_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|", 0.587386, 82.49409),
    ("cifar10", "|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|skip_connect~1|avg_pool_3x3~2|", 0.101306, 11.71521),
    ("cifar10", "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|", 0.316346, 43.17249),
    ("cifar10", "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|", 0.400346, 54.96897),
    ("cifar10", "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|avg_pool_3x3~2|", 0.587386, 82.49409),
    ("cifar10", "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|", 0.372346, 51.03681),
    ("cifar10", "|none~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|", 0.129306, 15.64737),
    ("cifar100", "|none~0|+|skip_connect~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|", 0.107156, 11.72106),
    ("cifar100", "|none~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|", 0.135156, 15.65322),
    ("cifar100", "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|skip_connect~2|", 0.593236, 82.49994),
    ("cifar100", "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|", 0.378196, 51.04266),
    ("cifar100", "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|", 0.079156, 7.7889),
    ("cifar100", "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|", 0.107156, 11.72106),
    ("cifar100", "|none~0|+|avg_pool_3x3~0|none~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|", 0.350196, 47.1105),
    ("cifar100", "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_1x1~2|", 0.621236, 86.4321),
    ("cifar100", "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|avg_pool_3x3~2|", 0.406196, 54.97482),
    ("cifar100", "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|", 0.107156, 11.72106),
    ("ImageNet16-120", "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|skip_connect~2|", 0.566536, 19.64812),
    ("ImageNet16-120", "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|", 0.351496, 11.7838),
    ("ImageNet16-120", "|avg_pool_3x3~0|+|avg_pool_3x3~0|none~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|", 0.566536, 19.64812),
    ("ImageNet16-120", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|", 0.594536, 20.63116),
    ("ImageNet16-120", "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|", 0.164456, 4.90252),
    ("ImageNet16-120", "|none~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", 0.379496, 12.76684),
    ("ImageNet16-120", "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|", 0.136456, 3.91948),
    ("ImageNet16-120", "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|", 0.108456, 2.93644),
    ("ImageNet16-120", "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|skip_connect~2|", 0.594536, 20.63116),
    ("ImageNet16-120", "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|none~2|", 0.379496, 12.76684),
]  # fmt: skip


@pytest.mark.parametrize(("dataset", "arch", "params_m", "flops_m"), OFFICIAL)
def test_arch_cost_matches_official_figures(
    dataset: str, arch: str, params_m: float, flops_m: float
) -> None:
    cost = arch_cost(arch, dataset)
    assert cost.params_m == pytest.approx(params_m, abs=1e-6)
    assert cost.flops_m == pytest.approx(flops_m, abs=1e-3)


@pytest.mark.parametrize(("dataset", "arch", "params_m", "flops_m"), OFFICIAL[::5])
def test_counting_the_built_network_matches_official_figures(
    dataset: str, arch: str, params_m: float, flops_m: float
) -> None:
    cost = network_cost(Arch.from_string(arch), dataset)
    assert cost.params_m == pytest.approx(params_m, abs=1e-6)
    assert cost.flops_m == pytest.approx(flops_m, abs=1e-3)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, NUM_ARCHS - 1), st.sampled_from(["cifar10", "cifar100", "ImageNet16-120"]))
def test_additive_fast_path_equals_counting_the_network(index: int, dataset: str) -> None:
    arch = Arch.from_index(index)
    fast, slow = arch_cost(arch, dataset), network_cost(arch, dataset)
    assert fast.params_m == pytest.approx(slow.params_m, abs=1e-9)
    assert fast.flops_m == pytest.approx(slow.flops_m, abs=1e-9)


def test_counter_on_plain_modules() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=True)
    # 3*3*3*8 MACs + 8 bias adds, per output position (32*32 of them).
    assert count_flops(conv, (1, 3, 32, 32)) == pytest.approx((216 + 8) * 1024 / 1e6)
    assert count_params(conv) == pytest.approx((216 + 8) / 1e6)
    lin = nn.Linear(10, 4)
    assert count_flops(lin, (2, 10)) == pytest.approx((40 + 4) / 1e6)  # per sample
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    assert count_flops(grouped, (1, 8, 4, 4)) == pytest.approx(9 * 8 * 16 / 1e6)
    # Pooling, BN and activations are free in the NB201 convention.
    free = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(3, 1, 1))
    assert module_cost(free, (1, 3, 8, 8)).flops_m == 0.0


def test_auxiliary_parameters_are_not_counted() -> None:
    class WithAux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 4, bias=False)
            self.auxiliary_head = nn.Linear(4, 100, bias=False)

    assert count_params(WithAux()) == pytest.approx(16 / 1e6)


def test_counter_restores_training_mode() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    net.train()
    count_flops(net, (1, 3, 4, 4))
    assert net.training


def test_bad_inputs() -> None:
    with pytest.raises(NasforgeError, match="mnist"):
        arch_cost(0, "mnist")
    with pytest.raises(NasforgeError, match="input_shape"):
        count_flops(nn.Linear(2, 2), (0, 2))


def test_latency_is_positive_and_accepts_archs() -> None:
    torch.manual_seed(0)
    t = latency(Arch.from_index(0), dataset="ImageNet16-120", warmup=1, repeats=3)
    assert 0 < t < 5
    t2 = latency(nn.Linear(8, 8), (4, 8), warmup=0, repeats=2)
    assert t2 > 0
    with pytest.raises(NasforgeError, match="repeats"):
        latency(nn.Linear(8, 8), (4, 8), repeats=0)
