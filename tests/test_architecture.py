"""The import rules of docs/architecture.md, checked on the source with ``ast``.

The graph has one node per module of alertd/ and an edge for every ``import``
of another alertd module, at the top of a module or inside a function.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "alertd"

# package -> the alertd packages and modules it must never import (docs/architecture.md, "What may import what")
FORBIDDEN = {
    "engine": {"store", "sources", "dispatch", "providers", "api", "ui", "runtime", "cli"},
    "providers": {"api", "ui", "store", "dispatch", "engine", "sources", "runtime", "cli"},
    "rules": {"store", "sources", "dispatch", "providers", "api", "ui", "runtime", "cli"},
    "sources": {"store", "dispatch", "providers", "api", "ui", "runtime", "cli"},
    "dispatch": {"api", "ui", "runtime", "cli"},
    "inbound": {"api", "ui", "runtime", "cli"},
    "api": {"cli", "runtime"},
    "ui": {"cli", "runtime"},
    "runtime": {"cli"},
}
# modules any package may import although their package is forbidden to it:
# the counters every stage of the pipeline bumps where things happen
SHARED = {"alertd.runtime.metrics"}


def modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _targets(name: str, is_package: bool, node: ast.Import | ast.ImportFrom, known) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".")
        if not is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # `from . import x` imports the module x; `from .store import Store` the package store
    return [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]


def imports(package: Path = PACKAGE) -> list[tuple[str, str, int, bool, Path]]:
    """(importer, imported, line, inside a function, file) for every import of an alertd module."""
    known = modules(package)
    edges = []
    for name, (path, is_package) in sorted(known.items()):
        def visit(node, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(name, is_package, child, known):
                        if target == "alertd" or target.startswith("alertd."):
                            edges.append((name, target, child.lineno, in_function, path))
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))
        visit(ast.parse(path.read_text("utf-8")), False)
    return edges


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(edges, forbidden=FORBIDDEN) -> list[str]:
    out = []
    for src, dst, line, _, path in edges:
        here, there = _package(src), _package(dst)
        if here == there:
            continue
        if there in forbidden.get(here, ()) and dst not in SHARED:
            out.append(f"{_show(path)}:{line}: {src} imports {dst}")
        if here == "store":  # the database layer stands alone: a second backend is new modules behind it
            out.append(f"{_show(path)}:{line}: {src} imports {dst} (store imports only store)")
    return out


def cycles(edges) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), and self-imports."""
    graph: dict[str, set[str]] = {}
    for src, dst, *_ in edges:
        graph.setdefault(src, set()).add(dst)
        graph.setdefault(dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def unexplained_late_imports(edges) -> list[str]:
    """Imports of alertd modules inside a function without a comment on that line,
    or on the line above it or above the block of imports it belongs to."""
    out = []
    for src, dst, line, in_function, path in edges:
        if not in_function:
            continue
        lines = path.read_text("utf-8").splitlines()
        above = line - 2
        while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
            above -= 1
        if "#" not in lines[line - 1] and not (above >= 0 and lines[above].strip().startswith("#")):
            out.append(f"{_show(path)}:{line}: {src} imports {dst} inside a function without saying why")
    return out


def test_the_packages_import_only_what_the_architecture_allows():
    assert violations(imports()) == []


def test_there_is_no_import_cycle_between_alertd_modules():
    assert cycles(imports()) == []


def test_an_alertd_module_is_imported_inside_a_function_only_with_a_comment_saying_why():
    assert unexplained_late_imports(imports()) == []


def test_nothing_outside_the_store_imports_sqlite3():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n and n.split(".")[0] == "sqlite3" for n in names):
                offenders.append(f"{_show(path)}:{node.lineno}")
    assert offenders == []


# --- the checks themselves catch what they are for ---------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "alertd" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "alertd"


def test_the_checks_find_a_forbidden_import_a_cycle_and_a_silent_late_import(tmp_path):
    pkg = _tree(tmp_path, {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/evaluate.py": "from ..store import Store\n",
        "store/__init__.py": "from ..clock import now\nclass Store: ...\n",
        "clock.py": "def now():\n    from .config import tz\n    return tz\n",
        "config.py": "from . import clock\ntz = None\n",
        "providers/__init__.py": "def f():\n    # the API is loaded late: it needs the provider first\n"
                                 "    from ..api import app\n",
        "api/__init__.py": "app = None\n",
    })
    edges = imports(pkg)
    found = violations(edges)
    assert any("alertd.engine.evaluate imports alertd.store" in v for v in found)
    assert any("alertd.store imports alertd.clock (store imports only store)" in v for v in found)
    assert any("alertd.providers imports alertd.api" in v for v in found)
    assert cycles(edges) == [["alertd.clock", "alertd.config"]]
    late = unexplained_late_imports(edges)
    assert len(late) == 1 and "alertd.clock imports alertd.config inside a function" in late[0]


@pytest.mark.parametrize("text, target", [
    ("from . import phones\n", "alertd.phones"),
    ("from .store import Store\n", "alertd.store"),
    ("import alertd.clock\n", "alertd.clock"),
])
def test_the_graph_resolves_each_form_of_import(tmp_path, text, target):
    pkg = _tree(tmp_path, {"__init__.py": "", "phones.py": "", "clock.py": "", "store/__init__.py": "",
                           "cli.py": text})
    assert [(src, dst) for src, dst, *_ in imports(pkg) if src == "alertd.cli"] == [("alertd.cli", target)]
