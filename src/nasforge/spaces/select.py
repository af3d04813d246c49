"""Choosing and reading architectures of a space from what a user typed.

:func:`select_archs` turns ``all`` / a count / a file into arch strings (``nasforge zc
--archs``); :func:`read_arch` reads one arch from its string form or a file holding it
(``nasforge train --arch``). Both go through the space's interface only, so they serve
every registered space.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import ArchError, NasforgeError
from nasforge.inputs import check_int_text, excerpt, parse_json, read_text
from nasforge.spaces.base import SearchSpace

__all__ = ["read_arch", "select_archs"]


def select_archs(spec: str, seed: int, space: SearchSpace[Any]) -> list[str]:
    """The archs ``spec`` names, as strings of ``space`` (what ``nasforge zc --archs``
    takes): ``all`` (a space with a finite size), a number N (N distinct archs drawn with
    ``seed``) or a file of arch strings (one per line, or a JSON list; NB201 also takes
    official indices), all through the space's interface."""
    text = spec.strip()
    size = space.size()
    if text == "all":
        if size is None or size > 10**6:
            raise NasforgeError(
                f"--archs all: the {space.name} space is too large to enumerate; give a number"
            )
        return [space.to_string(a) for a in space.enumerate()]
    if text.isascii() and text.isdigit():
        check_int_text(text, "--archs")
        n = int(text)
        if n < 1 or (size is not None and n > size):
            raise NasforgeError(f"--archs {spec!r}: a count must be in 1..{size or 'inf'}")
        if size is not None and size <= 10**6:
            # a space small enough to list: a seeded permutation of its archs (NB201: in
            # official index order, so N is the same sample as a permutation of the indices)
            every = list(space.enumerate())
            idx = np.random.default_rng(seed).permutation(len(every))[:n]
            return [space.to_string(every[int(i)]) for i in idx]
        rng = np.random.default_rng(seed)
        out: dict[str, None] = {}
        for _ in range(100 * n):
            out.setdefault(space.to_string(space.sample(rng)))
            if len(out) == n:
                break
        return list(out)
    path = Path(text)
    if not path.is_file():
        raise NasforgeError(
            f"--archs {spec!r} is neither 'all', a number of archs nor an existing file"
        )
    body = read_text(path, "--archs file")
    if body.lstrip().startswith("["):
        items = parse_json(body, f"--archs file {excerpt(str(path), 256)}")
        if not isinstance(items, list):
            raise NasforgeError(
                f"--archs file {excerpt(str(path), 256)} holds JSON that is not a list"
            )
    else:
        items = body.split()
    out_list = []
    for item in items:
        value = item.get("arch") if isinstance(item, dict) else item
        if isinstance(value, str):
            check_int_text(value, "--archs file entry")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise NasforgeError(
                f"--archs file entry {excerpt(value)} is not an arch string or index"
            )
        out_list.append(space.to_string(space.from_string(str(value))))
    if not out_list:
        raise NasforgeError(f"--archs file {path} lists no architecture")
    return out_list


def read_arch(space: SearchSpace[Any], arch: str) -> tuple[Any, str]:
    """An arch of ``space`` and its canonical string, from its string form or from a file
    holding it (plain text, or JSON with an ``"arch"`` field, as ``search -o DIR`` writes
    arch.json). Bad input is an :class:`ArchError` (a too-large, non-UTF-8 or malformed
    file) or the space's own parse error."""
    text = arch
    path = Path(arch)
    if _is_file(path):
        if path.stat().st_size > 1 << 20:
            raise ArchError(
                f"{arch}: an arch file of {path.stat().st_size} bytes; expected < 1 MiB"
            )
        try:
            text = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ArchError(f"{arch} is not a UTF-8 text file holding an arch") from None
        if text.startswith("{"):
            doc = _json_object(text)
            if doc is not None and isinstance(doc.get("arch"), str):
                text = doc["arch"]
            # else the text is the arch itself (a DARTS genotype's JSON form): the space's
            # parser says what is wrong with it
    elif "/" in arch and not any(c in arch for c in "|([{"):
        # a path that is not there: say so, rather than how it fails to parse as an arch
        raise ArchError(
            f"arch file {excerpt(arch, 256)} does not exist; expected an arch of the "
            f"{space.name} space or a file holding one"
        )
    value = space.from_string(text)
    return value, space.to_string(value)


def _json_object(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None where it is not one (or not JSON at all)."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_file(path: Path) -> bool:
    """Whether ``path`` names an existing file (an arch string too long to be a file name,
    or one the OS cannot take as a name, is not one)."""
    if len(str(path)) >= 4096:
        return False
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
