"""Readers of the official dataset releases: CIFAR-10/100 (python pickles) and the
down-sampled ImageNet 16x16, plus the MD5-verified CIFAR download.

Pickles are read through :class:`RestrictedUnpickler`, which admits only the handful of
numpy globals an array needs, so a hostile file cannot run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.errors import DataError

# The official CIFAR site (https://www.cs.toronto.edu/~kriz/cifar.html). Overridable per call
# (``url_base=``) or by the environment, so tests and mirrors can point elsewhere.
DEFAULT_URL_BASE = "https://www.cs.toronto.edu/~kriz/"
URL_BASE_ENV = "NASFORGE_DATA_URL"


@dataclass(frozen=True)
class ArchiveSpec:
    """An official archive: file name, MD5 of the archive, folder it unpacks to, members."""

    filename: str
    md5: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int


# MD5s as published on the CIFAR page (also torchvision's ``tgz_md5``).
CIFAR_ARCHIVES: dict[str, ArchiveSpec] = {
    "cifar10": ArchiveSpec(
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        10,
    ),
    "cifar100": ArchiveSpec(
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
        ("train",),
        ("test",),
        "fine_labels",
        100,
    ),
}

IMAGENET16_TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
IMAGENET16_VAL_FILE = "val_data"


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled numpy array needs."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[key]
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only numpy arrays are admitted"
        )


def _safe_globals() -> dict[tuple[str, str], Any]:
    import codecs

    try:  # numpy >= 2 moved the implementation to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = _reconstruct
        table[(mod, "scalar")] = scalar
    return table


_SAFE_GLOBALS = _safe_globals()


def load_pickle(data: bytes, source: str) -> dict[str, Any]:
    """Unpickle an official batch file (Python 2 or 3 pickle) into a dict with str keys."""
    try:
        # latin1 decodes Python 2 byte strings, which numpy needs to rebuild its arrays.
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{source}: truncated or corrupt pickle ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{source}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: str | Path, md5: str, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` and check its MD5; a partial or corrupt file never remains.

    The bytes go to a temporary file next to ``dest``; it is renamed into place only after
    the length (when the server sent one) and the MD5 both match.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.md5()
        received = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                expected_len = r.headers.get("Content-Length")
                while True:
                    try:
                        block = r.read(1 << 20)
                    except Exception as exc:  # http.client.IncompleteRead and socket errors
                        raise DataError(
                            f"download of {url} failed after {received} bytes ({exc}); "
                            "the partial file was removed"
                        ) from None
                    if not block:
                        break
                    out.write(block)
                    h.update(block)
                    received += len(block)
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError) as exc:
            raise DataError(f"download of {url} failed ({exc}); nothing was kept") from None
        if expected_len is not None and received != int(expected_len):
            raise DataError(
                f"download of {url} is incomplete: got {received} of {expected_len} bytes; "
                "the partial file was removed"
            )
        digest = h.hexdigest()
        if digest != md5:
            raise DataError(
                f"download of {url} is corrupt: MD5 {digest}, expected {md5}; the file was removed"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def _safe_extract(archive: Path, folder: str, target_dir: Path) -> Path:
    """Unpack ``folder/`` of ``archive`` into ``target_dir`` atomically (tmp dir + rename)."""
    final = target_dir / folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=target_dir))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                # Only plain files inside the expected folder: no links, absolute paths or ..
                if not m.isfile() or not parts or parts[0] != folder or ".." in parts:
                    continue
                src = tar.extractfile(m)
                if src is None:
                    continue
                out_path = tmp.joinpath(*parts)
                out_path.parent.mkdir(parents=True, exist_ok=True)
                with src, open(out_path, "wb") as out:
                    shutil.copyfileobj(src, out)
        if not (tmp / folder).is_dir():
            raise DataError(f"{archive}: archive has no folder {folder!r}")
        if final.exists():  # another process finished first; keep its copy
            return final
        os.replace(tmp / folder, final)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive}: cannot unpack ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _file_source(root: Path, spec: ArchiveSpec) -> Callable[[str], bytes]:
    """A reader of member files: from ``root/<folder>``, ``root`` itself, or the .tar.gz."""
    for d in (root / spec.folder, root):
        if (d / spec.train_files[0]).is_file() or (d / spec.test_files[0]).is_file():

            def read_dir(name: str, d: Path = d) -> bytes:
                path = d / name
                if not path.is_file():
                    raise DataError(f"missing file {path} (expected the official {name!r})")
                return path.read_bytes()

            return read_dir
    archive = root / spec.filename
    if archive.is_file():
        wanted = {f"{spec.folder}/{n}" for n in spec.train_files + spec.test_files}
        contents: dict[str, bytes] = {}
        try:
            # One sequential pass over the gzip stream reads every member we need.
            with tarfile.open(archive, "r:gz") as tar:
                for m in tar:
                    if m.isfile() and m.name in wanted:
                        f = tar.extractfile(m)
                        if f is not None:
                            contents[m.name] = f.read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{archive}: truncated or corrupt archive ({exc})") from None

        def read_tar(name: str) -> bytes:
            key = f"{spec.folder}/{name}"
            if key not in contents:
                raise DataError(f"{archive}: missing member {key}")
            return contents[key]

        return read_tar
    raise DataError(
        f"no {spec.folder} data under {root}: expected {root / spec.folder}/"
        f"{spec.train_files[0]} or {archive} (fetch it with `nasforge train ... --download`, "
        "or download=True in Python)"
    )


def _decode_batch(
    entry: dict[str, Any],
    source: str,
    label_key: str,
    resolution: int,
    label_range: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x 3 x R x R, int64 N) from one official batch dict, with shape/range checks."""
    if "data" not in entry or label_key not in entry:
        raise DataError(f"{source}: expected keys 'data' and {label_key!r}, got {sorted(entry)}")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry[label_key], dtype=np.int64)
    width = 3 * resolution * resolution
    if data.ndim != 2 or data.shape[1] != width:
        raise DataError(
            f"{source}: 'data' has shape {data.shape}, expected (N, {width}) for 3x{resolution}x"
            f"{resolution} images"
        )
    if data.dtype != np.uint8:
        raise DataError(f"{source}: 'data' has dtype {data.dtype}, expected uint8")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"{source}: {data.shape[0]} images but {labels.shape[0]} labels")
    lo, hi = label_range
    if labels.size and (labels.min() < lo or labels.max() > hi):
        raise DataError(
            f"{source}: labels in [{labels.min()}, {labels.max()}], expected {lo}..{hi}"
        )
    # Rows are channel-major (all R, all G, all B), which is exactly N x 3 x R x R.
    return data.reshape(-1, 3, resolution, resolution), labels


def _to_tensors(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 3, 1, 1), np.uint8)
    labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0,), np.int64)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def read_cifar(
    name: str,
    root: str | Path,
    *,
    download: bool = False,
    url_base: str | None = None,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Read CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``).

    ``root`` holds the unpacked folder (``cifar-10-batches-py`` / ``cifar-100-python``), the
    batch files themselves, or the official ``.tar.gz``. With ``download=True`` and nothing
    there, the archive is fetched from ``url_base`` (default: the official site, or
    ``$NASFORGE_DATA_URL``), its MD5 checked, and unpacked. Returns
    ``((train_images, train_labels), (test_images, test_labels))``, images uint8 N x 3 x 32 x 32.
    """
    if name not in CIFAR_ARCHIVES:
        raise DataError(f"unknown CIFAR dataset {name!r}; expected one of {sorted(CIFAR_ARCHIVES)}")
    spec = CIFAR_ARCHIVES[name]
    root = _data_root(root, name)
    have = (
        (root / spec.folder).is_dir()
        or (root / spec.filename).is_file()
        or (root / spec.train_files[0]).is_file()
    )
    if not have:
        if not download:
            if not root.is_dir():
                raise DataError(
                    f"dataset directory {root} does not exist (expected {name} there; fetch it "
                    "with `nasforge train ... --download`, or download=True in Python)"
                )
        else:
            base = url_base or os.environ.get(URL_BASE_ENV) or DEFAULT_URL_BASE
            root.mkdir(parents=True, exist_ok=True)
            archive = download_file(
                base.rstrip("/") + "/" + spec.filename, root / spec.filename, spec.md5
            )
            _safe_extract(archive, spec.folder, root)
    elif (
        download
        and not (root / spec.folder).is_dir()
        and (root / spec.filename).is_file()
        and md5sum(root / spec.filename) == spec.md5
    ):
        _safe_extract(root / spec.filename, spec.folder, root)
    read = _file_source(root, spec)
    label_range = (0, spec.num_classes - 1)
    out = []
    for files in (spec.train_files, spec.test_files):
        parts = []
        for fname in files:
            entry = load_pickle(read(fname), f"{root}/{spec.folder}/{fname}")
            parts.append(_decode_batch(entry, fname, spec.label_key, 32, label_range))
        out.append(_to_tensors(parts))
    return out[0], out[1]


def _data_root(root: str | Path, what: str) -> Path:
    """``root`` as a Path; a :class:`DataError` when it exists but is not a directory (a
    "does not exist" would send the user looking for the wrong mistake)."""
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"dataset directory {path} is not a directory (expected {what} in it)")
    return path


def read_imagenet16(
    root: str | Path, *, max_class: int = 120
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Read the official down-sampled ImageNet 16x16 (Chrabaszcz et al. 2017) release.

    ``root`` (or ``root/ImageNet16``) holds ``train_data_batch_1..10`` and ``val_data``.
    Labels in the files are 1-based (1..1000); as NAS-Bench-201 does (xautodl
    ``ImageNet16(..., use_num_of_class_only=120)``), only images with label <= ``max_class``
    are kept, and labels are returned 0-based.
    """
    root = _data_root(root, "ImageNet16")
    if not root.is_dir():
        raise DataError(f"dataset directory {root} does not exist (expected ImageNet16 files)")
    if not (root / IMAGENET16_VAL_FILE).is_file() and (root / "ImageNet16").is_dir():
        root = root / "ImageNet16"
    if not 1 <= max_class <= 1000:
        raise DataError(f"max_class must be in 1..1000, got {max_class}")
    out = []
    for files in (IMAGENET16_TRAIN_FILES, (IMAGENET16_VAL_FILE,)):
        parts = []
        for fname in files:
            path = root / fname
            if not path.is_file():
                raise DataError(f"missing file {path} (official ImageNet16 file {fname!r})")
            entry = load_pickle(path.read_bytes(), str(path))
            images, labels = _decode_batch(entry, str(path), "labels", 16, (1, 1000))
            keep = labels <= max_class
            parts.append((images[keep], labels[keep] - 1))
        out.append(_to_tensors(parts))
    return out[0], out[1]
