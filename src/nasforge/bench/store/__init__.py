"""On-disk store of a benchmark table: memory-mapped columns + a crash-safe append journal.

A table is a directory::

    TABLE/
      manifest.json          format name, version, schema, file list with sizes and sha256,
                             and a sha256 of the manifest itself
      arrays/*.npy           compacted columns, one set per (dataset, hp) group:
                               <gen>-<g>-data.npy    float [seeds, rows, metrics, epochs]
                               <gen>-<g>-status.npy  uint8 [seeds, rows] (0 = no entry)
                               <gen>-<g>-rows.npy    int64 [rows], the official arch indices
                             and per dataset <gen>-cost-<d>.npy float64 [15625, costs]
      errors-<gen>.json      messages of failed / diverged entries (only if any)
      journal-<gen>.log      append-only records written since the last compaction
      .lock                  held (flock) by the one writer: an appending builder, a repair,
                             or an importer replacing the table

Read path: parse the small manifest, ``np.load(mmap_mode="r")`` each column (only the .npy
header is read), replay the journal tail (normally empty). No byte of the data is read
until it is queried.

Write path: every record is appended to the journal as ``magic | length | crc32 | JSON``
with a single ``write`` followed by ``fsync``; a process killed at any moment leaves a
journal whose complete records all pass their CRC and at most one torn record at the tail
(shorter than its header says), which readers ignore and the next writer truncates. Any
other damage (a failed CRC, zeros, a wrong length while good records follow) is refused
with its byte offset and never truncated: :func:`salvage_journal` (``nasforge bench
repair``) recovers every record that checks out. Compaction writes the merged columns
under new generation-numbered names, fsyncs them, then atomically replaces the manifest
(which names the new files and a fresh journal); files the manifest no longer names are
removed afterwards, so a crash at any point leaves either the old or the new table.

Checksums: the manifest carries its own sha256 (checked at every open) and, per column
file, its byte size (checked at every open, together with the .npy header's shape and
dtype) and its sha256 (checked on demand by :func:`verify`, ``nasforge bench verify``):
hashing gigabytes at open would defeat the point of memory-mapping them.

The store is a package of three modules: :mod:`.layout` (the format's names and the
in-memory forms), :mod:`.read` (the read path and :func:`verify`) and :mod:`.write` (the
write path). The read half never imports the write half.
"""

from nasforge.bench.store.layout import (
    ARRAYS_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    JOURNAL_MAGIC,
    LOCK_FILE,
    MANIFEST,
    CostData,
    GroupData,
    TableState,
    file_sha256,
    glob_escape,
)
from nasforge.bench.store.read import (
    apply_records,
    load_table,
    read_journal,
    read_manifest,
    record_epochs,
    recover_interrupted_overwrite,
    salvage_journal,
    verify,
)
from nasforge.bench.store.write import (
    MAX_SEEDS,
    MAX_TABLE_BYTES,
    GenerationWriter,
    atomic_write_bytes,
    collect_garbage,
    commit_generation,
    encode_record,
    lock_table,
    write_table,
)

__all__ = [
    "ARRAYS_DIR",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "JOURNAL_MAGIC",
    "LOCK_FILE",
    "MANIFEST",
    "MAX_SEEDS",
    "MAX_TABLE_BYTES",
    "CostData",
    "GenerationWriter",
    "GroupData",
    "TableState",
    "apply_records",
    "atomic_write_bytes",
    "collect_garbage",
    "commit_generation",
    "encode_record",
    "file_sha256",
    "glob_escape",
    "load_table",
    "lock_table",
    "read_journal",
    "read_manifest",
    "record_epochs",
    "recover_interrupted_overwrite",
    "salvage_journal",
    "verify",
    "write_table",
]
