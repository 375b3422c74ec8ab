"""The engine and library import no pytest; the public API is importable and typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest_memguard


def test_the_package_imports_without_pytest() -> None:
    code = (
        "import sys, pytest_memguard, pytest_memguard.report, pytest_memguard.records;"
        "import pytest_memguard.compare, pytest_memguard.render, pytest_memguard.cli.reports;"
        "import pytest_memguard.cli.run, pytest_memguard.cli.machine;"
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
