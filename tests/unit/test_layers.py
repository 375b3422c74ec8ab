"""The engine and library import no pytest, the layers import one way and no module
imports itself back; the public API is importable and typed."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest_memguard

PACKAGE = Path(pytest_memguard.__file__).parent


def test_the_package_imports_without_pytest() -> None:
    code = (
        "import sys, pytest_memguard, pytest_memguard.report, pytest_memguard.crashlog;"
        "import pytest_memguard.compare, pytest_memguard.render, pytest_memguard.cli.reports;"
        "import pytest_memguard.cli.run, pytest_memguard.cli.machine;"
        "import pytest_memguard.html_report, pytest_memguard.timeline;"
        "assert 'pytest' not in sys.modules, 'pytest was imported';"
        "assert '_pytest' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_exported() -> None:
    for name in pytest_memguard.__all__:
        assert hasattr(pytest_memguard, name), name
    assert pytest_memguard.__version__ != "0+unknown"


def test_py_typed_and_schema_ship_with_the_package() -> None:
    root = Path(pytest_memguard.__file__).parent
    assert (root / "py.typed").exists()
    assert (root / "report.schema.json").exists()


def test_memory_limit_exceeded_is_a_memguard_error_but_not_an_exception() -> None:
    assert issubclass(pytest_memguard.MemoryLimitExceeded, pytest_memguard.MemguardError)
    assert not issubclass(pytest_memguard.MemoryLimitExceeded, Exception)
    assert issubclass(pytest_memguard.MemoryBudgetExceeded, Exception)
    assert issubclass(pytest_memguard.SizeError, ValueError)


def _module_name(path: Path) -> str:
    parts = ["pytest_memguard", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _run_time_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run (at import or in a function), not those only for typing."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for stmt in node.orelse for n in _run_time_imports_of(stmt))
            continue
        yield from _run_time_imports_of(node)


def _run_time_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _run_time_imports(node)


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _run_time_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
            continue
        base = package
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
        if not node.level and not target.startswith("pytest_memguard"):
            continue
        for alias in node.names:  # ``from . import terminal`` imports a module
            sub = f"{target}.{alias.name}"
            found.add(sub if sub in modules else target)
    return {module for module in found if module in modules and module != name}


def test_no_module_imports_itself_back_at_run_time() -> None:
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    cycles = []
    for start in graph:  # a depth-first search from each module back to itself
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            name, trail = stack.pop()
            for nxt in graph[name]:
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert not cycles, "\n".join(sorted(set(cycles)))


def test_the_engine_imports_nothing_above_it() -> None:
    """``probe/`` imports only itself, ``core/`` only itself and ``probe/``; both may use
    the package's exceptions (``errors.py``, which imports nothing)."""
    modules = _modules()
    allowed = {
        "pytest_memguard.probe": ("pytest_memguard.probe",),
        "pytest_memguard.core": ("pytest_memguard.core", "pytest_memguard.probe"),
    }
    assert not _imported("pytest_memguard.errors", modules["pytest_memguard.errors"], modules)
    wrong = []
    for name, path in modules.items():
        for layer, below in allowed.items():
            if name == layer or name.startswith(layer + "."):
                for imported in _imported(name, path, modules):
                    ok = imported == "pytest_memguard.errors" or any(
                        imported == b or imported.startswith(b + ".") for b in below
                    )
                    if not ok:
                        wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)
