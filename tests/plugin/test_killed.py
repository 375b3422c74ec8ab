"""A job ended from outside still tells which test: SIGTERM, SIGHUP, two Ctrl-Cs, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard.cli import main

from ..sessions import validate
from .conftest import finish, start_session, wait_for_files

TESTS = 20

SLEEPERS = f"""
import pathlib
import time

import pytest


@pytest.mark.parametrize("n", range({TESTS}))
def test_sleeps(n):
    (pathlib.Path(__file__).parent / f"started-{{n}}").touch()
    time.sleep(0.3)
"""

STALE = '{"schema": "pytest-memguard/1", "interrupted": false, "stale": true}\n'


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    validate(report)
    return report


def _statuses(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {test["nodeid"]: (test["outcome"], test["status"]) for test in report["tests"]}


def _check_counts(report: dict[str, Any]) -> None:
    """Every collected test once; the finished ones passed, the rest not run."""
    statuses = _statuses(report)
    assert len(statuses) == TESTS == report["summary"]["tests"]
    assert set(statuses.values()) <= {("passed", "ok"), ("not_run", "not_run")}, statuses
    finished = sum(1 for value in statuses.values() if value == ("passed", "ok"))
    assert report["summary"]["statuses"]["not_run"] == TESTS - finished >= 1
    assert "errors" not in report


@pytest.mark.parametrize(
    ("workers", "to_group"),
    [((), True), (("-n", "2"), True), (("-n", "2"), False)],
    ids=["one-process", "xdist-group", "xdist-controller-only"],
)
def test_sigterm_ends_the_run_as_ctrl_c_does_with_the_report(
    pytester: pytest.Pytester, workers: tuple[str, ...], to_group: bool
) -> None:
    pytester.makepyfile(test_sleepers=SLEEPERS)
    path = pytester.path / "memguard.json"
    path.write_text(STALE)  # an earlier run's report
    process = start_session(pytester, *workers, "--memguard", f"--memguard-json={path}")
    wait_for_files(pytester, "started-*", 3, process)
    if to_group:  # timeout, GitLab, Jenkins: the whole process group
        os.killpg(process.pid, signal.SIGTERM)
    else:  # Kubernetes: the main process only; the controller passes it on
        os.kill(process.pid, signal.SIGTERM)
    output = finish(process)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "Terminated: SIGTERM received" in output
    assert "INTERNALERROR" not in output
    report = _report(path)
    assert (report["interrupted"], report["signal"]) == (True, "SIGTERM")
    _check_counts(report)
    assert not (pytester.path / "memguard.records").exists(), "the report has the records"


def test_sighup_ends_the_run_with_its_own_exit_status(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sleepers=SLEEPERS)
    path = pytester.path / "memguard.json"
    process = start_session(pytester, "--memguard", f"--memguard-json={path}")
    wait_for_files(pytester, "started-*", 2, process)
    os.killpg(process.pid, signal.SIGHUP)
    output = finish(process)
    assert process.returncode == 128 + signal.SIGHUP, output
    report = _report(path)
    assert (report["interrupted"], report["signal"]) == (True, "SIGHUP")
    _check_counts(report)


def test_a_second_ctrl_c_under_xdist_still_says_interrupted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sleepers=SLEEPERS)
    path = pytester.path / "memguard.json"
    process = start_session(pytester, "-n", "2", "--memguard", f"--memguard-json={path}")
    wait_for_files(pytester, "started-*", 3, process)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)  # the second press while pytest handles the first (it may die of it)
    os.killpg(process.pid, signal.SIGINT)
    finish(process)
    report = _report(path)
    assert (report["interrupted"], report["signal"]) == (True, "SIGINT")
    _check_counts(report)


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_a_sigkilled_run_leaves_no_stale_report_and_recover_names_the_running_test(
    pytester: pytest.Pytester, workers: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_sleepers=SLEEPERS)
    path = pytester.path / "memguard.json"
    path.write_text(STALE)
    args = ("--memguard", f"--memguard-json={path}", f"--memguard-html={path}.html")
    process = start_session(pytester, *workers, *args)
    wait_for_files(pytester, "started-*", 4, process)
    os.killpg(process.pid, signal.SIGKILL)  # a runner's OOM killer: nothing more is written
    finish(process)
    assert path.read_text() == "", "the earlier run's report was emptied at the start"
    records = pytester.path / "memguard.records"  # beside the report, named after it
    assert sorted(records.glob("*.jsonl")), "the records stay for memguard recover"

    assert main(["recover", str(records)]) == 0
    said = capsys.readouterr().err
    report = _report(path)
    assert report["interrupted"] is True
    assert report["recovered"]["records"] == str(records)
    statuses = _statuses(report)
    assert len(statuses) == TESTS
    killed = [nodeid for nodeid, value in statuses.items() if value == ("failed", "killed")]
    assert 1 <= len(killed) <= 2, statuses  # the test each process was running
    for nodeid in killed:
        assert nodeid in said
        assert (
            "last known RSS" in next(t for t in report["tests"] if t["nodeid"] == nodeid)["message"]
        )
    finished = [t for t in report["tests"] if t["status"] == "ok"]
    assert len(finished) >= 4 - len(killed)
    assert all(t["rss_peak"] and t["duration_s"] > 0.2 for t in finished)
    assert set(statuses.values()) <= {
        ("passed", "ok"),
        ("failed", "killed"),
        ("not_run", "not_run"),
    }
    assert "<html" in Path(f"{path}.html").read_text()[:200].lower()


def test_records_go_to_the_folder_named_and_leave_other_files_there(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_ok(): pass")
    folder = pytester.mkdir("ci-records")
    (folder / "keep.txt").write_text("not memguard's")
    (folder / "main-1.jsonl").write_text('{"event": "start", "nodeid": "stale::test"}\n')
    result = pytester.runpytest_subprocess(
        "--memguard", "-p", "no:cacheprovider", "--memguard-records", str(folder)
    )
    result.assert_outcomes(passed=1)
    assert sorted(path.name for path in folder.iterdir()) == ["keep.txt"]


def test_a_records_folder_that_cannot_be_made_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest("--memguard", "--memguard-records=afile/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memguard-records: cannot keep the records in *afile/sub*"])
