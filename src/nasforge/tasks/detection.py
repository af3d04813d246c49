"""Object detection: boxes and classes, judged by COCO mAP@[.5:.95] and AP50 computed by
pycocotools' ``COCOeval`` (the reference implementation, not a re-implementation).

Data are :class:`~nasforge.data.detection.DetectionData` (the embedded
``digits-on-textures`` scenes, or any COCO directory given as ``--data-dir``). Batches are
``(x, targets)``: ``x`` float images normalised with the ImageNet mean/std, ``targets`` one
dict per image (``boxes`` x1 y1 x2 y2 in input pixels, ``labels``, ``image_id``). Training
batches are box-aware augmented: a random scale jitter (resize by a factor in
``jitter``, then a random crop or zero pad back to the size; boxes move and are clipped
with the image, a box keeping under half its area is dropped) and, where the data allow
it, a horizontal flip with the boxes mirrored. The network is a detector whose forward
returns an object carrying its own ``loss`` and ``detect`` (see :mod:`nasforge.nn.smnas`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data.detection import (
    DetectionData,
    DetectionSplit,
    coco_dict,
    load_coco_dir,
    load_digit_scenes,
)
from nasforge.errors import TaskError
from nasforge.tasks.base import LOSS, TASKS, Autocast, Metric, Task

MAP = Metric("map", "%", True, "{:.2f}", "COCO mAP@[.5:.95] (pycocotools COCOeval), percent")
AP50 = Metric("ap50", "%", True, "{:.2f}", "COCO AP at IoU 0.5 (pycocotools COCOeval), percent")
#: ImageNet normalisation (0..1 scale), as torchvision's detection transforms.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def jitter_flip(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    g: torch.Generator,
    *,
    jitter: tuple[float, float],
    flip: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Box-aware augmentation of one float image (3 x H x W): rescale by a factor drawn
    uniformly from ``jitter``, crop (factor > 1) or zero-pad (factor < 1) at a random
    offset back to H x W, then flip horizontally with probability 1/2 when ``flip``. The
    boxes follow the pixels; a box that keeps less than half its area inside is dropped."""
    _, h, w = image.shape
    s = jitter[0] + (jitter[1] - jitter[0]) * float(torch.rand((), generator=g))
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    img = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
    b = boxes * torch.tensor([nw / w, nh / h, nw / w, nh / h])
    out = image.new_zeros(image.shape)
    # Offset of the resized image in the output (negative: cropped).
    oy = int(torch.randint(min(0, h - nh), max(0, h - nh) + 1, (), generator=g))
    ox = int(torch.randint(min(0, w - nw), max(0, w - nw) + 1, (), generator=g))
    ys, xs = max(0, oy), max(0, ox)
    ye, xe = min(h, oy + nh), min(w, ox + nw)
    out[:, ys:ye, xs:xe] = img[:, ys - oy : ye - oy, xs - ox : xe - ox]
    b = b + torch.tensor([ox, oy, ox, oy], dtype=b.dtype)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    clipped = torch.stack(
        [b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1
    )
    kept_area = (clipped[:, 2] - clipped[:, 0]).clamp(min=0) * (
        clipped[:, 3] - clipped[:, 1]
    ).clamp(min=0)
    keep = kept_area >= 0.5 * area
    b, lab = clipped[keep], labels[keep]
    if flip and float(torch.rand((), generator=g)) < 0.5:
        out = out.flip(-1)
        b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    return out, b, lab


class DetectionLoader:
    """Batches of one detection split (training: shuffled and augmented from
    ``seed * 1000 + epoch``; evaluation: split order, no augmentation)."""

    def __init__(
        self,
        split: DetectionSplit,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        flip: bool = False,
        jitter: tuple[float, float] = (0.75, 1.25),
    ) -> None:
        self.split, self.batch_size, self.train, self.seed = split, batch_size, train, seed
        self.device, self.flip, self.jitter, self.epoch = torch.device(device), flip, jitter, 0
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(STD).view(1, 3, 1, 1)

    @property
    def num_samples(self) -> int:
        return len(self.split)

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[dict[str, Any]]]]:
        n = len(self.split)
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(n, generator=g) if self.train else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size].tolist()
            imgs = self.split.images[idx].float() / 255.0
            targets = []
            for k, i in enumerate(idx):
                boxes, labels = self.split.boxes[i], self.split.labels[i]
                if self.train:
                    imgs[k], boxes, labels = jitter_flip(
                        imgs[k], boxes, labels, g, jitter=self.jitter, flip=self.flip
                    )
                targets.append(
                    {
                        "boxes": boxes.to(self.device),
                        "labels": labels.to(self.device),
                        "image_id": int(self.split.image_ids[i]),
                    }
                )
            x = ((imgs - self.mean) / self.std).to(self.device)
            yield x, targets


def coco_map(
    split_like: DetectionSplit,
    categories: tuple[str, ...],
    detections: list[dict[str, Any]],
) -> dict[str, float]:
    """mAP@[.5:.95] and AP50 (percent) of COCO-format ``detections`` (``image_id``,
    ``category_id``, ``bbox`` x y w h, ``score``) against ``split_like``'s boxes, from
    pycocotools' ``COCOeval`` (iouType bbox, its default parameters: 100 detections per
    image, all areas). No detection at all scores 0."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise TaskError(
            "detection metrics need pycocotools: pip install 'nasforge[detection]'"
        ) from None

    if not detections or split_like.num_boxes == 0:
        return {"map": 0.0, "ap50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress and the table
        gt = COCO()
        gt.dataset = coco_dict(split_like, categories)
        gt.createIndex()
        dt = gt.loadRes(detections)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[0] = AP@[.5:.95], stats[1] = AP@.5; -1 means "no ground truth", never here.
    return {
        "map": 100.0 * max(0.0, float(ev.stats[0])),
        "ap50": 100.0 * max(0.0, float(ev.stats[1])),
    }


@torch.no_grad()
def evaluate_detector(
    model: Callable[..., Any],
    loader: Iterable[tuple[torch.Tensor, list[dict[str, Any]]]],
    categories: tuple[str, ...],
    *,
    autocast: Autocast | None = None,
) -> dict[str, float]:
    """Mean loss per image and COCOeval's mAP / AP50 over the batches of ``loader``."""
    if isinstance(model, nn.Module):
        model.eval()
    ctx = autocast or contextlib.nullcontext
    dets: list[dict[str, Any]] = []
    images, boxes, labels, ids = [], [], [], []
    loss_sum, n = 0.0, 0
    for x, targets in loader:
        with ctx():
            out = model(x)
        loss_sum += float(out.detector.loss(out, targets)) * len(targets)
        n += len(targets)
        for t, r in zip(targets, out.detector.detect(out), strict=True):
            images.append(torch.zeros(3, *x.shape[-2:], dtype=torch.uint8))
            boxes.append(t["boxes"].cpu().float())
            labels.append(t["labels"].cpu())
            ids.append(t["image_id"])
            for b, s, c in zip(
                r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist(), strict=True
            ):
                dets.append(
                    {
                        "image_id": t["image_id"],
                        "category_id": int(c) + 1,
                        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                        "score": float(s),
                    }
                )
    if n == 0:
        return {"map": 0.0, "ap50": 0.0, "loss": 0.0}
    gt = DetectionSplit("eval", torch.stack(images), boxes, labels, ids)
    return {**coco_map(gt, categories, dets), "loss": loss_sum / n}


class DetectionTask(Task):
    """Object detection on COCO-format data (see the module docstring)."""

    description = "object detection (COCO mAP@[.5:.95] and AP50 by pycocotools)"
    metrics = (MAP, AP50, LOSS)
    primary = "map"
    datasets = ("digits-on-textures", "coco")
    default_dataset = "digits-on-textures"
    default_recipe = "smnas-det"
    losses = ("detection",)

    def __init__(self, jitter: tuple[float, float] = (0.75, 1.25)) -> None:
        self.jitter = jitter

    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> DetectionData:
        """``digits-on-textures`` (generated from ``seed``; no directory) or ``coco`` (a
        directory with train.json / valid.json [/ test.json] and their images)."""
        name = dataset or self.default_dataset
        if options:
            raise TaskError(f"task {self.name!r} takes no data options, got {sorted(options)}")
        if name not in self.datasets:
            raise TaskError(
                f"task {self.name!r} has no dataset {name!r}; expected one of {list(self.datasets)}"
            )
        if name == "coco":
            if data_dir is None:
                raise TaskError("dataset 'coco' needs --data-dir (a COCO directory)")
            return load_coco_dir(data_dir, limit=limit)
        return load_digit_scenes(seed=seed, limit=limit)

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"num_classes": int(data.num_classes)}

    def loader(
        self,
        data: Any,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        recipe: Any = None,
        channels_last: bool = False,
    ) -> DetectionLoader:
        return DetectionLoader(
            data.split(split),
            batch_size,
            train=train,
            seed=seed,
            device=device,
            flip=bool(data.flip),
            jitter=self.jitter,
        )

    def loss(self, output: Any, y: Any, recipe: Any) -> torch.Tensor:
        return output.detector.loss(output, y)

    def batch_size(self, y: Any) -> int:
        return len(y)

    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        cats = tuple(str(i) for i in range(_num_classes(model)))
        return evaluate_detector(model, loader, cats, autocast=autocast)


def _num_classes(model: Any) -> int:
    head = getattr(getattr(model, "_orig_mod", model), "head", None)
    k = getattr(head, "k", None)
    if not isinstance(k, int):
        raise TaskError("the detection task evaluates detectors (a model with head.k classes)")
    return k


@TASKS.register("detection-digits")
class DigitsDetection(DetectionTask):
    """Detection of handwritten digits on photographs (``digits-on-textures``)."""

    name = "detection-digits"


__all__ = [
    "AP50",
    "MAP",
    "DetectionLoader",
    "DetectionTask",
    "coco_map",
    "evaluate_detector",
    "jitter_flip",
]
