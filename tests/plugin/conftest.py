from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from pytest_memguard import load_schema
from pytest_memguard.plugin import PLUGIN_KEY
from pytest_memguard.plugin.settings import Settings

Run = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]


@pytest.fixture
def run(pytester: pytest.Pytester) -> Run:
    """Run pytest with the guard on and a JSON report; returns the result and the report.

    The report is validated against the shipped JSON Schema every time.  Runs are in a
    subprocess by default, because real RSS, threads and signals matter.
    """

    def _run(*args: str, inprocess: bool = False) -> tuple[pytest.RunResult, dict[str, Any]]:
        path = pytester.path / "memguard.json"
        argv = ("--memguard", f"--memguard-json={path}", "-p", "no:cacheprovider", *args)
        result = pytester.runpytest(*argv) if inprocess else pytester.runpytest_subprocess(*argv)
        assert path.exists(), "the JSON report was not written"
        report: dict[str, Any] = json.loads(path.read_text())
        jsonschema.validate(report, load_schema())
        return result, report

    return _run


def entry(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The report's entry of the test whose node id ends with ``name``."""
    (found,) = [t for t in report["tests"] if t["nodeid"].endswith(name)]
    assert isinstance(found, dict)
    return found


def settings(pytester: pytest.Pytester, *args: str) -> Settings:
    """The settings a guarded run with ``args`` resolves (a usage error raises)."""
    config = pytester.parseconfigure(*args)
    try:
        return config.stash[PLUGIN_KEY].settings
    finally:
        config._ensure_unconfigure()


def run_bad_marker(
    pytester: pytest.Pytester, run: Run, marker: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """A session of ``test_bad``, marked ``memory_budget({marker})``, and ``test_good``:
    the bad marker errors its test only, with no traceback."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.memory_budget({marker})
        def test_bad():
            pass

        def test_good():
            pass
        """
    )
    result, report = run(inprocess=True)
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert entry(report, "test_bad")["outcome"] == "failed"
    return result, report


#: A test that catches memguard's stop and goes on allocating, 16 MiB at a time.
STUBBORN = """
def test_stubborn():
    chunks = []
    while True:
        try:
            while True:
                chunks.append(bytearray(16 * 2**20))
        except BaseException:  # catches memguard's stop, and goes on
            continue
"""


#: A test that holds ``size`` bytes until the test ``other`` holds its own and then its
#: worker is killed (or for 20 s); it writes ``<name>.pid`` and ``<name>.done``.
HOLD = """
import os
import time
from pathlib import Path

import psutil

def test_hold_{name}():
    held = bytearray({size})
    mine = Path("{name}.pid")
    mine.write_text(str(os.getpid()))
    other = Path("{other}.pid")
    for _ in range(400):  # wait for the other worker, then for the controller
        if Path("{other}.done").exists():  # xdist runs a killed loadfile test again
            return
        if other.exists():
            try:
                if psutil.Process(int(other.read_text())).status() == psutil.STATUS_ZOMBIE:
                    break
            except (psutil.NoSuchProcess, ValueError):
                break
        time.sleep(0.05)
    Path("{name}.done").write_text("")
"""
