"""Reading a DARTS genotype from the command line (``nasforge train --space darts --arch``)."""

from __future__ import annotations

from pathlib import Path

from nasforge.inputs import excerpt, read_text
from nasforge.spaces.darts import MAX_GENOTYPE_CHARS, PUBLISHED, Genotype, GenotypeError


def read_genotype(value: str) -> Genotype:
    """A genotype from a published name, a repr, a JSON string, or a path to a file holding
    a repr or JSON (the forms ``--arch`` accepts)."""
    text = value.strip()
    if text in PUBLISHED or "(" in text or text.startswith("{"):
        return Genotype.parse(text)
    path = Path(text)
    if path.is_file():
        text = read_text(path, "genotype file", GenotypeError, max_bytes=MAX_GENOTYPE_CHARS)
        text = text.strip()
    elif "/" in text or path.suffix:
        raise GenotypeError(
            f"genotype file {excerpt(value)} does not exist; expected a published name "
            f"{sorted(PUBLISHED)}, a Genotype(...) repr, JSON, or a file holding one"
        )
    return Genotype.parse(text)
