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
        "import sys, pytest_memguard.reporting.report, pytest_memguard.reporting.crashlog;"
        "import pytest_memguard.reporting.compare, pytest_memguard.reporting.render;"
        "import pytest_memguard.reporting.merge, pytest_memguard.reporting.html_report.shards;"
        "import pytest_memguard.reporting.html_report, pytest_memguard.reporting.timeline;"
        "import pytest_memguard.library.cache, pytest_memguard.library.monitor;"
        "import pytest_memguard.library.ledger;"
        "import pytest_memguard.cli.reports, pytest_memguard.cli.run, pytest_memguard.cli.machine;"
        "import pytest_memguard.cli.histories, pytest_memguard.reporting.historyfile;"
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
    assert (root / "reporting" / "report.schema.json").exists()


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


#: Each layer (a subpackage) and the layers it may import besides itself; any module may
#: use the package's exceptions (``errors.py``, which imports nothing).
LAYERS = {
    "probe": (),
    "core": ("probe",),
    "reporting": ("core", "probe"),
    "library": ("core", "probe"),
    "web": ("library", "core", "probe"),
    "plugin": ("reporting", "library", "core", "probe"),
    "cli": ("reporting", "library", "core", "probe"),
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer() -> None:
    """The package root holds only the public names and the exceptions."""
    modules = _modules()
    loose = [
        name
        for name in modules
        if _layer(name) is None and name not in ("pytest_memguard", "pytest_memguard.errors")
    ]
    assert not loose, loose


def test_no_module_name_twice() -> None:
    names = [path.stem for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, twice


def test_the_layers_import_one_way() -> None:
    """engine (probe <- core) <- report model <- plugin and CLI; engine <- runtime library
    <- services (web)."""
    modules = _modules()
    assert not _imported("pytest_memguard.errors", modules["pytest_memguard.errors"], modules)
    wrong = []
    for name, path in modules.items():
        layer = _layer(name)
        if layer is None:
            continue
        allowed = {layer, *LAYERS[layer]}
        for imported in _imported(name, path, modules):
            if imported != "pytest_memguard.errors" and _layer(imported) not in allowed:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)
