"""The crash-safe write path: :class:`TableWriter` appends records to a table's journal."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from nasforge.bench.schema import (
    STATUS_CODES,
    ResultEntry,
    check_cost_name,
    check_dataset,
    check_hp,
)
from nasforge.bench.spaces import DEFAULT_TABLE_SPACE, table_space
from nasforge.bench.store import (
    FORMAT_NAME,
    GenerationWriter,
    TableState,
    apply_records,
    collect_garbage,
    commit_generation,
    encode_record,
    load_table,
    lock_table,
    read_journal,
    read_manifest,
    record_epochs,
    recover_interrupted_overwrite,
    salvage_journal,
)
from nasforge.errors import BenchError


def _num(v: Any) -> float | None:
    """A JSON-safe float: NaN/None become None (missing), never 0."""
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


class TableWriter:
    """Append results to a table, one complete record or nothing.

    Each :meth:`append` / :meth:`set_cost` writes one CRC-checked record to the journal and
    fsyncs it before returning, so a process killed at any moment leaves the table readable
    with every completed record. :meth:`close` (or leaving the ``with`` block) compacts the
    journal into the memory-mapped columns. Only one writer may hold a table at a time.

    Appending costs O(1) whatever the table's size: records are kept in a small in-memory
    overlay (run statuses for :meth:`status` / :meth:`has`, group shapes for the epoch
    check) and merged into the columns only by :meth:`compact` / :meth:`close`, one merge
    per touched group. Readers opening the table meanwhile replay the journal the same way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        space: str = DEFAULT_TABLE_SPACE,
        create: bool = True,
    ) -> None:
        self._space = table_space(space)  # refuses a space no table can hold
        self.path = Path(path)
        recover_interrupted_overwrite(self.path)
        self._lock_fd: int | None = None
        self._fd: int | None = None
        if not (self.path / "manifest.json").exists():
            if not create:
                raise BenchError(f"benchmark table {str(self.path)!r} does not exist")
            if self.path.exists() and any(self.path.iterdir()):
                raise BenchError(
                    f"{str(self.path)!r} exists and is not empty but holds no {FORMAT_NAME} "
                    "table; refusing to write into it"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
            if not (self.path / "manifest.json").exists():  # re-check under the lock
                GenerationWriter(self.path, 0, space).commit(
                    errors=[], meta={"created_by": "writer"}
                )
        else:
            read_manifest(self.path)  # refuse foreign / corrupt before locking
            self._lock()
        self._state: TableState = load_table(self.path)
        if self._state.space != space:
            self.close(compact=False)
            raise BenchError(
                f"table {str(self.path)!r} holds space {self._state.space!r}, not {space!r}"
            )
        collect_garbage(self.path, self._state.manifest)
        journal = self.path / self._state.manifest["journal"]
        if self._state.journal_torn:  # a crashed writer left half a record: drop it
            os.truncate(journal, self._state.journal_valid_end)
        self._fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
        self._reset_overlay()
        # Records a crashed writer left are already merged into the state by load_table;
        # the groups they touched must still be rewritten at the next compaction.
        for rec in self._state.journal_records:
            self._touch(rec)
        self._pending = len(self._state.journal_records)

    # -- the overlay of records not yet merged into columns ---------------------------------
    def _reset_overlay(self) -> None:
        self._new: list[dict[str, Any]] = []  # written since the state was last merged
        self._runs: dict[tuple[str, str], dict[tuple[int, int], int]] = {}
        self._shapes: dict[tuple[str, str], tuple[int, bool]] = {}
        self._touched: set[tuple[str, str]] = set()
        self._touched_costs: set[str] = set()
        for key, g in self._state.groups.items():
            if np.any(np.asarray(g.status) == STATUS_CODES["ok"]):
                self._shapes[key] = (g.epochs, g.final_only)

    def _touch(self, rec: dict[str, Any]) -> None:
        if rec["t"] == "entry":
            self._touched.add((rec["dataset"], rec["hp"]))
        else:
            self._touched_costs.add(rec["dataset"])

    # -- locking ----------------------------------------------------------------------------
    def _lock(self) -> None:
        self._lock_fd = lock_table(self.path)

    # -- writing ----------------------------------------------------------------------------
    def _write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise BenchError(f"writer of {str(self.path)!r} is closed")
        blob = encode_record(record)
        end = os.fstat(self._fd).st_size
        try:
            n = os.write(self._fd, blob)
            if n != len(blob):
                raise OSError(errno.ENOSPC, f"short write ({n}/{len(blob)} bytes)")
            os.fsync(self._fd)
        except OSError as exc:
            # Drop the partial record now: a later append after it would turn this torn
            # tail into damage in the middle of the journal.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, end)
            raise BenchError(
                f"cannot append to the journal of {str(self.path)!r}: "
                f"{exc.strerror or exc}; the record was not written"
            ) from None
        self._new.append(record)
        self._touch(record)
        if record["t"] == "entry":
            key = (record["dataset"], record["hp"])
            runs = self._runs.setdefault(key, {})
            runs[(record["arch"], record["seed"])] = STATUS_CODES[record["status"]]
            if record["status"] == "ok":
                self._shapes.setdefault(key, record_epochs(record))
        self._pending += 1

    def append(self, entry: ResultEntry) -> None:
        """Record one training run (``status`` ok / failed / diverged)."""
        if not isinstance(entry, ResultEntry):
            raise BenchError(f"append() takes a ResultEntry, got {type(entry).__name__}")
        entry.validate()
        index = self._space.index(entry.arch)
        rec = {
            "t": "entry",
            "arch": index,
            "dataset": entry.dataset,
            "hp": entry.hp,
            "seed": int(entry.seed),
            "status": entry.status,
            "error": entry.error,
            "curves": {k: [_num(v) for v in vals] for k, vals in entry.curves.items()},
            "final": {k: _num(v) for k, v in entry.final.items()},
        }
        shape = self._shapes.get((entry.dataset, entry.hp))
        if entry.status == "ok" and shape is not None and record_epochs(rec) != shape:
            want = "final metrics only" if shape[1] else f"{shape[0]} epochs"
            got = record_epochs(rec)
            raise BenchError(
                f"entry for {entry.dataset}/hp={entry.hp} has "
                f"{'final metrics only' if got[1] else f'{got[0]} epochs'}; "
                f"this group holds {want}"
            )
        self._write(rec)

    def set_cost(
        self,
        arch: object,
        dataset: str,
        *,
        params_m: float | None = None,
        flops_m: float | None = None,
        latency_s: float | None = None,
        **extra: float | None,
    ) -> None:
        """Record the costs of an arch on a dataset (``None`` leaves a cost unknown)."""
        check_dataset(dataset)
        values = {"params_m": params_m, "flops_m": flops_m, "latency_s": latency_s, **extra}
        values = {k: v for k, v in values.items() if v is not None}
        for k in values:
            check_cost_name(k)
        if not values:
            raise BenchError("set_cost() needs at least one of params_m, flops_m, latency_s")
        rec = {
            "t": "cost",
            "arch": self._space.index(arch),
            "dataset": dataset,
            "values": {k: _num(v) for k, v in values.items()},
        }
        self._write(rec)

    # -- reading back -----------------------------------------------------------------------
    def status(self, arch: object, dataset: str, hp: str, seed: int) -> str | None:
        """``"ok"`` / ``"failed"`` / ``"diverged"`` for a recorded run, ``None`` if absent."""
        check_hp(hp)
        index = self._space.index(arch)
        code = self._runs.get((dataset, hp), {}).get((index, int(seed)))
        if code is not None:
            return {v: k for k, v in STATUS_CODES.items()}.get(code)
        g = self._state.groups.get((dataset, hp))
        if g is None or int(seed) not in g.seeds:
            return None
        r = int(np.searchsorted(g.rows, index))
        if r >= len(g.rows) or int(g.rows[r]) != index:
            return None
        code = int(g.status[r, g.seeds.index(int(seed))])
        return {v: k for k, v in STATUS_CODES.items()}.get(code)

    def has(self, arch: object, dataset: str, hp: str, seed: int) -> bool:
        """Whether a run (of any status) is recorded — what a resuming builder skips."""
        return self.status(arch, dataset, hp, seed) is not None

    @property
    def pending(self) -> int:
        """Journal records not yet compacted into columns."""
        return self._pending

    # -- compaction -------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """The table's free-form metadata (a copy; change it with :meth:`set_meta`)."""
        return dict(self._state.manifest.get("meta") or {})

    def set_meta(self, key: str, value: Any) -> None:
        """Set one JSON-serialisable metadata entry, committed atomically right away."""
        json.dumps(value)  # refuse what the manifest could not hold before touching disk
        meta = self.meta
        meta[key] = value
        self._commit(meta)

    def compact(self) -> None:
        """Fold the journal into new column files and start an empty journal (atomic)."""
        if self._pending == 0:
            return
        self._commit(self.meta)

    def _commit(self, meta: dict[str, Any]) -> None:
        if self._new:  # the one merge of everything appended since the last compaction
            apply_records(self._state, self._new)
            self._new = []
        new = commit_generation(
            self.path,
            self._state,
            touched=self._touched,
            touched_costs=self._touched_costs,
            meta=meta,
        )
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._state = load_table(self.path)
        self._fd = os.open(self.path / new["journal"], os.O_WRONLY | os.O_APPEND)
        self._reset_overlay()
        self._pending = 0

    def close(self, *, compact: bool = True) -> None:
        """Compact (by default) and release the table."""
        try:
            if compact and self._fd is not None:
                self.compact()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On an exception the journal already holds every completed record; skip the
        # (possibly long) compaction and leave it to the next writer.
        self.close(compact=exc_type is None)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None or getattr(self, "_lock_fd", None) is not None:
            with contextlib.suppress(Exception):
                self.close(compact=False)


def repair_table(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Salvage a table whose journal is damaged; returns what was done.

    Every journal record that passes its CRC is kept and merged, in order, into a new
    generation of the columns, published atomically like any compaction. The damaged
    journal itself is kept aside as ``damaged-journal-<gen>[-N].log`` in the table directory
    (a hard link made before the new generation is published, so a crash at any point
    leaves either the old table or the repaired one, and the damaged bytes in both cases).
    A table whose journal is intact is left untouched. Takes the table's writer lock.

    Returns ``{"damaged": bool, "kept": records kept, "skipped": [[start, stop], ...]
    byte ranges dropped, "aside": file name of the kept damaged journal or None}``.
    """
    root = Path(path)
    recover_interrupted_overwrite(root)
    read_manifest(root)  # refuse foreign / corrupt manifests before locking
    lock_fd = lock_table(root)
    try:
        state = load_table(root, replay=False)
        journal = root / state.manifest["journal"]
        try:
            read_journal(journal)
        except BenchError:
            pass
        else:
            return {"damaged": False, "kept": 0, "skipped": [], "aside": None}
        records, skipped = salvage_journal(journal)
        apply_records(state, records)  # may refuse (inconsistent records): nothing written yet
        aside = (
            _keep_aside(journal, int(state.manifest["generation"])) if journal.exists() else None
        )
        touched = {(r["dataset"], r["hp"]) for r in records if r["t"] == "entry"}
        touched_costs = {r["dataset"] for r in records if r["t"] == "cost"}
        commit_generation(
            root,
            state,
            touched=touched,
            touched_costs=touched_costs,
            meta=dict(state.manifest.get("meta") or {}),
        )
        return {
            "damaged": True,
            "kept": len(records),
            "skipped": [list(r) for r in skipped],
            "aside": None if aside is None else aside.name,
        }
    finally:
        os.close(lock_fd)


def _keep_aside(journal: Path, gen: int) -> Path:
    """Hard-link (or copy) the damaged journal to a name the garbage collector never
    touches; never overwrite an earlier one."""
    for n in range(1000):
        suffix = "" if n == 0 else f"-{n}"
        aside = journal.with_name(f"damaged-journal-{gen:06d}{suffix}.log")
        try:
            os.link(journal, aside)
        except FileExistsError:
            continue
        except OSError:  # no hard links on this filesystem: copy
            if aside.exists():
                continue
            shutil.copyfile(journal, aside)
        return aside
    raise BenchError(f"too many damaged journals kept in {str(journal.parent)!r}; remove some")
