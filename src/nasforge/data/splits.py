"""The NAS-Bench-201 dataset settings by name, their official split files, and the embedded
datasets (scikit-learn's digits and a synthetic generator) that need no download."""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from nasforge.data.base import NB201_MEAN_STD, DatasetSplits, Split
from nasforge.data.readers import read_cifar, read_imagenet16
from nasforge.errors import DataError

log = logging.getLogger(__name__)

SPLIT_DIR_ENV = "NASFORGE_SPLIT_DIR"
DATA_DIR_ENV = "NASFORGE_DATA_DIR"

# Official split files (xautodl configs/nas-benchmark/) and the keys NB201 reads from them.
SPLIT_FILES: dict[str, tuple[str, tuple[str, str]]] = {
    "cifar10-valid": ("cifar-split.txt", ("train", "valid")),
    "cifar100": ("cifar100-test-split.txt", ("xvalid", "xtest")),
    "ImageNet16-120": ("imagenet-16-120-test-split.txt", ("xvalid", "xtest")),
}

NB201_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
EMBEDDED_DATASETS = ("digits", "synthetic")


class FallbackSplitWarning(UserWarning):
    """An official split file was not found and a documented deterministic split was used."""


def read_split_file(path: str | Path) -> dict[str, list[int]]:
    """Parse an official NB201 split file: ``{"name": ["int", [indices...]], ...}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"split file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"split file {path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"split file {path}: expected a non-empty JSON object")
    out: dict[str, list[int]] = {}
    for key, value in raw.items():
        if (
            not isinstance(value, list)
            or len(value) != 2
            or value[0] != "int"
            or not isinstance(value[1], list)
        ):
            raise DataError(f'split file {path}: entry {key!r} must be ["int", [indices...]]')
        try:
            out[key] = [int(v) for v in value[1]]
        except (TypeError, ValueError):
            raise DataError(f"split file {path}: entry {key!r} has a non-integer index") from None
    return out


def _check_indices(idx: np.ndarray, n: int, what: str) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise DataError(
            f"{what}: indices in [{idx.min()}, {idx.max()}] do not fit a set of {n} images "
            "(is the split file for this dataset, and is the dataset complete?)"
        )
    if np.unique(idx).size != idx.size:
        raise DataError(f"{what}: indices repeat")


def _two_way_split(
    setting: str, n: int, split_file_dir: Path | None, seed: int, sizes: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, str]:
    """The two index sets of ``setting`` from its official file, else a deterministic split.

    Fallback (documented): ``numpy.random.default_rng(seed).permutation(n)``; the first
    ``sizes[0]`` indices (sorted) form the first set and the next ``sizes[1]`` the second,
    scaled proportionally when the dataset is smaller than the official one.
    """
    fname, (k1, k2) = SPLIT_FILES[setting]
    path = split_file_dir / fname if split_file_dir is not None else None
    if path is not None and path.is_file():
        table = read_split_file(path)
        missing = [k for k in (k1, k2) if k not in table]
        if missing:
            raise DataError(f"split file {path}: missing entries {missing}; has {sorted(table)}")
        a, b = np.asarray(table[k1], np.int64), np.asarray(table[k2], np.int64)
        _check_indices(a, n, f"{path}:{k1}")
        _check_indices(b, n, f"{path}:{k2}")
        if np.intersect1d(a, b).size:
            raise DataError(f"split file {path}: {k1} and {k2} overlap")
        log.info("%s: official split %s (%d / %d)", setting, path, a.size, b.size)
        return a, b, f"split: official file {path}"
    total = sum(sizes)
    n1 = sizes[0] if n >= total else n * sizes[0] // total
    n2 = sizes[1] if n >= total else n - n1
    perm = np.random.default_rng(seed).permutation(n)
    where = f"{path}" if path is not None else f"a directory with {fname} (split_file_dir)"
    msg = (
        f"{setting}: official split file not found ({where}); using the deterministic "
        f"fallback split numpy.random.default_rng({seed}).permutation({n}) -> {n1} / {n2}. "
        "Results are then not comparable with NAS-Bench-201."
    )
    warnings.warn(msg, FallbackSplitWarning, stacklevel=3)
    log.warning(msg)
    return np.sort(perm[:n1]), np.sort(perm[n1 : n1 + n2]), f"split: fallback (seed {seed})"


def _resolve_dir(value: str | Path | None, env: str) -> Path | None:
    if value is not None:
        return Path(value).expanduser()
    from_env = os.environ.get(env)
    return Path(from_env).expanduser() if from_env else None


def _split(name: str, pair: tuple[torch.Tensor, torch.Tensor], idx: np.ndarray | None) -> Split:
    images, labels = pair
    if idx is None:
        return Split(name, images, labels)
    t = torch.from_numpy(idx)
    return Split(name, images[t].contiguous(), labels[t].clone())


def _nb201_setting(
    name: str,
    root: Path,
    download: bool,
    split_dir: Path | None,
    seed: int,
    url_base: str | None,
) -> DatasetSplits:
    if name in ("cifar10-valid", "cifar10", "cifar100"):
        base = "cifar100" if name == "cifar100" else "cifar10"
        train, test = read_cifar(base, root, download=download, url_base=url_base)
        mean, std = NB201_MEAN_STD[base]
        num_classes, res, pad = (100 if base == "cifar100" else 10), 32, 4
    else:
        if download:
            raise DataError(
                "ImageNet16-120 cannot be downloaded automatically: fetch the 16x16 "
                "down-sampled ImageNet (image-net.org, Chrabaszcz et al. 2017) into "
                f"{root} by hand"
            )
        train, test = read_imagenet16(root, max_class=120)
        mean, std = NB201_MEAN_STD["ImageNet16"]
        num_classes, res, pad = 120, 16, 2
    split_dir = split_dir if split_dir is not None else root
    notes: tuple[str, ...] = ()
    if name == "cifar10-valid":
        # NB201: train on the "train" half of the training set, validate on the "valid" half
        # (augmentation off for it), and report the original test set.
        a, b, note = _two_way_split(name, len(train[1]), split_dir, seed, (25000, 25000))
        notes = (note,)
        train_s = _split("train", train, a)
        evals = {"valid": _split("valid", train, b), "test": _split("test", test, None)}
    elif name == "cifar10":
        train_s, evals = _split("train", train, None), {"test": _split("test", test, None)}
    else:
        half = 5000 if name == "cifar100" else 3000
        a, b, note = _two_way_split(name, len(test[1]), split_dir, seed, (half, half))
        notes = (note,)
        train_s = _split("train", train, None)
        evals = {"valid": _split("valid", test, a), "test": _split("test", test, b)}
    return DatasetSplits(name, train_s, evals, num_classes, res, mean, std, pad, notes=notes)


def _stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Per class, shuffle with ``seed`` and cut by ``fractions``; each part sorted by index."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * idx.size).astype(int)
        for p, chunk in zip(parts, np.split(idx, cuts), strict=True):
            p.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.to(torch.float64) / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def load_digits(seed: int = 0) -> DatasetSplits:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes).

    Values 0..16 are scaled to 0..255, upsampled to 16x16 by nearest neighbour and repeated
    to 3 channels so NB201 networks take them unchanged. A stratified 60/20/20 split
    (shuffled per class with ``seed``) gives train / valid / test. Mean and std come from
    the training split. Flips are off: a mirrored digit is a different glyph.
    """
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    gray = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    big = gray.repeat(2, axis=1).repeat(2, axis=2)  # nearest-neighbour 8x8 -> 16x16
    images = torch.from_numpy(np.ascontiguousarray(np.repeat(big[:, None], 3, axis=1)))
    labels = torch.from_numpy(d.target.astype(np.int64))
    tr, va, te = _stratified_split(d.target, (0.6, 0.2, 0.2), seed)
    train = Split("train", images[tr].contiguous(), labels[tr].clone())
    evals = {
        "valid": Split("valid", images[va].contiguous(), labels[va].clone()),
        "test": Split("test", images[te].contiguous(), labels[te].clone()),
    }
    mean, std = _mean_std(train.images)
    return DatasetSplits("digits", train, evals, 10, 16, mean, std, 2, flip=False)  # type: ignore[arg-type]


_SYNTH_RE = re.compile(r"^synthetic(?:-(\d+)px)?(?:-(\d+)c)?$")


def make_synthetic(
    num_classes: int = 10,
    resolution: int = 32,
    n_train: int = 2000,
    n_valid: int = 500,
    n_test: int = 500,
    seed: int = 0,
) -> DatasetSplits:
    """A deterministic synthetic image dataset with learnable labels.

    Each class has a smooth random colour pattern (a 4x4x3 Gaussian grid upsampled
    bilinearly, made left-right symmetric so flips keep the class). A sample is its class
    pattern with a random contrast in [0.6, 1.4] plus i.i.d. Gaussian pixel noise; a small
    conv net separates the classes well above chance, a linear probe on one pixel cannot.
    """
    if num_classes < 2 or resolution < 4 or min(n_train, n_valid, n_test) < 1:
        raise DataError(
            f"synthetic: need num_classes >= 2, resolution >= 4 and sizes >= 1, got "
            f"{num_classes}, {resolution}, ({n_train}, {n_valid}, {n_test})"
        )
    rng = np.random.default_rng(seed)
    g = torch.from_numpy(rng.standard_normal((num_classes, 3, 4, 4)).astype(np.float32))
    protos = torch.nn.functional.interpolate(
        g, size=(resolution, resolution), mode="bilinear", align_corners=False
    )
    protos = 0.5 * (protos + protos.flip(-1))
    protos = protos / protos.flatten(1).std(dim=1).view(-1, 1, 1, 1)
    splits = []
    for sname, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        labels = rng.integers(0, num_classes, size=n)
        contrast = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1)).astype(np.float32)
        noise = rng.standard_normal((n, 3, resolution, resolution)).astype(np.float32)
        x = 128.0 + 45.0 * contrast * protos.numpy()[labels] + 40.0 * noise
        images = torch.from_numpy(np.rint(x).clip(0, 255).astype(np.uint8))
        splits.append(Split(sname, images, torch.from_numpy(labels.astype(np.int64))))
    mean, std = _mean_std(splits[0].images)
    pad = 4 if resolution >= 32 else max(1, resolution // 8)
    name = f"synthetic-{resolution}px-{num_classes}c"
    return DatasetSplits(
        name,
        splits[0],
        {"valid": splits[1], "test": splits[2]},
        num_classes,
        resolution,
        mean,
        std,
        pad,  # type: ignore[arg-type]
    )


def load_splits(
    name: str,
    root: str | Path | None = None,
    *,
    download: bool = False,
    split_file_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    url_base: str | None = None,
) -> DatasetSplits:
    """The dataset setting ``name`` with its train split and ordered evaluation splits.

    Names: the NAS-Bench-201 settings ``cifar10-valid``, ``cifar10``, ``cifar100``,
    ``ImageNet16-120`` (read from ``root``, default ``$NASFORGE_DATA_DIR``), and the embedded
    ``digits`` and ``synthetic[-<R>px][-<K>c]`` (default 32px, 10 classes), which need no
    files. Official split files are looked up in ``split_file_dir`` (default
    ``$NASFORGE_SPLIT_DIR``, else ``root``); when absent, a deterministic split from ``seed``
    is used and a :class:`FallbackSplitWarning` says so. ``seed`` also drives the embedded
    datasets' splits. ``limit`` keeps the first ``limit`` samples of every split (tiny runs).
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of samples, got {limit}")
    if name == "digits":
        data = load_digits(seed)
    elif (m := _SYNTH_RE.match(name)) is not None:
        res = int(m.group(1)) if m.group(1) else 32
        classes = int(m.group(2)) if m.group(2) else 10
        data = make_synthetic(classes, res, seed=seed)
    elif name in NB201_DATASETS:
        root_dir = _resolve_dir(root, DATA_DIR_ENV)
        if root_dir is None:
            raise DataError(
                f"{name} needs a data directory: pass root=/data-dir (CLI --data-dir) or set "
                f"${DATA_DIR_ENV}"
            )
        data = _nb201_setting(
            name, root_dir, download, _resolve_dir(split_file_dir, SPLIT_DIR_ENV), seed, url_base
        )
    else:
        known = ", ".join([*NB201_DATASETS, *EMBEDDED_DATASETS, "synthetic-<R>px-<K>c"])
        raise DataError(f"unknown dataset {name!r}; expected one of: {known}")
    if limit is None:
        return data
    return DatasetSplits(
        data.name,
        data.train.head(limit),
        {k: v.head(limit) for k, v in data.evals.items()},
        data.num_classes,
        data.resolution,
        data.mean,
        data.std,
        data.pad,
        data.flip,
        data.notes,
    )
