"""Default settings run on every CPU family.

oneDNN's channels_last weight gradient of a 1x1 stride-2 conv with fewer than 8 input
channels writes past its buffer on AVX2 (uxlfoundation/oneDNN#6035). ``ONEDNN_MAX_CPU_ISA=AVX2``
makes an AVX-512 machine take the AVX2 kernels, so these subprocess tests reproduce the
crash on any x86-64 CI machine when a default puts such a conv in channels_last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from nasforge.nn.backbones import BACKBONES
from nasforge.nn.nb201 import NB201Network
from nasforge.spaces.nb201 import Arch
from nasforge.train.device import default_channels_last, narrow_strided_pointwise


def _run(code: str, threads: int, timeout: float = 420) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_smallest_width_of_every_backbone_trains_with_defaults(threads: int) -> None:
    """The sandwich rule's smallest configuration of every backbone trains stand-alone with
    default settings (no layout argument anywhere); the supernet path is the CLI test's."""
    code = f"""
        import torch
        from nasforge.data import load_splits
        from nasforge.nn.backbones import BACKBONES, build_from_spec
        from nasforge.spaces.width import make_space
        from nasforge.train import Trainer, get_recipe

        torch.set_num_threads({threads})
        data = load_splits("digits", limit=32)
        recipe = get_recipe("nb201-12e", epochs=1, batch_size=16)
        for name in BACKBONES.names():
            space = make_space(name, resolution=16, num_classes=10)
            torch.manual_seed(0)
            net = build_from_spec(space.spec, space.smallest())
            res = Trainer(recipe).fit(net, data, seed=0, eval_splits=[])
            assert res.status == "ok", (name, res.error)
            print("trained", name)
    """
    proc = _run(code, threads)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in BACKBONES.names():
        assert f"trained {name}" in proc.stdout


@pytest.mark.slow
def test_width_search_cli_default_path_runs_on_avx2(tmp_path) -> None:
    """`nasforge width search` with its default layout, sharing and bins, in a subprocess
    pinned to AVX2 kernels (the command that aborted with heap corruption before)."""
    out = tmp_path / "w"
    code = f"""
        import sys
        from nasforge.cli import main
        sys.argv = ["nasforge", "width", "search", "--backbone", "resnet20",
                    "--dataset", "digits", "--flops", "50%", "--epochs", "1",
                    "--limit", "64", "--population", "3", "--generations", "1",
                    "--parents", "2", "--threads", "1", "-o", {str(out)!r}]
        main()
    """
    proc = _run(code, 1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "search.json").is_file()


def test_layout_default_avoids_strided_pointwise_convs() -> None:
    arch = Arch.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    )
    nb201 = NB201Network(arch, C=8, N=1, num_classes=10)
    # NB201's reduction shortcut is AvgPool + stride-1 1x1 conv: nothing to avoid.
    assert narrow_strided_pointwise(nb201) == []
    from nasforge.nn.backbones import build_backbone

    resnet = build_backbone("resnet20")
    strided = narrow_strided_pointwise(resnet)
    assert strided, "ResNet-20's projection shortcuts are strided 1x1 convs"
    assert default_channels_last(resnet, "cpu") is False
    tiny = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2))
    assert narrow_strided_pointwise(tiny) == ["0"]
    assert default_channels_last(tiny, "cpu") is False
    import platform

    expected = platform.machine().lower() in ("x86_64", "amd64")
    assert default_channels_last(nb201, "cpu") is expected


def test_trainer_records_the_layout_it_used() -> None:
    from nasforge.data import load_splits
    from nasforge.train import Trainer, get_recipe

    data = load_splits("digits", limit=32)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 8, 1, stride=2), nn.Flatten(),
        nn.LazyLinear(10),
    )  # fmt: skip
    torch.manual_seed(0)
    net(torch.zeros(1, 3, 16, 16))
    res = Trainer(get_recipe("nb201-12e", epochs=1, batch_size=16)).fit(
        net, data, seed=0, eval_splits=[]
    )
    assert res.status == "ok"
    assert res.meta["channels_last"] is False
