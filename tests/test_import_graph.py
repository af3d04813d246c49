"""The package's import graph stays free of circles and of cross-package private imports.

The graph is built from the source with :mod:`ast` (nothing is imported): an edge A -> B for
every ``import`` / ``from ... import`` of a ``nasforge`` module B anywhere in A, at module
level or inside a function (a lazy import still ties the two modules together), except
under ``if TYPE_CHECKING:`` (never executed). ``from P import name`` where ``P.name`` is a
module is an edge to that module. A module's import of its own package's ``__init__`` is
not an edge: Python runs the ``__init__`` before any of its modules anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Circles that remain, each a set of modules: a registry that loads its built-in entries
#: on first use while the entries import the registry (``cost.blocks`` needs torch, which
#: ``nasforge.cost`` defers); removing it needs a rework of the cost package's loading.
KNOWN_CIRCLES: list[frozenset[str]] = [
    # cost.registry.load_torch_costs imports cost.blocks (it needs torch) on first use
    frozenset({"nasforge.cost.blocks", "nasforge.cost.counter", "nasforge.cost.registry"}),
]


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skip.update(id(n) for n in ast.walk(node))
    return skip


def _imports(module: str, is_pkg: bool, tree: ast.AST) -> list[tuple[str, tuple[str, ...], int]]:
    """``(imported module, names, line)`` of every runtime ``nasforge`` import in ``tree``."""
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            found.append((base, tuple(a.name for a in node.names), node.lineno))
    return [f for f in found if f[0] == "nasforge" or f[0].startswith("nasforge.")]


def _graph(root: Path = SRC) -> tuple[dict[str, set[str]], list[str]]:
    mods = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    private: list[str] = []
    for module, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own_pkg = module if is_pkg else module.rpartition(".")[0]
        ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        deps: set[str] = set()
        for target, names, line in _imports(module, is_pkg, tree):
            for name in names or ("",):
                full = f"{target}.{name}" if name else target
                dep = full if full in mods else resolve(target)
                if dep is not None and dep != module and dep not in ancestors:
                    deps.add(dep)
                # a private name of a module outside this module's own package
                if name.startswith("_") and not name.startswith("__") and full not in mods:
                    target_pkg = (
                        target if mods.get(target, (None, True))[1] else target.rpartition(".")[0]
                    )
                    if target_pkg != own_pkg:
                        rel = path.relative_to(root).as_posix()
                        private.append(f"{rel}:{line}: from {target} import {name}")
        graph[module] = deps
    return graph, private


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


@pytest.fixture(scope="module")
def graph_and_private() -> tuple[dict[str, set[str]], list[str]]:
    return _graph()


def test_no_new_import_circles(graph_and_private) -> None:
    graph, _ = graph_and_private
    assert "nasforge.bench.query" in graph and "nasforge.run.base" in graph  # the walk saw src
    new = [sorted(c) for c in _circles(graph) if c not in KNOWN_CIRCLES]
    assert not new, f"import circles: {new}"


def test_the_removed_circles_stay_removed(graph_and_private) -> None:
    """The circles issue #25 named, one edge each way once."""
    graph, _ = graph_and_private
    for a, b in [
        ("nasforge.bench.export", "nasforge.bench.query"),
        ("nasforge.run.base", "nasforge.run.local"),
        ("nasforge.run.base", "nasforge.run.ray"),
        ("nasforge.search.oneshot.base", "nasforge.search.oneshot.loop"),
    ]:
        assert not (b in graph[a] and a in graph[b]), f"{a} <-> {b}"


def test_no_private_names_imported_across_packages(graph_and_private) -> None:
    _, private = graph_and_private
    assert not private, "private names imported from another package:\n" + "\n".join(private)


def test_the_checks_see_a_circle_and_a_private_import(tmp_path) -> None:
    """The walk itself: a planted circle and a planted private import are found."""
    pkg = tmp_path / "nasforge"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    for p in (pkg, pkg / "a", pkg / "b"):
        (p / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from nasforge.a.y import g\n")
    (pkg / "a" / "y.py").write_text("from nasforge.a import x\n_h = 1\n")
    (pkg / "b" / "z.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nasforge.a.x import f\n"
        "from nasforge.a.y import _h\n"
    )
    graph, private = _graph(tmp_path)
    assert _circles(graph) == [frozenset({"nasforge.a.x", "nasforge.a.y"})]
    assert "nasforge.a.x" not in graph["nasforge.b.z"]  # TYPE_CHECKING is no edge
    assert private == ["nasforge/b/z.py:4: from nasforge.a.y import _h"]
