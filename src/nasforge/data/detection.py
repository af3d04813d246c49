"""Object-detection data: COCO-format annotations and the embedded digits-on-textures scenes.

A :class:`DetectionSplit` holds uint8 images (N x 3 x H x W, all one size) and, per image,
its boxes (``float32`` n x 4, ``x1, y1, x2, y2`` in pixels, the COCO ``bbox`` is
``x, y, w, h``) and category ids (``int64``, 0-based here, COCO's ``category_id`` is the
0-based label plus one). :func:`read_coco` and :func:`write_coco` translate between a
split and a COCO directory (``<name>.json`` plus the PNG files it names).

:func:`make_digit_scenes` builds the embedded dataset ``digits-on-textures``: real
handwritten digits (scikit-learn's 8x8 digits, 1797 UCI scans) pasted at random positions
and scales on crops of the real photographs that scikit-image ships in its wheel
(``skimage.data``: brick, grass, gravel, coffee, chelsea, astronaut, rocket,
immunohistochemistry, moon; none is downloaded). Every draw comes from one
``numpy.random.Generator`` seeded by ``seed``: the same seed gives the same pixels and
boxes. Digits in the train split come from the first 60% of the digit scans, valid from
the next 20%, test from the last 20%, so no handwritten sample is shared between splits.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import DataError
from nasforge.io import atomic_write_bytes, atomic_write_json

#: The photographs backgrounds are cropped from (all bundled in scikit-image's wheel).
TEXTURES = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "chelsea",
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "moon",
)
DIGIT_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True, eq=False)
class DetectionSplit:
    """Images with their boxes and labels; ``image_ids`` are the COCO image ids."""

    name: str
    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    image_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        img = self.images
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 4:
            raise DataError(
                f"split {self.name!r}: images must be a uint8 tensor N x 3 x H x W, got "
                f"{getattr(img, 'dtype', type(img))}"
            )
        n = img.shape[0]
        if len(self.boxes) != n or len(self.labels) != n:
            raise DataError(
                f"split {self.name!r}: {n} images but {len(self.boxes)} box sets and "
                f"{len(self.labels)} label sets"
            )
        if not self.image_ids:
            object.__setattr__(self, "image_ids", list(range(1, n + 1)))
        if len(self.image_ids) != n:
            raise DataError(f"split {self.name!r}: {n} images but {len(self.image_ids)} ids")
        for b, lab in zip(self.boxes, self.labels, strict=True):
            if b.dim() != 2 or b.shape[1] != 4 or lab.shape != (b.shape[0],):
                raise DataError(
                    f"split {self.name!r}: boxes must be n x 4 with n labels, got "
                    f"{tuple(b.shape)} and {tuple(lab.shape)}"
                )
            if b.numel() and bool(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()):
                raise DataError(f"split {self.name!r}: a box has x2 <= x1 or y2 <= y1")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.images.shape[1:]))
        return (
            f"DetectionSplit({self.name!r}, {len(self)} images of {shape}, {self.num_boxes} boxes)"
        )

    @property
    def num_boxes(self) -> int:
        return sum(int(b.shape[0]) for b in self.boxes)

    def head(self, n: int | None) -> DetectionSplit:
        """The first ``n`` images (all when ``n`` is None or larger than the split)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"limit must be >= 1, got {n}")
        return DetectionSplit(
            self.name, self.images[:n], self.boxes[:n], self.labels[:n], self.image_ids[:n]
        )


@dataclass(frozen=True, eq=False)
class DetectionData:
    """A train split and ordered evaluation splits (``valid`` for search, ``test`` for the
    report) of one detection dataset; ``categories`` names the labels 0..K-1; ``flip``
    says whether a horizontal flip keeps an image valid (not for digits: a mirrored 2 is
    no handwritten 2)."""

    name: str
    train: DetectionSplit
    evals: dict[str, DetectionSplit]
    categories: tuple[str, ...]
    flip: bool = False
    notes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def resolution(self) -> int:
        return int(self.train.images.shape[-1])

    def split(self, name: str) -> DetectionSplit:
        if name == "train":
            return self.train
        if name not in self.evals:
            known = ", ".join(["train", *self.evals])
            raise DataError(f"{self.name} has no split {name!r}; expected one of: {known}")
        return self.evals[name]

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), **{k: len(v) for k, v in self.evals.items()}}


# -- COCO format ---------------------------------------------------------------------------


def coco_dict(
    split: DetectionSplit, categories: tuple[str, ...], file_names: list[str] | None = None
) -> dict[str, Any]:
    """The COCO annotation dict of ``split`` (``images``, ``annotations``, ``categories``;
    ``bbox`` is ``[x, y, w, h]``, ``category_id`` the label plus one)."""
    h, w = (int(s) for s in split.images.shape[2:])
    names = file_names or [f"{i:06d}.png" for i in split.image_ids]
    images, anns = [], []
    for k, (img_id, boxes, labels) in enumerate(
        zip(split.image_ids, split.boxes, split.labels, strict=True)
    ):
        images.append({"id": int(img_id), "width": w, "height": h, "file_name": names[k]})
        for b, lab in zip(boxes.tolist(), labels.tolist(), strict=True):
            bw, bh = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": int(img_id),
                    "category_id": int(lab) + 1,
                    "bbox": [b[0], b[1], bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(categories)]
    return {"images": images, "annotations": anns, "categories": cats}


def write_coco(split: DetectionSplit, categories: tuple[str, ...], directory: str | Path) -> Path:
    """Write ``split`` as ``directory/<split>.json`` plus ``directory/<split>/<id>.png``
    (PNG via scikit-image); every file is written atomically. Returns the JSON path."""
    try:
        from skimage.io import imsave
    except ImportError:
        raise DataError(_NEEDS_SKIMAGE) from None

    root = Path(directory)
    img_dir = root / split.name
    img_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for img_id, img in zip(split.image_ids, split.images, strict=True):
        name = f"{split.name}/{img_id:06d}.png"
        tmp = root / f".{img_id:06d}.tmp.png"
        imsave(tmp, img.permute(1, 2, 0).numpy(), check_contrast=False)
        atomic_write_bytes(root / name, tmp.read_bytes())
        tmp.unlink()
        names.append(name)
    path = root / f"{split.name}.json"
    atomic_write_json(path, coco_dict(split, categories, names))
    return path


def read_coco(path: str | Path, name: str | None = None) -> tuple[DetectionSplit, tuple[str, ...]]:
    """Read a COCO annotation file and the images it names (relative to the file's
    directory; RGB or grey, all one size): the split and the category names (labels are
    the categories in ascending id order). Crowd annotations are skipped."""
    try:
        from skimage.io import imread
    except ImportError:
        raise DataError(_NEEDS_SKIMAGE) from None

    path = Path(path)
    if not path.is_file():
        raise DataError(f"COCO annotation file {path} does not exist")
    try:
        doc = json.loads(path.read_text())
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        images = doc["images"]
        anns = doc.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a COCO annotation file ({exc})") from None
    label_of = {int(c["id"]): k for k, c in enumerate(cats)}
    per_image: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in images}
    for a in anns:
        if a.get("iscrowd", 0):
            continue
        if int(a["image_id"]) not in per_image or int(a["category_id"]) not in label_of:
            raise DataError(
                f"{path}: annotation {a.get('id')} names image {a['image_id']} or category "
                f"{a['category_id']}, which the file does not list"
            )
        per_image[int(a["image_id"])].append(a)
    pixels, boxes, labels, ids = [], [], [], []
    for im in images:
        arr = np.asarray(imread(path.parent / im["file_name"]))
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise DataError(f"{im['file_name']}: expected an 8-bit grey/RGB image, got {arr.shape}")
        pixels.append(torch.from_numpy(np.ascontiguousarray(arr[:, :, :3])).permute(2, 0, 1))
        xywh = np.array([a["bbox"] for a in per_image[int(im["id"])]], dtype=np.float32)
        xywh = xywh.reshape(-1, 4)
        boxes.append(torch.from_numpy(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)))
        labels.append(
            torch.tensor(
                [label_of[int(a["category_id"])] for a in per_image[int(im["id"])]],
                dtype=torch.int64,
            )
        )
        ids.append(int(im["id"]))
    shapes = {tuple(p.shape) for p in pixels}
    if len(shapes) > 1:
        raise DataError(f"{path}: images of several sizes {sorted(shapes)}; expected one size")
    stacked = torch.stack(pixels) if pixels else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    split = DetectionSplit(name or path.stem, stacked, boxes, labels, ids)
    return split, tuple(str(c["name"]) for c in cats)


# -- the embedded scenes ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _texture_images() -> tuple[np.ndarray, ...]:
    """The background photographs as float32 H x W x 3 in [0, 1] (read once)."""
    try:
        import skimage.data as skimage_data
    except ImportError:
        raise DataError(_NEEDS_SKIMAGE) from None

    out = []
    for name in TEXTURES:
        img = np.asarray(getattr(skimage_data, name)(), dtype=np.float32) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out.append(img[:, :, :3])
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digit scans (0..16) and their labels (read once).

    The file ``load_digits`` parses (``sklearn/datasets/data/digits.csv.gz``: 64 pixel
    columns then the label) is read directly: importing ``sklearn.datasets`` costs
    seconds, the file milliseconds; ``load_digits`` is the fallback if the file moved."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",")
        return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


_NEEDS_SKIMAGE = "detection data need scikit-image: pip install 'nasforge[detection]'"


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of an H x W x C float image to ``size`` (h, w)."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    r = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return r[0].permute(1, 2, 0).numpy()


def make_digit_scenes(
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    part: str = "train",
    max_objects: int = 3,
    min_scale: int = 12,
    max_scale: int = 32,
) -> DetectionSplit:
    """``n`` images of ``size`` x ``size`` with 1..``max_objects`` handwritten digits each.

    A background is a random square crop (side 1/4 to 1/2 of the photograph's short side)
    of a random scikit-image photograph, resized to ``size``. Each digit (from ``part``'s
    share of the scans) is scaled to a random side in [``min_scale``, ``max_scale``]
    pixels, gets a random colour at least 0.35 away (mean absolute difference) from the
    background under it, and is alpha-blended with its ink (the scan's intensity) as
    alpha. Its box is the tight box of the pixels with alpha >= 0.25. A digit whose box
    would overlap a placed one with IoU > 0.3 is redrawn elsewhere (at most 20 tries).
    """
    if part not in ("train", "valid", "test"):
        raise DataError(f"part must be train, valid or test, got {part!r}")
    if not 8 <= min_scale <= max_scale <= size:
        raise DataError(
            f"need 8 <= min_scale <= max_scale <= size, got {min_scale}, {max_scale}, {size}"
        )
    digit_images, digit_labels = _digits()
    total = len(digit_labels)
    lo, hi = {"train": (0, 0.6), "valid": (0.6, 0.8), "test": (0.8, 1.0)}[part]
    pool = np.arange(int(lo * total), int(hi * total))
    textures = _texture_images()
    rng = np.random.default_rng([seed, ("train", "valid", "test").index(part)])
    images, all_boxes, all_labels = [], [], []
    for _ in range(n):
        tex = textures[rng.integers(len(textures))]
        short = min(tex.shape[:2])
        side = int(rng.integers(short // 4, short // 2 + 1))
        y0 = int(rng.integers(0, tex.shape[0] - side + 1))
        x0 = int(rng.integers(0, tex.shape[1] - side + 1))
        canvas = _resize(tex[y0 : y0 + side, x0 : x0 + side], (size, size)).copy()
        boxes: list[list[float]] = []
        labels: list[int] = []
        for _k in range(int(rng.integers(1, max_objects + 1))):
            idx = int(pool[rng.integers(len(pool))])
            ink = digit_images[idx].astype(np.float32) / 16.0
            s = int(rng.integers(min_scale, max_scale + 1))
            alpha = np.clip(_resize(ink[:, :, None], (s, s))[:, :, 0], 0.0, 1.0)
            ys, xs = np.nonzero(alpha >= 0.25)
            if len(ys) == 0:
                continue
            for _try in range(20):
                py = int(rng.integers(0, size - s + 1))
                px = int(rng.integers(0, size - s + 1))
                box = [px + xs.min(), py + ys.min(), px + xs.max() + 1.0, py + ys.max() + 1.0]
                if all(_iou(box, b) <= 0.3 for b in boxes):
                    break
            else:
                continue
            region = canvas[py : py + s, px : px + s]
            colour = rng.random(3).astype(np.float32)
            for _c in range(20):
                if np.abs(colour - region.mean((0, 1))).mean() >= 0.35:
                    break
                colour = rng.random(3).astype(np.float32)
            a = alpha[:, :, None]
            canvas[py : py + s, px : px + s] = a * colour + (1 - a) * region
            boxes.append([float(v) for v in box])
            labels.append(int(digit_labels[idx]))
        images.append(torch.from_numpy(np.round(canvas * 255).clip(0, 255).astype(np.uint8)))
        all_boxes.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        all_labels.append(torch.tensor(labels, dtype=torch.int64))
    stacked = torch.stack(images).permute(0, 3, 1, 2).contiguous()
    return DetectionSplit(part, stacked, all_boxes, all_labels)


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


#: Split sizes of ``digits-on-textures`` (train, valid, test).
SCENE_SIZES = (1200, 300, 300)


def load_digit_scenes(
    *,
    seed: int = 0,
    limit: int | None = None,
    size: int = 64,
    sizes: tuple[int, int, int] = SCENE_SIZES,
) -> DetectionData:
    """The ``digits-on-textures`` dataset (``limit``: at most that many images per split,
    generated, not cut, so a tiny run costs little)."""
    counts = [s if limit is None else min(s, limit) for s in sizes]
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    train, valid, test = (
        make_digit_scenes(c, size=size, seed=seed, part=p)
        for c, p in zip(counts, ("train", "valid", "test"), strict=True)
    )
    return DetectionData(
        "digits-on-textures",
        train,
        {"valid": valid, "test": test},
        DIGIT_NAMES,
        flip=False,
        notes=(
            "scikit-learn digits pasted on scikit-image photographs "
            f"({', '.join(TEXTURES)}); seed {seed}",
        ),
    )


def load_coco_dir(directory: str | Path, *, limit: int | None = None) -> DetectionData:
    """A COCO directory with ``train.json`` and ``valid.json`` (and optionally
    ``test.json``), as :func:`write_coco` writes it."""
    root = Path(directory)
    if not (root / "train.json").is_file() or not (root / "valid.json").is_file():
        raise DataError(f"{root} needs train.json and valid.json (COCO annotation files)")
    train, cats = read_coco(root / "train.json", "train")
    evals = {}
    for name in ("valid", "test"):
        if (root / f"{name}.json").is_file():
            split, c = read_coco(root / f"{name}.json", name)
            if c != cats:
                raise DataError(f"{root}/{name}.json has categories {c}, train.json has {cats}")
            evals[name] = split.head(limit)
    return DetectionData(root.name or "coco", train.head(limit), evals, cats, flip=True)
