"""pytest's own phase work, as memguard finds and uses it."""

from __future__ import annotations

import pytest

from pytest_memguard.plugin import hooks
from pytest_memguard.plugin.runner import Runner, find_runner


def test_pytests_runner_is_found_for_each_phase(pytestconfig: pytest.Config) -> None:
    runner = find_runner(pytestconfig)
    assert runner.found
    assert [impl.__module__ for impl in runner] == ["_pytest.runner"] * 3
    assert len(runner.code()) == 3


def test_without_the_runner_the_guard_is_not_bounded_and_the_header_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Runner(None, None, None).code() == ()
    monkeypatch.setattr(hooks, "find_runner", lambda config: Runner(None, None, None))
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--memguard", "--memguard-leaks", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["memguard: pytest's runner was not found:*"])
