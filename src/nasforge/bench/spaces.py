"""The search spaces a benchmark table can hold, and how a table names their archs.

A table stores results by *official index* (the position of the arch in the official
benchmark's ``meta_archs``), so everything the store and the read path need from a space
is the index <-> arch <-> string mapping and its size. One small adapter per space,
registered by name (``TABLE_SPACES``): ``nb201`` (15,625 cells, the NAS-Bench-201 /
NATS-Bench topology index) and ``nats-sss`` (32,768 channel configurations, the
NATS-Bench size index, ``"64:32:16:48:8"``). The manifest of a table names its space;
tables written before spaces existed are ``nb201``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from nasforge.errors import ArchError, BenchError
from nasforge.registry import Registry

#: The space of a table that does not name one, and of every table written before
#: tables could hold another.
DEFAULT_TABLE_SPACE = "nb201"


class TableSpace:
    """Index <-> arch <-> string of one space, as a table needs them (see module doc).

    ``arch(index)`` is the space's own arch value (an ``Arch`` for nb201, a tuple of
    channel counts for nats-sss); ``index(value)`` accepts that value, its official string
    or an index, and raises :class:`ArchError` naming the bad value otherwise.
    """

    name: str = ""
    #: Number of archs (the length of the official ``meta_archs``).
    size: int = 0

    def arch(self, index: int) -> Any:
        raise NotImplementedError

    def index(self, value: Any) -> int:
        raise NotImplementedError

    def to_string(self, arch: Any) -> str:
        raise NotImplementedError

    def string(self, index: int) -> str:
        """The official arch string of ``index``."""
        return self.to_string(self.arch(index))

    def strings(self) -> list[str]:
        """Every arch string in index order (the official ``meta_archs``), made once."""
        cached = self.__dict__.get("_strings")
        if cached is None:
            cached = self.__dict__["_strings"] = [self.string(i) for i in range(self.size)]
        return cached

    def canonical_indices(self) -> np.ndarray | None:
        """Index of each arch's equivalence-class representative, ``None`` where the space
        has no de-duplication rule."""
        return None

    def check_meta_archs(self, meta_archs: Any, source: str) -> None:
        """Refuse an official ``meta_archs`` list that is not this space's official order
        (indices would then disagree with the file's)."""
        if not isinstance(meta_archs, (list, tuple)) or len(meta_archs) != self.size:
            n = (
                len(meta_archs)
                if isinstance(meta_archs, (list, tuple))
                else type(meta_archs).__name__
            )
            raise BenchError(
                f"{source}: 'meta_archs' has {n} entries; expected {self.size} "
                f"(the {self.name} space)"
            )
        if list(meta_archs) == self.strings():
            return  # the common case, one list comparison
        for i, s in enumerate(meta_archs):
            if not isinstance(s, str):
                raise BenchError(f"{source}: meta_archs[{i}] is a {type(s).__name__}, not a string")
            try:
                ok = self.index(s) == i
            except ArchError as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise BenchError(
                    f"{source}: meta_archs[{i}] = {s[:80]!r} is not a {self.name} arch ({msg})"
                ) from None
            if not ok:
                raise BenchError(
                    f"{source}: meta_archs[{i}] = {s[:80]!r} is not the arch of official "
                    f"index {i}; the file does not follow the official {self.name} order"
                )


TABLE_SPACES: Registry[TableSpace] = Registry("table space")


@TABLE_SPACES.register("nb201")
class NB201TableSpace(TableSpace):
    """NAS-Bench-201 / NATS-Bench topology cells (the official 15,625-entry index)."""

    name = "nb201"

    def __init__(self) -> None:
        from nasforge.spaces.nb201 import NUM_ARCHS

        self.size = NUM_ARCHS

    def arch(self, index: int) -> Any:
        from nasforge.spaces.nb201 import Arch

        return Arch.from_index(index)

    def index(self, value: Any) -> int:
        from nasforge.spaces.nb201 import Arch

        return Arch.parse(value).to_index()

    def to_string(self, arch: Any) -> str:
        return arch.to_string()

    def canonical_indices(self) -> np.ndarray:
        from nasforge.spaces.nb201 import canonical_indices

        return canonical_indices()


@TABLE_SPACES.register("nats-sss")
class NATSSizeTableSpace(TableSpace):
    """NATS-Bench size space: 5 channel counts from {8, ..., 64}, ``"64:32:16:48:8"``, in
    the official index order (``traverse_net`` of AutoDL-Projects
    ``exps/NATS-Bench/sss-collect.py``)."""

    name = "nats-sss"

    def __init__(self) -> None:
        from nasforge.spaces.nats_sss import CANDIDATES, NUM_LAYERS, SIZE, NATSSizeSpace

        self._space = NATSSizeSpace()
        self._candidates = CANDIDATES
        self._layers = NUM_LAYERS
        self.size = SIZE
        self._index_of: dict[str, int] | None = None

    def strings(self) -> list[str]:
        # The index is the base-8 number of the candidate positions, first layer most
        # significant: itertools.product order (the space's own rule, made in one pass).
        cached = self.__dict__.get("_strings")
        if cached is None:
            cands = [str(c) for c in self._candidates]
            cached = [":".join(p) for p in itertools.product(cands, repeat=self._layers)]
            self.__dict__["_strings"] = cached
        return cached

    def arch(self, index: int) -> tuple[int, ...]:
        return self._space.arch_from_index(index)

    def string(self, index: int) -> str:
        if not 0 <= int(index) < self.size:
            raise ArchError(f"nats-sss index {index} outside 0..{self.size - 1}")
        return self.strings()[int(index)]

    def index(self, value: Any) -> int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if 0 <= value < self.size:
                return int(value)
            raise ArchError(f"nats-sss index {value} outside 0..{self.size - 1}")
        if isinstance(value, str):
            if self._index_of is None:
                self._index_of = {s: i for i, s in enumerate(self.strings())}
            i = self._index_of.get(value)
            if i is not None:
                return i
            # not verbatim official: the space parses it (spacing) or names what is wrong
            return int(self._space.index(self._space.from_string(value)))
        if isinstance(value, Sequence):
            return int(self._space.index(tuple(value)))
        raise ArchError(
            f"a nats-sss arch is an index, a string like '64:32:16:48:8' or 5 channel "
            f"counts; got {type(value).__name__}"
        )

    def to_string(self, arch: Any) -> str:
        return self._space.to_string(arch)


@cache
def table_space(name: str = DEFAULT_TABLE_SPACE) -> TableSpace:
    """The (shared, stateless) adapter of the table space ``name``; an unknown name is a
    :class:`BenchError` listing the known ones."""
    if name not in TABLE_SPACES:
        raise BenchError(
            f"a table cannot hold space {name!r}; tables hold one of {TABLE_SPACES.names()}"
        )
    return TABLE_SPACES.create(name)


def table_space_names() -> list[str]:
    return TABLE_SPACES.names()


__all__ = [
    "DEFAULT_TABLE_SPACE",
    "TABLE_SPACES",
    "NATSSizeTableSpace",
    "NB201TableSpace",
    "TableSpace",
    "table_space",
    "table_space_names",
]
