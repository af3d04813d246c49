"""Restoration NAS: HiNAS (space, derivation, cell sharing), DARTS over its space, the CLI."""

from __future__ import annotations

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

TINY = ["--dataset", "skimage-p24-e32", "--limit", "8", "--epochs", "1", "--threads", "1"]


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
    x = torch.rand(2, 1, 16, 16)
    sizes = {}
    for sharing in (True, False):
        net = HinasSupernet(
            in_channels=1, out_channels=1, scale=1, C=4, layers=3, blocks=2, cell_sharing=sharing
        )
        with ActivationMeter() as meter:
            y = net(x)
        y.mean().backward()
        sizes[sharing] = meter.bytes
        assert net.arch_alphas.grad is not None and net.arch_betas.grad.abs().sum() > 0
    assert sizes[True] < 0.75 * sizes[False]
    arch = net.derive()
    fixed = HinasNetwork(arch, in_channels=1, out_channels=1, scale=1, C=4, D=8)
    assert fixed(x).shape == x.shape


@pytest.mark.parametrize(
    ("task", "algo"), [("sr-x2", "hinas"), ("denoise-g25", "hinas"), ("sr-x3", "darts-hinas")]
)
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
            "layers=2",
            "--param",
            "blocks=2",
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
