"""``--memguard-pack``: tests sent to xdist workers by their measured peaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard.core.sizes import format_size

from ..sessions import guarded_run
from .conftest import HOLD, entry, error_summary

pytest.importorskip("xdist")

MB = 1024 * 1024

#: Six tests that each hold 150 MiB for 0.6 s among 18 light ones; each heavy one writes
#: when it starts and ends holding, so that the tests can count how many held at once.
MIXED = """
import time
from pathlib import Path

import pytest

def mark(what):
    with open("times.log", "a") as log:
        log.write(f"{what} {time.time()}\\n")

@pytest.mark.parametrize("i", range(18))
def test_light(i):
    time.sleep(0.02)

@pytest.mark.parametrize("i", range(6))
def test_heavy(i):
    block = bytearray(150 * 1024 * 1024)
    mark("start")
    time.sleep(0.6)
    mark("end")
    del block
"""


def run(pytester: pytest.Pytester, *args: str, name: str = "memguard.json") -> dict[str, Any]:
    """A guarded run in a subprocess (pytest's cache on); its report, validated."""
    result, report = guarded_run(
        pytester, "-p", "no:randomly", *args, report=name, cache=True, timeout=120
    )
    report["_result"] = result
    return report


def most_at_once(pytester: pytest.Pytester) -> int:
    """How many heavy tests held their memory at once, at most (and forget the log)."""
    log = pytester.path / "times.log"
    events = sorted(
        (float(when), 1 if what == "start" else -1)
        for what, when in (line.split() for line in log.read_text().splitlines())
    )
    log.unlink()
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_packed_by_the_last_runs_peaks_two_heavy_tests_run_at_once_never_three(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    first = run(pytester, "-n", "4", name="first.json")
    assert first["summary"]["statuses"]["ok"] == 24
    most_at_once(pytester)
    # The limit holds the four workers and two heavy tests, not three.
    base = max(t["rss_start"] for t in first["tests"])
    limit = 4 * base + 2 * 150 * MB + 90 * MB
    cached = pytester.path / ".pytest_cache" / "d" / "memguard" / "peaks.json"
    assert len(json.loads(cached.read_text())["tests"]) == 24

    for history in (
        [],
        ["-p", "no:cacheprovider", f"--memguard-history={pytester.path}/first.json"],
    ):
        report = run(
            pytester, "-n", "4", f"--memguard-aggregate={limit}B", "--memguard-pack", *history
        )
        result = report["_result"]
        result.assert_outcomes(passed=24)
        assert not any(worker["killed"] for worker in report["workers"])
        assert most_at_once(pytester) == 2
        source = "first.json" if history else "pytest's cache"
        result.stdout.fnmatch_lines(
            [f"memguard: pack: 24 of 24 test(s) have a measured peak*{source}*"]
        )
        heavy = entry(report, "test_heavy[0]")
        assert heavy["prediction"] >= 140 * MB
        assert report["config"]["pack"] is True


def test_the_worker_furthest_past_its_prediction_is_the_one_killed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_big=HOLD.format(name="big", other="small", size=350 * MB),
        test_small=HOLD.format(name="small", other="big", size=200 * MB),
    )
    history = pytester.path / "history.json"
    entries = [
        {"nodeid": "test_big.py::test_hold_big", "status": "ok", "peak_delta": 350 * MB},
        {"nodeid": "test_small.py::test_hold_small", "status": "ok", "peak_delta": 0},
    ]
    history.write_text(json.dumps({"schema": "pytest-memguard/1", "tests": entries}))
    report = run(
        pytester,
        "-n",
        "2",
        "--memguard-aggregate=520MiB",
        "--memguard-pack",
        f"--memguard-history={history}",
    )
    big, small = entry(report, "test_hold_big"), entry(report, "test_hold_small")
    assert (small["status"], big["status"]) == ("killed", "ok"), "not simply the largest"
    assert "went furthest past its prediction" in small["message"]
    assert f"predicted {format_size(0)}" in small["message"]
    learned = json.loads((pytester.path / ".pytest_cache/d/memguard/peaks.json").read_text())
    assert learned["tests"]["test_small.py::test_hold_small"][0] >= 150 * MB


def test_a_test_whose_child_process_holds_300_mb_is_over_a_100_mb_budget(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import subprocess
        import sys

        import pytest

        HOLD = "block = bytearray(300 * 1024 * 1024); import time; time.sleep(0.5)"

        @pytest.mark.memory_budget("100 MB")
        def test_child():
            subprocess.run([sys.executable, "-c", HOLD], check=True)

        def test_no_child():
            pass
        """
    )
    report = run(pytester)
    report["_result"].assert_outcomes(passed=1, failed=1)
    child = entry(report, "test_child")
    assert child["status"] == "over_budget"
    assert child["children_peak"] >= 300 * MB
    assert child["peak_delta"] < 100 * MB, "its own growth is small: the child's is counted"
    assert "with its child processes'" in child["message"]
    assert entry(report, "test_no_child")["children_peak"] is None


def test_a_server_a_session_fixture_started_is_not_each_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import subprocess
        import sys
        import time

        import pytest

        SERVE = "block = bytearray(200 * 1024 * 1024); import time; time.sleep(60)"

        @pytest.fixture(scope="session")
        def server():
            process = subprocess.Popen([sys.executable, "-c", SERVE])
            time.sleep(1.0)  # it holds its memory
            yield process
            process.kill()
            process.wait()

        @pytest.mark.memory_budget("100 MB")
        @pytest.mark.parametrize("i", range(3))
        def test_uses_it(server, i):
            time.sleep(0.15)  # the watchdog samples the server meanwhile
        """
    )
    report = run(pytester)
    report["_result"].assert_outcomes(passed=3)
    assert all((t["children_peak"] or 0) < 10 * MB for t in report["tests"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-n", "2", "--dist", "loadfile"], "not --dist loadfile"),
        (["--dist", "load", "--tx", "ssh=nobody@example.invalid"], "packs local workers only"),
        (["-n", "2", "--memguard-history=missing.json"], "missing.json: no such file"),
    ],
)
def test_what_cannot_be_packed_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], words: str
) -> None:
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest_subprocess("--memguard", "--memguard-pack", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{words}*"])


def test_in_one_process_there_is_nothing_to_pack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest_subprocess("--memguard", "--memguard-pack")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--memguard-pack packs pytest-xdist workers*-n N*"])
    cached = Path(pytester.path, ".pytest_cache/d/memguard/peaks.json")
    assert "test_one" in cached.read_text(), "its peak is kept for a packed run"


#: One test kills its worker on its first run only, one on every run: as an OOM kill does.
CRASHING = """
import os
import signal
from pathlib import Path

def test_crashes_once():
    first = Path("crashed-once")
    if not first.exists():
        first.write_text("")
        os.kill(os.getpid(), signal.SIGKILL)

def test_crashes_always():
    os.kill(os.getpid(), signal.SIGKILL)

def test_fine():
    pass
"""


@pytest.mark.neighbours
@pytest.mark.parametrize("pack", [[], ["--memguard-pack"]], ids=["load", "packed"])
def test_a_worker_crash_under_rerunfailures_is_rerun_as_without_packing(
    pytester: pytest.Pytester, pack: list[str]
) -> None:
    """pytest-rerunfailures reschedules a crashed test through the scheduler
    (``sched.config``, ``sched.mark_test_pending``): packed, the run ends as xdist's own
    scheduler ends it, not in an internal error."""
    pytester.makepyfile(test_crash=CRASHING)
    report = run(pytester, "-n", "2", *pack, "-p", "rerunfailures", "--reruns", "1")
    result = report["_result"]
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == {"passed": 2, "failed": 1, "rerun": 2}
    result.stdout.fnmatch_lines(
        [
            "*worker 'gw*' crashed while running 'test_crash.py::test_crashes_always'",
            error_summary("FAILED test_crash.py::test_crashes_always - worker 'gw*' crashed*"),
        ]
    )
    assert report["config"]["pack"] is bool(pack)
    once, always = entry(report, "test_crashes_once"), entry(report, "test_crashes_always")
    # One entry a test, as for any rerun: the last run's outcome and status, the crash said.
    assert (once["outcome"], once["status"], once["reruns"]) == ("passed", "ok", 1)
    assert (always["outcome"], always["status"], always["reruns"]) == ("failed", "killed", 1)
    for test in (once, always):
        assert "an earlier run crashed: memguard: worker gw" in test["message"]
    assert report["summary"]["statuses"]["killed"] == 1
