"""Width space, backbones and the slimmable supernet (``spaces.width``, ``nn.backbones``,
``nn.slimmable``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasforge.cost import count_flops, count_params
from nasforge.errors import ArchError, SearchError
from nasforge.nn.backbones import BACKBONES, build_backbone, build_from_spec
from nasforge.nn.slimmable import (
    FixedSharing,
    LocallyFreeSharing,
    Placement,
    SlimmableNetwork,
    channel_map,
    recalibrate_bn,
    select_placement,
)
from nasforge.spaces.width import BACKBONE_NAMES, backbone_spec, make_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registered_backbones() -> None:
    assert set(BACKBONE_NAMES) <= set(BACKBONES.names())
    # Published reference sizes (He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-56 0.85M;
    # ours have 1x1 projection shortcuts, which add ~3k / ~3k params).
    assert (
        abs(float(backbone_spec("resnet20").params(backbone_spec("resnet20").full_widths)) - 0.27)
        < 0.01
    )
    assert (
        abs(float(backbone_spec("resnet56").params(backbone_spec("resnet56").full_widths)) - 0.85)
        < 0.01
    )
    # MobileNetV2 (Sandler et al. 2018) at width 1.0: 2.24M params with a 10-class head.
    mb = backbone_spec("mobilenetv2")
    assert abs(float(mb.params(mb.full_widths)) - 2.237) < 0.01


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "mobilenetv2"])
def test_analytic_cost_equals_counter(name: str) -> None:
    """FLOPs and params of a config equal nasforge.cost's counts of its standalone module."""
    res = 16
    space = make_space(name, resolution=res, num_classes=7)
    rng = np.random.default_rng(0)
    configs = [space.spec.full_widths, space.smallest(), *map(tuple, space.sample(rng, 2))]
    for w in configs:
        m = build_from_spec(space.spec, list(w))
        assert count_flops(m, (1, 3, res, res)) == pytest.approx(float(space.flops(w)), rel=1e-12)
        assert count_params(m) == pytest.approx(float(space.params(w)), rel=1e-12)


def test_flops_vectorised_matches_one_by_one() -> None:
    space = make_space("resnet56")
    rng = np.random.default_rng(1)
    batch = space.sample(rng, 100_000)
    one_by_one = np.array([float(space.flops(w)) for w in batch[:50]])
    out = space.flops(batch)
    assert out.shape == (100_000,)
    np.testing.assert_allclose(out[:50], one_by_one, rtol=1e-12)
    # Throughput (10^5 configurations/s) is measured by benchmarks/width_ranking.py, not
    # asserted here: a wall-clock bound in a unit test is flaky on a shared machine.


def test_flops_sensitive_bins_equal_steps() -> None:
    """Every bin step adds ~delta FLOPs: within (delta/2 - 1 ch, max(delta, 1 ch) + 1 ch],
    where "1 ch" is the FLOPs of one channel of the group (the grid is whole channels)."""
    for name in ("resnet20", "resnet56", "mobilenetv2"):
        flops_bins = make_space(name, resolution=16, bins="flops")
        uniform = make_space(name, resolution=16, bins="uniform")
        delta = flops_bins.delta
        one_channel = flops_bins.group_spans() / np.maximum(
            flops_bins.full - flops_bins.min_widths, 1
        )
        for steps, ch, n in zip(
            flops_bins.bin_steps(), one_channel, flops_bins.num_bins, strict=False
        ):
            assert len(steps) == n - 1
            assert steps.max() <= max(delta, ch) + ch + 1e-9
            if n > 2:
                assert steps.min() >= delta / 2 - ch - 1e-9
        # Same total space budget as the uniform grid (up to duplicates removed by rounding).
        assert (flops_bins.num_bins - 1).sum() <= (uniform.num_bins - 1).sum() * 1.05

        # And much more even steps across groups than equal-channel steps.
        def spread(space):
            means = [s.mean() for s in space.bin_steps() if len(s)]
            return max(means) / min(means)

        assert spread(flops_bins) < spread(uniform)


def test_uniform_grid_is_ten_percent_steps() -> None:
    space = make_space("resnet20", bins="uniform")
    assert space.candidates[0].tolist() == [2, 3, 5, 6, 8, 10, 11, 13, 14, 16]
    assert space.candidates[-1].tolist() == [6, 13, 19, 26, 32, 38, 45, 51, 58, 64]


def test_space_round_trip_and_errors() -> None:
    space = make_space("resnet20")
    rng = np.random.default_rng(2)
    idx = space.sample_indices(rng, 5)
    for i in idx:
        assert space.encode(space.decode(i)).tolist() == i.tolist()
    w = space.largest()
    assert space.from_dict(space.to_dict(w)) == w
    assert space.parse_budget("50%") == pytest.approx(space.spec.full_flops / 2)
    assert space.parse_budget("12.5M") == 12.5
    with pytest.raises(SearchError, match="percentage"):
        space.parse_budget("half")
    with pytest.raises(SearchError, match="below the smallest"):
        space.parse_budget("0.1%")
    with pytest.raises(ArchError, match=r"outside 1\.\.16"):
        space.flops([17, *list(w[1:])])
    with pytest.raises(ArchError, match="12 entries"):
        space.flops([3, 4])
    with pytest.raises(ArchError, match="unknown backbone"):
        backbone_spec("vgg16")
    with pytest.raises(ArchError, match="not a candidate"):
        space.encode([1, *list(w[1:])])


def test_channel_map_covers_module() -> None:
    def names(m: torch.nn.Module) -> set[str]:
        return {n for n, _ in m.named_parameters()} | {n for n, _ in m.named_buffers()}

    for name in BACKBONE_NAMES:
        spec = backbone_spec(name, resolution=8)
        # The supernet's module holds every layer (nats-sss: its skip projections too) ...
        assert names(build_from_spec(spec, all_projections=True)) == set(channel_map(spec))
        # ... a standalone one those of its widths (full width: no projection).
        present = {layer.name for layer in spec.present_layers(spec.full_widths)}
        assert names(build_from_spec(spec)) == {
            n for n in channel_map(spec) if n.rsplit(".", 1)[0] in present
        }


def _tiny(name: str = "resnet20", res: int = 8):
    space = make_space(name, resolution=res, num_classes=5)
    torch.manual_seed(0)
    net = SlimmableNetwork(space.spec)
    # Non-trivial BN statistics so eval mode exercises the sliced running stats.
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return space, net


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])
def test_subnetwork_equals_standalone(name: str) -> None:
    """A supernet sub-network computes exactly what the standalone module with the copied
    weights computes (train and eval mode; fixed and free placements)."""
    space, net = _tiny(name)
    rng = np.random.default_rng(3)
    x = torch.randn(4, 3, 8, 8)
    widths = tuple(int(v) for v in space.sample(rng, 1)[0])
    placements = [
        *FixedSharing(space).placements(widths, rng),
        *LocallyFreeSharing(space).placements(widths, rng, 3)[1:],
    ]
    assert any(not p.is_prefix for p in placements)
    for p in placements:
        sub = net.extract(p)
        assert count_params(sub) == pytest.approx(float(space.params(widths)))
        for train in (False, True):
            net.train(train)
            sub.train(train)
            torch.testing.assert_close(net(x, p), sub(x), rtol=1e-5, atol=1e-5)
    # A standalone module built fresh from the widths has the same shapes.
    fresh = build_backbone(name, list(widths), num_classes=5, resolution=8)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {
        k: v.shape for k, v in net.extract(placements[-1]).state_dict().items()
    }


def test_gradients_reach_only_used_channels() -> None:
    space, net = _tiny()
    net.train()
    widths = list(space.spec.full_widths)
    widths[0] = 6  # stage1 stream
    chans = [tuple(range(w)) for w in widths]
    chans[0] = (0, 1, 2, 3, 9, 12)
    p = Placement(tuple(chans))
    F.cross_entropy(net(torch.randn(4, 3, 8, 8), p), torch.tensor([0, 1, 2, 3])).backward()
    g = net.net.stem.conv.weight.grad.abs().sum(dim=(1, 2, 3))
    used = torch.zeros(16, dtype=torch.bool)
    used[list(chans[0])] = True
    assert bool((g[~used] == 0).all()) and bool((g[used] > 0).all())


def test_locally_free_placements() -> None:
    space = make_space("resnet20")
    sharing = LocallyFreeSharing(space, offsets=[2] * len(space.groups))
    rng = np.random.default_rng(4)
    w = [8] * len(space.groups)
    ps = sharing.placements(w, rng, 5)
    assert len(ps) == 5 and len(set(ps)) == 5 and ps[0].is_prefix
    for p in ps:
        for c in p.channels:
            assert len(c) == 8 and c[:6] == tuple(range(6))  # c - r base channels
            assert all(6 <= i < 10 for i in c[6:])  # r free channels in [c - r, c + r)
    assert sharing.num_placements(w) == 6 ** len(space.groups)  # C(4, 2) per group
    full = space.spec.full_widths
    assert sharing.placements(full, rng, 5) == [Placement.prefix(full)]  # zone clipped
    assert sharing.zone(0, 1) == (0, 2, 1)  # r shrinks to c: no negative base
    with pytest.raises(SearchError):
        LocallyFreeSharing(space, offsets=[0] * len(space.groups))
    with pytest.raises(ArchError, match="sorted"):
        SlimmableNetwork(make_space("resnet20", resolution=8).spec)(
            torch.zeros(1, 3, 8, 8), Placement(((3, 1), *ps[0].channels[1:]))
        )


def test_min_min_picks_lowest_loss() -> None:
    space, net = _tiny()
    net.train()
    rng = np.random.default_rng(5)
    widths = tuple(int(v) for v in space.sample(rng, 1)[0])
    cands = LocallyFreeSharing(space).placements(widths, rng, 4)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 5, (8,))
    best, losses = select_placement(net, cands, x, y)
    direct = []
    for p in cands:
        sub = net.extract(p).train()
        with torch.no_grad():
            direct.append(float(F.cross_entropy(sub(x), y)))
    np.testing.assert_allclose(losses, direct, rtol=1e-5)
    assert best == int(np.argmin(direct))
    assert select_placement(net, cands[:1], x, y)[0] == 0


def test_recalibrate_bn_exact_average() -> None:
    space, net = _tiny()
    sub = net.extract(Placement.prefix(space.smallest()))
    batches = [torch.randn(6, 3, 8, 8) + 1.0 for _ in range(3)]
    recalibrate_bn(sub, batches)
    assert not sub.training
    # The stem BN sees conv(x); its running mean must be the mean over all batches.
    with torch.no_grad():
        acts = torch.cat([sub.stem.conv(b) for b in batches])
    torch.testing.assert_close(
        sub.stem.bn.running_mean, acts.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5
    )
    assert sub.stem.bn.momentum == 0.1  # restored


def test_cafenet_zone_is_one_flops_bin_with_two_placements() -> None:
    """Default CafeNet sharing: the free zone is r = 1 FLOPs-sensitive bin, so a width
    ``c_k`` has exactly two placements per group -- its last bin in place (the prefix) or
    shifted one bin right -- and the full width one; min-min's candidates are the prefix,
    all-right, then random left/right mixes."""
    space = make_space("resnet20")
    sharing = LocallyFreeSharing(space)
    assert sharing.describe() == {"sharing": "cafenet", "zone_unit": "bins", "r_bins": 1}
    rng = np.random.default_rng(0)
    for g, cands in enumerate(space.candidates):
        c = [int(v) for v in cands]
        for k in range(1, len(c) - 1):
            base, end, free = sharing.zone(g, c[k])
            assert (base, end, free) == (c[k - 1], c[k + 1], c[k] - c[k - 1])
            starts = sharing.starts(g, c[k])
            assert starts[0] == c[k - 1] and len(starts) == 2
            assert starts[1] in (c[k], c[k + 1] - free)  # one bin right (rounding: flush)
        assert sharing.starts(g, c[-1]) == [c[-2]]  # full width: one placement
        assert sharing.zone(g, c[0])[0] == 0  # smallest: no base, free run in [0, c_1)
    widths = tuple(int(c[len(c) // 2]) for c in space.candidates)
    assert sharing.num_placements(widths) == 2 ** len(widths)
    ps = sharing.placements(widths, rng, 3)
    assert ps[0].is_prefix and len(set(ps)) == 3
    for p, w in zip(ps[1].channels, widths, strict=True):  # all-right
        assert len(p) == w and p != tuple(range(w))
    # The channel unit is still available explicitly (the paper's toy example, r = 1 channel).
    assert LocallyFreeSharing(space, offsets=[1] * len(space.groups)).describe()["zone_unit"] == (
        "channels"
    )
