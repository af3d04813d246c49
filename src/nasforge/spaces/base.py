"""The search-space protocol every registered space implements.

A space is a small stateless object that knows how to make, change, print, parse and
encode its own architecture values (archai's ``discrete_search`` shape: the searcher
only ever talks to this interface, never to a concrete arch type). Arch values are
immutable and hashable (frozen dataclasses, tuples); equality means "same architecture".

Adding a space is one module (or package) implementing :class:`SearchSpace` plus one
``@SPACES.register("name")`` line; ``nasforge.spaces.get_space(name)`` builds it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

A = TypeVar("A", bound=Hashable)

#: Encoding kinds a space may offer through :meth:`SearchSpace.encode`.
#: ``onehot``: one-hot op per edge/position, flattened (every space).
#: ``adjacency``: flattened upper-triangular adjacency + one-hot ops per node (cell spaces).
#: ``path``: BANANAS path encoding, one bit per input-to-output op path (cell spaces).
ENCODINGS = ("onehot", "adjacency", "path")


@runtime_checkable
class SearchSpace(Protocol[A]):
    """What every search space provides.

    ``size()`` is the number of architectures, or ``None`` when astronomically large
    (the space cannot be enumerated). ``from_string`` raises the space's own error type
    (a ``nasforge.errors.NasforgeError`` subclass) naming the bad token and the expected
    form. ``canonical`` returns the representative of the arch's equivalence class where
    the space has a de-duplication rule, and the arch itself otherwise.
    """

    name: str

    def size(self) -> int | None: ...

    def sample(self, rng: np.random.Generator) -> A: ...

    def mutate(self, arch: A, rng: np.random.Generator) -> A: ...

    def neighbors(self, arch: A) -> list[A]: ...

    def to_string(self, arch: A) -> str: ...

    def from_string(self, text: str) -> A: ...

    def encode(self, arch: A, kind: str = "onehot") -> np.ndarray: ...

    def encodings(self) -> tuple[str, ...]: ...

    def canonical(self, arch: A) -> A: ...

    def enumerate(self) -> Iterator[A]: ...
