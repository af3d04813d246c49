"""Exception types of nasforge.

Every error raised on bad user input is a subclass of :class:`NasforgeError`, so a caller
can catch the whole family, and its message names the bad value and what was expected.
"""

from __future__ import annotations


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose."""


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
