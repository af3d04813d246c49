"""Restoration tasks: MATLAB bicubic, metrics against scikit-image, readers, patches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data.imresize import bicubic_downscale_uint8, imresize, resize_weights
from nasforge.data.restoration import (
    SKIMAGE_SPLITS,
    RestorationLoader,
    dihedral,
    load_restoration,
    parse_dataset,
)
from nasforge.errors import DataError
from nasforge.tasks import get_task
from nasforge.tasks.restoration import psnr, rgb_to_y, ssim

# -- MATLAB bicubic -----------------------------------------------------------------------


def test_imresize_half_has_the_hand_computed_antialiased_weights() -> None:
    # Output pixel 1 of 8 -> 4 samples u = 1.5 with the kernel stretched to 8 taps:
    # 0.5 * cubic(0.5 d) at d = +-0.5, +-1.5, +-2.5, +-3.5, normalised (sum 2 -> 1).
    w, idx = resize_weights(8, 4, 0.5)
    want = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375])
    np.testing.assert_allclose(w[0], np.concatenate([want, want[::-1]]), atol=1e-15)
    # Indices -2..5 (1-based) mirror with the edge repeated: 2 1 0 0 1 2 3 4 (0-based).
    assert idx[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 4]
    impulse = np.zeros((1, 8))
    impulse[0, 3] = 1.0
    row = imresize(np.repeat(impulse, 8, 0), 0.5)[0]
    # Pixel 4 (1-based) sits at distance -2.5, -0.5, 1.5, 3.5 from the four sample points.
    np.testing.assert_allclose(row, [-0.03515625, 0.43359375, 0.11328125, -0.01171875], atol=1e-15)


def test_imresize_keeps_constants_and_matches_pillow_bicubic_inside_the_border() -> None:
    np.testing.assert_allclose(imresize(np.full((9, 7, 3), 42.0), 1 / 3), 42.0, atol=1e-12)
    rng = np.random.default_rng(0)
    img = (rng.random((39, 48)) * 255).astype(np.float32)
    # Pillow's bicubic (a = -0.5, support stretched when shrinking, pixel centres aligned)
    # is the same filter; it only treats the border differently (renormalised, not mirrored).
    # (Sizes are exact multiples: Pillow derives its scale from the sizes.)
    for rows, scale, size in ((38, 0.5, (24, 19)), (39, 1 / 3, (16, 13)), (39, 2.0, (96, 78))):
        ours = imresize(img[:rows], scale)
        ref = np.asarray(Image.fromarray(img[:rows], mode="F").resize(size, Image.BICUBIC))
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours[3:-3, 3:-3], ref[3:-3, 3:-3], atol=1e-3)
    # A linear ramp is reproduced exactly away from the mirrored border.
    ramp = np.tile(np.arange(32, dtype=np.float64), (32, 1))
    down = imresize(ramp, 0.25)
    np.testing.assert_allclose(down[:, 2:-2], np.tile(4 * np.arange(8) + 1.5, (8, 1))[:, 2:-2])


def test_bicubic_downscale_modcrops_rounds_and_refuses_bad_input() -> None:
    hr = np.random.default_rng(1).integers(0, 256, (13, 10, 3), dtype=np.uint8)
    lr = bicubic_downscale_uint8(hr, 3)
    assert lr.dtype == np.uint8 and lr.shape == (4, 3, 3)
    want = np.clip(np.floor(imresize(hr[:12, :9], 1 / 3) + 0.5), 0, 255)
    np.testing.assert_array_equal(lr, want)
    with pytest.raises(DataError, match="scale"):
        imresize(hr, -1)
    with pytest.raises(DataError, match="shape"):
        imresize(np.zeros(5), 0.5)


# -- metrics --------------------------------------------------------------------------------


def test_psnr_and_ssim_equal_scikit_image() -> None:
    rng = np.random.default_rng(2)
    for c in (1, 3):
        a = rng.integers(0, 256, (40, 37, c)).astype(np.float64)
        b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).round()
        ta, tb = (torch.from_numpy(x.transpose(2, 0, 1))[None] for x in (a, b))
        ref_p = peak_signal_noise_ratio(a, b, data_range=255)
        ref_s = structural_similarity(
            a[..., 0] if c == 1 else a,
            b[..., 0] if c == 1 else b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
            channel_axis=None if c == 1 else 2,
        )
        assert float(psnr(tb, ta)) == pytest.approx(ref_p, abs=1e-10)
        assert float(ssim(tb, ta)) == pytest.approx(ref_s, abs=1e-10)


def test_sr_scores_the_shaved_y_channel_as_scikit_image_computes_it() -> None:
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (36, 30, 3)).astype(np.uint8)
    out = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).round().astype(np.uint8)
    task = get_task("sr-x3")
    to = lambda x: torch.from_numpy(x.transpose(2, 0, 1)).float()[None] / 255  # noqa: E731
    p, s = task.score(to(out), to(hr))
    y_out, y_hr = (rgb2ycbcr(x)[3:-3, 3:-3, 0] for x in (out, hr))
    assert float(p) == pytest.approx(peak_signal_noise_ratio(y_hr, y_out, data_range=255), abs=1e-9)
    ref = structural_similarity(
        y_hr, y_out, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert float(s) == pytest.approx(ref, abs=1e-9)
    np.testing.assert_allclose(
        rgb_to_y(torch.from_numpy(hr.transpose(2, 0, 1)).double()[None])[0, 0].numpy(),
        rgb2ycbcr(hr)[..., 0],
        atol=1e-9,
    )


# -- readers and batches ---------------------------------------------------------------------


def _png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.squeeze()).save(path)


def test_div2k_and_benchmark_layouts_read_lr_files_or_make_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    lr_blocks = {}
    for i, folder in ((1, "DIV2K_train_HR"), (2, "DIV2K_train_HR"), (801, "DIV2K_valid_HR")):
        lr = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
        # HR made of constant 2x2 blocks: its block means are the LR file's pixels.
        _png(tmp_path / folder / f"{i:04d}.png", np.kron(lr, np.ones((2, 2, 1), np.uint8)))
        lr_blocks[i] = lr
        if folder == "DIV2K_train_HR":
            _png(tmp_path / "DIV2K_train_LR_bicubic" / "X2" / f"{i:04d}x2.png", lr)
    _png(
        tmp_path / "benchmark" / "Set5" / "HR" / "baby.png",
        rng.integers(0, 256, (13, 11, 3), dtype=np.uint8),
    )
    data = load_restoration("div2k-p8", tmp_path, channels=3, scale=2, limit=6)
    assert list(data.evals) == ["valid", "test", "Set5"] and data.train.names == ["0001", "0002"]
    np.testing.assert_array_equal(data.train.lr[0], lr_blocks[1])  # read, not recomputed
    # The validation image has no LR folder: MATLAB bicubic of the HR image.
    hr801 = data.evals["test"].hr[0]
    np.testing.assert_array_equal(data.evals["test"].lr[0], bicubic_downscale_uint8(hr801, 2))
    assert data.evals["Set5"].hr[0].shape == (12, 10, 3)  # modcropped to the scale
    # Training patches: HR and LR crops stay aligned through every flip / rotation.
    loader = RestorationLoader(data, "train", 4, train=True, seed=3)
    for x, y in loader:
        pooled = torch.nn.functional.avg_pool2d(y, 2)
        torch.testing.assert_close(x, pooled, atol=1e-6, rtol=0)
    assert x.shape[-1] == 4 and y.shape[-1] == 8
    with pytest.raises(DataError, match="needs --data-dir"):
        load_restoration("div2k", None, channels=3, scale=2)
    with pytest.raises(DataError, match="unknown restoration dataset 'div3k'"):
        parse_dataset("div3k")


def test_bsd500_and_bsd68_layouts_and_grey_conversion(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for split, n in (("train", 2), ("val", 1), ("test", 3)):
        for i in range(n):
            _png(
                tmp_path / "BSD500" / split / f"{split}{i}.jpg".replace(".jpg", ".png"),
                rng.integers(0, 256, (20, 22, 3), dtype=np.uint8),
            )
    _png(tmp_path / "BSD68" / "test001.png", rng.integers(0, 256, (16, 16), dtype=np.uint8))
    data = load_restoration("bsd500-p16", tmp_path, channels=1, sigma=25)
    assert len(data.train) == 3 and len(data.evals["test"]) == 3 and len(data.evals["BSD68"]) == 1
    assert data.train.hr[0].shape == (20, 22, 1)
    rgb = np.asarray(Image.open(tmp_path / "BSD500" / "train" / "train0.png"), dtype=np.float64)
    grey = np.floor(rgb @ [0.2989, 0.5870, 0.1140] + 0.5)
    np.testing.assert_array_equal(data.train.hr[0][..., 0], grey)


def test_denoising_batches_are_seeded_noise_of_the_stated_sigma() -> None:
    data = load_restoration("skimage-p32-e48", None, channels=1, sigma=50, limit=64)
    a = [
        (x.clone(), y.clone()) for x, y in RestorationLoader(data, "train", 16, train=True, seed=1)
    ]
    b = list(RestorationLoader(data, "train", 16, train=True, seed=1))
    assert all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )
    other = RestorationLoader(data, "train", 16, train=True, seed=1)
    other.set_epoch(1)
    assert not torch.equal(next(iter(other))[1], a[0][1])
    noise = torch.cat([x - y for x, y in a])
    assert noise.std().item() == pytest.approx(50 / 255, rel=0.05)
    ev1 = [x for x, _ in RestorationLoader(data, "test", 1, train=False)]
    ev2 = [x for x, _ in RestorationLoader(data, "test", 1, train=False)]
    assert all(torch.equal(p, q) for p, q in zip(ev1, ev2, strict=True))
    assert ev1[0].shape == (1, 1, 48, 48)


def test_dihedral_is_the_eight_flips_and_rotations() -> None:
    base = torch.arange(9, dtype=torch.float32).view(3, 3)
    out = dihedral(base.expand(8, 1, 3, 3), torch.arange(8))[:, 0]
    group = {tuple(torch.rot90(m, r).flatten().tolist()) for m in (base, base.T) for r in range(4)}
    assert {tuple(o.flatten().tolist()) for o in out} == group and len(group) == 8
    assert torch.equal(out[1], base.flip(1)) and torch.equal(out[2], base.flip(0))
    assert torch.equal(out[4], base.T)


def test_embedded_split_is_bundled_disjoint_and_by_name() -> None:
    import skimage.data

    root = Path(skimage.data.__file__).parent
    names = [n for kind in SKIMAGE_SPLITS.values() for split in kind.values() for n in split]
    assert len(names) == len(set(names)) and all((root / n).is_file() for n in names)
    colour = get_task("sr-x2").load("skimage-e32", limit=2)
    grey = get_task("denoise-g15").load("skimage-e32")
    assert colour.evals["test"].names == ["chelsea", "motorcycle_right"]
    assert grey.evals["test"].names == ["chelsea", "motorcycle_right", "coins"]
    assert "coins" not in grey.train.names and len(grey.train) == 10


def test_task_list_shows_the_restoration_tasks() -> None:
    res = CliRunner().invoke(app, ["task", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    for name in (
        "denoise-g15",
        "denoise-g25",
        "denoise-g50",
        "denoise-c25",
        "sr-x2",
        "sr-x3",
        "sr-x4",
    ):
        assert rows[name]["primary"] == "psnr"
    assert rows["sr-x4"]["shave"] == 4 and rows["denoise-c50"]["sigma"] == 50


def test_checkpoints_identify_restoration_data(tmp_path: Path) -> None:
    from nasforge.train.checkpoint import data_fingerprint

    task = get_task("sr-x2")
    a = data_fingerprint(task.load("skimage-p16-e24", limit=4))
    assert a == data_fingerprint(task.load("skimage-p16-e24", limit=4))
    assert a != data_fingerprint(task.load("skimage-p16-e32", limit=4))
    assert a != data_fingerprint(get_task("sr-x3").load("skimage-p16-e24", limit=4))
