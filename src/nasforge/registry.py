"""One registry type for every pluggable family: spaces, algorithms, evaluators, recipes.

Modelled on timm's ``register_model`` / ``create_model``: a family is a :class:`Registry`;
an implementation registers itself with a decorator in its own file, and users build
instances by name through :meth:`Registry.create`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasforge.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from string keys to factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``fn`` under ``name``; a second registration is an error."""

        def deco(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and self._entries[name] is not fn:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = fn
            return fn

        return deco

    @contextlib.contextmanager
    def temporary(self, name: str, fn: Callable[..., T]) -> Iterator[Callable[..., T]]:
        """Register ``fn`` under ``name`` for the duration of a ``with`` block (tests,
        experiments); the name must be free, and is free again afterwards."""
        self.register(name)(fn)
        try:
            yield fn
        finally:
            self._entries.pop(name, None)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the implementation registered under ``name``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
