"""memguard next to the plugins users run with it, as a user sees it.

pytest-rerunfailures, pytest-asyncio, anyio, unittest, pytest-xdist, pytest-timeout,
hypothesis, ``-x``, skips, xfails and doctests: each test stays one entry of the report,
leaks are confirmed whatever runs the test body, and a runaway is stopped by memguard.
"""

from __future__ import annotations

import glob
from collections import Counter

import pytest

from .conftest import InnerSession, entry

pytestmark = pytest.mark.neighbours

MB = 1_000_000
MiB = 2**20


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["single-process", "xdist"])
def test_a_rerun_test_is_one_entry_with_its_reruns(
    pytester: pytest.Pytester, run: InnerSession, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        RUNS = []

        def test_flaky():
            RUNS.append(1)
            if len(RUNS) == 1:
                spike = bytearray(60_000_000)
                del spike
                pytest.fail("first try")

        def test_broken():
            assert False, "always"

        def test_steady():
            pass
        """
    )
    result, report = run("--reruns", "2", *args)
    assert sorted(t["nodeid"].split("::")[1] for t in report["tests"]) == [
        "test_broken",
        "test_flaky",
        "test_steady",
    ]
    flaky = entry(report, "test_flaky")
    assert (flaky["outcome"], flaky["status"], flaky["reruns"]) == ("passed", "ok", 1)
    assert flaky["peak_delta"] >= 50 * MB, "the peak is the highest of all runs"
    broken = entry(report, "test_broken")
    assert (broken["outcome"], broken["status"], broken["reruns"]) == ("failed", "ok", 2)
    steady = entry(report, "test_steady")
    assert (steady["outcome"], steady["reruns"]) == ("passed", 0)
    result.assert_outcomes(passed=2, failed=1)
    assert result.parseoutcomes()["rerun"] == 3


LEAKS = {
    "asyncio": """
        import asyncio

        import pytest

        KEPT = []

        @pytest.mark.asyncio
        async def test_leak():
            await asyncio.sleep(0)
            KEPT.append(bytearray(4 * 1024 * 1024))
        """,
    "anyio": """
        import anyio
        import pytest

        KEPT = []

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        async def test_leak():
            await anyio.sleep(0)
            KEPT.append(bytearray(4 * 1024 * 1024))
        """,
    "unittest": """
        import unittest

        KEPT = []

        class TestCaseLeak(unittest.TestCase):
            def setUp(self):
                self.size = 4 * 1024 * 1024

            def test_leak(self):
                KEPT.append(bytearray(self.size))
        """,
    "parametrized": """
        import pytest

        KEPT = []

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_leak(n):
            KEPT.append([bytearray(1024 * 1024) for _ in range(3 + n)])
        """,
}


def test_a_leak_is_confirmed_whatever_runs_the_test(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    # The suspect's rerun goes through what runs each body: pytest-asyncio's loop, anyio's
    # runner, unittest's TestCase (setUp included), the parameter of a parametrized test.
    pytester.makepyfile(**{f"test_{kind}_leak": source for kind, source in LEAKS.items()})
    result, report = run("--memguard-leaks", "-v")
    leaks = [
        "test_anyio_leak.py::test_leak",
        "test_asyncio_leak.py::test_leak",
        *(f"test_parametrized_leak.py::test_leak[{n}]" for n in (1, 2, 3)),
        "test_unittest_leak.py::TestCaseLeak::test_leak",
    ]
    found = {
        t["nodeid"]: (
            t["status"],
            t["outcome"],
            t["leaked"] >= 3.9 * MiB,
            any(site["file"].endswith(t["nodeid"].split("::")[0]) for site in t["sites"]),
        )
        for t in report["tests"]
    }
    messages = {t["nodeid"]: t["message"] for t in report["tests"]}
    assert found == dict.fromkeys(leaks, ("leak", "error", True, True)), messages
    result.assert_outcomes(passed=6, errors=6)
    result.stdout.fnmatch_lines([f"MEMORY {glob.escape(nodeid)} - *" for nodeid in leaks])


FIXTURES = """
import os
from pathlib import Path

import pytest

KEPT = []
LOG = Path(__file__).with_name("setups.log")


def note(scope):
    with LOG.open("a") as log:
        log.write(f"{scope} {os.getpid()}\\n")


@pytest.fixture(scope="session")
def session_data():
    note("session")
    return bytearray(8 * 1024 * 1024)


@pytest.fixture(scope="module")
def module_data():
    note("module")
    return [bytearray(1024 * 1024) for _ in range(4)]


def test_clean(session_data, module_data):
    assert len(session_data) + len(module_data) > 0


def test_plain():
    pass


def test_leaky_last(session_data, module_data):
    KEPT.append(bytearray(4 * 1024 * 1024))
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["single-process", "xdist"])
def test_the_last_test_leaking_under_higher_scoped_fixtures_is_confirmed(
    pytester: pytest.Pytester, run: InnerSession, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_scoped=FIXTURES)
    result, report = run("--memguard-leaks", "-v", *args)
    leaky = entry(report, "test_leaky_last")
    assert (leaky["status"], leaky["outcome"]) == ("leak", "error"), leaky["message"]
    assert leaky["leak_check"]["verdict"] == "leak"
    assert any(site["file"].endswith("test_scoped.py") for site in leaky["sites"])
    clean = entry(report, "test_clean")
    assert (clean["status"], clean["outcome"]) == ("ok", "passed"), clean["message"]
    assert clean["leaked"] is None, "cleared by the counts: never traced"
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["MEMORY *::test_leaky_last - *"])
    # The suspect ran again while the session and module fixtures were still set up:
    # each is set up once in each process that uses it (under xdist, once per worker
    # that ran a test using it).
    setups = (pytester.path / "setups.log").read_text().splitlines()
    assert sorted(setups) == sorted(set(setups)), setups
    scopes = Counter(line.split()[0] for line in setups)
    if args:
        assert 1 <= scopes["session"] == scopes["module"] <= 2
    else:
        assert scopes == {"session": 1, "module": 1}


def test_a_runaway_is_stopped_by_memguard_not_by_the_timeout(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import time

        import pytest

        def test_runaway():
            chunks = []
            for _ in range(75):  # 1.5 GB at most: memguard stops it far sooner
                chunks.append(bytearray(20_000_000))
                time.sleep(0.01)
            pytest.fail("memguard did not stop the runaway")

        @pytest.mark.timeout(1)
        def test_timed_out():
            time.sleep(10)

        def test_next():
            pass
        """
    )
    # A pytest subprocess starts at some 50 MB: the limit leaves the runaway 300 MB.
    result, report = run("--timeout", "30", "--memguard-max", "400MB")
    runaway = entry(report, "test_runaway")
    assert runaway["rss_start"] < 200 * MB, "the run starts far below the limit"
    assert (runaway["status"], runaway["outcome"]) == ("aborted", "failed"), runaway["message"]
    assert runaway["message"].startswith("memguard: RSS ")
    assert runaway["message"].endswith("(--memguard-max); the test was stopped")
    assert 400 * MB <= runaway["rss_peak"] < 800 * MB
    assert runaway["duration_s"] < 10
    timed_out = entry(report, "test_timed_out")
    assert (timed_out["status"], timed_out["outcome"]) == ("ok", "failed"), timed_out["message"]
    assert timed_out["duration_s"] < 5
    following = entry(report, "test_next")
    assert (following["status"], following["outcome"]) == ("ok", "passed"), following["message"]
    assert following["rss_start"] < 400 * MB, "the stopped test's memory was released"
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "timeout: 30.0s",
            "timeout method: signal",
            "*test_a_runaway_*.py MF. *",
            "*Failed: Timeout (>1.0s) from pytest-timeout*",
        ]
    )


def test_a_hypothesis_test_is_one_entry_held_to_its_budget(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hypothesis import given, settings, strategies as st

        @pytest.mark.memory_budget("50 MB")
        @settings(max_examples=25, deadline=None, database=None)
        @given(st.integers(min_value=1, max_value=1_000_000))
        def test_within(n):
            assert len(bytearray(n)) == n

        @pytest.mark.memory_budget("50 MB")
        @settings(max_examples=5, deadline=None, database=None)
        @given(st.integers(min_value=80_000_000, max_value=90_000_000))
        def test_over(n):
            assert len(bytearray(n)) == n
        """
    )
    result, report = run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*.py .M *"])
    assert len(report["tests"]) == 2
    within = entry(report, "test_within")
    assert (within["status"], within["outcome"]) == ("ok", "passed")
    assert within["budget"]["peak"] == 50 * MB
    assert within["peak_delta"] < 50 * MB
    over = entry(report, "test_over")
    assert (over["status"], over["outcome"]) == ("over_budget", "failed")
    assert over["peak_delta"] >= 70 * MB


def test_the_tests_after_a_stop_on_failure_are_not_run(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        def test_first():
            pass

        def test_second():
            assert False

        def test_third():
            pass
        """
    )
    result, report = run("-x")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["1 test(s) were not run", "*stopping after 1 failures*"])
    assert [t["nodeid"].split("::")[1] for t in report["tests"]] == [
        "test_first",
        "test_second",
        "test_third",
    ]
    assert entry(report, "test_second")["outcome"] == "failed"
    third = entry(report, "test_third")
    assert (third["status"], third["outcome"]) == ("not_run", "not_run")
    assert report["summary"]["statuses"]["not_run"] == 1


def test_skips_xfails_and_doctests_are_one_entry_each(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        helpers='''
        def double(x):
            """
            >>> double(21)
            42
            """
            return 2 * x
        ''',
        test_outcomes="""
        import pytest

        @pytest.fixture
        def unavailable():
            pytest.skip("no such service")

        def test_skipped_by_its_fixture(unavailable):
            pass

        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_known_bug():
            assert False
        """,
    )
    result, report = run("--doctest-modules")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    assert len(report["tests"]) == 3
    skipped = entry(report, "test_skipped_by_its_fixture")
    assert (skipped["outcome"], skipped["status"]) == ("skipped", "ok")
    known = entry(report, "test_known_bug")
    assert (known["outcome"], known["status"]) == ("xfailed", "ok")
    doctest = entry(report, "helpers.py::helpers.double")
    assert (doctest["outcome"], doctest["status"]) == ("passed", "ok")
