"""Exception types of nasforge.

Every error raised on bad user input is a subclass of :class:`NasforgeError`, so a caller
can catch the whole family, and its message names the bad value and what was expected.
"""

from __future__ import annotations

import re

#: Longest quoted value an error message keeps (characters; then ``…``), and the longest
#: message (its head and tail are kept): a 1 MB arch string must not make a 1 MB line.
#: A safety net for every message; values checked by :mod:`nasforge.inputs` are quoted
#: shorter still (80 characters), while a path of a few hundred characters stays whole.
QUOTE_CHARS = 256
MESSAGE_CHARS = 4000

_LONG = QUOTE_CHARS + 1
_QUOTED = re.compile(f"'[^'\\n]{{{_LONG},}}'|\"[^\"\\n]{{{_LONG},}}\"")


def bound_message(message: str) -> str:
    """``message`` with each quoted value longer than :data:`QUOTE_CHARS` cut to that many
    characters and ``…``, and the whole cut to :data:`MESSAGE_CHARS` (head and tail kept)."""
    if len(message) <= QUOTE_CHARS:
        return message
    out = _QUOTED.sub(lambda m: m.group()[: QUOTE_CHARS + 1] + "…" + m.group()[0], message)
    if len(out) > MESSAGE_CHARS:
        tail = MESSAGE_CHARS // 4
        out = out[: MESSAGE_CHARS - tail] + " … " + out[-tail:]
    return out


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose. A message's quoted values are
    bounded (:func:`bound_message`), whatever the raiser passed."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (bound_message(args[0]), *args[1:])
        super().__init__(*args)


class ArchError(NasforgeError, ValueError):
    """An architecture string, index or value that is not a valid member of its space."""


class RegistryError(NasforgeError, KeyError):
    """A name that is not registered (or registered twice)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(NasforgeError, ValueError):
    """A dataset directory, file or split that is missing, truncated or malformed."""


class RecipeError(NasforgeError, ValueError):
    """An unknown recipe or an invalid recipe field."""


class NetworkError(NasforgeError, ValueError):
    """A network shape (channels, cells) the network cannot be built with."""


class BenchError(NasforgeError, ValueError):
    """A benchmark table that is missing, corrupt, foreign, or asked for what it lacks."""


class SearchError(NasforgeError, ValueError):
    """A search configuration that cannot run (unknown algorithm, bad budget, ...)."""


class CheckpointError(NasforgeError, ValueError):
    """A checkpoint that is missing, unreadable, or belongs to a different run."""


class OutputError(NasforgeError, OSError):
    """An output path that cannot be written: a directory where a file is needed, a file
    where a directory is needed, read-only, or under a file. (An ``OSError`` too, so code
    that handles I/O failures keeps working.)"""


class TaskError(NasforgeError, ValueError):
    """A task name, a task option or a task / space / recipe combination is invalid."""
