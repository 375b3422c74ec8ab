"""The faults users meet: a container's memory limit, Ctrl-C, odd report paths."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from pytest_memguard.core.sizes import format_size

from .cgroups import inside, memory_cgroup
from .conftest import STUBBORN, error_summary, finish, start_session, wait_for_files
from .test_xdist import run_xdist

MiB = 1024 * 1024

CONTAINER = 1536 * MiB

STUBBORN_AND_NEXT = (
    STUBBORN
    + """

def test_never_reached():
    pass
"""
)


def test_a_stubborn_runaway_in_a_container_ends_with_the_report(pytester: pytest.Pytester) -> None:
    # Default settings: the hard limit is 90% of the cgroup's limit, and the kernel's
    # OOM killer is 10% above it; memguard must end the process before the kernel does.
    pytester.makepyfile(test_stubborn=STUBBORN_AND_NEXT)
    path = pytester.path / "memguard.json"
    pytest_command = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--memguard")
    # 1.5 GiB: past the hard limit (90%) the guard has 150 MiB to end a test that adds
    # 16 MiB every few milliseconds, about two of its samples on a busy 2-core machine.
    with memory_cgroup(CONTAINER) as group:
        result = pytester.run(
            *inside(group, *pytest_command, f"--memguard-json={path}"), timeout=120
        )
        oom_kills = group.oom_kills()
    assert oom_kills == 0, "the kernel's OOM killer ended it"
    assert result.ret == 1, result.stderr.str()
    result.stderr.fnmatch_lines(["*test_stubborn kept running over its hard limit*"])
    report = json.loads(path.read_text())
    assert report["interrupted"] is True
    assert report["environment"]["memory_source"] == "cgroup"
    stubborn, never = report["tests"]
    assert (stubborn["status"], stubborn["outcome"]) == ("aborted", "failed")
    assert "memguard ended the process" in stubborn["message"]
    assert stubborn["rss_peak"] >= 0.9 * CONTAINER, "stopped at its hard limit, 90%"
    assert never["status"] == "not_run"


SLEEPERS = """
import pathlib
import time

import pytest


@pytest.mark.parametrize("n", range(6))
def test_sleeps(n):
    (pathlib.Path(__file__).parent / f"started-{n}").touch()
    time.sleep(30)
"""


def test_ctrl_c_under_xdist_reports_no_unfinished_test_as_passed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_sleepers=SLEEPERS)
    path = pytester.path / "memguard.json"
    # Its own process group, as a shell's job: Ctrl-C signals the controller and workers.
    process = start_session(pytester, "-n", "2", "--memguard", f"--memguard-json={path}")
    wait_for_files(pytester, "started-*", 2, process)
    os.killpg(process.pid, signal.SIGINT)
    stdout = finish(process)
    assert "KeyboardInterrupt" in stdout or "Interrupted" in stdout, stdout
    report = json.loads(path.read_text())
    assert report["interrupted"] is True
    outcomes = {t["nodeid"]: (t["outcome"], t["status"]) for t in report["tests"]}
    assert len(outcomes) == 6
    assert set(outcomes.values()) == {("not_run", "not_run")}, outcomes


ONE_C_CALL = """
def test_one_huge_call():
    numbers = list(range(25_000_000))  # one C call: no guard inside the worker can run
    assert numbers
"""


def test_a_worker_killed_in_one_c_call_is_reported_with_the_rss_it_reached(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_huge=ONE_C_CALL)
    result, report = run_xdist(pytester, "--memguard-max=200MB", workers="1")
    result.assert_outcomes(failed=1)
    (huge,) = report["tests"]
    assert huge["status"] == "killed"
    # Killed from outside at 1.5 x the limit; the worker's last record was far lower.
    assert huge["rss_peak"] >= 1.5 * 200_000_000
    assert f"RSS reached {format_size(huge['rss_peak'])} (seen from outside" in huge["message"]


KERNEL_KILL = """
def test_fills_the_container():
    # The kernel is to choose this worker, not the controller: in a cgroup of 400 MiB a
    # controller of some 60 MiB seemed to be its victim in two busy suite runs of seven.
    with open("/proc/self/oom_score_adj", "w") as adjust:
        adjust.write("1000")
    numbers = list(range(40_000_000))
    assert numbers
"""


def test_a_worker_the_kernel_killed_for_memory_gets_the_memory_letter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_fills=KERNEL_KILL)
    path = pytester.path / "memguard.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1", "-rf"]
    # memguard's limits far above the container's: only the kernel stops the worker.
    command += ["--memguard", "--memguard-max=20GB", "--memguard-critical=19GB"]
    command += ["--memguard-aggregate=20GB", f"--memguard-json={path}"]
    with memory_cgroup(400 * MiB) as group:
        result = pytester.run(*inside(group, *command), timeout=120)
    assert path.exists(), f"no report (exit status {result.ret}): {result.outlines[-5:]}"
    report = json.loads(path.read_text())
    (fills,) = report["tests"]
    assert fills["status"] == "killed"
    assert "the kernel's OOM killer (the memory cgroup's OOM kill count rose" in fills["message"]
    result.stdout.fnmatch_lines(
        ["M", error_summary("MEMORY test_fills.py::test_fills_the_container - *")]
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),  # configured, no session
        ("-p", "no:cacheprovider", "test_stubborn.py", "--memguard-max=300MB"),  # ended by memguard
    ],
    ids=["no-session", "escalated"],
)
def test_no_work_folder_is_left_behind(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_stubborn=STUBBORN_AND_NEXT)
    temporary = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(temporary))
    path = pytester.path / "memguard.json"
    result = pytester.runpytest_subprocess("--memguard", f"--memguard-json={path}", *args)
    assert result.ret in (0, 1)
    assert list(temporary.glob("pytest-memguard-*")) == []
