"""Crash-safe file output shared by every layer: a file is either its old self or complete.

Every writer goes through :func:`atomic_write`: the content goes to a temporary file in the
same directory, is flushed and fsync'd, then renamed over the target (``os.replace`` is
atomic on POSIX); a failure removes the temporary file, so nothing half-written stays.
The file gets the mode any ``open(path, "w")`` would give it (``0o666`` less the umask),
not ``mkstemp``'s private ``0o600``: results are meant to be read by colleagues.

:func:`check_output_file` / :func:`check_output_dir` let a command refuse an unusable
output path before it starts long work.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from nasforge.errors import OutputError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    Linux reports it in ``/proc/self/status``; elsewhere it can only be read by setting it,
    which is done under a lock and restored at once (a thread creating a file in that
    instant could still see the temporary value: only on systems without ``/proc``).
    """
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as f,
    ):
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_dir_usable(directory: Path, target: Path) -> None:
    """``directory`` exists and is writable, or can be created (it is under a writable
    directory, not under a file)."""
    base = _nearest_existing(directory)
    if not base.is_dir():
        raise OutputError(f"cannot write {target}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: directory {base} is not writable")


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else :class:`OutputError`
    (it is a directory, its directory is read-only, or a parent is a file). Creates nothing.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output {path} is a directory; expected the path of a file to write")
    _check_dir_usable(path.parent, path)
    return path


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` if it is (or can be created as) a writable directory,
    else :class:`OutputError` (it is a file, read-only, or under a file). Creates nothing.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} is a file; expected a directory (existing or new)")
    _check_dir_usable(path, path)
    return path


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem allows it
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a temporary binary file, then atomically move it to ``path``."""
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after all the writing
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        # A parent that is a file, a directory we may not write, a read-only file system:
        # nothing is written yet, so one line naming the path says it all.
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become ``None`` (JSON has neither), numpy scalars and arrays
    become Python numbers and lists, paths become strings, dict keys become strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (non-finite floats as null), atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def atomic_save_figure(fig: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure as PNG atomically (and close it)."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", **savefig_kwargs))
    finally:
        plt.close(fig)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` atomically (checkpoints survive a kill at any moment)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))
