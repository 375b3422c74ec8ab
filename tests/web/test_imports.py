"""The web package imports no pytest and no web framework; its names are public."""

from __future__ import annotations

import subprocess
import sys

import pytest_memguard
import pytest_memguard.web


def test_the_web_package_imports_no_pytest_and_no_framework_not_even_aiohttp() -> None:
    code = (
        "import sys, pytest_memguard.web, pytest_memguard as m;"
        "m.memory_app, m.MemoryMonitorMiddleware, m.WSGIMemoryMonitorMiddleware;"
        "bad = {'pytest', '_pytest', 'uvicorn', 'starlette', 'fastapi', 'aiohttp'};"
        "bad &= set(sys.modules);"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_top_level_names_are_the_web_package_s() -> None:
    # The package re-exports what most services need; the rest stays in pytest_memguard.web.
    shared = set(pytest_memguard.__all__) & set(pytest_memguard.web.__all__)
    assert {"MemoryMonitorMiddleware", "WSGIMemoryMonitorMiddleware", "memory_app"} <= shared
    for name in shared:
        assert getattr(pytest_memguard, name) is getattr(pytest_memguard.web, name)
