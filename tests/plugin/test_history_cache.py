"""The files a guarded run reads (``--memguard-baseline``, ``--memguard-history``, the
peaks in pytest's cache) and the peaks it keeps there: a corrupt file or a FIFO is one
line, never a traceback or a wait; runs that end together lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memguard.reporting.history import KEEP_RUNS

from ..sessions import check_session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs")

#: Deeper than any JSON parser's recursion.
NESTED = "[" * 100_000
#: Where a run keeps the tests' peaks (pytest's cache folder under the rootdir).
CACHED = ".pytest_cache/d/memguard/peaks.json"
#: A FIFO test's run would never end if memguard waited on it: a timeout ends it.
TIMEOUT = 120


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--memguard", "-p", "no:randomly", *args, timeout=TIMEOUT)


def _no_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    assert "internal error" not in text


def _make(pytester: pytest.Pytester, kind: str, name: str) -> tuple[Path, str]:
    """A bad file of ``kind`` at ``name``, and the reason it is refused."""
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)  # no writer ever opens it: a read that waited would never end
        return path, "it is a FIFO (named pipe), not a regular file"
    path.write_text(NESTED)
    return path, "not valid JSON (nested too deeply)"


@pytest.mark.parametrize("kind", ["nested", "fifo"])
@pytest.mark.parametrize(
    ("option", "more"),
    [("baseline", []), ("history", ["-n", "2", "--memguard-pack"])],
)
def test_a_bad_baseline_or_history_is_a_usage_error_of_one_line(
    pytester: pytest.Pytester, kind: str, option: str, more: list[str]
) -> None:
    if option == "history":
        pytest.importorskip("xdist")
    pytester.makepyfile("def test_one(): pass")
    path, reason = _make(pytester, kind, "bad.json")
    result = _run(pytester, f"--memguard-{option}={path}", *more)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"ERROR: --memguard-{option}: ")
    assert f"{path}: {reason}" in errors[0]
    _no_traceback(result)


def test_a_history_whose_tests_are_not_a_list_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile("def test_one(): pass")
    history = pytester.path / "history.json"
    history.write_text(json.dumps({"schema": "pytest-memguard/1", "tests": "oops"}))
    result = _run(pytester, "-n", "2", "--memguard-pack", f"--memguard-history={history}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --memguard-history: {history}: \"tests\" is 'oops', not a list of test entries"]
    )
    _no_traceback(result)


def test_a_historys_bad_entries_are_left_out_with_one_notice(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_one="def test_one(): pass")
    history = pytester.path / "history.json"
    entries = [
        {"nodeid": "test_one.py::test_one", "status": "ok", "peak_delta": 1000},
        {"nodeid": "a", "status": "ok", "peak_delta": "10 MB"},
        {"nodeid": "b", "status": "ok", "peak_delta": 2**63},
        {"nodeid": "c", "status": "ok"},
    ]
    history.write_text(json.dumps({"schema": "pytest-memguard/1", "tests": entries}))
    result = _run(pytester, "-n", "2", "--memguard-pack", f"--memguard-history={history}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*memguard: pack: 1 of 1 test(s) have a measured peak*",
            f"memguard: --memguard-history: 3 entries of {history} not understood, left out*",
        ]
    )
    _no_traceback(result)


@pytest.mark.parametrize("pack", [[], ["-n", "2", "--memguard-pack"]], ids=["alone", "packed"])
def test_corrupt_cached_peaks_are_a_notice_and_started_afresh(
    pytester: pytest.Pytester, pack: list[str]
) -> None:
    if pack:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_one="def test_one(): pass")
    path, reason = _make(pytester, "nested", CACHED)
    result = _run(pytester, *pack)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "memguard: the tests' peaks in pytest's cache could not be used, started afresh:"
            f" {path}: {reason}"
        ]
    )
    _no_traceback(result)
    assert list(json.loads(path.read_text())["tests"]) == ["test_one.py::test_one"]


@pytest.mark.parametrize("pack", [[], ["-n", "2", "--memguard-pack"]], ids=["alone", "packed"])
def test_a_fifo_for_the_cached_peaks_is_left_alone_with_a_notice(
    pytester: pytest.Pytester, pack: list[str]
) -> None:
    if pack:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_one="def test_one(): pass")
    path, reason = _make(pytester, "fifo", CACHED)
    result = _run(pytester, *pack)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"memguard: the tests' peaks were not kept: {path}: {reason}"])
    _no_traceback(result)


def test_a_cache_that_cannot_be_written_is_a_notice_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    (pytester.path / f"{CACHED}.lock").mkdir(parents=True)  # the lock cannot be taken
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"memguard: cannot keep the tests' peaks in {pytester.path / CACHED} (Is a directory)"]
    )
    _no_traceback(result)


def test_bad_and_stale_cached_entries_are_dropped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one(): pass")
    path = pytester.path / CACHED
    path.parent.mkdir(parents=True)
    runs = 10 * KEEP_RUNS
    tests = {f"gone.py::test_{i}": [1000, 0, None, 1] for i in range(1000)}
    tests["huge.py::test_8_eib"] = [2**63, 0, None, runs]
    tests["recent.py::test_kept"] = [1000, 0, None, runs]
    path.write_text(json.dumps({"version": 2, "runs": runs, "tests": tests}))
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"memguard: 1 entry of the tests' peaks in {path} not understood, left out"]
    )
    kept = json.loads(path.read_text())
    assert kept["runs"] == runs + 1
    assert set(kept["tests"]) == {"recent.py::test_kept", "test_one.py::test_one"}


#: Makes the two runs of a pair save their peaks at the same moment: each waits at the
#: end of its session (before memguard saves) until both got there.
BARRIER = """
import os
import time
from pathlib import Path

import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    folder = Path(session.config.rootpath, "barrier", os.environ["PAIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
"""


def test_runs_that_end_together_each_keep_their_peaks(pytester: pytest.Pytester) -> None:
    pairs = 3
    pytester.makeconftest(BARRIER)
    # Peaks kept of 20,000 other tests: each run's merge takes long enough that two of
    # them without turns would overlap, and one of the two would be lost.
    cached = pytester.path / CACHED
    cached.parent.mkdir(parents=True)
    others = {f"other.py::test_{i}": [1000, 0, None, 0] for i in range(20_000)}
    cached.write_text(json.dumps({"version": 2, "runs": 0, "tests": others}))
    for pair in range(pairs):
        for side in "ab":
            pytester.makepyfile(**{f"test_{side}{pair}": "def test_it(): pass"})
    for pair in range(pairs):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "--memguard", "-q", f"test_{side}{pair}.py"],
                cwd=pytester.path,
                env={**os.environ, "PAIR": str(pair)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for side in "ab"
        ]
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, output.decode()
            check_session(output.decode(), process.args)
            assert b"memguard: " not in output.replace(b"memguard: 1 test", b""), output.decode()
    kept = json.loads(cached.read_text())
    expected = {f"test_{side}{pair}.py::test_it" for pair in range(pairs) for side in "ab"}
    assert set(kept["tests"]) == expected | set(others)
    assert kept["runs"] == 2 * pairs
