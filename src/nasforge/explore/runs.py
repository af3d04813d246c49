"""Run directories the explorer shows, and how it finds them inside the opened paths.

A run kind is one class registered in :data:`RUN_KINDS`: ``detect(dir)`` says whether a
directory is one (by the file the command writes there), ``load`` reads it into the JSON
the page draws. The kinds: ``search`` (``nasforge search`` of a black-box algorithm:
``trajectories.jsonl`` + ``summary.json``), ``compare`` (``nasforge compare``:
``comparison.json`` and one ``search`` directory per algorithm), ``oneshot`` (a one-shot
``nasforge search``: ``search.json``), ``ranking`` (``nasforge study ranking``:
``ranking.json``).

Every file is read through :class:`Root`: the path is resolved (symlinks followed) and must
stay inside the resolved opened directory, so a link pointing elsewhere is never read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.registry import Registry

#: Points of the common grid search trajectories are averaged on (as ``curve.png``).
GRID_POINTS = 200
#: How deep below an opened directory tables and runs are looked for.
MAX_DEPTH = 4
#: Largest run file read (a 100-run trajectories.jsonl of a 12,000 s search is ~10 MB).
MAX_FILE_BYTES = 256 * 2**20


class Root:
    """An opened directory; reads only regular files that resolve inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve(strict=True)

    def inside(self, p: Path) -> Path | None:
        """``p`` resolved, or None when it leaves the root (a symlink out, ``..``)."""
        try:
            r = p.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return r if r == self.path or r.is_relative_to(self.path) else None

    def file(self, p: Path) -> Path | None:
        r = self.inside(p)
        return r if r is not None and r.is_file() else None

    def read_text(self, p: Path) -> str:
        r = self.file(p)
        if r is None:
            raise NasforgeError(f"{p} is not a file inside {self.path}")
        if r.stat().st_size > MAX_FILE_BYTES:
            raise NasforgeError(f"{p} is larger than {MAX_FILE_BYTES} bytes; not read")
        return r.read_text(encoding="utf-8")

    def read_json(self, p: Path) -> Any:
        return json.loads(self.read_text(p))

    def label(self, p: Path) -> str:
        """``p`` as shown on the page: the root's name and the path below it."""
        rel = p.resolve().relative_to(self.path)
        return str(Path(self.path.name) / rel) if str(rel) != "." else self.path.name


class RunKind:
    """One kind of run directory (see module doc)."""

    name: str = ""

    @staticmethod
    def detect(root: Root, d: Path) -> bool:
        raise NotImplementedError

    @staticmethod
    def load(root: Root, d: Path, context: LoadContext) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def consumes_children() -> bool:
        """Whether sub-directories belong to this run (not listed on their own)."""
        return False


class LoadContext:
    """What a run needs from the rest of the explorer: the opened tables (by resolved path)
    to draw a search's table optimum, and a space's cell drawing."""

    def __init__(self, tables: dict[Path, Any]) -> None:
        self.tables = tables

    def table_for(self, path: str | None) -> Any:
        if not path:
            return None
        try:
            return self.tables.get(Path(path).resolve())
        except OSError:
            return None


RUN_KINDS: Registry[RunKind] = Registry("run kind")


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _round(values: np.ndarray) -> list[float | None]:
    r = np.round(np.asarray(values, dtype=np.float64), 4)
    return [None if not math.isfinite(v) else v for v in r.tolist()]


def _search_algos(runs_by_algo: dict[str, list[Any]]) -> dict[str, Any]:
    """Per algorithm the mean best-so-far valid / test curve on a common grid with its 95%
    band (the same grid, mean and band as ``curve.png``: protocol.curve_on_grid /
    mean_band), and each run's returned arch."""
    from nasforge.search.protocol import curve_on_grid, mean_band

    all_runs = [r for rs in runs_by_algo.values() for r in rs]
    by_evals = bool(all_runs) and all_runs[0].budget.endswith("evals")
    x_kind = "evals" if by_evals else "time"
    if by_evals:
        x_max = float(max((r.num_evals for r in all_runs), default=1))
    else:
        x_max = max((float(r.times[-1]) for r in all_runs if r.num_evals), default=1.0)
    grid = np.linspace(0.0, max(x_max, 1e-9), GRID_POINTS)
    algos = []
    for algo, runs in runs_by_algo.items():
        curves = {}
        for metric in ("test", "valid"):
            mean, half, n = mean_band(curve_on_grid(runs, grid, metric=metric, x=x_kind))
            curves[metric] = {
                "mean": _round(mean),
                "lo": _round(mean - half),
                "hi": _round(mean + half),
                "n": n.tolist(),
            }
        algos.append(
            {
                "algo": str(algo),
                "runs": [
                    {
                        "seed": r.seed,
                        "evals": r.num_evals,
                        "final_arch": r.final_arch,
                        "final_valid": _finite(r.final_valid),
                        "final_test": _finite(r.final_test),
                    }
                    for r in runs
                ],
                "curves": curves,
            }
        )
    clock = all_runs[0].clock if all_runs else "simulated"
    return {
        "x_kind": x_kind,
        "x_label": "number of evaluations" if by_evals else f"{clock} time (seconds)",
        "grid": _round(grid),
        "algos": algos,
    }


def _optimum(meta: dict[str, Any], context: LoadContext) -> dict[str, Any]:
    """The table optimum (best reported test accuracy, as ``curve.png`` draws it) when the
    run's table is one of the opened ones; else why not."""
    ev = (meta or {}).get("evaluator") or {}
    if ev.get("name") != "tabular":
        return {"value": None, "note": "not a table search"}
    view = context.table_for(ev.get("bench"))
    if view is None:
        return {"value": None, "note": "open the run's table too to see its optimum"}
    from nasforge.evaluate import EVALUATORS

    try:
        evaluator = EVALUATORS.create(
            "tabular",
            view.bench,
            ev.get("requested_dataset") or ev.get("dataset"),
            hp=ev.get("hp"),
            report_hp=ev.get("report_hp"),
            report_dataset=ev.get("report_dataset"),
        )
        value = evaluator.optimum()
    except NasforgeError as exc:
        return {"value": None, "note": f"no optimum: {exc}"}
    return {"value": _finite(value), "table": view.label}


def _load_runs(root: Root, path: Path) -> list[Any]:
    from nasforge.search.base import RunResult

    text = root.read_text(path)
    return [RunResult.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


@RUN_KINDS.register("search")
class SearchRun(RunKind):
    """``nasforge search`` of a black-box algorithm."""

    name = "search"

    @staticmethod
    def detect(root: Root, d: Path) -> bool:
        return root.file(d / "trajectories.jsonl") is not None

    @staticmethod
    def load(root: Root, d: Path, context: LoadContext) -> dict[str, Any]:
        runs = _load_runs(root, d / "trajectories.jsonl")
        summary = root.read_json(d / "summary.json") if root.file(d / "summary.json") else {}
        meta = summary.get("meta") or {}
        algo = runs[0].algo if runs else summary.get("algo", "?")
        return {
            **_search_algos({algo: runs}),
            "summary": {k: v for k, v in summary.items() if k != "meta"},
            "evaluator": meta.get("evaluator") or {},
            "space": meta.get("space", "nb201"),
            "optimum": _optimum(meta, context),
        }


@RUN_KINDS.register("compare")
class CompareRun(RunKind):
    """``nasforge compare``: one ``search`` directory per algorithm."""

    name = "compare"

    @staticmethod
    def detect(root: Root, d: Path) -> bool:
        return root.file(d / "comparison.json") is not None

    @staticmethod
    def consumes_children() -> bool:
        return True

    @staticmethod
    def load(root: Root, d: Path, context: LoadContext) -> dict[str, Any]:
        comp = root.read_json(d / "comparison.json")
        meta = comp.get("meta") or {}
        runs: dict[str, list[Any]] = {}
        for s in comp.get("summaries") or []:
            algo = str(s.get("algo"))
            sub = d / algo
            # an algo name is a directory name below d: never a path elsewhere
            if os.sep in algo or algo in ("", ".", ".."):
                continue
            if root.file(sub / "trajectories.jsonl") is not None:
                runs[algo] = _load_runs(root, sub / "trajectories.jsonl")
        return {
            **_search_algos(runs),
            "summaries": comp.get("summaries") or [],
            "evaluator": meta.get("evaluator") or {},
            "space": meta.get("space", "nb201"),
            "optimum": _optimum(meta, context),
        }


@RUN_KINDS.register("oneshot")
class OneShotRun(RunKind):
    """A one-shot ``nasforge search``: per epoch the op distribution of every edge."""

    name = "oneshot"

    @staticmethod
    def detect(root: Root, d: Path) -> bool:
        if root.file(d / "search.json") is None:
            return False
        try:
            data = root.read_json(d / "search.json")
        except (ValueError, NasforgeError):
            return False
        return isinstance(data, dict) and isinstance(data.get("epochs"), list)

    @staticmethod
    def load(root: Root, d: Path, context: LoadContext) -> dict[str, Any]:
        from nasforge.explore.cells import cell_view

        data = root.read_json(d / "search.json")
        records = [r for r in data.get("epochs") or [] if isinstance(r, dict)]
        space = str(data.get("space") or "nb201")
        view = cell_view(space)
        probs = np.asarray([r.get("probs") for r in records], dtype=np.float64)
        edges: list[dict[str, Any]] = []
        if probs.ndim >= 2 and probs.size:
            probs = probs.reshape(len(records), -1, probs.shape[-1])
            ops = view.op_names(probs.shape[2])
            edges = [
                {
                    "edge": label,
                    "ops": [
                        {"op": ops[k], "values": _round(probs[:, e, k])}
                        for k in range(probs.shape[2])
                    ],
                }
                for e, label in enumerate(view.edge_labels(probs.shape[1]))
            ]
        final = data.get("arch") or (records[-1].get("arch") if records else None)
        try:
            cell = view.draw(final) if isinstance(final, str) else None
        except NasforgeError as exc:
            cell = {"kind": "error", "message": str(exc)}
        per_epoch = {
            k: [_finite(r.get(k)) for r in records]
            for k in ("train_acc", "valid_acc", "derived_valid_acc", "table_acc", "skip_share")
        }
        config = data.get("config") or {}
        return {
            "algo": data.get("algo"),
            "space": space,
            "dataset": data.get("dataset"),
            "seed": data.get("seed"),
            "status": data.get("status"),
            "warmup_epochs": config.get("warmup_epochs") or 0,
            "epochs": [r.get("epoch") for r in records],
            "archs": [r.get("arch") for r in records],
            "metrics": per_epoch,
            "edges": edges,
            "final_arch": final,
            "final_valid_acc": _finite(data.get("final_valid_acc")),
            "table": data.get("table"),
            "cell": cell,
        }


@RUN_KINDS.register("ranking")
class RankingRun(RunKind):
    """``nasforge study ranking``: supernet ranking vs the table over training."""

    name = "ranking"

    @staticmethod
    def detect(root: Root, d: Path) -> bool:
        return root.file(d / "ranking.json") is not None

    @staticmethod
    def consumes_children() -> bool:
        return True  # its supernet/ sub-directory is the study's own one-shot run

    @staticmethod
    def load(root: Root, d: Path, context: LoadContext) -> dict[str, Any]:
        data = root.read_json(d / "ranking.json")
        snaps = [s for s in data.get("snapshots") or [] if isinstance(s, dict)]
        last = snaps[-1] if snaps else {}
        return {
            "variant": data.get("variant"),
            "dataset": data.get("dataset"),
            "table": data.get("table"),
            "labels": [s.get("label") for s in snaps],
            "tau": [_finite(s.get("tau")) for s in snaps],
            "rho": [_finite(s.get("rho")) for s in snaps],
            "tau_prev": [_finite(s.get("tau_prev")) for s in snaps],
            "archs": data.get("archs") or [],
            "parts": data.get("parts") or [],
            "truth": [_finite(v) for v in data.get("truth") or []],
            "final_oneshot": [_finite(v) for v in last.get("oneshot_acc") or []],
            "topk_true_ranks": last.get("topk_true_ranks"),
            "timing": data.get("timing"),
        }


def walk(root: Root, start: Path, on_table: Callable[[Path], None]) -> Iterator[tuple[str, Path]]:
    """``(kind, directory)`` of every run below ``start`` (itself included), depth-first in
    name order; tables are handed to ``on_table``. Symlinked directories are followed only
    while they resolve inside ``root``; hidden entries are skipped."""
    from nasforge.bench.store import MANIFEST

    seen: set[Path] = set()

    def visit(d: Path, depth: int) -> Iterator[tuple[str, Path]]:
        r = root.inside(d)
        if r is None or not r.is_dir() or r in seen:
            return
        seen.add(r)
        if root.file(d / MANIFEST) is not None:
            on_table(d)
            return
        for name in RUN_KINDS.names():
            kind = RUN_KINDS.get(name)
            if kind.detect(root, d):
                yield name, d
                if kind.consumes_children():
                    return
                break
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(d.iterdir())
        except OSError:
            return
        for c in children:
            if not c.name.startswith(".") and c.is_dir():
                yield from visit(c, depth + 1)

    yield from visit(start, 0)


__all__ = ["RUN_KINDS", "LoadContext", "Root", "RunKind", "walk"]
