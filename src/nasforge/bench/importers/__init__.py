"""Importers: official NAS-Bench-201 / NATS-Bench files and plain CSV / Parquet tables."""

from __future__ import annotations

import os
from pathlib import Path

from nasforge.bench.importers.official import import_official, read_nats_tss, read_nb201
from nasforge.bench.importers.plain import import_plain
from nasforge.errors import BenchError

FORMATS = ("auto", "nb201", "nats-tss", "csv", "parquet")


def detect_format(src: str | os.PathLike[str]) -> str:
    """Guess the format of ``src`` from its name and layout."""
    p = Path(src)
    if not p.exists():
        raise BenchError(f"import source {str(p)!r} does not exist")
    name = p.name.lower()
    if p.is_dir():
        if (p / "meta.pickle.pbz2").is_file():
            return "nats-tss"
        if any(q.name.endswith("-FULL.pth") for q in p.iterdir()):
            return "nb201"
        raise BenchError(
            f"directory {str(p)!r} is neither a NATS-Bench topology directory "
            "(meta.pickle.pbz2) nor an NB201 archive (NNNNNN-FULL.pth); pass --format"
        )
    if name.endswith((".pth", ".pt")):
        return "nb201"
    if name.endswith(".pickle.pbz2") or name.endswith(".pbz2"):
        return "nats-tss"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise BenchError(
        f"cannot tell the format of {str(p)!r} from its name; pass --format "
        "nb201 | nats-tss | csv | parquet"
    )


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
    """Import ``src`` into a new table at ``out`` (what ``nasforge bench import`` runs)."""
    if format not in FORMATS:
        raise BenchError(f"format {format!r} unknown; expected one of {list(FORMATS)}")
    fmt = detect_format(src) if format == "auto" else format
    if fmt in ("nb201", "nats-tss"):
        return import_official(src, out, kind=fmt, overwrite=overwrite)
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
    "import_official",
    "import_plain",
    "import_table",
    "read_nats_tss",
    "read_nb201",
]
