"""Video recognition: PyAV video lists and frame folders the tests encode themselves, TSN
sampling, clip-consistent augmentation, the moving-digits data, the PV-NAS space / network /
cost counter, and one epoch of `search --algo pv-nas` and `train` from the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data.video import (
    MovingDigitsConfig,
    eval_indices,
    make_moving_digits,
    read_list,
    train_indices,
)
from nasforge.errors import ArchError, DataError, SearchError, TaskError
from nasforge.nn import build_network
from nasforge.nn.video import PVNASSupernet, temporal_shift
from nasforge.search.video.pvnas import scheduled_lr
from nasforge.spaces import get_space
from nasforge.spaces.pvnas import OPS, PVNASArch, pvnas_cost
from nasforge.tasks import get_task

# -- files the tests encode ------------------------------------------------------------------


def _frame(value: int, h: int = 24, w: int = 32) -> np.ndarray:
    """A flat RGB frame of grey level ``value`` with a white marker column at the left."""
    a = np.full((h, w, 3), value, dtype=np.uint8)
    a[:, :2] = 255
    return a


def _write_video(path: Path, values: list[int]) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv444p"
        s.options = {"crf": "0"}  # lossless: decoded grey levels are the encoded ones
        for v in values:
            for p in s.encode(av.VideoFrame.from_ndarray(_frame(v), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _write_png(path: Path, arr: np.ndarray) -> None:
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = arr.shape[1], arr.shape[0], "rgb24"
    packets = cc.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")) + cc.encode(None)
    path.write_bytes(b"".join(bytes(p) for p in packets))


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of 12-frame videos (grey level 10 * (frame + 1) + 100 * label)."""
    root = tmp_path_factory.mktemp("videos")
    (root / "clips").mkdir()
    lines = {"train": [], "valid": []}
    for i in range(6):
        label = i % 2
        name = f"clips/v{i}.mp4"
        _write_video(root / name, [10 * (k + 1) + 100 * label for k in range(12)])
        lines["train" if i < 4 else "valid"].append(f"{name} {label}")
    (root / "train.txt").write_text("\n".join(lines["train"]) + "\n")
    (root / "val.txt").write_text("\n".join(lines["valid"]) + "\n\n")
    return root


#: A fixed texture added to every frame of the frame folders: crops and flips show in it.
TEXTURE = np.random.default_rng(0).integers(0, 30, size=(20, 20, 1)).astype(np.uint8)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frame folders in TSM's layout: img_00001.png ... (20 * k + TEXTURE for frame k >= 1)."""
    root = tmp_path_factory.mktemp("rawframes")
    rows = []
    for i, n in enumerate((9, 10, 11)):
        folder = root / f"f{i}"
        folder.mkdir()
        for k in range(1, n + 1):
            _write_png(folder / f"img_{k:05d}.png", np.repeat(20 * k + TEXTURE, 3, axis=2))
        rows.append(f"f{i} {n} {i % 2}")
    (root / "train.txt").write_text("\n".join(rows[:2]) + "\n")
    (root / "val.txt").write_text(rows[2] + "\n")
    return root


# -- sampling ----------------------------------------------------------------------------------


def test_tsn_training_sampling_takes_one_random_frame_per_segment() -> None:
    rng = np.random.default_rng(0)
    draws = np.stack([train_indices(20, 4, rng) for _ in range(400)])
    seg = np.arange(4) * 5
    assert ((draws >= seg) & (draws < seg + 5)).all()  # one frame inside each segment
    assert all(len(set(draws[:, s])) == 5 for s in range(4))  # every frame of it drawn
    assert (train_indices(3, 8, rng) == 0).all()  # TSM repeats frame 1 for short clips


def test_tsn_test_sampling_is_the_segment_centre_and_clips_spread_within() -> None:
    # TSM _get_test_indices: int(tick / 2 + tick * x), tick = num_frames / segments.
    tick = 30 / 8
    assert eval_indices(30, 8).tolist() == [int(tick / 2.0 + tick * x) for x in range(8)]
    clips = [eval_indices(30, 3, c, 2).tolist() for c in range(2)]
    assert clips == [[2, 12, 22], [7, 17, 27]]
    with pytest.raises(DataError, match="segments=0"):
        eval_indices(10, 0)


# -- PyAV video lists and frame folders ------------------------------------------------------


def test_video_files_decode_at_the_sampled_frames(video_dir: Path) -> None:
    task = get_task("video-digits")
    data = task.load("videos", video_dir, segments=4, crop_size=24)
    assert data.summary() == {"train": 4, "valid": 2} and data.num_classes == 2
    assert data.train.num_frames(0) == 12
    loader = task.loader(data, "valid", 2, train=False)
    x, y = next(iter(loader))
    assert x.shape == (2, 4, 3, 24, 24) and y.tolist() == [0, 1]
    # Undo the normalisation: the centre frames 1, 4, 7, 10 (0-based) of each video.
    mean = torch.tensor(data.mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 1, 3, 1, 1)
    grey = ((x * std + mean) * 255)[..., 12:, 12:].mean(dim=(2, 3, 4))
    want = torch.tensor([[10 * (k + 1) + 100 * lab for k in (1, 4, 7, 10)] for lab in (0, 1)])
    assert torch.allclose(grey, want.float(), atol=2.0)


def test_frame_folders_are_read_from_one_based_files(frames_dir: Path) -> None:
    task = get_task("video-digits")
    data = task.load("rawframes", frames_dir, segments=3, image_tmpl="img_{:05d}.png", crop_size=20)
    src = data.evals["valid"]
    got = src.frames(0, np.array([0, 5, 10]))[:, 10, 10, 0]
    want = np.array([20, 120, 220]) + TEXTURE[10, 10, 0]  # img_00001, img_00006, img_00011
    assert got.tolist() == want.tolist()
    x, _ = next(iter(task.loader(data, "train", 2, train=True, seed=1)))
    assert x.shape == (2, 3, 3, 20, 20)


def test_bad_lists_and_paths_are_one_line_errors(tmp_path: Path, frames_dir: Path) -> None:
    bad = tmp_path / "train.txt"
    bad.write_text("f0 9 1\nf1 nine 0\n")
    with pytest.raises(DataError, match=r"train.txt:2: num_frames 'nine'"):
        read_list(bad, "rawframes")
    bad.write_text("a.mp4 1 2\n")
    with pytest.raises(DataError, match=r"has 3 fields; expected 'path label'"):
        read_list(bad, "videos")
    (tmp_path / "val.txt").write_text("missing.mp4 0\n")
    bad.write_text("missing.mp4 0\n")
    with pytest.raises(DataError, match=r"missing\.mp4' is missing"):
        get_task("video-digits").load("videos", tmp_path)
    with pytest.raises(DataError, match=r"img_00001\.jpg' is missing"):
        get_task("video-digits").load("rawframes", frames_dir)  # default template is .jpg
    with pytest.raises(TaskError, match="unknown video dataset 'kinetics'"):
        get_task("video-digits").load("kinetics")


def test_augmentation_is_one_crop_and_flip_for_all_frames_of_a_clip(frames_dir: Path) -> None:
    task = get_task("video-digits")
    data = task.load("rawframes", frames_dir, segments=3, image_tmpl="img_{:05d}.png", crop_size=14)
    # Frames differ by a constant grey level only; one crop, resize and flip for all of them
    # keeps every frame minus the first constant, while the texture shows the crop varying.
    seen = set()
    for epoch in range(6):
        loader = task.loader(data, "train", 2, train=True, seed=3)
        loader.set_epoch(epoch)
        for x, _ in loader:
            for clip in x:
                diff = clip[1:] - clip[:1]
                assert torch.allclose(diff, diff.mean(dim=(2, 3), keepdim=True), atol=1e-4)
                seen.add(tuple(clip[0, 0].flatten()[:20].round(decimals=3).tolist()))
    assert len(seen) > 2  # crops and flips do vary between clips and epochs


# -- moving digits -------------------------------------------------------------------------


def test_moving_digits_are_deterministic_and_move_one_step_per_frame() -> None:
    cfg = MovingDigitsConfig(n_train=40, n_valid=8, n_test=8)
    a, b = make_moving_digits(3, cfg), make_moving_digits(3, cfg)
    assert np.array_equal(a.train.clips, b.train.clips)
    assert not np.array_equal(a.train.clips, make_moving_digits(4, cfg).train.clips)
    clips, labels = a.train.clips[..., 0], a.train.labels
    assert np.bincount(labels // 2).tolist() == [20, 20]  # directions balanced
    for clip, label in zip(clips, labels, strict=True):
        sign = 1 if label // 2 == 1 else -1  # right, left
        for t in range(clip.shape[0] - 1):
            assert np.array_equal(np.roll(clip[t], sign, axis=1), clip[t + 1])
    motion = make_moving_digits(3, MovingDigitsConfig(label="direction", n_train=40))
    assert motion.num_classes == 2 and np.array_equal(motion.train.labels, labels // 2)


def test_a_tsn_network_cannot_see_frame_order_and_a_tsm_network_can() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 1, 16, 16)
    rev = x.flip(1)
    io = {"num_classes": 2, "in_channels": 1, "frames": 4}
    tsn = build_network("pvnas", PVNASArch.uniform("2d3"), io=io, C=8).eval()
    tsm = build_network("pvnas", PVNASArch.uniform("shift"), io=io, C=8).eval()
    with torch.no_grad():
        tsn_gap = (tsn(x) - tsn(rev)).abs().max()
        tsm_gap = (tsm(x) - tsm(rev)).abs().max()
    # TSN's average consensus is order-free up to float summation order; TSM's is not.
    assert tsn_gap < 1e-6 and tsm_gap > 1e-5 and tsm_gap > 100 * tsn_gap


def test_temporal_shift_moves_one_eighth_of_the_channels_each_way() -> None:
    x = torch.arange(16 * 3, dtype=torch.float32).view(1, 16, 3, 1, 1)
    y = temporal_shift(x)
    assert torch.equal(y[0, :2, :2], x[0, :2, 1:]) and (y[0, :2, 2] == 0).all()
    assert torch.equal(y[0, 2:4, 1:], x[0, 2:4, :2]) and (y[0, 2:4, 0] == 0).all()
    assert torch.equal(y[0, 4:], x[0, 4:])


def test_multi_clip_testing_averages_the_clip_logits() -> None:
    task = get_task("video-digits")
    model = nn.Sequential(nn.Flatten(1), nn.LazyLinear(3))
    x = torch.randn(2, 3, 4, 1, 5, 5)
    model(x[:, 0])
    out = task.forward(model, x)
    assert torch.allclose(out, torch.stack([model(x[:, c]) for c in range(3)]).mean(0))
    data = task.load(limit=6, test_clips=2)
    xb, _ = next(iter(task.loader(data, "test", 4, train=False)))
    assert xb.shape == (4, 2, 4, 1, 16, 16)


# -- the space, its cost, its search ---------------------------------------------------------


def _hook_macs(net: nn.Module, x: torch.Tensor) -> float:
    total = [0.0]

    def conv(m: nn.Conv3d, _: Any, out: torch.Tensor) -> None:
        k = int(np.prod(m.kernel_size))
        total[0] += out[0].numel() * k * m.in_channels // m.groups

    def lin(m: nn.Linear, _: Any, out: torch.Tensor) -> None:
        total[0] += m.in_features * m.out_features

    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_hook(conv)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(lin)
    with torch.no_grad():
        net.eval()(x)
    return total[0]


def test_the_analytic_cost_counts_every_conv_and_parameter() -> None:
    space = get_space("pvnas")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)] + [PVNASArch.uniform(o) for o in OPS]
    for arch in archs:
        assert space.from_string(space.to_string(arch)) == arch
        net = build_network("pvnas", arch, io={"num_classes": 5, "in_channels": 3, "frames": 3})
        cost = pvnas_cost(arch, frames=3, size=20, in_channels=3, num_classes=5)
        assert cost["params"] == sum(p.numel() for p in net.parameters())
        assert cost["macs"] == _hook_macs(net, torch.zeros(1, 3, 3, 20, 20))
    bad = space.to_string(PVNASArch.uniform("2d3")).replace("l0.op=2d3", "l0.op=4d")
    with pytest.raises(ArchError, match=r"token 'l0.op=4d'.*expected l0.op=<one of"):
        space.from_string(bad)


def test_supernet_derives_the_argmax_arch_and_schedulers_restart() -> None:
    net = PVNASSupernet(num_classes=2, in_channels=1, frames=4, C=4)
    with torch.no_grad():
        net.alpha.zero_()
        net.beta.zero_()
        net.alpha[:, OPS.index("shift")] = 1.0
        net.beta[:, 0] = 1.0
    assert net.derive() == PVNASArch.uniform("shift", "0.5")
    assert net(torch.randn(2, 4, 1, 16, 16)).shape == (2, 2)
    cos = [scheduled_lr("cosine", 0.1, 0.0, t, 30) for t in range(30)]
    div = [scheduled_lr("diversity", 0.1, 0.0, t, 30, cycles=3) for t in range(30)]
    assert all(a >= b for a, b in itertools.pairwise(cos))
    assert div[0] == div[10] == div[20] == 0.1 and div[9] < 0.01
    with pytest.raises(SearchError, match="scheduler 'step'"):
        scheduled_lr("step", 0.1, 0.0, 0, 10)


def test_search_then_train_one_epoch_each_from_the_cli(
    tmp_path: Path, one_torch_thread: None
) -> None:
    out = tmp_path / "search"
    base = ["--task", "video-digits", "--space", "pvnas", "--limit", "16"]
    bad = CliRunner().invoke(
        app, ["search", *base, "--algo", "pv-nas", "-o", str(out), "--param", "scheduler=step"]
    )
    assert bad.exit_code != 0 and "scheduler='step'" in str(bad.exception)
    assert not out.exists()
    res = CliRunner().invoke(
        app,
        ["search", *base, "--algo", "pv-nas", "-o", str(out), "--epochs", "1",
         "--param", "C=4", "--param", "batch_size=8", "--param", "cycles=1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "arch.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    arch = get_space("pvnas").from_string(doc["arch"])
    assert summary["cycle_archs"] == [doc["arch"]] and len(summary["history"]) == 1
    assert (
        summary["derived_macs"]
        == pvnas_cost(arch, frames=4, size=16, in_channels=1, num_classes=4)["macs"]
    )
    record = tmp_path / "train.json"
    res = CliRunner().invoke(
        app,
        ["train", *base, "--arch", str(out / "arch.json"), "--epochs", "1", "--batch-size", "8",
         "--network", "C=4", "--out", str(record), "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rec = json.loads(record.read_text())
    assert rec["meta"]["task"] == "video-digits" and rec["dataset"] == "moving-digits"
    assert set(rec["epochs"][0]["eval"]) == {"valid", "test"}
    assert 0 <= rec["epochs"][0]["eval"]["test"]["acc"] <= 100


def test_search_refuses_bad_params_before_work() -> None:
    from nasforge.search.task_search import TaskSearchSpec
    from nasforge.search.video.pvnas import _check_params

    spec = TaskSearchSpec(task=get_task("video-digits"), space="pvnas")
    with pytest.raises(SearchError, match="no --param \\['lr_max'\\]"):
        _check_params({"lr_max": 1}, spec)
    with pytest.raises(SearchError, match="cycles=5 exceeds the 2 search epochs"):
        _check_params({"cycles": 5, "epochs": 2}, spec)


def test_video_data_fingerprint_identifies_the_setting(video_dir: Path) -> None:
    from nasforge.train.checkpoint import data_fingerprint

    task = get_task("video-digits")
    a, b = task.load(limit=8), task.load(limit=8)
    assert data_fingerprint(a) == data_fingerprint(b)
    assert data_fingerprint(a) != data_fingerprint(task.load(limit=8, seed=1))
    assert data_fingerprint(a) != data_fingerprint(task.load(limit=8, segments=2))
    assert data_fingerprint(task.load("videos", video_dir)) != data_fingerprint(a)


def test_a_file_that_is_not_a_video_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    (tmp_path / "train.txt").write_text("broken.mp4 0\n")
    (tmp_path / "val.txt").write_text("broken.mp4 0\n")
    data = get_task("video-digits").load("videos", tmp_path)
    with pytest.raises(DataError, match=r"cannot decode .*broken\.mp4"):
        data.train.num_frames(0)
