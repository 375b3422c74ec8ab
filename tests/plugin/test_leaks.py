"""Leak detection end to end: exactly the leaking tests fail, with their sites."""

from __future__ import annotations

import pytest

from .conftest import InnerSession, entry

CASES = """
import functools
import gc
import logging
import threading
import unittest

import numpy as np
import pytest

KEPT = []
ARRAYS = []
LAST = None


@functools.lru_cache(maxsize=None)
def table():
    return [str(i) * 10 for i in range(50_000)]


@pytest.fixture(scope="module")
def module_data():
    return bytearray(30_000_000)


@pytest.fixture(scope="session")
def session_data():
    return [object() for _ in range(20_000)]


@pytest.fixture
def bucket():
    items = []
    yield items
    items.clear()


def test_cache_first_user():
    assert len(table()) == 50_000


def test_cache_later_user():
    assert table()[1] == "1" * 10


def test_module_fixture_first(module_data):
    assert len(module_data) == 30_000_000


def test_module_fixture_later(module_data, session_data):
    assert len(session_data) == 20_000


def test_function_fixture_released_at_teardown(bucket):
    bucket.append(bytearray(20_000_000))
    bucket.extend(str(i) for i in range(20_000))


def test_temporary_garbage():
    junk = [dict(a=i) for i in range(50_000)]
    del junk


def test_garbage_in_cycles():
    for _ in range(1_000):
        a, b = [bytearray(10_000)], []
        a.append(b)
        b.append(a)
    gc.disable()
    try:
        ring = [bytearray(5_000_000)]
        ring.append(ring)
        del ring
    finally:
        gc.enable()


def test_pytest_bookkeeping(caplog):
    logging.getLogger("cases").warning("noise %s", "x" * 50_000)
    print("y" * 200_000)


def test_first_import():
    import xml.dom.minidom  # a module pytest has not imported

    assert xml.dom.minidom.parseString("<a/>").documentElement.tagName == "a"


def test_replaces_what_it_kept():
    # Each run frees what the last one kept: not a leak, though what it keeps is new.
    global LAST
    LAST = [str(i) * 3 for i in range(100_000)]


def test_threads_started_and_joined():
    def work():
        chunks = [bytes(2000) for _ in range(20_000)]
        del chunks

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class TestSubtests(unittest.TestCase):
    def test_many_subtests(self):
        for i in range(2_000):
            with self.subTest(i=i):
                self.assertGreaterEqual(i, 0)


def test_python_leak():
    KEPT.append([bytes(1000) for _ in range(20_000)])


def test_bytearray_leak():
    KEPT.append(bytearray(8_000_000))


def test_numpy_leak():
    ARRAYS.append(np.ones(3_000_000))
"""


@pytest.fixture
def cases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=CASES)


def test_only_the_real_leaks_fail(cases: None, run: InnerSession) -> None:
    result, report = run("--memguard-leaks")
    result.assert_outcomes(passed=15, errors=3)
    warned = {t["nodeid"]: t["message"] for t in report["tests"] if t["status"] == "warning"}
    assert not warned
    result.stdout.fnmatch_lines(
        [
            "test_cases.py .............M.M.M*",
            "*ERROR at teardown of test_python_leak*",
            "memguard: kept * on every rerun (leak budget 1.0 MiB):"
            " leak at test_cases.py:* (*, * blocks); its first run: at most *",
            "*ERROR at teardown of test_numpy_leak*",
            "memguard: kept * on every rerun *: leak at test_cases.py:*",
        ]
    )
    leaks = {t["nodeid"].split("::")[-1] for t in report["tests"] if t["status"] == "leak"}
    assert leaks == {"test_python_leak", "test_bytearray_leak", "test_numpy_leak"}
    assert entry(report, "test_bytearray_leak")["sites"][0]["file"] == "test_cases.py"
    python_leak = entry(report, "test_python_leak")
    assert python_leak["leaked"] > 19 * 2**20
    assert python_leak["sites"][0]["file"] == "test_cases.py"
    assert python_leak["leak_check"]["verdict"] == "leak"
    numpy_leak = entry(report, "test_numpy_leak")
    assert numpy_leak["leaked"] >= 22 * 2**20
    assert numpy_leak["sites"][0]["file"] == "test_cases.py"
    # The first user of the cache kept memory once: run again, found to be a warm-up.
    warm = entry(report, "test_cache_first_user")
    assert warm["status"] == "ok"
    assert warm["leak_check"]["verdict"] == "warm_up"
    assert "a warm-up, not a leak" in warm["message"]
    # What a run kept is replaced by the next run: kept nothing new by the counts.
    replaced = entry(report, "test_replaces_what_it_kept")
    assert replaced["leak_check"]["verdict"] == "warm_up", replaced["message"]
    assert replaced["leak_check"]["reruns"] == 1, "never traced"
    # A test the counts clear is not run again: its figure is not measured.  What pytest
    # keeps of the reports of 2,000 subtests is pytest's.
    cleared = ("test_cache_later_user", "test_function_fixture_released_at_teardown")
    for name in (*cleared, "test_many_subtests"):
        assert entry(report, name)["leaked"] is None
        assert "leak_check" not in entry(report, name)
    assert report["config"]["leaks"] is True


def test_without_leak_checks_nothing_is_traced(cases: None, run: InnerSession) -> None:
    result, report = run()
    result.assert_outcomes(passed=15)
    assert all(t["leaked"] is None and t["heap_peak"] is None for t in report["tests"])


@pytest.mark.parametrize(
    ("budget", "outcomes"), [('"50 MB"', {"passed": 1}), ('"1 MB"', {"passed": 1, "errors": 1})]
)
def test_the_marker_leak_budget(
    pytester: pytest.Pytester, run: InnerSession, budget: str, outcomes: dict[str, int]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        KEPT = []

        @pytest.mark.memory_budget(leak={budget})
        def test_keeps_20mb():
            KEPT.append([bytes(1000) for _ in range(20_000)])
        """
    )
    result, report = run()
    result.assert_outcomes(**outcomes)
    kept = entry(report, "test_keeps_20mb")
    if "errors" in outcomes:
        assert kept["status"] == "leak"
        assert kept["leaked"] >= 20_000_000
    else:  # the counts' bound is under the budget: cleared, not traced
        assert (kept["status"], kept["leaked"]) == ("ok", None)


@pytest.mark.parametrize(("budget", "fails"), [('"20 MB"', True), ('"200 MB"', False)])
def test_the_marker_heap_budget(
    pytester: pytest.Pytester, run: InnerSession, budget: str, fails: bool
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.memory_budget(heap={budget})
        def test_builds_50mb():
            objects = [bytes(1000) for _ in range(50_000)]
            del objects
        """
    )
    result, report = run()
    built = entry(report, "test_builds_50mb")
    assert built["heap_peak"] >= 50_000_000
    assert built["leaked"] is None, "a heap budget alone does not check for leaks"
    if fails:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*test_builds_50mb - memguard: Python heap peak * is over*"])
    else:
        result.assert_outcomes(passed=1)


def test_a_suspect_that_fails_when_run_again_is_a_warning(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        KEPT = []

        def test_only_once():
            assert not KEPT, "not meant to run twice"
            KEPT.append(bytearray(5_000_000))
        """
    )
    result, report = run("--memguard-leaks")
    result.assert_outcomes(passed=1)
    once = entry(report, "test_only_once")
    assert once["status"] == "warning"
    assert once["leak_check"]["verdict"] == "unconfirmed"
    assert "not judged: the rerun failed: call: AssertionError" in once["message"]


def test_a_rerun_reports_nothing(pytester: pytest.Pytester, run: InnerSession) -> None:
    # Two suspects with subtests: the reruns' subtests are not counted again, and one
    # that fails only on the rerun makes the rerun's error, not a failure of the test.
    pytester.makepyfile(
        """
        import unittest

        CACHE = []
        KEPT = []

        class TestWarmUps(unittest.TestCase):
            def test_warms_a_cache(self):
                for i in range(5):
                    with self.subTest(i=i):
                        if not CACHE:
                            CACHE.append(bytearray(5_000_000))

            def test_once_only(self):
                first = not KEPT
                KEPT.append(bytearray(5_000_000))
                for i in range(5):
                    with self.subTest(i=i):
                        self.assertTrue(first or i < 4)
        """
    )
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v").parseoutcomes()
    result, report = run("--memguard-leaks", "-v")
    assert result.parseoutcomes() == plain
    if pytest.version_tuple >= (9,):  # pytest reports unittest's subtests since 9
        assert plain == {"passed": 2, "subtests": 10}
    warm = entry(report, "test_warms_a_cache")
    assert warm["leak_check"]["verdict"] == "warm_up", warm["message"]
    once = entry(report, "test_once_only")
    assert once["leak_check"]["verdict"] == "unconfirmed"
    assert "the rerun failed: call: a subtest failed: " in once["message"]
    if pytest.version_tuple >= (9,):
        assert "(i=4)" in once["message"]


@pytest.mark.skipif(not hasattr(pytest, "Subtests"), reason="pytest's subtests fixture: pytest 9")
def test_a_rerun_reports_no_subtests_of_the_fixture(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        CACHE = []

        def test_warms_a_cache(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    if not CACHE:
                        CACHE.append(bytearray(5_000_000))
        """
    )
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v").parseoutcomes()
    result, report = run("--memguard-leaks", "-v")
    assert result.parseoutcomes() == plain == {"passed": 1, "subtests": 3}
    warm = entry(report, "test_warms_a_cache")
    assert warm["leak_check"]["verdict"] == "warm_up", warm["message"]


def test_tracing_the_user_started_is_used_and_left_on(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    # A plugin stands in for PYTHONTRACEMALLOC: tracing is on before memguard looks.
    pytester.makepyfile(tracemalloc_on="import tracemalloc\ntracemalloc.start(4)\n")
    pytester.makepyfile(
        """
        import tracemalloc
        KEPT = []

        def test_leaks():
            KEPT.append(bytearray(8_000_000))

        def test_tracing_is_still_on():
            assert tracemalloc.is_tracing()
        """
    )
    pytester.makeini("[pytest]\nmemguard_leaks = true\n")
    pytester.syspathinsert()
    result, report = run("-p", "tracemalloc_on")
    result.assert_outcomes(passed=2, errors=1)
    assert entry(report, "test_leaks")["status"] == "leak"
    assert report["config"]["sources"]["leaks"] == "memguard_leaks (ini)"


DOCTESTS = '''
"""A module whose doctest fills a cache once.

>>> len(fill())
200000
"""
CACHE = []
KEPT = []


def fill():
    if not CACHE:
        CACHE.extend(str(i) * 5 for i in range(200_000))
    return CACHE


def leak():
    """
    >>> leak()
    """
    KEPT.append(bytearray(5_000_000))
'''


def test_doctests_are_judged_like_any_test(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(cached=DOCTESTS)
    result, report = run("--memguard-leaks", "--doctest-modules")
    result.assert_outcomes(passed=2, errors=1)
    warm = entry(report, "cached.py::cached")
    assert (warm["status"], warm["leak_check"]["verdict"]) == ("ok", "warm_up")
    leaky = entry(report, "cached.py::cached.leak")
    assert (leaky["status"], leaky["leak_check"]["reruns"]) == ("leak", 3)
    assert leaky["sites"][0]["file"] == "cached.py"
    assert 4.5 * 2**20 < leaky["leaked"] < 6 * 2**20


BOUNDED_CACHE = """
import random

CACHE = {}


def test_fills_a_bounded_cache_with_random_examples():
    # As hypothesis's caches: each run adds new random entries until the bound.
    for _ in range(1_100):
        if len(CACHE) < 2_600:
            CACHE[random.random()] = bytes(1_000)
"""


def test_a_bounded_cache_filling_is_a_warm_up(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(test_bounded=BOUNDED_CACHE)
    result, report = run("--memguard-leaks")
    result.assert_outcomes(passed=1)
    (test,) = report["tests"]
    # Over the budget twice, then less: let go before the traced run.
    assert test["leak_check"]["verdict"] == "warm_up", test["message"]
    assert test["leak_check"]["reruns"] == 2
    assert "a warm-up, not a leak" in test["message"]


UNJUDGED = """
import pytest

KEPT = []
RUNS = []


def test_cannot_run_twice():
    RUNS.append(1)
    assert len(RUNS) == 1
    KEPT.append(bytearray(3_000_000))
"""


def test_a_suspect_not_judged_says_why_in_the_summary(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(test_once=UNJUDGED)
    result, _ = run("--memguard-leaks")
    result.stdout.fnmatch_lines(
        [
            "1 warning(s):",
            "  warning test_once.py::test_cannot_run_twice - memguard: kept at most * by the"
            " allocators' counts on its first run (leak budget 1.0 MiB); not judged: the rerun"
            " failed: call: AssertionError*",
        ]
    )
