"""Video recognition: clips in, one class out (top-1 accuracy, cross-entropy).

Data are :class:`~nasforge.data.video.VideoSplits`: the embedded moving-digits clips
(``moving-digits``: direction x digit parity, 4 classes; ``moving-digits-full``:
direction x digit, 20 classes; ``moving-digits-motion``: the direction alone, 2 classes), video files decoded with PyAV (``videos``: ``path label`` lists) or
frame folders (``rawframes``: ``folder num_frames label`` lists) read from ``--data-dir``.

Batches follow TSN/TSM (mit-han-lab/temporal-shift-module):

- ``segments`` frames per clip, sampled per segment (random in training, centre in
  testing; :mod:`nasforge.data.video`);
- training augmentation is drawn once per clip and applied to all of its frames:
  ``GroupMultiScaleCrop`` (a crop side from ``scales`` x the shorter side, sides within 3
  pixels of the input size snapped to it, aspect distortion <= 1 scale step, one of 13 fixed
  offsets; TSM ``ops/transforms.py:180-253``), resized bilinearly to ``crop_size``, then a
  horizontal flip with probability 1/2 where the dataset allows it (``ops/models.py:381-388``,
  off for direction-labelled data as in ``main.py:72``); the crop is drawn with the
  loader's seeded generator, not Python's ``random``;
- testing resizes the shorter side to ``scale_size`` and takes the centre ``crop_size``
  square (``main.py:163-164``); ``test_clips`` clips per video are averaged on the logits
  (``test_models.py:238-240``, without ``--softmax``);
- inputs are ``(batch, T, C, H, W)`` floats normalised by the dataset's mean/std; a
  multi-clip test batch is ``(batch, clips, T, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data.video import (
    LABELS,
    ClipSource,
    MovingDigitsConfig,
    VideoSplits,
    check_segments,
    eval_indices,
    limit_splits,
    load_list_dataset,
    make_moving_digits,
    train_indices,
)
from nasforge.errors import DataError, TaskError
from nasforge.tasks.base import TASKS, Autocast
from nasforge.tasks.classification import ClassificationTask, evaluate_classifier

#: Frames per clip of the embedded data (TSN-sampled into ``segments``).
MOVING_DIGITS_FRAMES = 8


def multiscale_crop_box(
    width: int,
    height: int,
    input_size: int,
    scales: tuple[float, ...],
    rng: np.random.Generator,
    max_distort: int = 1,
) -> tuple[int, int, int, int]:
    """TSM's ``GroupMultiScaleCrop._sample_crop_size`` with ``fix_crop`` and
    ``more_fix_crop`` on (ops/transforms.py:200-253): ``(crop_w, crop_h, x, y)``."""
    base = min(width, height)
    sizes = [int(base * s) for s in scales]
    crop_h = [input_size if abs(x - input_size) < 3 else x for x in sizes]
    crop_w = [input_size if abs(x - input_size) < 3 else x for x in sizes]
    pairs = [
        (w, h)
        for i, h in enumerate(crop_h)
        for j, w in enumerate(crop_w)
        if abs(i - j) <= max_distort
    ]
    cw, ch = pairs[int(rng.integers(len(pairs)))]
    cw, ch = min(cw, width), min(ch, height)
    ws, hs = (width - cw) // 4, (height - ch) // 4
    offsets = [
        (0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs),
        (0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
        (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs),
    ]  # fmt: skip
    x, y = offsets[int(rng.integers(len(offsets)))]
    return cw, ch, x, y


def _resize(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if frames.shape[-2:] == (h, w):
        return frames
    return F.interpolate(frames, size=(h, w), mode="bilinear", align_corners=False)


class VideoLoader:
    """Batches of one video split (the :class:`~nasforge.tasks.base.Loader` protocol).

    Training batches are shuffled, sampled and augmented from ``(seed, epoch)``; evaluation
    batches keep split order and are deterministic. Frames are decoded per batch on the
    CPU, then moved to ``device``."""

    def __init__(
        self,
        source: ClipSource,
        data: VideoSplits,
        batch_size: int,
        *,
        train: bool,
        segments: int,
        test_clips: int = 1,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.source, self.data, self.batch_size = source, data, int(batch_size)
        self.train, self.segments, self.test_clips = train, check_segments(segments), test_clips
        self.seed, self.epoch, self.device = int(seed), 0, torch.device(device)
        mean = torch.tensor(data.mean, dtype=torch.float32)
        std = torch.tensor(data.std, dtype=torch.float32)
        if len(mean) != data.channels:
            raise DataError(f"{data.name}: {len(mean)} mean values for {data.channels} channels")
        self.mean, self.std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)

    @property
    def num_samples(self) -> int:
        return len(self.source)

    def __len__(self) -> int:
        return -(-len(self.source) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _frames(self, i: int, indices: np.ndarray) -> torch.Tensor:
        arr = self.source.frames(i, indices)
        if arr.ndim != 4 or arr.shape[-1] != self.data.channels:
            raise DataError(
                f"{self.data.name}: clip {i} decoded to frames of shape {arr.shape}; "
                f"expected (T, H, W, {self.data.channels})"
            )
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0

    def _train_clip(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        d = self.data
        x = self._frames(i, train_indices(self.source.num_frames(i), self.segments, rng))
        h, w = x.shape[-2:]
        cw, ch, ox, oy = multiscale_crop_box(w, h, d.crop_size, d.scales, rng)
        # One crop and one flip for every frame of the clip: the motion is left intact.
        x = _resize(x[:, :, oy : oy + ch, ox : ox + cw], d.crop_size, d.crop_size)
        if d.flip and rng.random() < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std

    def _test_clip(self, i: int) -> torch.Tensor:
        d, n = self.data, self.source.num_frames(i)
        clips = []
        for c in range(self.test_clips):
            x = self._frames(i, eval_indices(n, self.segments, c, self.test_clips))
            h, w = x.shape[-2:]
            # GroupScale(scale_size): the shorter side to scale_size, aspect kept.
            s = d.scale_size / min(h, w)
            x = _resize(x, max(d.crop_size, round(h * s)), max(d.crop_size, round(w * s)))
            h, w = x.shape[-2:]
            top, left = (h - d.crop_size) // 2, (w - d.crop_size) // 2
            x = x[:, :, top : top + d.crop_size, left : left + d.crop_size]
            clips.append((x - self.mean) / self.std)
        return torch.stack(clips) if self.test_clips > 1 else clips[0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.source)
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(n) if self.train else np.arange(n)
        labels = torch.as_tensor(self.source.labels, dtype=torch.int64)
        for s in range(0, n, self.batch_size):
            idx = order[s : s + self.batch_size]
            if self.train:
                x = torch.stack([self._train_clip(int(i), rng) for i in idx])
            else:
                x = torch.stack([self._test_clip(int(i)) for i in idx])
            yield x.to(self.device), labels[torch.as_tensor(idx)].to(self.device)


class VideoTask(ClassificationTask):
    """Video recognition on TSN-sampled clips; the loss and metrics are classification's.

    ``segments`` (frames per clip given to the network) and ``test_clips`` (clips averaged
    per test video) are task settings; ``load(..., segments=, test_clips=)`` overrides them.
    """

    name = "video-digits"
    description = (
        "video recognition: TSN-sampled clips (top-1 accuracy, cross-entropy); embedded "
        "moving digits, PyAV-decoded video lists or frame-folder lists"
    )
    datasets = (
        "moving-digits",
        "moving-digits-full",
        "moving-digits-motion",
        "videos",
        "rawframes",
    )
    default_dataset = "moving-digits"
    default_recipe = "video-tiny"
    losses = ("ce",)

    def __init__(self, segments: int = 4, test_clips: int = 1) -> None:
        self.segments = check_segments(segments)
        if isinstance(test_clips, bool) or not isinstance(test_clips, int) or test_clips < 1:
            raise TaskError(f"test_clips={test_clips!r}; expected an int >= 1")
        self.test_clips = test_clips

    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> VideoSplits:
        """The clips of ``dataset``; ``options``: ``segments``, ``test_clips`` (both
        datasets), ``frames`` / ``canvas`` / ``step`` / ``n_train`` / ... (moving digits,
        :class:`~nasforge.data.video.MovingDigitsConfig`), ``crop_size`` / ``image_tmpl`` /
        ``channels`` / ``flip`` / ``num_classes`` (list datasets)."""
        name = dataset or self.default_dataset
        if name not in self.datasets:
            raise TaskError(
                f"unknown video dataset {name!r}; expected one of {list(self.datasets)}"
            )
        segments = check_segments(options.pop("segments", self.segments))
        test_clips = int(options.pop("test_clips", self.test_clips))
        if test_clips < 1:
            raise TaskError(f"test_clips={test_clips}; expected an int >= 1")
        if name.startswith("moving-digits"):
            fields = set(MovingDigitsConfig.__dataclass_fields__) - {"label"}
            unknown = sorted(set(options) - fields)
            if unknown:
                raise TaskError(
                    f"moving-digits has no option {unknown}; expected some of {sorted(fields)}"
                )
            label = LABELS[name]
            options.setdefault("frames", MOVING_DIGITS_FRAMES)
            data = make_moving_digits(seed, MovingDigitsConfig(label=label, **options))
            data = limit_splits(data, limit)
        else:
            data = load_list_dataset(name, data_dir, limit=limit, **options)
        data.extra.update(segments=segments, test_clips=test_clips)
        return data

    def network_io(self, data: Any) -> dict[str, Any]:
        return {
            "num_classes": int(data.num_classes),
            "in_channels": int(data.channels),
            "frames": int(data.extra.get("segments", self.segments)),
        }

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
    ) -> VideoLoader:
        return VideoLoader(
            data.split(split),
            data,
            batch_size,
            train=train,
            segments=int(data.extra.get("segments", self.segments)),
            test_clips=1 if train else int(data.extra.get("test_clips", self.test_clips)),
            seed=seed,
            device=device,
        )

    def forward(self, model: Callable[..., Any], x: torch.Tensor) -> Any:
        """``model(x)`` for ``(B, T, C, H, W)``; a ``(B, clips, T, C, H, W)`` test batch
        runs every clip and averages the logits per video (TSM test_models.py:238-240)."""
        if x.dim() == 6:
            b, c = x.shape[:2]
            return model(x.flatten(0, 1)).view(b, c, -1).mean(1)
        return model(x)

    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        if isinstance(model, nn.Module):
            model.eval()
        return evaluate_classifier(lambda x: self.forward(model, x), loader, autocast=autocast)


TASKS.register("video-digits")(VideoTask)
