"""pytest-xdist: every worker guarded from inside and outside, one report, nothing lost."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pytest_memguard.core.sizes import format_size

from ..sessions import guarded_run
from .conftest import HOLD, STUBBORN, entry

pytest.importorskip("xdist")

MB = 1_000_000

SMALL = """
import pytest

@pytest.mark.parametrize("i", range(12))
def test_small(i):
    assert i >= 0
"""


def run_xdist(
    pytester: pytest.Pytester, *args: str, workers: str = "2"
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """``pytest -n 2 --memguard`` in a subprocess; the report, validated against the schema."""
    return guarded_run(pytester, "-n", workers, *args, timeout=120)


def test_one_report_names_every_test_and_both_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMALL)
    result, report = run_xdist(pytester)
    result.assert_outcomes(passed=12)
    assert len(report["tests"]) == 12
    assert {t["outcome"] for t in report["tests"]} == {"passed"}
    assert {t["worker"] for t in report["tests"]} == {"gw0", "gw1"}
    assert all(t["rss_peak"] is not None for t in report["tests"]), "measured in the workers"
    workers = {w["id"]: w for w in report["workers"]}
    assert set(workers) == {"gw0", "gw1"}
    assert all(isinstance(w["pid"], int) and not w["killed"] for w in workers.values())
    assert all(w["peak_rss"] > 0 for w in workers.values())
    assert report["summary"]["statuses"]["ok"] == 12
    # One summary, written by the controller.
    assert result.stdout.str().count("= memguard =") == 1


RUNAWAY = """
def test_runaway():
    chunks = []
    while True:
        chunks.append(bytearray(20_000_000))
"""


def test_a_runaway_fails_and_the_dozen_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_small=SMALL, test_runaway=RUNAWAY)
    result, report = run_xdist(pytester, "--memguard-max=700MB")
    result.assert_outcomes(passed=12, failed=1)
    result.stdout.fnmatch_lines(["MEMORY test_runaway.py::test_runaway - *"])
    runaway = entry(report, "test_runaway")
    assert runaway["outcome"] == "failed"
    assert runaway["status"] in ("aborted", "killed")
    assert 700 * MB <= runaway["rss_peak"] < 1200 * MB
    assert len(report["tests"]) == 13
    assert report["summary"]["statuses"]["ok"] == 12


def test_a_runaway_that_will_not_stop_loses_its_worker_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_small=SMALL, test_stubborn=STUBBORN)
    result, report = run_xdist(pytester, "--memguard-max=700MB")
    stubborn = entry(report, "test_stubborn")
    assert stubborn["outcome"] == "failed"
    assert stubborn["status"] in ("aborted", "killed")
    assert "memguard" in stubborn["message"]
    assert "MiB" in stubborn["message"], "the RSS is named"
    assert stubborn["rss_peak"] >= 700 * MB
    smalls = [t for t in report["tests"] if "test_small" in t["nodeid"]]
    assert len(smalls) == 12
    assert {t["outcome"] for t in smalls} == {"passed"}
    killed = [w for w in report["workers"] if w["killed"]]
    assert len(killed) == 1
    assert killed[0]["id"] == stubborn["worker"]
    assert "memguard" in killed[0]["reason"]
    result.stdout.fnmatch_lines(["*replacing crashed worker*"])


SIGKILL = """
import os
import signal

def test_killed_by_the_kernel():
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_killed_from_outside_names_its_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_small=SMALL, test_sigkill=SIGKILL)
    result, report = run_xdist(pytester)
    result.assert_outcomes(passed=12, failed=1)
    killed = entry(report, "test_killed_by_the_kernel")
    assert (killed["outcome"], killed["status"]) == ("failed", "killed")
    peak = format_size(killed["rss_peak"])
    assert (
        f"last known RSS {peak}" in killed["message"] or f"RSS reached {peak}" in killed["message"]
    )
    assert killed["rss_peak"] is not None
    assert killed["rss_peak"] > 0
    if sys.platform.startswith("linux"):
        assert "signal 9 (SIGKILL)" in killed["message"]
    (dead,) = [w for w in report["workers"] if w["killed"]]
    assert dead["id"] == killed["worker"]
    assert "died" in dead["reason"]
    result.stdout.re_match_lines(
        [r"memguard: worker gw\d+ \(pid \d+\) died .*; (last known RSS|RSS reached) "]
    )


HOG = """
import signal

def test_hog():
    # No interrupt reaches this thread, and one long C call holds the interpreter, so
    # the worker's own watchdog can neither stop the test nor end the process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    held = bytearray(800_000_000)
    sum(range(10**12))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX guard timing")
def test_the_controller_kills_a_worker_its_own_guard_cannot_stop(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_small=SMALL, test_hog=HOG)
    _, report = run_xdist(pytester, "--memguard-max=700MB")
    hog = entry(report, "test_hog")
    assert (hog["outcome"], hog["status"]) == ("failed", "killed")
    assert "killed by memguard" in hog["message"]
    assert "hard limit 667.6 MiB (--memguard-max)" in hog["message"]
    smalls = [t for t in report["tests"] if "test_small" in t["nodeid"]]
    assert {t["outcome"] for t in smalls} == {"passed"}
    (dead,) = [w for w in report["workers"] if w["killed"]]
    assert dead["reason"].startswith("killed by memguard: RSS")
    assert any(a["level"] == "abort" for a in report["alerts"])


def test_past_the_aggregate_limit_the_largest_worker_is_killed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_big=HOLD.format(name="big", other="small", size=350 * MB),
        test_small=HOLD.format(name="small", other="big", size=200 * MB),
    )
    result, report = run_xdist(pytester, "--memguard-aggregate=500MB", "--dist=loadfile")
    big, small = entry(report, "test_hold_big"), entry(report, "test_hold_small")
    assert (big["outcome"], big["status"]) == ("failed", "killed")
    assert "aggregate limit 476.8 MiB" in big["message"]
    assert (small["outcome"], small["status"]) == ("passed", "ok")
    # Its figures agree: the largest RSS seen is its rss_peak, said in its message.
    peak = format_size(big["rss_peak"])
    assert f"RSS reached {peak}" in big["message"] or f"last known RSS {peak}" in big["message"]
    assert report["config"]["aggregate"] == 500 * MB
    result.stdout.fnmatch_lines(["worker gw* (pid *): killed by memguard: the workers used *"])


def test_tests_left_by_a_dead_worker_are_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=SIGKILL,
        test_b="""
        import time
        import pytest

        @pytest.mark.parametrize("i", range(12))
        def test_slow(i):
            time.sleep(0.01)
        """,
    )
    result, report = run_xdist(pytester, "--max-worker-restart=0", workers="1")
    assert len(report["tests"]) == 13, "every collected test is in the report"
    assert entry(report, "test_killed_by_the_kernel")["status"] == "killed"
    not_run = [t for t in report["tests"] if t["status"] == "not_run"]
    assert len(not_run) == 12
    assert all(t["outcome"] == "not_run" for t in not_run)
    assert "--max-worker-restart" in not_run[0]["message"]
    result.stdout.fnmatch_lines(["12 test(s) were not run"])


def test_without_xdist_nothing_of_it_is_loaded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_alone():
            assert "pytest_memguard.plugin.xdist" not in sys.modules
        """
    )
    result, report = guarded_run(pytester, "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    assert [w["id"] for w in report["workers"]] == ["main"]
    assert entry(report, "test_alone")["worker"] == "main"
