"""Every third-party module nasforge imports comes from a dependency it declares.

A fresh install gets only the declared dependencies: typer once stopped bringing click, and
the main command died on new machines while this suite passed (another extra pulled click
in). Module-level imports must come from the core dependencies (``import nasforge.x`` runs
them on a plain install); imports inside functions may come from an optional extra.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[ <>=!~\[;]", req, maxsplit=1)[0])


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(core dependency names, extra -> names) from pyproject.toml."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in meta["dependencies"]}
    extras = {
        k: {_requirement_name(r) for r in v if not r.startswith("nasforge")}
        for k, v in meta.get("optional-dependencies", {}).items()
    }
    return core, extras


def imports(source: str) -> list[tuple[str, bool]]:
    """(top-level module, imported at module level?) for each absolute import in ``source``;
    imports under ``if TYPE_CHECKING:`` are not run and are skipped."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name.split(".")[0], module_level) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module.split(".")[0], module_level))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, module_level and not inner)

    visit(ast.parse(source), True)
    return out


def problems(files: dict[str, str]) -> list[str]:
    """The undeclared imports of ``files`` (name -> source), one line each."""
    core, extras = declared()
    any_extra = set().union(*extras.values()) if extras else set()
    dists = packages_distributions()
    found = []
    for name, source in sorted(files.items()):
        for top, module_level in imports(source):
            if top in sys.stdlib_module_names or top in ("nasforge", "__future__"):
                continue
            provided = {_norm(d) for d in dists.get(top, [])}
            if not provided:
                found.append(f"{name}: imports {top!r}, which no installed distribution provides")
            elif module_level and not provided & core:
                found.append(
                    f"{name}: imports {top!r} at module level; {sorted(provided)} is not a "
                    "core dependency (a plain install lacks it)"
                )
            elif not provided & (core | any_extra):
                found.append(f"{name}: imports {top!r}; {sorted(provided)} is not declared")
    return found


def test_every_import_in_src_is_declared() -> None:
    files = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "src").rglob("*.py")}
    assert problems(files) == []


def test_the_check_catches_undeclared_and_extra_only_module_imports() -> None:
    # click arrives with typer/ray here but is declared nowhere: caught wherever it is.
    bad = problems({"a.py": "import click\n", "b.py": "def f():\n    import click\n"})
    assert len(bad) == 2 and all("'click'" in b for b in bad)
    # pyarrow is declared in an extra: fine inside a function, not at module level.
    assert problems({"c.py": "def f():\n    import pyarrow\n"}) == []
    bad = problems({"d.py": "import pyarrow\n"})
    assert len(bad) == 1 and "module level" in bad[0]
    assert (
        problems(
            {"e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import click\n"}
        )
        == []
    )


@pytest.mark.parametrize("lock", ["requirements/lock.txt", "requirements/lowest.txt"])
def test_locks_pin_every_declared_dependency_and_the_tested_torch(lock: str) -> None:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.partition("==")
            pins[_norm(name.strip())] = version.strip()
    core, extras = declared()
    wanted = core | (set().union(*extras.values()) if lock.endswith("lock.txt") else set())
    assert sorted(wanted - set(pins)) == []
    assert pins["torch"] == "2.13.0"
