from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from pytest_memguard.plugin import PLUGIN_KEY
from pytest_memguard.plugin.settings import Settings

from ..sessions import InnerSession as InnerSession
from ..sessions import check_session, guarded_run


@pytest.fixture
def run(pytester: pytest.Pytester) -> InnerSession:
    """Run pytest with the guard on and a JSON report; returns the result and the report
    (:func:`tests.sessions.guarded_run`: validated, and no ``errors`` unless the test says
    ``errors=True``).  Runs are in a subprocess unless ``inprocess=True``."""
    return functools.partial(guarded_run, pytester)


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
    pytester: pytest.Pytester, run: InnerSession, marker: str
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
    assert entry(report, "test_bad")["outcome"] == "error"  # at its setup, as pytest says
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


def start_session(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    """Start ``pytest -p no:cacheprovider ARGS`` in its own process group (as a shell
    starts a job, or a CI runner a step), with SIGINT at its default."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.Popen(
        command,
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_files(
    pytester: pytest.Pytester, pattern: str, count: int, process: subprocess.Popen[bytes]
) -> None:
    """Wait until ``count`` files match ``pattern`` (the tests made them), at most 60 s."""
    deadline = time.monotonic() + 60
    while len(list(pytester.path.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"never {count} files {pattern}"
        assert process.poll() is None, process.communicate()[0].decode()
        time.sleep(0.05)


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """The output of a session started by :func:`start_session`, once it ended (it is
    killed, with its group, if it does not end in ``timeout`` seconds), checked for
    errors inside memguard."""
    try:
        stdout, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = stdout.decode()
    check_session(output, process.args)
    return output


def error_summary(line: str) -> str:
    """A short test summary line, matched up to its message: pytest words the message
    after ``" - "`` by version (7 and 8 leave it out for an error raised with
    ``pytrace=False``) and cuts it to the terminal's width, or leaves it out when the
    node id alone fills that (the message is checked in the test's own section)."""
    return line.split(" - ", 1)[0] + "*"
