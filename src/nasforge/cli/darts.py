"""Reading a DARTS genotype from the command line (``nasforge train --space darts --arch``)."""

from __future__ import annotations

from pathlib import Path

from nasforge.spaces.darts import PUBLISHED, Genotype, GenotypeError


def read_genotype(value: str) -> Genotype:
    """A genotype from a published name, a repr, a JSON string, or a path to a file holding
    a repr or JSON (the forms ``--arch`` accepts)."""
    text = value.strip()
    if text in PUBLISHED or "(" in text or text.startswith("{"):
        return Genotype.parse(text)
    path = Path(text)
    if path.is_file():
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise GenotypeError(f"cannot read genotype file {value!r} ({exc})") from None
    elif "/" in text or path.suffix:
        raise GenotypeError(
            f"genotype file {value!r} does not exist; expected a published name "
            f"{sorted(PUBLISHED)}, a Genotype(...) repr, JSON, or a file holding one"
        )
    return Genotype.parse(text)
