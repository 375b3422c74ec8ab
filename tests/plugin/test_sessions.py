"""The check of the tests' inner sessions (tests/sessions.py): an error inside memguard,
which the plugin swallows so that a user's run goes on, fails the test that ran the
session, however it ran it, unless the test expects one."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ..sessions import MARKER, guarded_run
from .conftest import InnerSession, finish, start_session

#: A conftest whose listener of a memguard hook raises: memguard records an internal
#: error at the end of each test and goes on.
BROKEN_LISTENER = """
def pytest_memguard_test_result(item, result):
    raise RuntimeError("broken listener")
"""
#: The line the session prints for it.
SHOWN = (
    "memguard: internal error, the guard went on: ending test_one.py::test_one:"
    " RuntimeError: broken listener"
)

RUNS: dict[str, Callable[[pytest.Pytester], object]] = {
    "runpytest": lambda pytester: pytester.runpytest("--memguard"),
    "runpytest_inprocess": lambda pytester: pytester.runpytest_inprocess("--memguard"),
    "runpytest_subprocess": lambda pytester: pytester.runpytest_subprocess("--memguard"),
    "inline_run": lambda pytester: pytester.inline_run("--memguard"),
    "run": lambda pytester: pytester.run(sys.executable, "-m", "pytest", "--memguard"),
    "start_session": lambda pytester: finish(start_session(pytester, "--memguard")),
}


@pytest.fixture
def broken(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(BROKEN_LISTENER)
    pytester.makepyfile(test_one="def test_one(): pass")
    return pytester


@pytest.mark.parametrize("how", RUNS)
def test_an_internal_error_in_an_inner_session_fails_the_test(
    broken: pytest.Pytester, how: str
) -> None:
    with pytest.raises(pytest.fail.Exception) as failure:
        RUNS[how](broken)
    message = str(failure.value)
    assert message.startswith("an inner pytest session had errors inside memguard")
    assert f"@pytest.mark.{MARKER}" in message
    assert f"\n  {SHOWN}" in message


@pytest.mark.memguard_errors
@pytest.mark.parametrize("how", ["runpytest", "runpytest_subprocess"])
def test_a_test_marked_to_expect_internal_errors_sees_them(
    broken: pytest.Pytester, how: str
) -> None:
    result = RUNS[how](broken)
    assert isinstance(result, pytest.RunResult)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([SHOWN])


def test_errors_in_the_json_report_fail_the_test_unless_the_run_expects_them(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    # A hook answering the wrong type is an error of the report, not of the terminal.
    pytester.makeconftest("def pytest_memguard_report(config, report):\n    return [1]\n")
    pytester.makepyfile(test_one="def test_one(): pass")
    with pytest.raises(pytest.fail.Exception) as failure:
        run(inprocess=True)
    assert "\n  memguard.json errors: pytest_memguard_report in conftest.py returned list" in (
        str(failure.value)
    )
    _, report = run(inprocess=True, errors=True)
    assert len(report["errors"]) == 1


def test_a_json_report_asked_for_in_pytest_addopts_is_checked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest("def pytest_memguard_report(config, report):\n    return [1]\n")
    pytester.makepyfile(test_one="def test_one(): pass")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--memguard-json out.json -p no:terminal")
    with pytest.raises(pytest.fail.Exception) as failure:
        pytester.runpytest_subprocess("--memguard")
    assert "\n  out.json errors: pytest_memguard_report in conftest.py returned list" in (
        str(failure.value)
    )


def test_a_hook_error_printed_fails_the_test_without_a_json_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest("def pytest_memguard_report(config, report):\n    return [1]\n")
    pytester.makepyfile(test_one="def test_one(): pass")
    with pytest.raises(pytest.fail.Exception) as failure:
        pytester.runpytest("--memguard")
    assert "\n  memguard: error: pytest_memguard_report in conftest.py returned list" in (
        str(failure.value)
    )


def test_a_pytest_internalerror_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_sessionstart(session):\n    raise RuntimeError('broken session start')\n"
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        guarded_run(pytester, inprocess=True)
    message = str(failure.value)
    assert "\n  INTERNALERROR> " in message
    assert message.count("RuntimeError: broken session start") == 1


def test_a_pytest_internalerror_without_a_terminal_fails_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "def pytest_sessionstart(session):\n    raise RuntimeError('broken session start')\n"
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        pytester.inline_run("-p", "no:terminal")
    assert "\n  INTERNALERROR> " in str(failure.value)
    assert "RuntimeError: broken session start" in str(failure.value)


def test_the_outer_test_fails_and_the_marked_one_passes(pytester: pytest.Pytester) -> None:
    """End to end: a session of this suite's own tests, each running a broken session."""
    pytester.makeconftest('pytest_plugins = ["pytester", "tests.conftest"]')
    pytester.makepyfile(
        test_outer=f"""
        import pytest

        BROKEN = {BROKEN_LISTENER!r}

        def _broken_run(pytester):
            pytester.makeconftest(BROKEN)
            pytester.makepyfile(test_one="def test_one(): pass")
            return pytester.runpytest("--memguard")

        def test_unmarked(pytester):
            _broken_run(pytester)

        @pytest.mark.{MARKER}
        def test_marked(pytester):
            _broken_run(pytester).assert_outcomes(passed=1)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_unmarked _*",
            "an inner pytest session had errors inside memguard *",
            f"  {SHOWN}",
        ]
    )


def test_every_pytest_the_tests_start_themselves_is_checked() -> None:
    """pytester's sessions are checked whatever runs them; a test that starts pytest with
    :mod:`subprocess` must pass its output to ``check_session`` (or use ``start_session``
    and ``finish``)."""
    tests = Path(__file__).resolve().parents[1]
    starts_pytest = re.compile(r'"-m",\s*"pytest"|"pytest",')
    unchecked = [
        path.relative_to(tests).as_posix()
        for path in sorted(tests.rglob("*.py"))
        if "subprocess." in (text := path.read_text(encoding="utf-8"))
        and starts_pytest.search(text)
        and "check_session(" not in text
        and "finish(" not in text
    ]
    assert unchecked == []
