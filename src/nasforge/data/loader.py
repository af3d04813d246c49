"""A data loader whose whole split lives on the device as one uint8 tensor.

Each batch is gathered by index and augmented in a few batched tensor ops (zero-pad +
random crop and horizontal flip fused into two ``gather`` calls, then one fused
normalisation), which is what NAS-Bench-201's torchvision pipeline does per sample
(``RandomHorizontalFlip``, ``RandomCrop(size, padding)``, ``ToTensor``, ``Normalize``),
optionally followed by DARTS's cutout (one batched mask multiply).
All randomness of an epoch comes from one ``torch.Generator`` seeded by ``(seed, epoch)``,
so an epoch is reproducible on its own: resuming at epoch k needs no saved loader state.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from nasforge.data.base import DatasetSplits, Split
from nasforge.errors import DataError


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for ``(seed, epoch, stream)``; independent streams, stable across runs."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(stream)])
    return torch.Generator().manual_seed(int(state.generate_state(1, np.uint64)[0]) >> 1)


def crop_flip(
    images: torch.Tensor,
    pad: int,
    offsets_y: torch.Tensor,
    offsets_x: torch.Tensor,
    flips: torch.Tensor,
) -> torch.Tensor:
    """Batched zero-pad + crop at per-sample offsets (0..2*pad) + horizontal flip.

    ``images`` is B x C x H x W (any dtype); offsets are int64 (B,), ``flips`` bool (B,).
    Equivalent to, per sample, ``pad(img)[:, oy:oy+H, ox:ox+W]`` then ``flip(-1)`` if asked.
    """
    b, c, h, w = images.shape
    dev = images.device
    if pad > 0:
        images = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = offsets_y.view(b, 1) + torch.arange(h, device=dev).view(1, h)
    ar = torch.arange(w, device=dev).view(1, w)
    cols = offsets_x.view(b, 1) + torch.where(flips.view(b, 1), (w - 1) - ar, ar)
    wp = images.shape[3]
    out = torch.gather(images, 2, rows.view(b, 1, h, 1).expand(b, c, h, wp))
    return torch.gather(out, 3, cols.view(b, 1, 1, w).expand(b, c, h, w))


def cutout(images: torch.Tensor, length: int, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """Batched cutout: zero a ``length`` square centred at per-sample ``(cy, cx)``.

    As DARTS's ``utils.Cutout`` (PC-DARTS utils.py:40-59), applied after normalisation:
    rows ``clip(cy - length // 2, 0, H) .. clip(cy + length // 2, 0, H)`` (end exclusive),
    columns likewise, all channels. ``cy``, ``cx`` are int64 (B,) in ``[0, H)``, ``[0, W)``.
    """
    b, _, h, w = images.shape
    half = length // 2
    dev = images.device
    rows = torch.arange(h, device=dev).view(1, h)
    cols = torch.arange(w, device=dev).view(1, w)
    in_rows = (rows >= (cy.view(b, 1) - half)) & (rows < (cy.view(b, 1) + half))
    in_cols = (cols >= (cx.view(b, 1) - half)) & (cols < (cx.view(b, 1) + half))
    keep = ~(in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w))
    return images * keep.to(images.dtype)


class DeviceLoader:
    """Iterable of ``(x, y)`` batches: ``x`` float32 normalised B x 3 x H x W, ``y`` int64.

    With ``train=True`` each epoch is a fresh permutation plus pad/crop (``meta.pad``) and,
    when ``meta.flip``, random flips, and with ``cutout > 0`` DARTS's cutout of that side
    length; with ``train=False`` batches are in split order and not augmented. Call :meth:`set_epoch` before iterating an epoch (iterating also advances it).
    """

    def __init__(
        self,
        split: Split,
        meta: DatasetSplits,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        channels_last: bool = False,
        cutout: int = 0,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if len(split) == 0:
            raise DataError(f"split {split.name!r} of {meta.name} is empty")
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.batch_size = int(batch_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.pad = int(meta.pad)
        self.flip = bool(meta.flip)
        self.channels_last = bool(channels_last)
        if cutout < 0:
            raise DataError(f"cutout must be a side length >= 0, got {cutout}")
        self.cutout = int(cutout)
        mean = torch.tensor(meta.mean, dtype=torch.float32)
        std = torch.tensor(meta.std, dtype=torch.float32)
        # (x/255 - mean)/std == x * scale + bias: one fused op on the uint8 -> float batch.
        self.scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(self.device)
        self.bias = (-mean / std).view(1, 3, 1, 1).to(self.device)
        self.epoch = 0
        if drop_last and len(split) < batch_size:
            raise DataError(
                f"drop_last with batch_size {batch_size} leaves no batch of the "
                f"{len(split)} samples in split {split.name!r}"
            )

    @property
    def num_samples(self) -> int:
        """Samples per epoch (after ``drop_last``)."""
        n = int(self.labels.shape[0])
        return (n // self.batch_size) * self.batch_size if self.drop_last else n

    def __len__(self) -> int:
        n = int(self.labels.shape[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 B x 3 x H x W on the device -> normalised float32 (same memory format)."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return torch.addcmul(self.bias, images.to(torch.float32), self.scale)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = int(self.labels.shape[0])
        bs = self.batch_size
        epoch = self.epoch
        self.epoch += 1
        if not self.train:
            for s in range(0, self.num_samples, bs):
                yield self.normalize(self.images[s : s + bs]), self.labels[s : s + bs]
            return
        g = epoch_generator(self.seed, epoch)
        perm = torch.randperm(n, generator=g)
        span = 2 * self.pad + 1
        offs = torch.randint(0, span, (2, n), generator=g)
        flips = torch.rand(n, generator=g) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        perm, offs, flips = (t.to(self.device, non_blocking=True) for t in (perm, offs, flips))
        if self.cutout:
            # Its own stream, so turning cutout on leaves the order, crops and flips as they were.
            g_cut = epoch_generator(self.seed, epoch, stream=1)
            h, w = self.images.shape[2:]
            centres = torch.stack(
                [
                    torch.randint(0, h, (n,), generator=g_cut),
                    torch.randint(0, w, (n,), generator=g_cut),
                ]
            ).to(self.device, non_blocking=True)
        for s in range(0, self.num_samples, bs):
            idx = perm[s : s + bs]
            x = self.images.index_select(0, idx)
            if self.pad or self.flip:
                x = crop_flip(
                    x, self.pad, offs[0, s : s + bs], offs[1, s : s + bs], flips[s : s + bs]
                )
            x = self.normalize(x)
            if self.cutout:
                x = cutout(x, self.cutout, centres[0, s : s + bs], centres[1, s : s + bs])
            yield x, self.labels.index_select(0, idx)
