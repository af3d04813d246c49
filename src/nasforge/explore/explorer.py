"""The opened sources: tables and run directories found in the paths given to
``nasforge explore``, each under a short id the page asks for (``t0``, ``r3``, ...).

The server never takes a path from a request: it answers by id from what was found here
at start, so nothing outside the opened paths can be named, let alone served.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.explore.runs import MAX_DEPTH, RUN_KINDS, LoadContext, Root, walk
from nasforge.explore.tables import ExploreError, NotFound, TableView


class Explorer:
    """Everything ``nasforge explore PATH...`` opened (see module doc).

    A path is a table directory, a run directory, or a directory searched (depth
    :data:`~nasforge.explore.runs.MAX_DEPTH`) for both. A path that does not exist or
    holds neither is an :class:`ExploreError` naming it, raised before any server starts.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, warm: bool = True) -> None:
        if not paths:
            raise ExploreError("no path given; expected table or run directories")
        self.tables: dict[str, TableView] = {}
        self._runs: dict[str, tuple[str, Root, Path]] = {}
        self._loaded: dict[str, dict[str, Any]] = {}
        for raw in paths:
            p = Path(raw)
            if not p.is_dir():
                raise ExploreError(
                    f"{str(raw)!r} is not a directory; expected a table (a directory with "
                    "manifest.json) or a run directory (`nasforge search -o DIR`, "
                    "`nasforge compare`, `nasforge study ranking`)"
                )
            root = Root(p)
            before = len(self.tables) + len(self._runs)

            def add_table(d: Path, root: Root = root) -> None:
                tid = f"t{len(self.tables)}"
                self.tables[tid] = TableView(d, root.label(d))

            for kind, d in walk(root, root.path, add_table):
                self._runs[f"r{len(self._runs)}"] = (kind, root, d)
            if len(self.tables) + len(self._runs) == before:
                raise ExploreError(
                    f"{str(raw)!r} holds no table and no run directory (looked "
                    f"{MAX_DEPTH} levels deep); expected a table directory (manifest.json) or the "
                    f"output of a run ({', '.join(RUN_KINDS.names())})"
                )
        self._context = LoadContext({v.path.resolve(): v for v in self.tables.values()})
        if warm:
            for view in self.tables.values():
                view.warm()
            for rid in self._runs:
                # a damaged run is answered again, with its message, when the page asks
                with contextlib.suppress(ExploreError):
                    self.run(rid)

    # -- what the page lists ------------------------------------------------------------------
    def sources(self) -> dict[str, Any]:
        return {
            "tables": [{"id": tid, **v.describe()} for tid, v in self.tables.items()],
            "runs": [
                {"id": rid, "kind": kind, "label": root.label(d)}
                for rid, (kind, root, d) in self._runs.items()
            ],
        }

    def table(self, tid: str) -> TableView:
        view = self.tables.get(tid)
        if view is None:
            raise NotFound(f"no table {tid[:40]!r}; open tables: {sorted(self.tables)}")
        return view

    def run(self, rid: str) -> dict[str, Any]:
        """The run's data for the page (read once, then cached)."""
        entry = self._runs.get(rid)
        if entry is None:
            raise NotFound(f"no run {rid[:40]!r}; open runs: {sorted(self._runs)}")
        cached = self._loaded.get(rid)
        if cached is None:
            kind, root, d = entry
            try:
                body = RUN_KINDS.get(kind).load(root, d, self._context)
            except (NasforgeError, ValueError, KeyError, TypeError, OSError) as exc:
                # a damaged or half-written run file: say which, keep serving the rest
                raise ExploreError(
                    f"run {root.label(d)} ({kind}) cannot be read: {type(exc).__name__}: {exc}"
                ) from None
            cached = {"id": rid, "kind": kind, "label": root.label(d), **body}
            self._loaded[rid] = cached
        return cached


__all__ = ["Explorer"]
