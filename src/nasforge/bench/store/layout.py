"""What the store's read and write halves share: the format's names, the in-memory forms
of a table, and small file helpers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # POSIX advisory locks keep two writers off one table
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from nasforge.bench.schema import (
    check_dataset,
    check_hp,
)
from nasforge.bench.spaces import DEFAULT_TABLE_SPACE
from nasforge.errors import BenchError

FORMAT_NAME = "nasforge-bench"


FORMAT_VERSION = 1


MANIFEST = "manifest.json"


ARRAYS_DIR = "arrays"


LOCK_FILE = ".lock"


JOURNAL_MAGIC = b"NASFORGE-JOURNAL/1\n"


_REC_MAGIC = b"NFR1"


_REC_HEAD = struct.Struct("<4sII")  # magic, payload length, crc32(payload)


_OWN_FILE = re.compile(r"^(arrays/)?\d{6}-.*\.npy$|^errors-\d{6}\.json$|^journal-\d{6}\.log$")


# ---------------------------------------------------------------------------------------
# In-memory forms
# ---------------------------------------------------------------------------------------
@dataclass
class GroupData:
    """The columns of one (dataset, hp) group.

    ``data[r, s, m, e]`` is metric ``metrics[m]`` after epoch ``e + 1`` of seed ``seeds[s]``
    for the arch of official index ``rows[r]``; ``status[r, s]`` is 0 where there is no
    entry. Final-only groups have ``epochs == 1``. Rows come first so that everything about
    one arch is one contiguous block (a query reads a few pages, a seed mean is one
    reduction). Invariant: ``data`` is NaN wherever ``status`` is not ok.
    """

    dataset: str
    hp: str
    seeds: list[int]
    rows: np.ndarray
    metrics: list[str]
    epochs: int
    final_only: bool
    status: np.ndarray
    data: np.ndarray

    @property
    def key(self) -> tuple[str, str]:
        return (self.dataset, self.hp)

    def check(self, num_archs: int) -> None:
        """Refuse a malformed group of a table whose space has ``num_archs`` archs."""
        # The same name rules as every other writer (builds, appends): one validation.
        check_dataset(self.dataset)
        check_hp(self.hp)
        S, R, M, E = len(self.seeds), len(self.rows), len(self.metrics), self.epochs
        if self.data.shape != (R, S, M, E) or self.status.shape != (R, S):
            raise BenchError(
                f"group {self.dataset}/{self.hp}: data {self.data.shape} / status "
                f"{self.status.shape} do not match seeds={S} rows={R} metrics={M} epochs={E}"
            )
        if R and (self.rows.min() < 0 or self.rows.max() >= num_archs):
            raise BenchError(f"group {self.dataset}/{self.hp}: arch index out of range")
        if R > 1 and np.any(np.diff(self.rows) <= 0):
            raise BenchError(f"group {self.dataset}/{self.hp}: rows must be strictly increasing")


@dataclass
class CostData:
    """Per-arch costs of one dataset: ``values[index, k]`` is ``metrics[k]`` (NaN unknown)."""

    dataset: str
    metrics: list[str]
    values: np.ndarray  # float64 [num_archs of the table's space, K]


@dataclass
class TableState:
    """Everything a reader or writer needs: the manifest and the (merged) columns."""

    root: Path
    manifest: dict[str, Any]
    groups: dict[tuple[str, str], GroupData]
    costs: dict[str, CostData]
    errors: list[dict[str, Any]]
    journal_records: list[dict[str, Any]] = field(default_factory=list)
    journal_valid_end: int = 0
    journal_torn: bool = False

    @property
    def space(self) -> str:
        """The search space the table holds (``nb201`` for tables that predate spaces)."""
        return str(self.manifest.get("space", DEFAULT_TABLE_SPACE))

    @property
    def num_archs(self) -> int:
        return int(self.manifest["num_archs"])


# ---------------------------------------------------------------------------------------
# Small file helpers
# ---------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _removed_on_error(path: Path):
    """Remove ``path`` (a temporary) if the block raises: a full disk leaves nothing."""
    try:
        yield path
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (a table may be called ``run[1]``)."""
    return re.sub(r"([*?\[])", r"[\1]", name)
