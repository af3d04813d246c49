"""Bounded reading of user values and files: one parser for every value / file input.

Every value or file a user hands nasforge (``--param`` / ``--network`` ``KEY=VALUE``,
genotype text or JSON, ``zc --archs`` and ``study ranking --arch-set`` / ``bench build
--archs`` files) goes through this module, so each is refused with a one-line error
(a :class:`~nasforge.errors.NasforgeError` subclass chosen by the caller) *before* its
cost grows: a file that is not a regular file (a named pipe would block for ever), larger
than :data:`MAX_FILE_BYTES`, binary or not UTF-8; JSON nested deeper than
:data:`MAX_JSON_DEPTH` (the C scanner would raise ``RecursionError``); integers longer than
:data:`MAX_INT_DIGITS` digits (Python's own 4,300-digit guard raises a bare ``ValueError``);
``NaN`` / ``Infinity``. Each limit is read once from an environment variable of the same
name (``NASFORGE_MAX_FILE_BYTES`` ...) so a user who needs more can raise it.

Error messages quote the offending value through :func:`excerpt`: at most
:data:`EXCERPT_CHARS` characters and an ellipsis, so a 1 MB value never makes a 1 MB line.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError


def env_limit(name: str, default: int) -> int:
    """The limit ``name`` from the environment (``NASFORGE_<name>``), else ``default``."""
    raw = os.environ.get(f"NASFORGE_{name}")
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise NasforgeError(
            f"NASFORGE_{name}={excerpt(raw)} is invalid; expected a positive integer"
        )
    return int(text)


#: Characters of an offending value quoted in an error message.
EXCERPT_CHARS = 80
#: Largest value / arch / genotype file read (bytes); ``NASFORGE_MAX_FILE_BYTES`` raises it.
MAX_FILE_BYTES = 64 * 2**20
#: Deepest JSON nesting accepted; ``NASFORGE_MAX_JSON_DEPTH`` raises it (Python's parser
#: itself stops near 1,000 levels, so more than ~900 cannot be honoured).
MAX_JSON_DEPTH = 64
#: Longest integer literal accepted (digits); ``NASFORGE_MAX_INT_DIGITS`` raises it.
MAX_INT_DIGITS = 40
#: Largest integer a KEY=VALUE setting of a search / network / study may take;
#: ``NASFORGE_MAX_SETTING`` raises it.
MAX_SETTING = 10**6


def limit(name: str) -> int:
    """The current value of limit ``name`` (``MAX_FILE_BYTES``, ``MAX_JSON_DEPTH``,
    ``MAX_INT_DIGITS``, ``MAX_SETTING``): its environment override or the default above."""
    return env_limit(name, globals()[name])


def excerpt(value: Any, chars: int = EXCERPT_CHARS) -> str:
    """``repr``-like quote of ``value`` cut to ``chars`` characters plus ``…`` (the
    length is measured before ``repr`` runs on a huge string or a deep list)."""
    if isinstance(value, (str, bytes)):
        head = value[: chars + 1]
        text = repr(head)
        if len(value) > chars:
            return repr(head[:chars])[:-1] + "…" + text[0]
        return text
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a deep list, a huge int
        text = f"<{type(value).__name__}>"
    return text if len(text) <= chars else text[:chars] + "…"


def check_int_text(text: str, what: str, error: type[NasforgeError] = NasforgeError) -> None:
    """Refuse an integer literal longer than :data:`MAX_INT_DIGITS` digits (before
    ``int()`` spends quadratic time on it or hits Python's 4,300-digit guard); text that
    is not an integer literal passes."""
    body = text.strip().lstrip("+-")
    if not body.isdigit():
        return
    digits = len(body)
    cap = limit("MAX_INT_DIGITS")
    if digits > cap:
        raise error(
            f"{what}: an integer of {digits} digits ({excerpt(text, 20)}); expected at most "
            f"{cap} digits (NASFORGE_MAX_INT_DIGITS raises it)"
        )


def _json_depth(text: str) -> int:
    """Deepest ``[`` / ``{`` nesting of ``text`` outside strings, without recursion."""
    if "[" not in text and "{" not in text:
        return 0
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    # bytes inside strings do not count: mask them out (escaped quotes do not toggle)
    quote = raw == ord('"')
    if quote.any():
        backslash = raw == ord("\\")
        # a quote is escaped when an odd run of backslashes precedes it
        idx = np.flatnonzero(quote)
        escaped = np.zeros(idx.size, dtype=bool)
        for k, i in enumerate(idx.tolist()):
            j = i - 1
            while j >= 0 and backslash[j]:
                j -= 1
            escaped[k] = (i - 1 - j) % 2 == 1
        real = np.zeros(raw.size, dtype=np.int8)
        real[idx[~escaped]] = 1
        inside = (np.cumsum(real) % 2).astype(bool) & ~(real.astype(bool))
    else:
        inside = np.zeros(raw.size, dtype=bool)
    step = np.zeros(raw.size, dtype=np.int32)
    step[(raw == ord("[")) | (raw == ord("{"))] = 1
    step[(raw == ord("]")) | (raw == ord("}"))] = -1
    step[inside] = 0
    return int(np.cumsum(step).max(initial=0))


def _loads(text: str, what: str, error: type[NasforgeError]) -> Any:
    """``json.loads`` within the limits; a syntax error stays a ``JSONDecodeError``."""
    cap = limit("MAX_FILE_BYTES")
    if len(text) > cap:
        raise error(
            f"{what}: {len(text)} characters of JSON; expected at most {cap} "
            "(NASFORGE_MAX_FILE_BYTES raises it)"
        )
    depth, max_depth = _json_depth(text), limit("MAX_JSON_DEPTH")
    if depth > max_depth:
        raise error(
            f"{what}: JSON nested {depth} levels deep; expected at most {max_depth} "
            "(NASFORGE_MAX_JSON_DEPTH raises it)"
        )

    def parse_int(s: str) -> int:
        check_int_text(s, what, error)
        return int(s)

    def parse_float(s: str) -> float:
        if len(s) > 400:
            raise error(f"{what}: a number of {len(s)} characters ({excerpt(s, 20)})")
        v = float(s)
        if not math.isfinite(v):
            raise error(f"{what}: number {excerpt(s, 20)} overflows; expected a finite number")
        return v

    def parse_constant(s: str) -> Any:
        raise error(f"{what}: {s} is not a number JSON allows; expected a finite number")

    try:
        return json.loads(
            text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant
        )
    except RecursionError:  # a depth limit raised above what the parser can reach
        raise error(f"{what}: JSON nested too deeply for Python's parser") from None


def parse_json(text: str, what: str, error: type[NasforgeError] = NasforgeError) -> Any:
    """``json.loads(text)`` within the limits: size, nesting depth, integer digits, and no
    ``NaN`` / ``Infinity``; anything else is one line of ``error`` naming ``what``."""
    try:
        return _loads(text, what, error)
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} is malformed, not valid JSON ({exc.msg} at position {exc.pos}); "
            "expected well-formed JSON"
        ) from None


def read_text(
    path: str | os.PathLike[str],
    what: str,
    error: type[NasforgeError] = NasforgeError,
    max_bytes: int | None = None,
) -> str:
    """The UTF-8 text of regular file ``path``, refused before reading when it is not a
    regular file (a FIFO would block), larger than ``max_bytes`` (default
    :data:`MAX_FILE_BYTES`), binary (a NUL byte) or not UTF-8."""
    p = Path(path)
    name = excerpt(str(p), 256)
    try:
        st = p.stat()
    except OSError as exc:
        raise error(f"{what} {name} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {name} is not a regular file; expected a text file")
    cap = max_bytes if max_bytes is not None else limit("MAX_FILE_BYTES")
    hint = "" if max_bytes is not None else " (NASFORGE_MAX_FILE_BYTES raises it)"
    if st.st_size > cap:
        raise error(f"{what} {name} has {st.st_size} bytes; expected at most {cap}{hint}")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open returns
        with open(os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise error(f"{what} {name} is not a regular file; expected a text file")
            data = fh.read(cap + 1)
    except OSError as exc:
        raise error(f"{what} {name} cannot be read: {exc.strerror}") from None
    if len(data) > cap:
        raise error(f"{what} {name} is larger than {cap} bytes{hint}")
    if b"\0" in data:
        raise error(f"{what} {name} is not a text file (it holds NUL bytes); expected text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {name} is not a text file (not UTF-8 at byte {exc.start}); expected text"
        ) from None


def parse_setting(text: str, what: str, error: type[NasforgeError] = NasforgeError) -> Any:
    """The VALUE of a ``KEY=VALUE`` setting: JSON where it parses (numbers, booleans, lists,
    objects), else the string itself (``sgd``); bounded like :func:`parse_json` (a
    5,000-digit number or ``NaN`` is an error, not a string), and every number in it at
    most :data:`MAX_SETTING` in magnitude."""
    try:
        value = _loads(text, what, error)
    except json.JSONDecodeError:
        return text
    check_setting(value, what, error)
    return value


def check_setting(value: Any, what: str, error: type[NasforgeError] = NasforgeError) -> None:
    """Refuse an integer setting above :data:`MAX_SETTING` in magnitude (anywhere inside
    lists / objects) and a non-finite float: both would reach allocations or loops."""
    cap = limit("MAX_SETTING")
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, (int, np.integer)):
            if abs(int(v)) > cap:
                raise error(
                    f"{what}: {excerpt(v, 20)} is larger than the limit {cap}; raise it with "
                    f"NASFORGE_MAX_SETTING={int(abs(v))} if you mean it"
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise error(f"{what}: {v} is not a finite number")
            if abs(v) > cap:
                raise error(
                    f"{what}: {v:g} is larger than the limit {cap}; raise it with "
                    "NASFORGE_MAX_SETTING if you mean it"
                )
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
