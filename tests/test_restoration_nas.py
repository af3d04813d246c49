"""Restoration NAS: HiNAS (space, derivation, cell sharing), DARTS over its space, the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import ArchError
from nasforge.nn.hinas import HinasNetwork, HinasSupernet, genotype, viterbi_path
from nasforge.search.restoration.common import ActivationMeter
from nasforge.spaces import get_space
from nasforge.spaces.hinas import SUPERNET_OPS

TINY = ["--dataset", "skimage-p16-e24", "--limit", "4", "--epochs", "1", "--threads", "1"]


def test_hinas_space_round_trips_and_refuses_bad_archs() -> None:
    space = get_space("hinas")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = space.sample(rng)
        assert space.from_string(space.to_string(a)) == a
        assert space.mutate(a, rng) != a
    a = space.sample(rng)
    assert space.encode(a).shape == space.encode(space.sample(rng)).shape
    with pytest.raises(ArchError, match="width path"):
        space.from_string("w2:con_c_3x3@0+con_c_3x3@1")  # must start next to level 0
    with pytest.raises(ArchError, match="reads state 2"):
        space.from_string("w0:con_c_3x3@0+con_c_3x3@2")
    with pytest.raises(ArchError, match="op 'conv9'"):
        space.from_string("w0:conv9@0+con_c_3x3@1")


def test_derivation_follows_the_official_genotype_rule_and_viterbi() -> None:
    k = len(SUPERNET_OPS)
    w = torch.full((5, k), 0.1)
    w[0, SUPERNET_OPS.index("none")] = 0.9  # 'none' never counts (cell.py:65-89)
    w[0, SUPERNET_OPS.index("sep_c_5x5")] = 0.3
    w[1, SUPERNET_OPS.index("dil_c_3x3")] = 0.5
    w[2, SUPERNET_OPS.index("con_c_3x3")] = 0.2
    w[3, SUPERNET_OPS.index("skip_connect")] = 0.6
    w[4, SUPERNET_OPS.index("sep_c_3x3")] = 0.4
    assert genotype(w, 2) == (
        ("sep_c_5x5", 0),
        ("dil_c_3x3", 1),
        ("skip_connect", 1),
        ("sep_c_3x3", 2),
    )
    # Routers in layer-major order (1 + 2 + 3 for 3 layers); rows are (down, same, up).
    betas = torch.tensor(
        [
            [0, 0.4, 0.6],
            [0, 0.9, 0.1],
            [0.2, 0.3, 0.5],
            [0, 0.3, 0.7],
            [0.7, 0.3, 0.0],
            [0.1, 0.1, 0],
        ]
    )
    # Every path from level 0 moving at most one level per layer, with its probability.
    paths = {
        (0, 0, 0): 0.4 * 0.9 * 0.3,
        (0, 0, 1): 0.4 * 0.9 * 0.7,
        (0, 1, 0): 0.4 * 0.1 * 0.7,
        (0, 1, 1): 0.4 * 0.1 * 0.3,
        (1, 0, 0): 0.6 * 0.2 * 0.3,
        (1, 0, 1): 0.6 * 0.2 * 0.7,
        (1, 1, 0): 0.6 * 0.3 * 0.7,
        (1, 1, 1): 0.6 * 0.3 * 0.3,
        (1, 2, 1): 0.6 * 0.5 * 0.1,
        (1, 2, 2): 0.6 * 0.5 * 0.1,
    }
    # The best path starts with the weaker first move (a greedy walk would go up).
    assert tuple(viterbi_path(betas, 3, 3)) == max(paths, key=paths.get) == (0, 0, 1)


def test_cell_sharing_saves_activation_memory_and_derives_a_trainable_net(
    one_torch_thread: None,
) -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 12)
    sizes = {}
    for sharing in (True, False):
        net = HinasSupernet(
            in_channels=1, out_channels=1, scale=1, C=2, layers=3, blocks=1, cell_sharing=sharing
        )
        with ActivationMeter() as meter:
            y = net(x)
        y.mean().backward()
        sizes[sharing] = meter.bytes
        assert net.arch_alphas.grad is not None and net.arch_betas.grad.abs().sum() > 0
    assert sizes[True] < 0.75 * sizes[False]
    arch = net.derive()
    fixed = HinasNetwork(arch, in_channels=1, out_channels=1, scale=1, C=2, D=8)
    assert fixed(x).shape == x.shape


@pytest.mark.parametrize(("task", "algo"), [("sr-x2", "hinas"), ("denoise-g25", "darts-hinas")])
def test_search_then_train_one_epoch_from_the_cli(tmp_path: Path, task: str, algo: str) -> None:
    out = tmp_path / "s"
    args = ["search", "--task", task, "--space", "hinas", "--algo", algo, "-o", str(out), *TINY]
    res = CliRunner().invoke(
        app,
        [
            *args,
            "--param",
            "C=3",
            "--param",
            "batch_size=4",
            "--param",
            "layers=1",
            "--param",
            "blocks=1",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["activation_mb_per_step"] > 0 and summary["search_time_s"] > 0
    assert np.isfinite(summary["metrics"]["supernet_valid_psnr"])
    run = tmp_path / "run.json"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--task",
            task,
            "--space",
            "hinas",
            "--arch",
            str(out / "arch.json"),
            *TINY,
            "--network",
            "C=3",
            "--network",
            "D=8",
            "--quiet",
            "--out",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    last = json.loads(run.read_text())["epochs"][-1]
    assert set(last["eval"]["test"]) == {"psnr", "ssim", "loss"}


def test_bad_search_params_fail_before_work(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "search",
            "--task",
            "sr-x2",
            "--space",
            "hinas",
            "--algo",
            "hinas",
            "-o",
            str(tmp_path / "x"),
            "--param",
            "share_alphas=cells",
        ],
    )
    assert res.exit_code != 0 and "share_alphas='cells'" in str(res.exception)
    assert not (tmp_path / "x" / "arch.json").exists()


# -- trilevel ---------------------------------------------------------------------------------


def test_sparsestmax_matches_its_definition_on_hand_cases() -> None:
    from nasforge.nn.sparsestmax import sparsemax, sparsestmax

    z = torch.tensor([0.5, 0.3, 0.1, -0.2])
    # sparsemax by hand: tau = (0.5 + 0.3 + 0.1 - 1) / 3 = -1/30.
    torch.testing.assert_close(sparsemax(z), torch.tensor([16, 10, 4, 0]) / 30.0)
    torch.testing.assert_close(sparsestmax(z, 0.0), sparsemax(z))
    # r = 0.5: sparsemax's point p0 is |p0 - u| = sqrt(0.08) from its support's centroid
    # u = (1/3, 1/3, 1/3, 0); pushed out to radius 0.5 it leaves the simplex, so sparsemax
    # cuts it to the face {0, 1}, whose centroid (1/2, 1/2, 0, 0) is sqrt(1/6) from u: the
    # sphere keeps radius sqrt(0.25 - 1/6) there, and the point is pushed out to it.
    p0, u = sparsemax(z), torch.tensor([1.0, 1.0, 1.0, 0.0]) / 3
    q = sparsemax(u + 0.5 * (p0 - u) / (p0 - u).norm())
    assert q[2] == 0 and q[3] == 0
    r2 = (0.25 - 1 / 6) ** 0.5
    d = q[:2] - 0.5
    want = torch.tensor([*(0.5 + r2 * d / d.norm()).tolist(), 0.0, 0.0])
    p = sparsestmax(z, 0.5)
    torch.testing.assert_close(p, want, atol=1e-6, rtol=0)


def test_sparsestmax_stays_on_the_simplex_and_sparsifies_as_it_anneals() -> None:
    from nasforge.nn.sparsestmax import sparsemax, sparsestmax

    z = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    first = sparsemax(z) > 0  # the sphere is centred on the centroid of sparsemax's support
    u0 = first.double() / first.sum(-1, keepdim=True)
    radii = [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95]
    nonzero = []
    for r in radii:
        p = sparsestmax(z, r)
        assert (p >= 0).all() and torch.allclose(p.sum(-1), torch.ones(64), atol=1e-6)
        support = p > 0
        dist = (p.double() - u0).norm(dim=-1)
        # Off the vertices every output is at least r from that centroid.
        many = support.sum(-1) > 1
        assert (dist[many] >= r - 1e-5).all()
        nonzero.append(support.sum(-1))
    for a, b in itertools.pairwise(nonzero):
        assert (b <= a).all()  # never less sparse as the radius grows
    assert nonzero[0].double().mean() > 2 and (nonzero[-1] == 1).all()  # one-hot at the end
    assert (sparsestmax(z, 0.95).argmax(-1) == z.argmax(-1)).all()


def test_trilevel_derived_net_inherits_the_supernet_function(one_torch_thread: None) -> None:
    from nasforge.nn.trilevel import TrilevelNetwork, TrilevelSupernet
    from nasforge.spaces.trilevel import OPS

    torch.manual_seed(0)
    net = TrilevelSupernet(in_channels=3, out_channels=3, scale=2, nf=6, stem=1, path=2, ops=3)
    with torch.no_grad():
        net.arch_alpha.normal_()
        net.arch_gamma.copy_(torch.tensor([0.1, 2.0, 0.3]))  # depth = stem + 1
        net.arch_ratio.zero_()
        net.arch_ratio[..., -1] = 5.0  # full width everywhere
    net.rad, net.widths = 1.0, "max"  # one-hot relaxations: the supernet is one network
    arch = net.derive()
    assert arch.depth == 2 and all(op in OPS for c in arch.cells for op, _ in c)
    fixed = TrilevelNetwork(arch, in_channels=3, out_channels=3, scale=2, nf=6).inherit(net)
    x = torch.rand(2, 3, 10, 10)
    torch.testing.assert_close(fixed(x), net(x), atol=1e-6, rtol=1e-5)
    # The order term telescopes along the path: last minus first network-level logit.
    assert float(net.order_loss().detach()) == pytest.approx(0.3 - 0.1)


def test_trilevel_searches_one_phase_and_trains_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "t"
    args = [
        "search",
        "--task",
        "sr-x4",
        "--space",
        "trilevel-sr",
        "--algo",
        "trilevel",
        "-o",
        str(out),
        *TINY,
    ]
    params = [
        "--param",
        "nf=4",
        "--param",
        "batch_size=4",
        "--param",
        "path=2",
        "--param",
        "ops=2",
        "--param",
        "finetune_epochs=1",
    ]
    res = CliRunner().invoke(app, [*args, *params])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert {"inherited_test_psnr", "finetuned_test_psnr"} <= set(summary["metrics"])
    assert summary["trace"][0]["rad"] == 0.0 and summary["depth"] >= 1
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--task",
            "sr-x4",
            "--space",
            "trilevel-sr",
            "--arch",
            str(out / "arch.json"),
            *TINY,
            "--network",
            "nf=4",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    bad = CliRunner().invoke(app, [*args[: -len(TINY)], "--param", "relaxation=gumbel"])
    assert bad.exit_code != 0 and "relaxation='gumbel'" in str(bad.exception)


# -- baselines ---------------------------------------------------------------------------------


def test_baselines_have_the_papers_sizes_and_count_their_multiply_adds() -> None:
    from nasforge.cost.macs import count_macs
    from nasforge.nn import build_network

    def build(arch: str, c: int, scale: int) -> torch.nn.Module:
        return build_network(
            "restoration-baseline", arch, io={"in_channels": c, "out_channels": c, "scale": scale}
        )

    # DnCNN-S: 64*9 + 64, 15 x (64*64*9 + BN 2*64), 64*9 + 1 = 556,097 parameters.
    assert sum(p.numel() for p in build("dncnn", 1, 1).parameters()) == 556_097
    # EDSR-baseline x4 is the paper's 1.5 M.
    edsr = build("edsr", 3, 4)
    assert round(sum(p.numel() for p in edsr.parameters()) / 1e6, 1) == 1.5
    # FSRCNN(56, 12, 4) x2 on one channel, by hand: convs 5x5x1x56, 1x1 56->12, 4 x 3x3
    # 12->12, 1x1 12->56 per LR pixel, 9x9x56x1 deconvolution per LR pixel.
    per_pixel = 25 * 56 + 56 * 12 + 4 * 9 * 144 + 12 * 56 + 81 * 56
    assert count_macs(build("fsrcnn", 1, 2), (1, 1, 8, 8)) == pytest.approx(per_pixel * 64 / 1e6)
    with pytest.raises(ArchError, match="denoising network"):
        build("dncnn", 3, 2)


def test_bicubic_baseline_is_matlab_bicubic_upscaling() -> None:
    from nasforge.data.imresize import imresize
    from nasforge.nn.restoration_baselines import bicubic_upscale

    x = torch.rand(2, 3, 6, 5, dtype=torch.float64)
    y = bicubic_upscale(3)(x)
    want = imresize(x[1].numpy().transpose(1, 2, 0), 3.0).transpose(2, 0, 1)
    assert y.shape == (2, 3, 18, 15)
    np.testing.assert_allclose(y[1].numpy(), want, atol=1e-12)


@pytest.mark.parametrize(
    ("task", "arch"), [("sr-x2", "fsrcnn"), ("sr-x3", "edsr"), ("denoise-c15", "dncnn")]
)
def test_baselines_train_one_epoch_from_the_cli(tmp_path: Path, task: str, arch: str) -> None:
    run = tmp_path / "run.json"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--task",
            task,
            "--space",
            "restoration-baseline",
            "--arch",
            f"net={arch}",
            *TINY,
            "--network",
            "C=8",
            "--network",
            "depth=2",
            "--quiet",
            "--out",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    assert np.isfinite(json.loads(run.read_text())["epochs"][-1]["eval"]["test"]["psnr"])
