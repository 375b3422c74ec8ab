"""Runaway tests are stopped at the hard limit and the run goes on."""

from __future__ import annotations

import pytest

from .conftest import InnerSession, entry, error_summary

MB = 1_000_000

RUNAWAY = """
import time

def test_runaway():
    chunks = []
    while True:
        chunks.append(bytearray(20_000_000))

def test_next():
    assert True
"""


def test_a_runaway_is_stopped_and_the_next_test_runs(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(RUNAWAY)
    result, report = run("--memguard-max=700MB", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_runaway MEMORY*",
            "*::test_next PASSED*",
            "memguard: RSS * passed the hard limit 667.6 MiB (--memguard-max);"
            " the test was stopped",
            "*ABORTED *::test_runaway - memguard: RSS*",
        ]
    )
    runaway = entry(report, "test_runaway")
    assert (runaway["status"], runaway["outcome"]) == ("aborted", "failed")
    assert runaway["rss_peak"] < 1000 * MB, "stopped well under 1 GB"
    assert runaway["rss_peak"] >= 700 * MB
    assert entry(report, "test_next")["status"] == "ok"
    assert entry(report, "test_next")["rss_start"] < 700 * MB, (
        "the stopped test's memory was released"
    )
    assert any(
        a["level"] == "abort" and a["nodeid"].endswith("test_runaway") for a in report["alerts"]
    )


def test_a_sleeping_test_holding_memory_is_interrupted(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import time
        def test_sleeper():
            held = bytearray(400_000_000)
            time.sleep(30)
        """
    )
    result, report = run("--memguard-max=300MB")
    result.assert_outcomes(failed=1)
    assert entry(report, "test_sleeper")["status"] == "aborted"
    assert entry(report, "test_sleeper")["duration_s"] < 10


def test_the_rss_cap_of_the_marker_stops_its_test(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memory_budget(rss="300 MB")
        def test_capped():
            chunks = []
            while True:
                chunks.append(bytearray(10_000_000))

        def test_uncapped():
            data = bytearray(350_000_000)
        """
    )
    result, report = run()
    result.assert_outcomes(passed=1, failed=1)
    capped = entry(report, "test_capped")
    assert capped["status"] == "aborted"
    assert "(memory_budget(rss='300 MB'))" in capped["message"]
    assert capped["rss_peak"] < 450 * MB


def test_a_test_that_catches_the_interrupt_and_stops_still_fails(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        def test_swallow_once():
            chunks = []
            try:
                while True:
                    chunks.append(bytearray(20_000_000))
            except BaseException:
                pass
            chunks.clear()

        def test_next():
            pass
        """
    )
    result, report = run("--memguard-max=500MB")
    result.assert_outcomes(passed=1, failed=1)
    swallow = entry(report, "test_swallow_once")
    assert swallow["status"] == "aborted"
    assert swallow["message"].endswith("(it caught the interrupt and went on)")


def test_a_test_that_will_not_stop_ends_the_process_with_a_report(
    pytester: pytest.Pytester,
) -> None:
    import json

    pytester.makepyfile(
        """
        def test_first():
            pass

        def test_stubborn():
            chunks = []
            def grow():
                try:
                    while True:
                        chunks.append(bytearray(20_000_000))
                except BaseException:
                    grow()
            grow()

        def test_never_reached():
            pass
        """
    )
    path = pytester.path / "memguard.json"
    result = pytester.runpytest_subprocess(
        "--memguard", "--memguard-max=500MB", f"--memguard-json={path}", "-p", "no:cacheprovider"
    )
    assert result.ret == 1
    result.stderr.fnmatch_lines(
        [
            "memguard: *::test_stubborn kept running over its hard limit"
            " (* > 476.8 MiB, --memguard-max)"
            " after * interrupt(s); ending the process.",
            f"memguard: JSON report written to {path}",
        ]
    )
    report = json.loads(path.read_text())
    assert report["interrupted"] is True
    stubborn = entry(report, "test_stubborn")
    assert stubborn["status"] == "aborted"
    assert "memguard ended the process" in stubborn["message"]
    assert stubborn["rss_peak"] < 1000 * MB
    assert entry(report, "test_first")["status"] == "ok"
    assert entry(report, "test_never_reached")["status"] == "not_run"
    assert report["workers"][0]["killed"] is True


FIXTURE_RUNAWAYS = """
import pytest

def grow(chunks):
    while True:
        chunks.append(bytearray(20_000_000))

def grow_and_swallow_the_stop():
    chunks = []
    try:
        grow(chunks)
    except BaseException:
        pass
    chunks.clear()

@pytest.fixture
def hungry_setup():
    grow([])

@pytest.fixture
def hungry_teardown():
    yield
    grow([])

@pytest.fixture
def stubborn_setup():
    grow_and_swallow_the_stop()

def test_setup_runaway(hungry_setup):
    pass

def test_teardown_runaway(hungry_teardown):
    pass

@pytest.fixture
def stubborn_teardown():
    yield
    grow_and_swallow_the_stop()

def test_setup_goes_on(stubborn_setup):
    pass

def test_teardown_goes_on(stubborn_teardown):
    pass

def test_next():
    pass
"""


def test_runaway_fixtures_are_stopped_in_setup_and_teardown(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    """Fixtures are guarded as the test body is: stopped with memguard's message (no
    traceback), the status letter of memory failures, and the run goes on."""
    pytester.makepyfile(FIXTURE_RUNAWAYS)
    result, report = run("--memguard-max=500MB", "-vv")
    result.assert_outcomes(passed=3, errors=4)
    result.stdout.fnmatch_lines(
        [
            "*::test_setup_runaway MEMORY*",
            "*::test_teardown_runaway PASSED*",
            "*::test_teardown_runaway MEMORY*",
            "*::test_setup_goes_on MEMORY*",
            "*::test_teardown_goes_on PASSED*",
            "*::test_teardown_goes_on MEMORY*",
            "*::test_next PASSED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_teardown_goes_on*",
            "memguard: RSS * the test was stopped (it caught the interrupt and went on)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_setup_runaway*",
            "memguard: RSS * passed the hard limit 476.8 MiB (--memguard-max);"
            " the test was stopped",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            error_summary(
                "MEMORY *::test_setup_runaway - MemoryLimitExceeded: memguard: RSS * the test"
                " was stopped"
            )
        ]
    )
    output = result.stdout.str()
    assert "LimitStop" not in output
    assert "def grow" not in output, "no traceback for a stop"
    assert "During handling" not in output
    names = ("setup_runaway", "teardown_runaway", "setup_goes_on", "teardown_goes_on")
    for name in names:
        test = entry(report, name)
        assert test["status"] == "aborted", name
        assert test["rss_peak"] is None or test["rss_peak"] < 1000 * MB
    assert entry(report, "test_setup_runaway")["outcome"] == "error"  # as pytest counts it
    for name in ("test_setup_goes_on", "test_teardown_goes_on"):
        assert entry(report, name)["message"].endswith("(it caught the interrupt and went on)")
    assert entry(report, "test_next")["status"] == "ok"
    assert report["workers"][0]["peak_rss"] < 1000 * MB
