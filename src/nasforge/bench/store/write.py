"""The store's write half: journal records, the generation writer, the commit that
atomically replaces the manifest, garbage collection, and whole-table writes (importers)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

try:  # POSIX advisory locks keep two writers off one table
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from nasforge.bench.spaces import DEFAULT_TABLE_SPACE, table_space
from nasforge.bench.store.layout import (
    _OWN_FILE,
    _REC_HEAD,
    _REC_MAGIC,
    ARRAYS_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    JOURNAL_MAGIC,
    LOCK_FILE,
    MANIFEST,
    CostData,
    GroupData,
    TableState,
    _fsync_dir,
    _manifest_digest,
    _removed_on_error,
)
from nasforge.bench.store.read import read_manifest, recover_interrupted_overwrite
from nasforge.errors import BenchError


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write a file so that it is either absent/old or completely new, never half-written."""
    with _removed_on_error(path.with_name(f".{path.name}.tmp-{os.getpid()}")) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    _fsync_dir(path.parent)


class _HashingWriter:
    """File-like object for ``np.save`` that hashes what it writes."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.nbytes = 0

    def write(self, b: bytes | memoryview) -> int:
        self.sha.update(b)
        self.nbytes += len(b)
        return self._f.write(b)


def _save_array(root: Path, rel: str, arr: Any) -> dict[str, Any]:
    """Write one column file. ``arr`` is an array, or a streamed column (``shape``,
    ``dtype`` and ``iter_blocks()`` yielding its leading-axis blocks in order, as importers
    produce them) written block by block so it is never whole in memory."""
    path = root / rel
    with _removed_on_error(path.with_name(f".{path.name}.tmp-{os.getpid()}")) as tmp:
        with open(tmp, "wb") as f:
            hw = _HashingWriter(f)
            if hasattr(arr, "iter_blocks"):
                _save_streamed(hw, arr)
            else:
                np.save(hw, np.ascontiguousarray(arr), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return {"bytes": hw.nbytes, "sha256": hw.sha.hexdigest()}


def _save_streamed(hw: _HashingWriter, arr: Any) -> None:
    """The ``.npy`` file ``np.save`` would write for ``arr``, from its blocks."""
    dtype = np.dtype(arr.dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
    np.lib.format.write_array_header_1_0(hw, {**header, "shape": tuple(arr.shape)})
    rows = 0
    for block in arr.iter_blocks():
        block = np.ascontiguousarray(block, dtype=dtype)
        if block.shape != tuple(arr.shape[1:]):
            raise BenchError(f"streamed block of shape {block.shape}; expected {arr.shape[1:]}")
        hw.write(block.tobytes())
        rows += 1
    if rows != arr.shape[0]:
        raise BenchError(f"streamed column gave {rows} rows; expected {arr.shape[0]}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def lock_table(root: Path) -> int:
    """Take the writer lock of the table at ``root`` without waiting; returns the file
    descriptor whose closing releases it. Every writer of a table (appending builder,
    repair, an importer replacing the table) holds it, so none erases another's work."""
    while True:
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:  # pragma: no cover - no advisory locks on this platform
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BenchError(
                f"table {str(root)!r} is held by another writer (its .lock is taken); "
                "wait for that build / import to finish"
            ) from None
        # An overwrite may have swapped the directory between open and flock: then this
        # lock guards a table that is gone; lock the one now at ``root`` instead.
        try:
            now = os.stat(root / LOCK_FILE)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            return fd
        os.close(fd)


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    manifest["checksum"] = _manifest_digest(manifest)
    atomic_write_bytes(root / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Journal records
# ---------------------------------------------------------------------------------------
def encode_record(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return _REC_HEAD.pack(_REC_MAGIC, len(payload), zlib.crc32(payload)) + payload


# ---------------------------------------------------------------------------------------
# Writing generations
# ---------------------------------------------------------------------------------------
class GenerationWriter:
    """Writes the column files of one generation; :meth:`commit` publishes them."""

    def __init__(self, root: Path, gen: int, space: str = DEFAULT_TABLE_SPACE) -> None:
        self.root = root
        self.gen = gen
        self.space = space
        self.num_archs = table_space(space).size
        (root / ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Any] = {}
        self.groups: list[dict[str, Any]] = []
        self.costs: dict[str, Any] = {}
        self._n = 0

    def _save(self, suffix: str, arr: np.ndarray) -> str:
        rel = f"{ARRAYS_DIR}/{self.gen:06d}-{suffix}.npy"
        self.files[rel] = _save_array(self.root, rel, arr)
        return rel

    def add_group(self, g: GroupData) -> None:
        g.check(self.num_archs)
        if g.data.dtype not in (np.float32, np.float64):
            raise BenchError(f"group {g.dataset}/{g.hp}: dtype {g.data.dtype} not float32/64")
        self._n += 1
        stem = f"g{self._n:03d}-{_slug(g.dataset)}-{_slug(g.hp)}"
        self.groups.append(
            {
                "dataset": g.dataset,
                "hp": g.hp,
                "seeds": [int(s) for s in g.seeds],
                "metrics": list(g.metrics),
                "epochs": int(g.epochs),
                "final_only": bool(g.final_only),
                "num_rows": len(g.rows),
                "dtype": str(g.data.dtype),
                "files": {
                    "rows": self._save(f"{stem}-rows", np.asarray(g.rows, np.int64)),
                    "status": self._save(f"{stem}-status", np.asarray(g.status, np.uint8)),
                    "data": self._save(f"{stem}-data", g.data),
                },
            }
        )

    def keep_group(self, entry: dict[str, Any], files: dict[str, Any]) -> None:
        """Reuse an unchanged group's files from the previous generation."""
        self.groups.append(entry)
        for rel in entry["files"].values():
            self.files[rel] = files[rel]

    def add_cost(self, c: CostData) -> None:
        values = np.asarray(c.values, np.float64)
        if values.shape != (self.num_archs, len(c.metrics)):
            raise BenchError(f"costs of {c.dataset}: shape {values.shape} invalid")
        rel = self._save(f"cost-{_slug(c.dataset)}", values)
        self.costs[c.dataset] = {"file": rel, "metrics": list(c.metrics)}

    def keep_cost(self, ds: str, entry: dict[str, Any], files: dict[str, Any]) -> None:
        self.costs[ds] = entry
        self.files[entry["file"]] = files[entry["file"]]

    def abort(self) -> None:
        """Remove every file this generation wrote (after a failure before the manifest
        was replaced: the table stays the previous generation, with nothing left over)."""
        prefix = f"{self.gen:06d}-"
        own = [rel for rel in self.files if Path(rel).name.startswith(prefix)]
        own += [f"errors-{self.gen:06d}.json", f"journal-{self.gen:06d}.log"]
        for rel in own:
            with contextlib.suppress(OSError):
                (self.root / rel).unlink()

    def commit(self, *, errors: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
        """Write errors + an empty journal, fsync the directory, then replace the manifest."""
        errors_rel = None
        if errors:
            errors_rel = f"errors-{self.gen:06d}.json"
            atomic_write_bytes(self.root / errors_rel, json.dumps(errors).encode("utf-8"))
        journal_rel = f"journal-{self.gen:06d}.log"
        atomic_write_bytes(self.root / journal_rel, JOURNAL_MAGIC)
        _fsync_dir(self.root / ARRAYS_DIR)
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "space": self.space,
            "num_archs": self.num_archs,
            "generation": self.gen,
            "groups": sorted(self.groups, key=lambda g: (g["dataset"], g["hp"])),
            "costs": dict(sorted(self.costs.items())),
            "files": dict(sorted(self.files.items())),
            "errors": errors_rel,
            "journal": journal_rel,
            "meta": meta,
        }
        _write_manifest(self.root, manifest)
        return manifest


def _write_error(root: Path, exc: OSError) -> BenchError:
    return BenchError(
        f"cannot write table {str(root)!r}: {exc.strerror or exc}"
        + (f" ({exc.filename})" if exc.filename else "")
    )


def commit_generation(
    root: Path,
    state: TableState,
    *,
    touched: set[tuple[str, str]] | None = None,
    touched_costs: set[str] | None = None,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Publish ``state`` as the next generation of the table at ``root`` and return its
    manifest. Groups / costs not in ``touched`` / ``touched_costs`` (``None``: all are
    rewritten) and unchanged since the previous generation reuse its files.

    All or nothing: on any failure (a full disk) every file of the new generation is
    removed and the table stays the previous generation, journal included."""
    old = state.manifest
    gw = GenerationWriter(root, int(old["generation"]) + 1, state.space)
    old_groups = {(g["dataset"], g["hp"]): g for g in old["groups"]}
    try:
        for key, g in sorted(state.groups.items()):
            if touched is None or key in touched or key not in old_groups:
                gw.add_group(g)
            else:
                gw.keep_group(old_groups[key], old["files"])
        for ds, c in sorted(state.costs.items()):
            if touched_costs is None or ds in touched_costs or ds not in old["costs"]:
                gw.add_cost(c)
            else:
                gw.keep_cost(ds, old["costs"][ds], old["files"])
        new = gw.commit(errors=state.errors, meta=meta)
    except BaseException as exc:
        gw.abort()
        if isinstance(exc, OSError):
            raise BenchError(
                f"{_write_error(root, exc)}; the table is unchanged and its journal keeps "
                "every record (free space and retry)"
            ) from None
        raise
    collect_garbage(root, new)
    return new


def collect_garbage(root: Path, manifest: dict[str, Any]) -> None:
    """Remove our own files (arrays, journals, errors, temporaries) the manifest no longer names."""
    keep = set(manifest["files"]) | {manifest["journal"]}
    if manifest.get("errors"):
        keep.add(manifest["errors"])
    candidates = [p for p in root.iterdir() if p.is_file()]
    arrays = root / ARRAYS_DIR
    if arrays.is_dir():
        candidates += [p for p in arrays.iterdir() if p.is_file()]
    for p in candidates:
        rel = p.relative_to(root).as_posix()
        is_tmp = p.name.startswith(".") and ".tmp-" in p.name
        if rel not in keep and (is_tmp or _OWN_FILE.match(rel)):
            with contextlib.suppress(OSError):
                p.unlink()


def write_table(
    path: str | os.PathLike[str],
    groups: Iterable[GroupData],
    costs: Iterable[CostData] = (),
    *,
    errors: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
    space: str = DEFAULT_TABLE_SPACE,
) -> Path:
    """Create a complete table of ``space`` in one go (importers, synthetic tables).

    It is built in a temporary sibling directory and renamed into place, so ``path`` never
    holds a partial table. Replacing an existing table takes two renames; a crash between
    them is undone on the next open or write (:func:`recover_interrupted_overwrite`). ``groups`` may be a generator: each group is written and can be
    freed before the next is produced.
    """
    root = Path(path)
    recover_interrupted_overwrite(root)
    if root.exists() and not overwrite:
        raise BenchError(f"{str(root)!r} already exists; pass overwrite=True (--overwrite)")
    lock_fd = None
    if root.exists():
        read_manifest(root)  # only ever replace one of our own tables
        # The table's writer lock, held until the old table is gone: a build appending to
        # it would otherwise compact its columns back over the new table.
        lock_fd = lock_table(root)
    try:
        _write_new_table(root, groups, costs, errors, meta, space)
    except OSError as exc:
        raise _write_error(root, exc) from None
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    return root


#: Most seeds one (dataset, recipe) group of a table may hold (the official files: at
#: most 4 per arch); ``NASFORGE_MAX_SEEDS`` raises it.
MAX_SEEDS = 1000


#: Largest table (bytes of curves) a single import may write; ``NASFORGE_MAX_TABLE_BYTES``
#: raises it. The official NB201 file becomes a table of about 2 GB.
MAX_TABLE_BYTES = 32 * 2**30


def _check_group_size(g: GroupData, so_far: int, root: Path) -> int:
    """Bytes group ``g`` will take, refused *before* it is written when its seeds, the
    table's projected size or the free disk space say no (issue 23: a 120 KB source once
    became a 459 MB table; a 2.5 MB one was on course for 20 GB)."""
    from nasforge.inputs import env_limit

    max_seeds = env_limit("MAX_SEEDS", MAX_SEEDS)
    if len(g.seeds) > max_seeds:
        raise BenchError(
            f"group {g.dataset}/{g.hp} has {len(g.seeds)} seeds; expected at most {max_seeds} "
            "(NASFORGE_MAX_SEEDS raises it)"
        )
    itemsize = int(getattr(getattr(g.data, "dtype", None), "itemsize", 8))
    need = len(g.rows) * len(g.seeds) * len(g.metrics) * g.epochs * itemsize
    cap = env_limit("MAX_TABLE_BYTES", MAX_TABLE_BYTES)
    if so_far + need > cap:
        raise BenchError(
            f"the table would take {(so_far + need) / 2**20:.0f} MiB (group {g.dataset}/{g.hp}: "
            f"{len(g.rows)} archs x {len(g.seeds)} seeds x {len(g.metrics)} metrics x "
            f"{g.epochs} epochs); expected at most {cap / 2**20:.0f} MiB "
            "(NASFORGE_MAX_TABLE_BYTES raises it)"
        )
    free = shutil.disk_usage(root.parent).free
    if need > free:
        raise BenchError(
            f"group {g.dataset}/{g.hp} needs {need / 2**20:.0f} MiB but "
            f"{str(root.parent)!r} has {free / 2**20:.0f} MiB free"
        )
    return need


def _write_new_table(
    root: Path,
    groups: Iterable[GroupData],
    costs: Iterable[CostData],
    errors: list[dict[str, Any]] | None,
    meta: dict[str, Any] | None,
    space: str,
) -> None:
    table_space(space)  # an unknown space is refused before anything is written
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        gw = GenerationWriter(tmp, 1, space)
        seen: set[tuple[str, str]] = set()
        projected = 0
        for g in groups:
            if g.key in seen:
                raise BenchError(f"group {g.dataset}/{g.hp} given twice")
            seen.add(g.key)
            projected += _check_group_size(g, projected, root)
            gw.add_group(g)
        for c in costs:
            gw.add_cost(c)
        gw.commit(errors=errors or [], meta=meta or {})
        if root.exists():
            old = root.with_name(f".{root.name}.old-{os.getpid()}")
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, root)
        _fsync_dir(root.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
