"""The search-space protocol every registered space implements.

A space is a small stateless object that knows how to make, change, print, parse and
encode its own architecture values (archai's ``discrete_search`` shape: the searcher
only ever talks to this interface, never to a concrete arch type). Arch values are
immutable and hashable (frozen dataclasses, tuples); equality means "same architecture".

Two optional capabilities sit on top of :class:`SearchSpace`:

- :class:`CategoricalSpace`: the arch is one choice per named position (NB201: 6 edges x 5
  ops; a width chain: one width per channel group). REINFORCE keeps one categorical
  distribution per position and BOHB one categorical hyperparameter per position, so both
  need it; random search, REA and local search need only :class:`SearchSpace`.
  :class:`CategoricalBase` implements the whole protocol from the three categorical methods.
- an index: :meth:`SearchSpace.index` is the arch's position in :meth:`~SearchSpace.enumerate`
  order (NB201: the official index) when the space is enumerable, else ``None``. Search
  records keep it next to the arch string, so table lookups stay integer operations.

Adding a space is one module (or package) implementing :class:`SearchSpace` plus one
``@SPACES.register("name")`` line; ``nasforge.spaces.get_space(name)`` builds it.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

from nasforge.errors import ArchError, SearchError

A = TypeVar("A", bound=Hashable)

#: Encoding kinds a space may offer through :meth:`SearchSpace.encode`.
#: ``onehot``: one-hot op per edge/position, flattened (every space).
#: ``adjacency``: flattened upper-triangular adjacency + one-hot ops per node (cell spaces).
#: ``path``: BANANAS path encoding, one bit per input-to-output op path (cell spaces).
#: ``trunc_path``: the path encoding cut to its first bits (naszilla's BANANAS default).
ENCODINGS = ("onehot", "adjacency", "path", "trunc_path")

#: A space whose size is at most this is enumerable and has an int64 index.
MAX_INDEXED_SIZE = 2**63 - 1


class Choice(NamedTuple):
    """One categorical position of a space: its name and its options (as printed)."""

    name: str
    options: tuple[str, ...]


@runtime_checkable
class SearchSpace(Protocol[A]):
    """What every search space provides.

    ``size()`` is the number of architectures, or ``None`` when astronomically large
    (more than :data:`MAX_INDEXED_SIZE`: the space cannot be enumerated or indexed).
    ``from_string`` raises the space's own error type (a ``nasforge.errors.NasforgeError``
    subclass) naming the bad token and the expected form. ``canonical`` returns the
    representative of the arch's equivalence class where the space has a de-duplication
    rule, and the arch itself otherwise. ``index`` is the position of the arch in
    ``enumerate()`` order, ``None`` when ``size()`` is ``None``. ``describe`` is a JSON-ready
    summary of the space (``nasforge space info``); ``describe_arch`` the JSON-ready
    space-specific details of one arch (``nasforge arch info``).
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

    def index(self, arch: A) -> int | None: ...

    def describe(self) -> dict[str, Any]: ...

    def describe_arch(self, arch: A) -> dict[str, Any]: ...


@runtime_checkable
class CategoricalSpace(SearchSpace[A], Protocol[A]):
    """A space whose archs are one option per named position.

    ``choices()`` lists the positions in a fixed order; ``to_choices(arch)`` gives the
    option index chosen at each position and ``from_choices(picks)`` builds the arch back
    (raising the space's error when the picks are out of range or form no valid arch).
    """

    def choices(self) -> tuple[Choice, ...]: ...

    def to_choices(self, arch: A) -> tuple[int, ...]: ...

    def from_choices(self, picks: Sequence[int]) -> A: ...


def require_categorical(space: SearchSpace[Any], who: str) -> CategoricalSpace[Any]:
    """``space`` as a :class:`CategoricalSpace`, or a :class:`SearchError` saying that
    ``who`` (an algorithm) needs one."""
    if not isinstance(space, CategoricalSpace):
        raise SearchError(
            f"{who} needs a categorical space (one option per position: choices(), "
            f"to_choices(), from_choices()); space {space.name!r} is not one"
        )
    return space


def check_kind(space: SearchSpace[Any], kind: str) -> None:
    """Raise :class:`ArchError` unless ``space`` offers encoding ``kind``."""
    if kind not in space.encodings():
        raise ArchError(
            f"space {space.name!r} has no {kind!r} encoding; expected one of "
            f"{list(space.encodings())}"
        )


class CategoricalBase:
    """The :class:`SearchSpace` protocol implemented from :meth:`choices`,
    :meth:`to_choices` and :meth:`from_choices` alone.

    ``sample`` draws every position uniformly; ``mutate`` changes one uniformly chosen
    position to a different, uniformly chosen option (REA's one-edge mutation);
    ``neighbors`` are all archs differing in exactly one position; ``onehot`` is one block
    of ``len(options)`` bits per position; the index is the mixed-radix number of the picks,
    first position most significant (``itertools.product`` order). Subclasses override what
    they define differently (NB201: the official index).
    """

    name: str = "categorical"

    def choices(self) -> tuple[Choice, ...]:
        raise NotImplementedError

    def to_choices(self, arch: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def from_choices(self, picks: Sequence[int]) -> Any:
        raise NotImplementedError

    # -- sizes ------------------------------------------------------------------------------
    def _radices(self) -> tuple[int, ...]:
        return tuple(len(c.options) for c in self.choices())

    def size(self) -> int | None:
        n = self.count()
        return n if n <= MAX_INDEXED_SIZE else None

    def count(self) -> int:
        """The exact number of architectures, however large (``size()`` is None above
        :data:`MAX_INDEXED_SIZE`, where the space has no index)."""
        n = 1
        for k in self._radices():
            n *= k
        return n

    # -- moves --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Any:
        radices = np.asarray(self._radices(), dtype=np.int64)
        picks = np.minimum((rng.random(len(radices)) * radices).astype(np.int64), radices - 1)
        return self.from_choices(picks.tolist())

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        radices = self._radices()
        movable = [i for i, k in enumerate(radices) if k > 1]
        if not movable:
            return arch
        picks = list(self.to_choices(arch))
        pos = movable[int(rng.integers(len(movable)))]
        others = [o for o in range(radices[pos]) if o != picks[pos]]
        picks[pos] = others[int(rng.integers(len(others)))]
        return self.from_choices(picks)

    def neighbors(self, arch: Any) -> list[Any]:
        picks = self.to_choices(arch)
        out = []
        for pos, k in enumerate(self._radices()):
            for o in range(k):
                if o != picks[pos]:
                    out.append(self.from_choices([*picks[:pos], o, *picks[pos + 1 :]]))
        return out

    # -- strings: "name=option,name=option,..." ------------------------------------------------
    def to_string(self, arch: Any) -> str:
        picks = self.to_choices(arch)
        return ",".join(
            f"{c.name}={c.options[p]}" for c, p in zip(self.choices(), picks, strict=True)
        )

    def from_string(self, text: str) -> Any:
        choices = self.choices()
        form = ",".join(f"{c.name}=<{'|'.join(c.options)}>" for c in choices)
        if not isinstance(text, str):
            raise ArchError(f"a {self.name} arch string must be a str, got {text!r}")
        tokens = [t.strip() for t in text.strip().split(",")]
        if len(tokens) != len(choices):
            raise ArchError(
                f"{self.name} arch {text!r} has {len(tokens)} position(s); expected "
                f"{len(choices)}, in the form {form}"
            )
        picks = []
        for c, token in zip(choices, tokens, strict=True):
            key, sep, value = token.partition("=")
            if not sep or key.strip() != c.name or value.strip() not in c.options:
                raise ArchError(
                    f"{self.name} arch token {token!r} in {text!r}; expected "
                    f"{c.name}=<one of {list(c.options)}>"
                )
            picks.append(c.options.index(value.strip()))
        return self.from_choices(picks)

    # -- encodings ----------------------------------------------------------------------------
    def encodings(self) -> tuple[str, ...]:
        return ("onehot",)

    def encode(self, arch: Any, kind: str = "onehot") -> np.ndarray:
        check_kind(self, kind)  # type: ignore[arg-type]
        return self._onehot(arch)

    def _onehot(self, arch: Any) -> np.ndarray:
        radices = self._radices()
        out = np.zeros(sum(radices), dtype=np.float32)
        offset = 0
        for p, k in zip(self.to_choices(arch), radices, strict=True):
            out[offset + p] = 1.0
            offset += k
        return out

    # -- identity -----------------------------------------------------------------------------
    def canonical(self, arch: Any) -> Any:
        return arch

    def enumerate(self) -> Iterator[Any]:
        if self.size() is None:
            raise ArchError(f"space {self.name!r} is too large to enumerate")
        for picks in itertools.product(*(range(k) for k in self._radices())):
            yield self.from_choices(picks)

    def index(self, arch: Any) -> int | None:
        if self.size() is None:
            return None
        i = 0
        for p, k in zip(self.to_choices(arch), self._radices(), strict=True):
            i = i * k + p
        return i

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "size": self.size(),
            "positions": {c.name: list(c.options) for c in self.choices()},
            "encodings": {
                k: int(self.encode(self.sample(np.random.default_rng(0)), k).size)
                for k in self.encodings()
            },
        }

    def describe_arch(self, arch: Any) -> dict[str, Any]:
        picks = self.to_choices(arch)
        return {c.name: c.options[p] for c, p in zip(self.choices(), picks, strict=True)}
