"""--memguard-min-free: a test does not start while too little memory is available."""

from __future__ import annotations

import pytest

from pytest_memguard.plugin import PLUGIN_KEY
from pytest_memguard.plugin.preflight import Preflight

from .conftest import InnerSession, entry

THREE = """
import pytest

@pytest.fixture
def opened():
    raise AssertionError("fixtures must not run before the pre-flight check")

def test_one():
    pass

def test_two(opened):
    pass

def test_three():
    pass
"""

#: Keeps the pre-flight wait short in the runs below.
SHORT_WAIT = """
import pytest

def pytest_sessionstart(session):
    preflight = session.config.pluginmanager.get_plugin("memguard-preflight")
    if preflight is not None:
        preflight.wait = 0.01
"""


def test_a_huge_min_free_starts_no_test_and_still_reports(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(THREE)
    pytester.makeconftest(SHORT_WAIT)
    result, report = run("--memguard-min-free=10TB")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_one*",
            "memguard: not started: * available, --memguard-min-free asks for 9.1 TiB",
            "*3 test(s) were not run",
        ]
    )
    assert "fixtures must not run" not in result.stdout.str()
    assert report["summary"]["statuses"]["not_run"] == 3
    one = entry(report, "test_one")
    assert one["status"] == "not_run"
    assert one["message"].startswith("memguard: not started: ")
    assert "--memguard-min-free asks for 9.1 TiB" in one["message"]
    assert report["config"]["min_free"] == 10 * 10**12


def test_the_env_twin_names_itself(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    pytester.makeconftest(SHORT_WAIT)
    monkeypatch.setenv("MEMGUARD_MIN_FREE", "10TB")
    result, report = run()
    result.assert_outcomes(errors=1)
    assert "MEMGUARD_MIN_FREE asks for 9.1 TiB" in entry(report, "test_one")["message"]


def test_a_tiny_min_free_changes_nothing(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    result, report = run("--memguard-min-free=1MB")
    result.assert_outcomes(passed=2)
    assert report["summary"]["statuses"]["ok"] == 2


def test_without_the_option_no_preflight_check_is_made(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure("--memguard")
    assert config.stash[PLUGIN_KEY].preflight is None
    config = pytester.parseconfigure("--memguard", "--memguard-min-free=1MB")
    assert config.stash[PLUGIN_KEY].preflight is not None


def test_a_bad_size_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("--memguard", "--memguard-min-free=2 apples")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memguard-min-free: *'2 apples'*"])


# -- the check itself, with a fake memory reader and no sleeping ----------------------------


def make(readings: list[int], min_free: int = 100) -> tuple[Preflight, list[str], list[float]]:
    relieved: list[str] = []
    slept: list[float] = []
    preflight = Preflight(
        min_free,
        "--memguard-min-free",
        lambda trigger, nodeid: relieved.append(trigger),
        read=lambda: readings.pop(0) if len(readings) > 1 else readings[0],
        sleep=slept.append,
        wait=2.0,
        polls=4,
    )
    return preflight, relieved, slept


def test_enough_memory_costs_one_reading() -> None:
    preflight, relieved, slept = make([500])
    assert preflight.shortfall("t") is None
    assert relieved == []
    assert slept == []


def test_memory_that_comes_back_after_the_cleanup_lets_the_test_start() -> None:
    preflight, relieved, slept = make([50, 60, 70, 150])
    assert preflight.shortfall("t") is None
    assert relieved == ["50 B available before t"]
    assert slept == [0.5, 0.5]


def test_memory_that_stays_short_stops_the_test_after_a_bounded_wait() -> None:
    preflight, relieved, slept = make([50])
    assert preflight.shortfall("t") == (
        "memguard: not started: 50 B available, --memguard-min-free asks for 100 B"
    )
    assert len(relieved) == 1
    assert sum(slept) == pytest.approx(2.0)
    assert len(slept) == 4
