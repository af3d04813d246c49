"""Importers: official NAS-Bench-201 / NATS-Bench files, the NB201 results export CSV and
plain CSV / Parquet tables."""

from __future__ import annotations

import os
from pathlib import Path

from nasforge.bench.importers.nb201_export import import_nb201_export, is_nb201_export
from nasforge.bench.importers.official import (
    OFFICIAL_READERS,
    import_official,
    read_nats_sss,
    read_nats_tss,
    read_nb201,
)
from nasforge.bench.importers.plain import import_plain
from nasforge.bench.safe_pickle import require_regular_file
from nasforge.errors import BenchError

FORMATS = ("auto", "nb201", "nats-tss", "nats-sss", "nb201-export", "csv", "parquet")


def detect_format(src: str | os.PathLike[str]) -> str:
    """Guess the format of ``src`` from its name and layout."""
    p = Path(src)
    if not p.exists():
        raise BenchError(f"import source {str(p)!r} does not exist")
    name = p.name.lower()
    if p.is_dir():
        if (p / "meta.pickle.pbz2").is_file():
            return _nats_kind(p)
        if any(q.name.endswith("-FULL.pth") for q in p.iterdir()):
            return "nb201"
        raise BenchError(
            f"directory {str(p)!r} is neither a NATS-Bench directory "
            "(meta.pickle.pbz2) nor an NB201 archive (NNNNNN-FULL.pth); pass --format"
        )
    if name.endswith((".pth", ".pt")):
        return "nb201"
    if name.endswith(".pickle.pbz2") or name.endswith(".pbz2"):
        return _nats_kind(p)
    if name.endswith((".csv", ".tsv", ".txt")):
        return "nb201-export" if is_nb201_export(p) else "csv"  # the header tells
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise BenchError(
        f"cannot tell the format of {str(p)!r} from its name; pass --format "
        "nb201 | nats-tss | nats-sss | csv | parquet"
    )


def _nats_kind(p: Path) -> str:
    """Topology or size: the official names say (``NATS-tss-...``, ``NATS-sss-...``); a
    renamed directory is told by its ``meta_archs`` (read through the restricted
    unpickler); a renamed single file is taken as topology (reading a multi-GB file to
    tell would cost the import twice): pass ``--format nats-sss``."""
    name = p.name.lower()
    if "nats-sss" in name:
        return "nats-sss"
    if "nats-tss" in name:
        return "nats-tss"
    if p.is_dir():
        from nasforge.bench.importers.official import space_of_meta_archs
        from nasforge.bench.safe_pickle import load_bz2_pickle

        meta = load_bz2_pickle(p / "meta.pickle.pbz2")
        archs = meta.get("meta_archs") if isinstance(meta, dict) else None
        try:
            space = space_of_meta_archs(archs, repr(str(p)))
        except BenchError:
            return "nats-tss"  # the reader reports what is wrong with the file
        return "nats-sss" if space == "nats-sss" else "nats-tss"
    return "nats-tss"


def import_table(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str = "auto",
    dataset: str | None = None,
    hp: str = "final",
    columns: dict[str, str] | None = None,
    acc_scale: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Import ``src`` into a new table at ``out`` (what ``nasforge bench import`` runs).

    A CSV in the NB201 results-export layout (:mod:`nasforge.bench.importers.nb201_export`)
    is recognised by its header under ``format="csv"`` too (that layout holds two recipes per
    dataset, which a plain final-metrics import cannot express), unless ``columns``,
    ``dataset`` or ``hp`` ask for a plain import explicitly.
    """
    if format not in FORMATS:
        raise BenchError(f"format {format!r} unknown; expected one of {list(FORMATS)}")
    if Path(src).exists() and not Path(src).is_dir():
        # before anything opens it: a named pipe would block the import for ever
        require_regular_file(Path(src))
    fmt = detect_format(src) if format == "auto" else format
    if fmt in OFFICIAL_READERS:
        return import_official(src, out, kind=fmt, overwrite=overwrite)
    plain_asked = columns is not None or dataset is not None or hp != "final"
    if fmt == "nb201-export" or (fmt == "csv" and not plain_asked and is_nb201_export(src)):
        return import_nb201_export(src, out, overwrite=overwrite)
    return import_plain(
        src,
        out,
        dataset=dataset,
        hp=hp,
        columns=columns,
        acc_scale=acc_scale,
        overwrite=overwrite,
        # An explicit --format is checked against the content; "auto" follows the content.
        format=None if format == "auto" else fmt,
    )


__all__ = [
    "FORMATS",
    "detect_format",
    "import_nb201_export",
    "import_official",
    "import_plain",
    "import_table",
    "is_nb201_export",
    "read_nats_sss",
    "read_nats_tss",
    "read_nb201",
]
