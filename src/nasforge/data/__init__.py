"""Datasets as tensors, the official NAS-Bench-201 splits, and the on-device loader.

``load_splits(name)`` returns a :class:`DatasetSplits` (uint8 images on the CPU, the
NB201 normalisation constants and padding); :class:`DeviceLoader` turns one split into
augmented, normalised batches on any device.
"""

from nasforge.data.base import NB201_MEAN_STD, DatasetSplits, Split
from nasforge.data.loader import DeviceLoader, crop_flip, epoch_generator
from nasforge.data.readers import (
    CIFAR_ARCHIVES,
    DEFAULT_URL_BASE,
    ArchiveSpec,
    RestrictedUnpickler,
    download_file,
    load_pickle,
    md5sum,
    read_cifar,
    read_imagenet16,
)
from nasforge.data.splits import (
    EMBEDDED_DATASETS,
    NB201_DATASETS,
    SPLIT_FILES,
    FallbackSplitWarning,
    cifar10_valid_split,
    load_digits,
    load_splits,
    make_synthetic,
    read_split_file,
)

__all__ = [
    "CIFAR_ARCHIVES",
    "DEFAULT_URL_BASE",
    "EMBEDDED_DATASETS",
    "NB201_DATASETS",
    "NB201_MEAN_STD",
    "SPLIT_FILES",
    "ArchiveSpec",
    "DatasetSplits",
    "DeviceLoader",
    "FallbackSplitWarning",
    "RestrictedUnpickler",
    "Split",
    "cifar10_valid_split",
    "crop_flip",
    "download_file",
    "epoch_generator",
    "load_digits",
    "load_pickle",
    "load_splits",
    "make_synthetic",
    "md5sum",
    "read_cifar",
    "read_imagenet16",
    "read_split_file",
]
