"""Image-restoration data: the standard folder layouts, the embedded photographs, patches.

Datasets (``--dataset``), each optionally followed by ``-p<P>`` (training patch side in HR
pixels; default 64, HiNAS's ``CROP_SIZE: 64`` in configs/sr/DIV2K_2c3n/03_search_CR.yaml:6
and configs/dn/BSD500_3c4n/03_search_CR_R0.yaml:5) and ``-e<E>`` (evaluate on the centred
``E x E`` crop of each evaluation image; default the whole image):

- ``skimage`` (default, no download): the photographs scikit-image ships in its wheel
  (files under ``skimage/data``, read directly, never fetched), split by name into
  :data:`SKIMAGE_SPLITS`. Colour tasks use the RGB photographs, grey tasks all of them
  (RGB converted with MATLAB's ``rgb2gray``).
- ``div2k``: ``DATA_DIR/DIV2K_train_HR/*.png`` (train, 0001-0800) and
  ``DIV2K_valid_HR/*.png`` (0801-0900: ``valid`` = the first 10, EDSR's
  ``--data_range 1-800/801-810``; ``test`` = all 100). LR inputs come from
  ``DIV2K_{train,valid}_LR_bicubic/X<s>/<name>x<s>.png`` when the folder exists, else from
  :func:`~nasforge.data.imresize.bicubic_downscale_uint8` (the same MATLAB bicubic).
- ``bsd500``: ``DATA_DIR/BSD500/{train,val,test}`` (or the official
  ``BSDS500/data/images/{train,val,test}``): train = train + val (300 images, HiNAS's
  ``BSD500_300``), ``valid`` = the first 10 test images, ``test`` = the 200 test images
  (HiNAS's ``BSD200``).

With ``div2k`` and ``bsd500``, every benchmark folder present under ``DATA_DIR`` adds an
evaluation split of its name: ``Set5``, ``Set14``, ``B100``, ``Urban100`` (EDSR's
``benchmark/<Set>/HR/*.png`` layout, or ``<Set>/HR``, or ``<Set>/*.png``; LR from
``<Set>/LR_bicubic/X<s>/<name>x<s>.png`` when present) and ``BSD68`` (``BSD68/*.png``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.data.imresize import bicubic_downscale_uint8, modcrop
from nasforge.errors import DataError

#: The scikit-image photographs, by split (file names under ``skimage/data``). Colour
#: tasks use the RGB ones; grey tasks use all, RGB converted to grey.
SKIMAGE_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "rgb": {
        "train": (
            "astronaut.png",
            "rocket.jpg",
            "motorcycle_left.png",
            "hubble_deep_field.jpg",
            "coffee.png",
        ),
        "valid": ("ihc.png",),
        "test": ("chelsea.png", "motorcycle_right.png"),
    },
    "grey": {
        "train": ("camera.png", "moon.png", "grass.png", "gravel.png", "brick.png"),
        "valid": ("cell.png",),
        "test": ("coins.png",),
    },
}
#: Extension searched in image folders.
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
#: Benchmark folders added as evaluation splits when present under the data directory.
SR_BENCHMARKS = ("Set5", "Set14", "B100", "Urban100")
DENOISE_BENCHMARKS = ("BSD68",)
DEFAULT_PATCH = 64
DEFAULT_PATCHES_PER_EPOCH = 512
SOURCES = ("skimage", "div2k", "bsd500")
_EXTRA_HINT = "{what}: pip install 'nasforge[restoration]'"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 ``(H, W, C)`` (C = 1 grey, 3 colour; alpha dropped)."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(_EXTRA_HINT.format(what="reading images needs Pillow")) from None

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
            a = np.asarray(im, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return a[:, :, None] if a.ndim == 2 else a


def rgb2gray(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of uint8 ``(H, W, 3)``: ``0.2989 R + 0.5870 G + 0.1140 B``,
    rounded, as ``(H, W, 1)``."""
    y = img[..., :3].astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)[..., None]


def with_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """``img`` with 1 (grey) or 3 (colour) channels (grey replicated / colour to grey)."""
    if img.shape[2] == channels:
        return img
    if channels == 1:
        return rgb2gray(img)
    return np.repeat(img, 3, axis=2)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@functools.lru_cache(maxsize=64)
def _skimage_file(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        raise DataError(
            _EXTRA_HINT.format(what="the embedded photographs need scikit-image")
        ) from None

    path = Path(skimage.data.__file__).parent / name
    if not path.is_file():
        raise DataError(f"scikit-image does not ship {name} in {path.parent}")
    img = read_image(path)
    img.setflags(write=False)
    return img


@dataclass
class RestorationSplit:
    """Images of one split: HR targets (uint8 ``(H, W, C)``), their names and, for
    super-resolution, the LR inputs (uint8) -- read from LR files or made by MATLAB bicubic."""

    names: list[str]
    hr: list[np.ndarray]
    lr: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.hr)


@dataclass
class RestorationData:
    """A restoration dataset setting (:class:`~nasforge.tasks.TaskData`).

    ``train`` holds whole training images; an epoch is ``patches_per_epoch`` random
    patches of ``patch`` HR pixels. ``scale`` is 1 for denoising, ``sigma`` 0 for SR.
    """

    name: str
    train: RestorationSplit
    evals: dict[str, RestorationSplit]
    channels: int
    scale: int = 1
    sigma: float = 0.0
    patch: int = DEFAULT_PATCH
    patches_per_epoch: int = DEFAULT_PATCHES_PER_EPOCH
    eval_crop: int = 0
    noise_seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {"train": self.patches_per_epoch, **{k: len(v) for k, v in self.evals.items()}}

    def fingerprint(self) -> str:
        """A short hash of the setting: its fields, every split's names, shapes and a fixed
        sample of its pixels (a checkpoint's data identity)."""
        h = hashlib.blake2b(digest_size=12)
        head = [self.name, self.channels, self.scale, self.sigma, self.patch]
        head += [self.patches_per_epoch, self.eval_crop, self.noise_seed]
        h.update(json.dumps(head).encode())
        for name, split in [("train", self.train), *self.evals.items()]:
            h.update(f"|{name}:{split.names}".encode())
            for img in split.hr + (split.lr or []):
                h.update(str(img.shape).encode())
                h.update(
                    np.ascontiguousarray(img.reshape(-1)[:: max(1, img.size // 4096)]).tobytes()
                )
        return h.hexdigest()

    def split(self, name: str) -> RestorationSplit:
        if name == "train":
            return self.train
        if name not in self.evals:
            raise DataError(
                f"{self.name} has no split {name!r}; expected train or {list(self.evals)}"
            )
        return self.evals[name]


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``--dataset`` name: source, patch side, eval crop."""

    source: str
    patch: int = DEFAULT_PATCH
    eval_crop: int = 0


def parse_dataset(name: str) -> DatasetSpec:
    """``<source>[-p<P>][-e<E>]`` (e.g. ``skimage-p24-e48``); :class:`DataError` otherwise."""
    m = re.fullmatch(r"([a-z0-9]+)((?:-[pe]\d+)*)", name or "")
    if not m or m.group(1) not in SOURCES:
        raise DataError(
            f"unknown restoration dataset {name!r}; expected <source>[-p<patch>][-e<eval crop>] "
            f"with source one of {list(SOURCES)} (e.g. skimage-p48)"
        )
    opts = {k: int(v) for k, v in re.findall(r"-([pe])(\d+)", m.group(2))}
    patch, crop = opts.get("p", DEFAULT_PATCH), opts.get("e", 0)
    if patch < 4:
        raise DataError(f"dataset {name!r}: patch side {patch}; expected >= 4")
    return DatasetSpec(m.group(1), patch, crop)


def _center_crop(img: np.ndarray, side: int) -> np.ndarray:
    if side <= 0:
        return img
    h, w = img.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[top : top + side, left : left + side]


def _benchmark_folder(root: Path, name: str) -> tuple[Path, Path | None] | None:
    """(HR folder, LR root or None) of benchmark ``name`` under ``root``, if present."""
    for base in (root / "benchmark" / name, root / name):
        if (base / "HR").is_dir():
            lr = base / "LR_bicubic"
            return base / "HR", lr if lr.is_dir() else None
        if base.is_dir() and list_images(base):
            return base, None
    return None


def _lr_file(lr_root: Path | None, scale: int, stem: str) -> Path | None:
    if lr_root is None:
        return None
    for suffix in IMAGE_SUFFIXES:
        p = lr_root / f"X{scale}" / f"{stem}x{scale}{suffix}"
        if p.is_file():
            return p
    return None


@functools.lru_cache(maxsize=128)
def _skimage_pair(name: str, channels: int, scale: int) -> tuple[np.ndarray, np.ndarray | None]:
    """An embedded photograph with ``channels`` channels, modcropped, and its bicubic LR
    (``None`` at scale 1); computed once per process (every command and test loads them)."""
    hr = np.ascontiguousarray(modcrop(with_channels(_skimage_file(name), channels), scale))
    lr = bicubic_downscale_uint8(hr, scale) if scale > 1 else None
    for a in (hr, lr):
        if a is not None:
            a.setflags(write=False)
    return hr, lr


def _make_split(
    paths_or_images: Sequence[tuple[str, np.ndarray, Path | np.ndarray | None]],
    channels: int,
    scale: int,
    crop: int,
) -> RestorationSplit:
    """A split from ``(name, HR image, LR file / LR image / None)``: channels converted, HR modcropped
    to the scale, LR read or made by MATLAB bicubic, then the optional centred eval crop
    (taken on the LR grid so that HR and LR stay aligned)."""
    names, hrs, lrs = [], [], []
    for name, hr, lr_path in paths_or_images:
        hr = modcrop(with_channels(hr, channels), scale)
        if scale > 1:
            if isinstance(lr_path, np.ndarray):
                lr = lr_path  # prepared with the image (embedded data)
            elif lr_path is not None:
                lr = with_channels(read_image(lr_path), channels)
            else:
                lr = bicubic_downscale_uint8(hr, scale)
            if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
                raise DataError(
                    f"{lr_path}: LR size {lr.shape[:2]} x{scale} does not match HR {hr.shape[:2]}"
                )
            if crop:
                c = max(1, crop // scale)
                top, left = max(0, (lr.shape[0] - c) // 2), max(0, (lr.shape[1] - c) // 2)
                lr = lr[top : top + c, left : left + c]
                hr = hr[top * scale : (top + c) * scale, left * scale : (left + c) * scale]
            lrs.append(np.ascontiguousarray(lr))
        elif crop:
            hr = _center_crop(hr, crop)
        names.append(name)
        hrs.append(np.ascontiguousarray(hr))
    return RestorationSplit(names, hrs, lrs if scale > 1 else None)


def _folder_items(
    folder: Path, lr_root: Path | None, scale: int
) -> list[tuple[str, np.ndarray, Path | None]]:
    files = list_images(folder)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return [(p.stem, read_image(p), _lr_file(lr_root, scale, p.stem)) for p in files]


def _first_dir(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise DataError(f"expected one of the folders {[str(c) for c in candidates]}")


def load_restoration(
    dataset: str,
    data_dir: str | Path | None,
    *,
    channels: int,
    scale: int = 1,
    sigma: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
) -> RestorationData:
    """The :class:`RestorationData` of ``dataset`` (see the module docstring) for images of
    ``channels`` channels at SR ``scale`` (1: denoising with noise ``sigma``).

    ``limit`` keeps at most that many patches per training epoch and images per evaluation
    split; ``seed`` fixes the evaluation noise of denoising.
    """
    spec = parse_dataset(dataset)
    if limit is not None and limit < 1:
        raise DataError(f"--limit {limit}; expected >= 1")
    patch = spec.patch - spec.patch % scale
    if patch < scale * 2:
        raise DataError(f"dataset {dataset!r}: patch {spec.patch} too small for scale x{scale}")
    root = Path(data_dir) if data_dir is not None else None
    if spec.source != "skimage" and (root is None or not root.is_dir()):
        raise DataError(f"dataset {spec.source!r} needs --data-dir (a directory), got {data_dir}")
    items: dict[str, list[tuple[str, np.ndarray, Path | np.ndarray | None]]] = {}
    if spec.source == "skimage":
        kinds = ("rgb",) if channels == 3 else ("rgb", "grey")
        for split in ("train", "valid", "test"):
            items[split] = [
                (Path(f).stem, *_skimage_pair(f, channels, scale))
                for kind in kinds
                for f in SKIMAGE_SPLITS[kind][split]
            ]
    elif spec.source == "div2k":
        assert root is not None
        lr_train = root / "DIV2K_train_LR_bicubic"
        lr_valid = root / "DIV2K_valid_LR_bicubic"
        items["train"] = _folder_items(
            _first_dir(root / "DIV2K_train_HR"), lr_train if lr_train.is_dir() else None, scale
        )
        valid = _folder_items(
            _first_dir(root / "DIV2K_valid_HR"), lr_valid if lr_valid.is_dir() else None, scale
        )
        items["valid"], items["test"] = valid[:10], valid
    else:
        assert root is not None
        base = _first_dir(root / "BSD500", root / "BSDS500" / "data" / "images")
        items["train"] = _folder_items(_first_dir(base / "train"), None, 1) + (
            _folder_items(base / "val", None, 1) if (base / "val").is_dir() else []
        )
        test = _folder_items(_first_dir(base / "test"), None, 1)
        items["valid"], items["test"] = test[:10], test
    if root is not None:
        for bench in SR_BENCHMARKS + DENOISE_BENCHMARKS:
            found = _benchmark_folder(root, bench)
            if found is not None:
                items[bench] = _folder_items(found[0], found[1], scale)
    if limit is not None:
        items = {k: (v if k == "train" else v[:limit]) for k, v in items.items()}
    train = _make_split(items.pop("train"), channels, scale, 0)
    too_small = [
        n for n, im in zip(train.names, train.hr, strict=True) if min(im.shape[:2]) < patch
    ]
    if too_small:
        raise DataError(f"training images {too_small} are smaller than the patch {patch}")
    evals = {k: _make_split(v, channels, scale, spec.eval_crop) for k, v in items.items()}
    kind = "c" if channels == 3 else "g"
    name = dataset + (f"[x{scale}]" if scale > 1 else f"[{kind}{sigma:g}]")
    return RestorationData(
        name=name,
        train=train,
        evals=evals,
        channels=channels,
        scale=scale,
        sigma=float(sigma),
        patch=patch,
        patches_per_epoch=DEFAULT_PATCHES_PER_EPOCH if limit is None else int(limit),
        eval_crop=spec.eval_crop,
        noise_seed=int(seed),
    )


# -- batches ------------------------------------------------------------------------------


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply to each square image ``x[i]`` (N, C, P, P) the element ``k[i]`` in 0..7 of the
    dihedral group: ``k & 1`` horizontal flip, ``k & 2`` vertical flip, ``k & 4`` transpose
    (BasicSR's ``augment`` with hflip, vflip and rot90). Batched on ``x``'s device: every
    sample is transformed by the same three masked ops."""
    k = k.to(x.device).view(-1, 1, 1, 1)
    x = torch.where((k & 1).bool(), x.flip(3), x)
    x = torch.where((k & 2).bool(), x.flip(2), x)
    return torch.where((k & 4).bool(), x.transpose(2, 3), x)


class RestorationLoader:
    """Batches ``(input, target)`` of a restoration split, float32 in [0, 1] on ``device``.

    Training: an epoch is ``data.patches_per_epoch`` patches; each picks an image uniformly,
    a top-left corner uniformly on the LR grid (HR corner = LR corner x scale, BasicSR's
    ``paired_random_crop``), and one of the 8 flips/rotations; denoising adds Gaussian noise
    of ``sigma / 255`` (not clipped, as DnCNN) drawn on the device. Everything follows
    ``(seed, epoch)``. Evaluation: one whole image per batch (sizes differ), in split order;
    the denoising noise of image ``i`` is fixed by ``(data.noise_seed, i)``.
    """

    def __init__(
        self,
        data: RestorationData,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.data, self.split, self.train = data, data.split(split), train
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)
        self.epoch = 0
        if train and len(self.split) == 0:
            raise DataError(f"{data.name}: the training split is empty")

    @property
    def num_samples(self) -> int:
        return self.data.patches_per_epoch if self.train else len(self.split)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size) if self.train else len(self.split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self._train_batches() if self.train else self._eval_batches()

    def _to_tensor(self, imgs: list[np.ndarray]) -> torch.Tensor:
        a = np.stack(imgs).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device).float().div_(255.0)

    def _noise_generator(self, *key: int, device: torch.device | None = None) -> torch.Generator:
        g = torch.Generator(device=device or self.device)
        g.manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1))
        return g

    def _train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        d, s = self.data, self.data.scale
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        n = self.num_samples
        which = rng.integers(len(self.split), size=n)
        flips = torch.from_numpy(rng.integers(8, size=n))
        lp = d.patch // s
        g = self._noise_generator(self.seed, self.epoch, 11) if d.sigma > 0 else None
        for start in range(0, n, self.batch_size):
            xs, ys = [], []
            for i in range(start, min(n, start + self.batch_size)):
                hr = self.split.hr[which[i]]
                src = self.split.lr[which[i]] if self.split.lr is not None else hr
                top = int(rng.integers(src.shape[0] - lp + 1))
                left = int(rng.integers(src.shape[1] - lp + 1))
                ys.append(hr[top * s : top * s + d.patch, left * s : left * s + d.patch])
                if s > 1:
                    xs.append(src[top : top + lp, left : left + lp])
            k = flips[start : start + len(ys)]
            y = dihedral(self._to_tensor(ys), k)
            if s > 1:
                x = dihedral(self._to_tensor(xs), k)
            else:
                noise = torch.randn(y.shape, generator=g, device=self.device)
                x = y + noise * (d.sigma / 255.0)
            yield x, y

    def _eval_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        d = self.data
        for i, hr in enumerate(self.split.hr):
            y = self._to_tensor([hr])
            if d.scale > 1:
                assert self.split.lr is not None
                x = self._to_tensor([self.split.lr[i]])
            else:
                # Drawn on the CPU so the evaluation images are the same on every device.
                g = self._noise_generator(d.noise_seed, i, 13, device=torch.device("cpu"))
                noise = torch.randn(y.shape, generator=g)
                x = y + noise.to(self.device) * (d.sigma / 255.0)
            yield x, y
