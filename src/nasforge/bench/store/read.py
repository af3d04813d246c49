"""The store's read half: the manifest read and checked, the journal read (and salvaged),
a table loaded as memory-mapped columns with its journal replayed, and verified."""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

try:  # POSIX advisory locks keep two writers off one table
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from nasforge.bench.schema import (
    STATUS_CODES,
    TRAIN_TIME,
    cost_order,
    current_cost_names,
    metric_order,
)
from nasforge.bench.spaces import table_space
from nasforge.bench.store.layout import (
    _REC_HEAD,
    _REC_MAGIC,
    FORMAT_NAME,
    FORMAT_VERSION,
    JOURNAL_MAGIC,
    MANIFEST,
    CostData,
    GroupData,
    TableState,
    _fsync_dir,
    _manifest_digest,
    file_sha256,
    glob_escape,
)
from nasforge.errors import BenchError


# ---------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------
def read_manifest(root: Path) -> dict[str, Any]:
    """Read and validate ``manifest.json``; refuse a foreign, newer or corrupt one."""
    path = root / MANIFEST
    if not root.exists():
        raise BenchError(f"benchmark table {str(root)!r} does not exist")
    if not root.is_dir() or not path.is_file():
        raise BenchError(
            f"{str(root)!r} is not a nasforge benchmark table (a directory with {MANIFEST}); "
            "to use an official NAS-Bench-201 / NATS-Bench file or a CSV, import it first: "
            "`nasforge bench import SRC -o TABLE`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{str(path)!r} is corrupt (not valid JSON: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        raise BenchError(
            f"{str(path)!r} is a foreign file: format {fmt!r}, expected {FORMAT_NAME!r}"
        )
    version = manifest.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise BenchError(
            f"{str(path)!r} has format version {version!r}; this nasforge reads versions "
            f"1..{FORMAT_VERSION} (upgrade nasforge to read newer tables)"
        )
    if manifest.get("checksum") != _manifest_digest(manifest):
        raise BenchError(
            f"{str(path)!r} is corrupt: its sha256 does not match its content "
            "(edited by hand or damaged on disk)"
        )
    _check_manifest(manifest, path)
    return manifest


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _own_file_name(rel: Any, pattern: str) -> bool:
    """A file name the manifest may point to: ours, inside the table, no ``..``."""
    return (
        isinstance(rel, str)
        and re.fullmatch(pattern, rel) is not None
        and ".." not in Path(rel).parts
        and not Path(rel).is_absolute()
    )


def _check_manifest(m: dict[str, Any], path: Path) -> None:
    """Refuse a manifest whose checksum matches but whose structure does not (written by a
    buggy or foreign tool): one clear error here instead of a KeyError at some later use."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise BenchError(f"{str(path)!r} is malformed: {what}")

    need(isinstance(m.get("space"), str), "'space' must be a string")
    need(_is_int(m.get("num_archs"), 1), "'num_archs' must be a positive int")
    need(_is_int(m.get("generation")), "'generation' must be an int >= 0")
    files = m.get("files")
    need(isinstance(files, dict), "'files' must be an object")
    for rel, info in files.items():
        need(_own_file_name(rel, r"(arrays/)?\d{6}-[^/]+\.npy"), f"file name {rel!r} is not ours")
        need(
            isinstance(info, dict)
            and _is_int(info.get("bytes"))
            and isinstance(info.get("sha256"), str),
            f"entry of {rel!r} in 'files' needs 'bytes' (int) and 'sha256' (string)",
        )
    groups = m.get("groups")
    need(isinstance(groups, list), "'groups' must be a list")
    for k, g in enumerate(groups):
        need(isinstance(g, dict), f"group #{k} must be an object")
        need(
            isinstance(g.get("dataset"), str) and isinstance(g.get("hp"), str),
            f"group #{k} needs 'dataset' and 'hp' strings",
        )
        where = f"group {g['dataset']}/{g['hp']}"
        need(
            isinstance(g.get("seeds"), list) and all(_is_int(x, -(2**63)) for x in g["seeds"]),
            f"{where} needs 'seeds' (a list of ints)",
        )
        need(_is_str_list(g.get("metrics")), f"{where} needs 'metrics' (a list of strings)")
        need(_is_int(g.get("epochs"), 1), f"{where} needs 'epochs' (an int >= 1)")
        need(isinstance(g.get("final_only"), bool), f"{where} needs 'final_only' (a bool)")
        need(_is_int(g.get("num_rows")), f"{where} needs 'num_rows' (an int >= 0)")
        need(g.get("dtype") in ("float32", "float64"), f"{where}: 'dtype' must be float32/64")
        gf = g.get("files")
        need(
            isinstance(gf, dict) and all(gf.get(r) in files for r in ("rows", "status", "data")),
            f"{where} needs 'files' naming its rows, status and data among 'files'",
        )
    costs = m.get("costs")
    need(isinstance(costs, dict), "'costs' must be an object")
    for ds, c in costs.items():
        need(
            isinstance(c, dict) and c.get("file") in files and _is_str_list(c.get("metrics")),
            f"costs of {ds!r} need 'file' (among 'files') and 'metrics' (a list of strings)",
        )
    need(_own_file_name(m.get("journal"), r"journal-\d{6}\.log"), "'journal' is not ours")
    need(
        m.get("errors") is None or _own_file_name(m["errors"], r"errors-\d{6}\.json"),
        "'errors' is not ours",
    )
    need(isinstance(m.get("meta", {}), dict), "'meta' must be an object")


# ---------------------------------------------------------------------------------------
# Journal
# ---------------------------------------------------------------------------------------
def _record_at(buf: bytes, pos: int) -> tuple[dict[str, Any] | None, int, str]:
    """Parse the record starting at ``pos``: ``(record, offset after it, "")`` or
    ``(None, its claimed end, why it is unusable)``."""
    if len(buf) - pos < _REC_HEAD.size:
        return None, pos + _REC_HEAD.size, "incomplete record header"
    magic, length, crc = _REC_HEAD.unpack_from(buf, pos)
    if magic != _REC_MAGIC:
        return None, pos, "bad record magic"
    stop = pos + _REC_HEAD.size + length
    if stop > len(buf):
        return None, stop, f"record claims {length} bytes, past the end of the file"
    payload = buf[pos + _REC_HEAD.size : stop]
    if zlib.crc32(payload) != crc:
        return None, stop, "record fails its CRC"
    try:
        record = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # CRC passed: written wrong
        return None, stop, f"record unreadable ({exc})"
    if not isinstance(record, dict) or record.get("t") not in ("entry", "cost"):
        return None, stop, "record of unknown type"
    return record, stop, ""


def _next_good_record(buf: bytes, start: int) -> int | None:
    """Offset of the first record at or after ``start`` that passes its CRC, if any.

    A record header can never occur inside a payload (payloads are ASCII JSON and every
    header holds a NUL byte in its length field), so a hit is a real record."""
    while (pos := buf.find(_REC_MAGIC, start)) != -1:
        if _record_at(buf, pos)[0] is not None:
            return pos
        start = pos + 1
    return None


def _complete_tail(buf: bytes, pos: int) -> int | None:
    """Length of the payload after the header at ``pos`` when it runs to the end of ``buf``
    *complete* -- its CRC matches, or it is a whole JSON object -- else None (truly torn).

    A crash cuts the last write short, so a torn record's payload is a strict prefix of a
    JSON object and cannot parse; a record whose bytes are all present but whose length
    field points past the end of the file was damaged after it was written."""
    if len(buf) - pos < _REC_HEAD.size:
        return None
    _, _, crc = _REC_HEAD.unpack_from(buf, pos)
    payload = buf[pos + _REC_HEAD.size :]
    if not payload:
        return None
    if zlib.crc32(payload) == crc:
        return len(payload)
    try:
        whole = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return len(payload) if isinstance(whole, dict) else None


def _crc_checked_tail(buf: bytes, pos: int) -> dict[str, Any] | None:
    """The record at ``pos`` read to the end of ``buf`` when that payload passes the CRC in
    its header (a record whose length field alone is damaged), else None."""
    if len(buf) - pos < _REC_HEAD.size:
        return None
    magic, _, crc = _REC_HEAD.unpack_from(buf, pos)
    payload = buf[pos + _REC_HEAD.size :]
    if magic != _REC_MAGIC or not payload or zlib.crc32(payload) != crc:
        return None
    try:
        record = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    ok = isinstance(record, dict) and record.get("t") in ("entry", "cost")
    return record if ok else None


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int, bool]:
    """Records of a journal, the byte offset after the last complete one, and whether a
    torn record follows it.

    A writer appends each record with one ``write`` + ``fsync``, so a crash can only leave
    the *last* record incomplete: shorter than its header says. That, and only that, is a
    torn tail (ignored here, dropped by the next writer). Anything else -- a record that
    fails its CRC, a bad header, zeros, a length running past the end while good records
    follow -- is damage that would silently lose completed results, so it is refused with
    the record's offset; ``nasforge bench repair`` salvages every record that checks out.
    """
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise BenchError(f"journal {str(path)!r} named by the manifest is missing") from None
    if not buf.startswith(JOURNAL_MAGIC):
        # Journals are created complete (atomic write), so a short header is damage too.
        raise _journal_corrupt(path, 0, "bad journal header")
    pos, end = len(JOURNAL_MAGIC), len(buf)
    records: list[dict[str, Any]] = []
    while pos < end:
        record, stop, why = _record_at(buf, pos)
        if record is None:
            torn = stop > end and _REC_MAGIC.startswith(buf[pos : pos + len(_REC_MAGIC)])
            if torn and _next_good_record(buf, pos + 1) is None:
                whole = _complete_tail(buf, pos)
                if whole is not None:
                    # every byte of the record is there: its length field is what is damaged
                    raise _journal_corrupt(
                        path,
                        pos,
                        f"record length field claims {stop - pos - _REC_HEAD.size} bytes but "
                        f"the complete {whole}-byte record ends the file (a damaged length, "
                        "not a torn write)",
                    )
                return records, pos, True
            raise _journal_corrupt(path, pos, why)
        records.append(record)
        pos = stop
    return records, pos, False


def _journal_corrupt(path: Path, pos: int, why: str) -> BenchError:
    return BenchError(
        f"journal {str(path)!r} is corrupt at byte {pos}: {why}; run "
        f"`nasforge bench repair {str(path.parent)!r}` to keep every record that checks out"
    )


def salvage_journal(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Every record of a (damaged) journal that passes its CRC, in order, and the byte
    ranges ``[start, stop)`` that had to be skipped. Never raises on content."""
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        return [], []
    pos = len(JOURNAL_MAGIC) if buf.startswith(JOURNAL_MAGIC) else 0
    records: list[dict[str, Any]] = []
    skipped: list[tuple[int, int]] = []
    while pos < len(buf):
        record, stop, _ = _record_at(buf, pos)
        if record is not None:
            records.append(record)
            pos = stop
            continue
        nxt = _next_good_record(buf, pos + 1)
        if nxt is None and (kept := _crc_checked_tail(buf, pos)) is not None:
            records.append(kept)  # only its length field was damaged: the CRC vouches for it
            break
        skipped.append((pos, len(buf) if nxt is None else nxt))
        if nxt is None:
            break
        pos = nxt
    return records, skipped


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def _open_npy(root: Path, rel: str, info: dict[str, Any], shape: tuple, dtype: str, mmap: bool):
    path = root / rel
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BenchError(
            f"table {str(root)!r} is damaged: column file {rel!r} is missing"
        ) from None
    if size != info["bytes"]:
        raise BenchError(
            f"table {str(root)!r} is damaged: {rel!r} has {size} bytes, the manifest "
            f"recorded {info['bytes']} (truncated or replaced)"
        )
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BenchError(f"table {str(root)!r}: cannot read {rel!r}: {exc}") from None
    if tuple(arr.shape) != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise BenchError(
            f"table {str(root)!r} is damaged: {rel!r} holds {arr.dtype}{tuple(arr.shape)}, "
            f"the manifest expects {dtype}{tuple(shape)}"
        )
    # A plain ndarray view of the memmap: same pages, but indexing skips memmap's overhead.
    return arr.view(np.ndarray) if mmap else arr


def _known_spaces() -> list[str]:
    from nasforge.bench.spaces import table_space_names

    return table_space_names()


def _load_group(root: Path, g: dict[str, Any], files: dict[str, Any], size: int) -> GroupData:
    S, R, M, E = len(g["seeds"]), g["num_rows"], len(g["metrics"]), g["epochs"]
    f = g["files"]
    rows = _open_npy(root, f["rows"], files[f["rows"]], (R,), "int64", mmap=False)
    if R and (rows.min() < 0 or rows.max() >= size):
        raise BenchError(
            f"table {str(root)!r} is damaged: group {g['dataset']}/{g['hp']} names an arch "
            f"index outside 0..{size - 1}"
        )
    status = _open_npy(root, f["status"], files[f["status"]], (R, S), "uint8", mmap=True)
    data = _open_npy(root, f["data"], files[f["data"]], (R, S, M, E), g["dtype"], mmap=True)
    return GroupData(
        dataset=g["dataset"],
        hp=g["hp"],
        seeds=[int(s) for s in g["seeds"]],
        rows=rows,
        metrics=list(g["metrics"]),
        epochs=int(E),
        final_only=bool(g["final_only"]),
        status=status,
        data=data,
    )


def recover_interrupted_overwrite(root: str | os.PathLike[str]) -> bool:
    """Undo an overwrite of ``root`` that crashed half-way; returns whether it restored one.

    :func:`write_table` replaces an existing table in two renames (``root`` ->
    ``.NAME.old-PID``, then the new build -> ``root``); a process killed between them
    leaves no table at ``root``. The old table is complete, so it is renamed back: the
    overwrite simply did not happen (the half-published build, if any, is left in its
    ``.NAME.building-PID`` directory, and the next :func:`write_table` by that pid or a
    rerun replaces it). Called on every open and write, so a reader never sees the gap.
    """
    root = Path(root)
    if root.exists() or not root.parent.is_dir():
        return False
    olds = [
        p
        for p in root.parent.glob(f".{glob_escape(root.name)}.old-*")
        if p.is_dir() and (p / MANIFEST).is_file()
    ]
    # Several can only be left by several crashes; the newest one is the last table written.
    for old in sorted(olds, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            os.rename(old, root)  # fails if another process restored it first: fine
        except OSError:
            continue
        _fsync_dir(root.parent)
        return True
    return False


def load_table(root: str | os.PathLike[str], *, replay: bool = True) -> TableState:
    """Open a table: manifest + memory-mapped columns + replay of the journal tail.

    A table left missing by a crashed overwrite is restored first
    (:func:`recover_interrupted_overwrite`)."""
    root = Path(root)
    recover_interrupted_overwrite(root)
    for attempt in range(3):  # a concurrent compaction may swap files under us: retry
        manifest = read_manifest(root)
        try:
            return _load(root, manifest, replay)
        except BenchError:
            if attempt == 2 or read_manifest(root).get("checksum") == manifest.get("checksum"):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _load(root: Path, manifest: dict[str, Any], replay: bool) -> TableState:
    space = manifest.get("space")
    try:
        size = table_space(space).size
    except BenchError:
        size = None
    if size is None or manifest.get("num_archs") != size:
        raise BenchError(
            f"table {str(root)!r} is for space {space!r} with "
            f"{manifest.get('num_archs')} archs; this nasforge reads "
            + ", ".join(f"{n!r} ({table_space(n).size})" for n in _known_spaces())
        )
    files = manifest["files"]
    groups: dict[tuple[str, str], GroupData] = {}
    for g in manifest["groups"]:
        gd = _load_group(root, g, files, size)
        groups[gd.key] = gd
    costs: dict[str, CostData] = {}
    for ds, c in manifest["costs"].items():
        values = _open_npy(
            root, c["file"], files[c["file"]], (size, len(c["metrics"])), "float64", True
        )
        costs[ds] = CostData(ds, current_cost_names(list(c["metrics"])), values)
    errors: list[dict[str, Any]] = []
    if manifest.get("errors"):
        try:
            errors = json.loads((root / manifest["errors"]).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BenchError(
                f"table {str(root)!r}: cannot read {manifest['errors']!r}: {exc}"
            ) from None
    state = TableState(root, manifest, groups, costs, errors)
    if replay:
        records, valid_end, torn = read_journal(root / manifest["journal"])
        state.journal_records, state.journal_valid_end, state.journal_torn = (
            records,
            valid_end,
            torn,
        )
        if records:
            apply_records(state, records)
    return state


# ---------------------------------------------------------------------------------------
# Merging journal records into columns
# ---------------------------------------------------------------------------------------
def _empty_group(dataset: str, hp: str, epochs: int, final_only: bool) -> GroupData:
    return GroupData(
        dataset,
        hp,
        [],
        np.zeros(0, np.int64),
        [],
        epochs,
        final_only,
        np.zeros((0, 0), np.uint8),
        np.zeros((0, 0, 0, epochs), np.float64),
    )


def _merge_group(base: GroupData, recs: list[dict[str, Any]]) -> GroupData:
    """A new in-memory group: ``base`` with the entry records applied (last one wins)."""
    seeds = sorted(set(base.seeds) | {int(r["seed"]) for r in recs})
    rows = np.union1d(base.rows, np.array([int(r["arch"]) for r in recs], np.int64))
    names: set[str] = set(base.metrics)
    for r in recs:
        names.update(r["curves"] if not base.final_only else r["final"])
    if not base.final_only and any(r["curves"].get("epoch_time") for r in recs):
        names.add(TRAIN_TIME)
    metrics = metric_order(names)
    S, R, M, E = len(seeds), len(rows), len(metrics), base.epochs
    dtype = base.data.dtype if base.data.size else np.dtype(np.float64)
    data = np.full((R, S, M, E), np.nan, dtype=dtype)
    status = np.zeros((R, S), np.uint8)
    if len(base.rows):
        r_idx = np.searchsorted(rows, base.rows)
        m_idx = [metrics.index(m) for m in base.metrics]
        for s_old, seed in enumerate(base.seeds):
            s_new = seeds.index(seed)
            status[r_idx, s_new] = base.status[:, s_old]
            for m_old, m_new in enumerate(m_idx):
                data[r_idx, s_new, m_new, :] = base.data[:, s_old, m_old, :]
    m_pos = {m: i for i, m in enumerate(metrics)}
    for rec in recs:
        s = seeds.index(int(rec["seed"]))
        r = int(np.searchsorted(rows, int(rec["arch"])))
        status[r, s] = STATUS_CODES[rec["status"]]
        data[r, s] = np.nan
        if rec["status"] != "ok":
            continue  # recorded, never served
        if base.final_only:
            for name, v in rec["final"].items():
                data[r, s, m_pos[name], 0] = np.nan if v is None else v
        else:
            for name, values in rec["curves"].items():
                data[r, s, m_pos[name], :] = np.asarray(
                    [np.nan if v is None else v for v in values], dtype=np.float64
                )
            if "epoch_time" in rec["curves"]:
                data[r, s, m_pos[TRAIN_TIME], :] = np.cumsum(data[r, s, m_pos["epoch_time"], :])
    return GroupData(base.dataset, base.hp, seeds, rows, metrics, E, base.final_only, status, data)


def record_epochs(rec: dict[str, Any]) -> tuple[int, bool]:
    """(epochs, final_only) an entry record implies."""
    if rec["curves"]:
        return len(next(iter(rec["curves"].values()))), False
    return 1, True


def apply_records(state: TableState, records: Iterable[dict[str, Any]]) -> set:
    """Apply journal records to ``state`` in memory; returns the touched group keys and
    cost datasets (``("cost", dataset)``)."""
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cost_recs: dict[str, list[dict[str, Any]]] = {}
    # Keyed by run so that a later record replaces an earlier error in O(1), not a rescan.
    errors = {(e["arch"], e["dataset"], e["hp"], e["seed"]): e for e in state.errors}
    for rec in records:
        if rec.get("t") == "entry":
            by_group.setdefault((rec["dataset"], rec["hp"]), []).append(rec)
            key = (rec["arch"], rec["dataset"], rec["hp"], rec["seed"])
            errors.pop(key, None)
            if rec["status"] != "ok" and rec.get("error") is not None:
                errors[key] = {
                    k: rec[k] for k in ("arch", "dataset", "hp", "seed", "status", "error")
                }
        elif rec.get("t") == "cost":
            cost_recs.setdefault(rec["dataset"], []).append(rec)
        else:
            raise BenchError(f"journal of {str(state.root)!r} holds an unknown record {rec!r}")
    state.errors = list(errors.values())
    # One merge per touched group whatever the number of records: merging copies the group.
    for key, recs in by_group.items():
        ok = [r for r in recs if r["status"] == "ok"]
        base = state.groups.get(key)
        if base is None:
            epochs, final_only = record_epochs(ok[0] if ok else recs[0])
            base = _empty_group(key[0], key[1], epochs, final_only)
        elif ok and record_epochs(ok[0]) != (base.epochs, base.final_only):
            if np.any(np.asarray(base.status) == STATUS_CODES["ok"]):
                raise BenchError(
                    f"group {key[0]}/{key[1]} has {base.epochs} epoch(s) per entry; a journal "
                    f"entry has {record_epochs(ok[0])[0]}"
                )
            # Only failed entries so far: the group's shape was a guess; take the real one.
            epochs, final_only = record_epochs(ok[0])
            base = GroupData(
                base.dataset,
                base.hp,
                list(base.seeds),
                base.rows,
                [],
                epochs,
                final_only,
                np.asarray(base.status).copy(),
                np.zeros((len(base.rows), len(base.seeds), 0, epochs)),
            )
        state.groups[key] = _merge_group(base, recs)
    for ds, recs in cost_recs.items():
        old = state.costs.get(ds)
        names = set(old.metrics) if old else set()
        for r in recs:  # old journals (an interrupted older build) use old cost names
            names_now = current_cost_names(list(r["values"]))
            r["values"] = dict(zip(names_now, r["values"].values(), strict=True))
            names.update(r["values"])
        metrics = cost_order(names)
        values = np.full((state.num_archs, len(metrics)), np.nan)
        if old is not None:
            for k, m in enumerate(old.metrics):
                values[:, metrics.index(m)] = old.values[:, k]
        for r in recs:
            for m, v in r["values"].items():
                values[int(r["arch"]), metrics.index(m)] = np.nan if v is None else v
        state.costs[ds] = CostData(ds, metrics, values)
    return set(by_group) | {("cost", ds) for ds in cost_recs}


def verify(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Full check of a table: manifest checksum and structure, every column file's size and
    sha256, and the journal's record CRCs (only a short last record is a tolerated torn
    tail). Raises :class:`BenchError` on the first problem."""
    root = Path(path)
    recover_interrupted_overwrite(root)
    manifest = read_manifest(root)
    for rel, info in manifest["files"].items():
        p = root / rel
        if not p.is_file():
            raise BenchError(f"table {str(root)!r}: {rel!r} is missing")
        if p.stat().st_size != info["bytes"] or file_sha256(p) != info["sha256"]:
            raise BenchError(f"table {str(root)!r}: {rel!r} fails its sha256 (corrupt)")
    records, _, torn = read_journal(root / manifest["journal"])
    load_table(root)  # headers and shapes
    return {
        "files": len(manifest["files"]),
        "bytes": sum(i["bytes"] for i in manifest["files"].values()),
        "journal_records": len(records),
        "journal_torn_tail": torn,
    }
