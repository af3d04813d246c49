"""The in-memory dataset types every reader returns and every loader consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nasforge.errors import DataError

# Per-dataset normalisation of NAS-Bench-201 (xautodl ``datasets.get_datasets``), 0..1 scale.
NB201_MEAN_STD: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": (
        (125.3 / 255, 123.0 / 255, 113.9 / 255),
        (63.0 / 255, 62.1 / 255, 66.7 / 255),
    ),
    "cifar100": (
        (129.3 / 255, 124.1 / 255, 112.4 / 255),
        (68.2 / 255, 65.4 / 255, 70.4 / 255),
    ),
    "ImageNet16": (
        (122.68 / 255, 116.66 / 255, 104.01 / 255),
        (63.22 / 255, 61.26 / 255, 65.09 / 255),
    ),
}


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: ``images`` uint8 (N, 3, H, W) and ``labels`` int64 (N,)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        img, lab = self.images, self.labels
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 4:
            raise DataError(
                f"split {self.name!r}: images must be a uint8 tensor N x 3 x H x W, got "
                f"{getattr(img, 'dtype', type(img))} of shape {tuple(getattr(img, 'shape', ()))}"
            )
        if img.shape[1] != 3:
            raise DataError(f"split {self.name!r}: images must have 3 channels, got {img.shape[1]}")
        if not isinstance(lab, torch.Tensor) or lab.dtype != torch.int64 or lab.dim() != 1:
            raise DataError(
                f"split {self.name!r}: labels must be an int64 vector, got "
                f"{getattr(lab, 'dtype', type(lab))} of shape {tuple(getattr(lab, 'shape', ()))}"
            )
        if lab.shape[0] != img.shape[0]:
            raise DataError(f"split {self.name!r}: {img.shape[0]} images but {lab.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        # A summary: the default dataclass repr prints every pixel of the tensors.
        shape = "x".join(map(str, self.images.shape[1:]))
        return f"Split({self.name!r}, {len(self)} images of {shape} uint8)"

    def subset(self, indices: torch.Tensor | list[int], name: str | None = None) -> Split:
        """The split restricted to ``indices`` (a copy, in the given order)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return Split(name or self.name, self.images[idx].contiguous(), self.labels[idx].clone())

    def stratified(self, n: int | None, seed: int | list[int]) -> Split:
        """``n`` samples keeping the split's class proportions, drawn with ``seed`` (all
        when ``n`` is None or not smaller than the split).

        Each class gets ``n * count / len`` samples, rounded by largest remainder (ties to
        the lower class id), chosen by a seeded permutation within the class (``seed``: an
        int or a list of ints, as numpy's ``SeedSequence`` takes them); the subset
        keeps the split's order. A split sorted by class (the CIFAR-10 subset's test file
        holds classes 0-2 first) is thereby still represented by every class.
        """
        import numpy as np

        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"limit must be >= 1, got {n}")
        labels = self.labels.numpy()
        classes, counts = np.unique(labels, return_counts=True)
        exact = n * counts / len(labels)
        take = np.floor(exact).astype(np.int64)
        # largest remainder, ties to the lower class id (a stable sort of -remainder)
        for k in np.argsort(-(exact - take), kind="stable")[: n - int(take.sum())]:
            take[k] += 1
        rng = np.random.default_rng(seed)
        keep = [
            rng.permutation(np.flatnonzero(labels == c))[:t]
            for c, t in zip(classes.tolist(), take.tolist(), strict=True)
        ]
        return self.subset(np.sort(np.concatenate(keep)).tolist())

    def head(self, n: int | None) -> Split:
        """The first ``n`` samples (all when ``n`` is None or larger than the split)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"limit must be >= 1, got {n}")
        return Split(self.name, self.images[:n].contiguous(), self.labels[:n].clone())


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A training split plus the ordered evaluation splits of one NB201 setting.

    ``evals`` keys follow NAS-Bench-201's semantics: ``"valid"`` is the split a search may
    look at (cifar10-valid: the held-out half of the training set; cifar100 and
    ImageNet16-120: ``x-valid``, half of the test set), ``"test"`` is the one reported at
    the end (cifar10 / cifar10-valid: the original test set; cifar100 / ImageNet16-120:
    ``x-test``). The ``cifar10`` setting trains on all 50k images and has only ``"test"``.
    ``mean``/``std`` are on the 0..1 scale; ``pad`` is the random-crop zero padding;
    ``flip`` says whether random horizontal flips are a valid augmentation for the data.
    """

    name: str
    train: Split
    evals: dict[str, Split]
    num_classes: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pad: int
    flip: bool = True
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for split in (self.train, *self.evals.values()):
            h, w = split.images.shape[2:]
            if (h, w) != (self.resolution, self.resolution):
                raise DataError(
                    f"{self.name}: split {split.name!r} has {h}x{w} images, expected "
                    f"{self.resolution}x{self.resolution}"
                )
            if len(split) and (
                int(split.labels.min()) < 0 or int(split.labels.max()) >= self.num_classes
            ):
                raise DataError(
                    f"{self.name}: split {split.name!r} has labels in "
                    f"[{int(split.labels.min())}, {int(split.labels.max())}], expected "
                    f"0..{self.num_classes - 1}"
                )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError(f"{self.name}: mean/std must be 3 values with std > 0")
        if not 0 <= self.pad < self.resolution:
            raise DataError(f"{self.name}: pad must be in [0, {self.resolution}), got {self.pad}")

    def split(self, name: str) -> Split:
        """``"train"`` or one of ``evals`` by name."""
        if name == "train":
            return self.train
        try:
            return self.evals[name]
        except KeyError:
            known = ", ".join(["train", *self.evals])
            raise DataError(
                f"{self.name} has no split {name!r}; expected one of: {known}"
            ) from None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.summary().items())
        return (
            f"DatasetSplits({self.name!r}: {sizes}; {self.num_classes} classes, "
            f"{self.resolution}x{self.resolution})"
        )

    def summary(self) -> dict[str, int]:
        """Number of samples per split, train first."""
        return {"train": len(self.train), **{k: len(v) for k, v in self.evals.items()}}
