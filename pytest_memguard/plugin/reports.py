"""What memguard reads from and adds to pytest's test reports.

Nothing here runs per report in a run without memory failures: the guard takes each
test's outcome from the reports pytest's terminal reporter keeps anyway (at the end of
the run), and the plugins below are registered only when they are needed.

- :class:`MemoryFailures`: the ``memguard`` section and the status letter ``M`` /
  word ``MEMORY`` of memory failures; registered at the first one.
- :class:`OutcomeRecorder`: each test's outcome as its reports come, for runs without
  the terminal reporter (``-p no:terminal``) or with listeners of
  ``pytest_memguard_test_result``, which need the outcome when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, Final

import pytest

__all__ = [
    "FAILURES_PLUGIN_NAME",
    "RECORDER_PLUGIN_NAME",
    "MemoryFailures",
    "OutcomeRecorder",
    "kept_reports",
    "merge_outcome",
    "outcomes_of",
]

FAILURES_PLUGIN_NAME: Final = "memguard-status"
RECORDER_PLUGIN_NAME: Final = "memguard-outcomes"


def merge_outcome(old: str, new: str) -> str:
    """A test's outcome over its phases: "failed" beats "skipped" beats "passed"."""
    return new if new != "passed" and old != "failed" else old


def outcomes_of(stats: Mapping[str, Iterable[Any]]) -> dict[str, str]:
    """Node id -> outcome, from the terminal reporter's reports by category.

    Only tests with a report that did not pass are listed (the others passed), so the
    categories of passing reports (``passed`` and the empty one of a passing setup or
    teardown) are not even looked at.  The copies of the mapping and of each list are
    single C calls, so another thread (the watchdog, writing a report when it ends the
    process) reads a consistent state.
    """
    outcomes: dict[str, str] = {}
    for category, reports in list(stats.items()):
        if category in _PASSING:
            continue
        for report in list(reports):
            if isinstance(report, pytest.TestReport) and report.outcome != "passed":
                nodeid = report.nodeid
                outcomes[nodeid] = merge_outcome(outcomes.get(nodeid, "passed"), report.outcome)
    return outcomes


#: Terminal reporter categories of passing test reports.
_PASSING: Final = frozenset({"", "passed"})


def kept_reports(config: pytest.Config) -> Mapping[str, Iterable[Any]] | None:
    """The reports pytest's terminal reporter keeps, by category; None without one."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    return stats if isinstance(stats, dict) else None


class MemoryFailures:
    """The ``memguard`` section and the status letter ``M`` of memory failures.

    ``failures`` maps ``(nodeid, phase)`` to the text of the section, filled by the
    guard when it fails a phase (or, in report mode, finds a problem); the section goes
    on that phase's report, before xdist sends it or the terminal shows it.
    ``swallowed(nodeid, error)`` says why a teardown that ended with ``error`` (None: it
    passed) fails although it raised no stop: the guard stopped it and it went on.
    """

    def __init__(
        self,
        failures: Mapping[tuple[str, str], Callable[[], str]],
        swallowed: Callable[[str, BaseException | None], str | None] = lambda nodeid, error: None,
    ) -> None:
        self.failures = failures
        self.swallowed = swallowed

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "teardown" and (item.nodeid, "teardown") in self.failures:
            error = call.excinfo.value if call.excinfo is not None else None
            message = self.swallowed(item.nodeid, error)
            if message is not None and report.passed:
                report.outcome = "failed"
                report.longrepr = message
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        details = self.failures.get((report.nodeid, report.when))
        if details is None:
            return
        report.sections.append(("memguard", details()))
        if report.failed:
            report.memguard_cause = True  # type: ignore[attr-defined]

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.outcome == "failed" and report.__dict__.get("memguard_cause"):
            category = "error" if report.when in ("setup", "teardown") else "failed"
            return category, "M", ("MEMORY", {"red": True})
        return None


class OutcomeRecorder:
    """Each test's outcome from its reports; ``on_end(nodeid, outcome)`` at its last one."""

    def __init__(self, on_end: Callable[[str, str], None] | None = None) -> None:
        self.outcomes: dict[str, str] = {}
        self.on_end = on_end

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        outcome = self.outcomes[nodeid] = merge_outcome(
            self.outcomes.get(nodeid, "passed"), report.outcome
        )
        if report.when == "teardown" and self.on_end is not None:
            self.on_end(nodeid, outcome)
