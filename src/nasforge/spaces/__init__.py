"""Search spaces: pure Python + numpy values describing what can be searched."""

from nasforge.registry import Registry
from nasforge.spaces.nb201 import Arch, all_archs, unique_archs

#: Registry of search spaces by name; an entry returns a small info object.
SPACES: Registry = Registry("search space")

__all__ = ["SPACES", "Arch", "all_archs", "unique_archs"]
from nasforge.spaces import darts as _darts  # noqa: E402,F401  (registers "darts")
