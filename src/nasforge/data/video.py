"""Video data: clip sources (decoded video files, frame folders, in-memory arrays), the
annotation lists that name them, TSN segment sampling, and the embedded moving-digits clips.

Conventions followed (TSM, mit-han-lab/temporal-shift-module, and mmaction2):

- **Frame folders** are listed one clip per line as ``folder num_frames label``
  (TSM ``ops/dataset.py:14-28`` ``VideoRecord``, written by ``tools/gen_label_kinetics.py:57``
  and ``tools/gen_label_sthv2.py:47``; mmaction2's ``RawframeDataset`` reads the same form).
  Frames are files ``img_{:05d}.jpg`` numbered from 1 (TSM ``ops/dataset.py:34`` default
  ``image_tmpl``; indices are ``offsets + 1``, ``:127`` / ``:142``); another template is an
  option. Any image format FFmpeg reads (JPEG, PNG, ...) is accepted.
- **Video files** are listed as ``path label`` (mmaction2's ``VideoDataset`` list form, the
  Kinetics convention); they are decoded with PyAV (the FFmpeg binding), frames numbered
  from 0 in decoding order.
- **Segment sampling** is TSN's: a clip of ``num_frames`` frames is cut into ``segments``
  equal segments; training takes one random frame per segment (TSM ``_sample_indices``,
  ``ops/dataset.py:118-127``), testing the centre frame of every segment
  (``_get_test_indices``, ``:160-163``). ``clips > 1`` test clips take, in segment ``x``,
  frame ``int(tick * x + tick * (c + 0.5) / clips)`` for clip ``c``: evenly spread within
  each segment, clip 0 of 1 being TSM's centre exactly (TSM's own two-clip
  ``twice_sample``, ``:153-159``, takes the centre and the segment start instead; the
  mmaction2 form is this one's spirit, not its code).

All readers hold only the list in memory and decode a clip's frames when a batch needs
them; the embedded data are small enough to be held decoded (:class:`ArrayClips`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nasforge.errors import DataError

#: TSM ``ops/dataset.py:34``: frames of a folder are ``img_00001.jpg``, ``img_00002.jpg``, ...
DEFAULT_IMAGE_TMPL = "img_{:05d}.jpg"


def _av() -> Any:
    """PyAV, or a one-line error saying how to install it (the ``video`` extra)."""
    try:
        import av
    except ImportError:  # pragma: no cover - the test extra installs it
        raise DataError(
            "decoding video files and frame folders needs PyAV: pip install 'nasforge[video]'"
        ) from None
    return av


# -- sampling ------------------------------------------------------------------------------


def check_segments(segments: int) -> int:
    """``segments`` as an int >= 1 (:class:`DataError` otherwise)."""
    if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) or segments < 1:
        raise DataError(f"segments={segments!r}; expected an int >= 1 (frames per clip)")
    return int(segments)


def train_indices(num_frames: int, segments: int, rng: np.random.Generator) -> np.ndarray:
    """TSN training sampling, 0-based: one uniformly random frame in each of ``segments``
    equal segments (TSM ``ops/dataset.py:118-127`` with ``new_length=1``).

    When the clip has fewer frames than segments, TSM draws sorted random frames if
    ``num_frames > segments`` and otherwise repeats the first frame; both are kept.
    """
    segments = check_segments(segments)
    if num_frames < 1:
        raise DataError(f"a clip of {num_frames} frames; expected at least one frame")
    average = num_frames // segments
    if average > 0:
        return np.arange(segments) * average + rng.integers(average, size=segments)
    if num_frames > segments:  # unreachable for new_length=1, kept as TSM has it
        return np.sort(rng.integers(num_frames, size=segments))
    return np.zeros(segments, dtype=np.int64)


def eval_indices(num_frames: int, segments: int, clip: int = 0, clips: int = 1) -> np.ndarray:
    """TSN test sampling, 0-based: the centre frame of each segment for one clip (TSM
    ``_get_test_indices``, ``ops/dataset.py:160-163``); with ``clips > 1`` clip ``c`` takes
    the point ``(c + 0.5) / clips`` of each segment instead of its centre."""
    segments = check_segments(segments)
    if num_frames < 1:
        raise DataError(f"a clip of {num_frames} frames; expected at least one frame")
    if not 0 <= clip < clips:
        raise DataError(f"clip {clip} of {clips}; expected 0 <= clip < clips")
    tick = num_frames / float(segments)
    within = tick * (clip + 0.5) / clips if clips > 1 else tick / 2.0
    return np.array([int(within + tick * x) for x in range(segments)], dtype=np.int64)


# -- sources ---------------------------------------------------------------------------------


class ClipSource(Protocol):
    """One split of clips: ``len()`` clips, their ``labels``, each clip's frame count and
    its frames at given 0-based indices as ``(T, H, W, C)`` uint8 (RGB, or 1 channel)."""

    name: str
    labels: np.ndarray

    def __len__(self) -> int: ...

    def num_frames(self, i: int) -> int: ...

    def frames(self, i: int, indices: np.ndarray) -> np.ndarray: ...


@dataclass
class ArrayClips:
    """Clips held decoded in memory: ``clips`` is ``(N, F, H, W, C)`` uint8."""

    name: str
    clips: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.clips.ndim != 5 or self.clips.dtype != np.uint8:
            raise DataError(
                f"{self.name}: clips of shape {self.clips.shape} / {self.clips.dtype}; "
                "expected (N, frames, H, W, C) uint8"
            )
        if len(self.labels) != len(self.clips):
            raise DataError(f"{self.name}: {len(self.clips)} clips but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.clips)

    def num_frames(self, i: int) -> int:
        return int(self.clips.shape[1])

    def frames(self, i: int, indices: np.ndarray) -> np.ndarray:
        return self.clips[i, indices]

    def subset(self, n: int) -> ArrayClips:
        return ArrayClips(self.name, self.clips[:n], self.labels[:n])


class SubsetClips:
    """The clips ``indices`` of another source, in that order (search halves)."""

    def __init__(self, source: ClipSource, indices: np.ndarray) -> None:
        self.source, self.indices = source, np.asarray(indices, dtype=np.int64)
        self.name = f"{source.name}[{len(self.indices)}]"
        self.labels = np.asarray(source.labels)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def num_frames(self, i: int) -> int:
        return self.source.num_frames(int(self.indices[i]))

    def frames(self, i: int, indices: np.ndarray) -> np.ndarray:
        return self.source.frames(int(self.indices[i]), indices)


@dataclass(frozen=True)
class VideoRecord:
    """One line of an annotation list: the clip's path (file or folder, relative to the
    list's root), its frame count (``None`` for video files until decoded) and its label."""

    path: str
    label: int
    num_frames: int | None = None


def _label(token: str, where: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise DataError(f"{where}: label {token!r} is not an integer class index") from None
    if value < 0:
        raise DataError(f"{where}: label {value} is negative; expected a class index >= 0")
    return value


def read_list(path: str | os.PathLike[str], kind: str) -> list[VideoRecord]:
    """The records of an annotation list.

    ``kind="videos"``: lines ``path label`` (mmaction2 ``VideoDataset``);
    ``kind="rawframes"``: lines ``folder num_frames label`` (TSM ``ops/dataset.py:96``).
    Paths may not contain spaces (both readers split on whitespace). Blank lines are
    skipped; any other malformed line is a :class:`DataError` naming file and line.
    """
    if kind not in ("videos", "rawframes"):
        raise DataError(f"list kind {kind!r}; expected 'videos' or 'rawframes'")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"annotation list {str(p)!r} does not exist")
    want = 2 if kind == "videos" else 3
    form = "'path label'" if kind == "videos" else "'folder num_frames label'"
    records = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{p}:{n}"
        if len(tokens) != want:
            raise DataError(f"{where}: {line.strip()!r} has {len(tokens)} fields; expected {form}")
        if kind == "videos":
            records.append(VideoRecord(tokens[0], _label(tokens[1], where)))
        else:
            try:
                nf = int(tokens[1])
            except ValueError:
                raise DataError(f"{where}: num_frames {tokens[1]!r} is not an integer") from None
            if nf < 1:
                raise DataError(f"{where}: num_frames {nf}; expected >= 1")
            records.append(VideoRecord(tokens[0], _label(tokens[2], where), nf))
    if not records:
        raise DataError(f"annotation list {str(p)!r} lists no clips")
    return records


def _to_rgb(frame: Any, channels: int) -> np.ndarray:
    """A decoded PyAV frame as ``(H, W, channels)`` uint8."""
    if channels == 1:
        return frame.to_ndarray(format="gray")[:, :, None]
    return frame.to_ndarray(format="rgb24")


@dataclass
class VideoFileClips:
    """Video files decoded with PyAV (FFmpeg): frames in decoding order, from 0.

    The frame count of a file is its stream's ``frames`` field where the container stores
    one and otherwise the number of decoded frames (counted once, then cached)."""

    name: str
    root: Path
    records: list[VideoRecord]
    channels: int = 3
    _counts: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.labels = np.array([r.label for r in self.records], dtype=np.int64)
        for r in self.records:
            if not (self.root / r.path).is_file():
                raise DataError(f"{self.name}: video file {str(self.root / r.path)!r} is missing")

    def __len__(self) -> int:
        return len(self.records)

    def _open(self, i: int) -> Any:
        av = _av()
        path = self.root / self.records[i].path
        try:
            return av.open(str(path))
        except av.FFmpegError as exc:
            raise DataError(f"{self.name}: cannot decode {str(path)!r}: {exc}") from None

    def num_frames(self, i: int) -> int:
        if i not in self._counts:
            with self._open(i) as container:
                if not container.streams.video:
                    raise DataError(f"{self.name}: {self.records[i].path!r} has no video stream")
                stream = container.streams.video[0]
                n = int(stream.frames or 0)
                if n <= 0:
                    n = sum(1 for _ in container.decode(stream))
            if n < 1:
                raise DataError(f"{self.name}: {self.records[i].path!r} has no frames")
            self._counts[i] = n
        return self._counts[i]

    def frames(self, i: int, indices: np.ndarray) -> np.ndarray:
        wanted = sorted(set(int(k) for k in indices))
        got: dict[int, np.ndarray] = {}
        last = wanted[-1]
        with self._open(i) as container:
            # Sequential decoding up to the last wanted frame: exact frame numbers without
            # relying on seek accuracy (container timestamps vary between encoders).
            for k, frame in enumerate(container.decode(container.streams.video[0])):
                if k in wanted:
                    got[k] = _to_rgb(frame, self.channels)
                if k >= last:
                    break
        if not got:
            raise DataError(f"{self.name}: {self.records[i].path!r} decoded to no frames")
        # A stream shorter than its header says repeats its last decoded frame.
        last_got = got[max(got)]
        return np.stack([got.get(int(k), last_got) for k in indices])


@dataclass
class FrameFolderClips:
    """Frame folders (``folder num_frames label`` lists), frames ``image_tmpl.format(k)``
    numbered from 1 as TSM reads them; decoded with PyAV (any FFmpeg image format)."""

    name: str
    root: Path
    records: list[VideoRecord]
    image_tmpl: str = DEFAULT_IMAGE_TMPL
    channels: int = 3

    def __post_init__(self) -> None:
        self.labels = np.array([r.label for r in self.records], dtype=np.int64)
        for r in self.records:
            first = self.root / r.path / self.image_tmpl.format(1)
            if not first.is_file():
                raise DataError(f"{self.name}: frame {str(first)!r} is missing")

    def __len__(self) -> int:
        return len(self.records)

    def num_frames(self, i: int) -> int:
        return int(self.records[i].num_frames or 0)

    def frames(self, i: int, indices: np.ndarray) -> np.ndarray:
        av = _av()
        out = []
        for k in indices:
            path = self.root / self.records[i].path / self.image_tmpl.format(int(k) + 1)
            try:
                with av.open(str(path)) as container:
                    out.append(_to_rgb(next(container.decode(video=0)), self.channels))
            except (av.FFmpegError, StopIteration, FileNotFoundError):
                raise DataError(f"{self.name}: cannot read frame {str(path)!r}") from None
        return np.stack(out)


# -- datasets --------------------------------------------------------------------------------


@dataclass
class VideoSplits:
    """A video dataset: a train source and ordered evaluation sources, with what a network
    and the loaders need to know (classes, channels, the TSM input geometry)."""

    name: str
    train: ClipSource
    evals: dict[str, ClipSource]
    num_classes: int
    channels: int = 3
    #: Network input side (TSM ``crop_size``) and test-time shorter side (``scale_size``).
    crop_size: int = 224
    scale_size: int = 256
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    #: Horizontal flip in training; off where it changes the label (TSM main.py:72 turns it
    #: off for Something-Something and Jester, whose classes name directions).
    flip: bool = True
    #: TSM GroupMultiScaleCrop scales (ops/models.py:384).
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> ClipSource:
        if name == "train":
            return self.train
        if name not in self.evals:
            raise DataError(
                f"{self.name} has no split {name!r}; expected train or {list(self.evals)}"
            )
        return self.evals[name]

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), **{k: len(v) for k, v in self.evals.items()}}

    def fingerprint(self) -> str:
        """A short hash of the setting (checkpoint identity): settings, every split's
        labels, and its clips (array sources: a sample of the bytes; files: the paths)."""
        import hashlib
        import json

        h = hashlib.blake2b(digest_size=12)
        head = [self.name, self.num_classes, self.channels, self.crop_size, self.scale_size]
        head += [list(self.mean), list(self.std), self.flip, list(self.scales)]
        h.update(json.dumps([head, sorted(self.extra.items())], default=str).encode())
        for name, src in [("train", self.train), *self.evals.items()]:
            h.update(f"|{name}:{len(src)}|".encode())
            h.update(np.asarray(src.labels, dtype=np.int64).tobytes())
            if isinstance(src, ArrayClips):
                flat = src.clips.reshape(len(src), -1)
                h.update(np.ascontiguousarray(flat[:, :: max(1, flat.shape[1] // 64)]).tobytes())
            else:
                h.update("\n".join(r.path for r in getattr(src, "records", [])).encode())
        return h.hexdigest()


#: List files looked for in a data directory, per split (the first that exists is used).
LIST_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train.txt", "train_list.txt"),
    "valid": ("val.txt", "valid.txt", "val_list.txt"),
    "test": ("test.txt", "test_list.txt"),
}


def load_list_dataset(
    kind: str,
    data_dir: str | os.PathLike[str] | None,
    *,
    crop_size: int = 224,
    image_tmpl: str = DEFAULT_IMAGE_TMPL,
    channels: int = 3,
    flip: bool = True,
    num_classes: int | None = None,
    limit: int | None = None,
) -> VideoSplits:
    """A dataset of video files (``kind="videos"``) or frame folders (``"rawframes"``)
    described by list files in ``data_dir``: ``train.txt`` and ``val.txt`` (or the other
    names of :data:`LIST_NAMES`), optionally ``test.txt``; paths are relative to
    ``data_dir``. The number of classes is ``1 + max label`` unless given."""
    if data_dir is None:
        raise DataError(f"dataset {kind!r} reads list files; give --data-dir")
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data-dir {str(root)!r} is not a directory")
    if channels not in (1, 3):
        raise DataError(f"channels={channels}; expected 1 or 3")
    sources: dict[str, Any] = {}
    for split, names in LIST_NAMES.items():
        path = next((root / n for n in names if (root / n).is_file()), None)
        if path is None:
            continue
        records = read_list(path, kind)[:limit] if limit else read_list(path, kind)
        if kind == "videos":
            sources[split] = VideoFileClips(split, root, records, channels)
        else:
            sources[split] = FrameFolderClips(split, root, records, image_tmpl, channels)
    if "train" not in sources or "valid" not in sources:
        raise DataError(
            f"{str(root)!r} needs a train list ({' / '.join(LIST_NAMES['train'])}) and a "
            f"validation list ({' / '.join(LIST_NAMES['valid'])})"
        )
    top = max(int(s.labels.max()) for s in sources.values())
    k = top + 1 if num_classes is None else int(num_classes)
    if top >= k:
        raise DataError(f"label {top} in the lists but num_classes={k}")
    return VideoSplits(
        f"{kind}:{root.name}",
        sources.pop("train"),
        sources,
        num_classes=k,
        channels=channels,
        crop_size=crop_size,
        scale_size=crop_size * 256 // 224,
        mean=(0.485, 0.456, 0.406) if channels == 3 else (0.5,),
        std=(0.229, 0.224, 0.225) if channels == 3 else (0.25,),
        flip=flip,
    )


# -- the embedded data: moving handwritten digits -------------------------------------------

#: Directions of the moving-digits clips (pixels per frame along x).
DIRECTIONS = ("left", "right")
#: Dataset name -> label of the moving-digits variants.
LABELS = {
    "moving-digits": "direction-parity",
    "moving-digits-full": "direction-digit",
    "moving-digits-motion": "direction",
}


@dataclass(frozen=True)
class MovingDigitsConfig:
    """The moving-digits generator (see :func:`make_moving_digits`)."""

    frames: int = 8
    canvas: int = 16
    step: int = 1
    n_train: int = 768
    n_valid: int = 256
    n_test: int = 256
    #: ``"direction-parity"``: 4 classes (direction x even/odd digit);
    #: ``"direction-digit"``: 20 classes (direction x digit);
    #: ``"direction"``: 2 classes (the motion alone).
    label: str = "direction-parity"


def _digit_pools(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """scikit-learn's 1797 handwritten digits, split 60/20/20 into disjoint image pools."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.asarray(d.images, dtype=np.float64)  # 8x8, values 0..16
    targets = np.asarray(d.target, dtype=np.int64)
    order = np.random.default_rng([seed, 1]).permutation(len(images))
    n = len(order)
    cuts = {"train": order[: int(0.6 * n)], "valid": order[int(0.6 * n) : int(0.8 * n)]}
    cuts["test"] = order[int(0.8 * n) :]
    return images, targets, cuts


def make_moving_digits(seed: int = 0, config: MovingDigitsConfig | None = None) -> VideoSplits:
    """Clips of real handwritten digits moving left or right; deterministic from ``seed``.

    Each clip shows one 8x8 scikit-learn digit (grey levels 0..16 scaled to 0..255) on a
    black ``canvas`` x ``canvas`` frame at a uniformly random row, moving ``step`` pixels
    per frame to the left or to the right for ``frames`` frames. The canvas wraps around
    horizontally (a cylinder) and the start column is uniform over all ``canvas`` columns.

    Why the wrap: with it, a clip moving right and the time-reversed clip of one moving
    left are equally likely, so the *set* of frames -- and the set of any TSN-sampled
    frames, since segment sampling is symmetric under time reversal -- has the same
    distribution for both directions. A model that averages per-frame predictions
    (TSN's consensus) therefore cannot tell the directions apart better than chance, while
    the digit (its parity) is visible in every frame. Labels: ``"direction-parity"`` is
    ``2 * direction + (digit % 2)`` (left-even, left-odd, right-even, right-odd);
    ``"direction-digit"`` is ``10 * direction + digit``; ``"direction"`` is the direction
    alone. Image pools of the splits are disjoint
    (60/20/20 of the 1797 digits, permuted by ``seed``); directions are balanced per split.
    """
    cfg = config or MovingDigitsConfig()
    if cfg.label not in LABELS.values():
        raise DataError(f"label={cfg.label!r}; expected one of {list(LABELS.values())}")
    if cfg.canvas < 8 or cfg.frames < 1 or cfg.step < 1:
        raise DataError(
            f"canvas={cfg.canvas}, frames={cfg.frames}, step={cfg.step}; expected a canvas "
            ">= 8 (the digit side) and frames, step >= 1"
        )
    images, targets, pools = _digit_pools(seed)
    sizes = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
    splits: dict[str, ArrayClips] = {}
    cols = np.arange(8)
    for s, (split, n) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, 2, s])
        pick = pools[split][rng.integers(len(pools[split]), size=n)]
        direction = rng.permutation(np.arange(n) % 2)  # balanced: 0 = left, 1 = right
        row = rng.integers(cfg.canvas - 8 + 1, size=n)
        col = rng.integers(cfg.canvas, size=n)
        clips = np.zeros((n, cfg.frames, cfg.canvas, cfg.canvas, 1), dtype=np.uint8)
        sign = np.where(direction == 1, 1, -1)
        digits = np.rint(images[pick] * (255.0 / 16.0)).astype(np.uint8)
        for t in range(cfg.frames):
            left = (col + sign * cfg.step * t) % cfg.canvas
            for i in range(n):
                x = (left[i] + cols) % cfg.canvas
                clips[i, t, row[i] : row[i] + 8, x, 0] = digits[i]
        digit = targets[pick]
        labels = {
            "direction-parity": 2 * direction + digit % 2,
            "direction-digit": 10 * direction + digit,
            "direction": direction,
        }[cfg.label]
        splits[split] = ArrayClips(split, clips, labels.astype(np.int64))
    names = {
        "direction-parity": tuple(f"{d}-{p}" for d in DIRECTIONS for p in ("even", "odd")),
        "direction-digit": tuple(f"{d}-{k}" for d in DIRECTIONS for k in range(10)),
        "direction": DIRECTIONS,
    }[cfg.label]
    return VideoSplits(
        {v: k for k, v in LABELS.items()}[cfg.label],
        splits["train"],
        {"valid": splits["valid"], "test": splits["test"]},
        num_classes=len(names),
        channels=1,
        crop_size=cfg.canvas,
        # Test frames are the training frames' size: no test-time rescale of the tiny canvas.
        scale_size=cfg.canvas,
        mean=(0.1,),
        std=(0.25,),
        flip=False,  # a mirrored clip moves the other way: flipping would change the label
        scales=(1.0, 0.875),
        class_names=names,
        extra={"seed": seed, **cfg.__dict__},
    )


def limit_splits(data: VideoSplits, limit: int | None) -> VideoSplits:
    """At most ``limit`` clips per split (array sources), for tiny runs."""
    if not limit:
        return data
    if limit < 1:
        raise DataError(f"--limit {limit}; expected a positive number of clips per split")

    def cut(src: Any) -> Any:
        return src.subset(limit) if isinstance(src, ArrayClips) else src

    data.train = cut(data.train)
    data.evals = {k: cut(v) for k, v in data.evals.items()}
    return data


def label_counts(source: ClipSource, num_classes: int) -> Sequence[int]:
    """Clips per class of a source."""
    return np.bincount(source.labels, minlength=num_classes).tolist()
