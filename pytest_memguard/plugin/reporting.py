"""The run's report, assembled from the plugin's results at the end of the run (or when
the guard has to end the process) for the JSON file and the report hook; and the few
figures and entries the terminal shows, which need no entry for every test."""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import pytest

from ..core.guard import describe_platform
from ..results import FAILING_STATUSES
from .reports import kept_reports, outcomes_of

if TYPE_CHECKING:
    from .hooks import MemguardPlugin
    from .state import TestState

__all__ = ["RunSummary", "run_report", "run_summary"]


def run_report(
    plugin: MemguardPlugin,
    *,
    interrupted: bool,
    reason: str,
    abort: str | None = None,
    ended: float | None = None,
) -> dict[str, Any]:
    """The report of the run so far.

    :param reason: why the run ended early ("" when it did not)
    :param abort: the message of a test the guard is ending the process for, if any
    :param ended: when the run ended (``time.time()``; default: now)
    """
    from ..measured import TestMemory  # for the few runs that need it
    from ..report import build_report, environment

    budgets: dict[int, dict[str, int | None]] = {}
    outcomes = _outcomes(plugin)
    worker = plugin.worker
    peak = plugin.guard.max_rss
    tests = []
    for state in list(plugin.results):  # one pass: a run has thousands of tests
        if outcomes:
            state.outcome = outcomes.get(state.nodeid, state.outcome)
        tests.append(state.entry(worker, budgets))
        if state.rss_peak is not None and state.rss_peak > peak:
            peak = state.rss_peak
    running = plugin._running
    if running is not None and abort is not None:
        tests.append(
            TestMemory(
                running.nodeid,
                "failed",
                "aborted",
                worker,
                0.0,
                rss_peak=plugin.guard.max_rss,
                message=abort,
            ).to_json()
        )
    elif running is not None and interrupted:
        tests.append(
            TestMemory(running.nodeid, "not_run", "not_run", worker, 0.0, message=reason).to_json()
        )
    collected, alerts = plugin.collected, plugin.alerts
    workers = [
        {
            "id": plugin.worker,
            "pid": os.getpid(),
            "peak_rss": peak,
            "killed": plugin._escalated,
            "reason": reason if plugin._escalated else None,
        }
    ]
    not_run = f"not run ({reason})" if reason else "not run"
    controller = plugin.controller
    if controller is not None and controller.active:
        tests, collected = controller.tests(), controller.collected
        alerts = [*alerts, *controller.alerts()]
        workers = controller.workers()
        not_run = controller.not_run_reason()
    report = build_report(
        tests=tests,
        collected=collected,
        alerts=alerts,
        workers=workers,
        environment=environment(
            plugin.memory,
            peak_method=plugin.meter.method,
            interrupt=describe_platform(),
            pytest_version=pytest.__version__,
        ),
        config=plugin.settings.to_json(),
        started=plugin.started,
        duration_s=(time.time() if ended is None else ended) - plugin.started,
        interrupted=interrupted,
        not_run_reason=not_run,
    )
    try:
        extras = plugin.config.hook.pytest_memguard_report(
            config=plugin.config, report=MappingProxyType(report)
        )
    except Exception as error:  # a broken listener costs its extras, not the report
        plugin._internal("calling pytest_memguard_report", error)
        extras = []
    if extras:
        report["extra"] = {k: v for extra in extras for k, v in dict(extra).items()}
    if plugin.errors:
        report["errors"] = list(plugin.errors)
    if plugin._relief is not None and plugin._relief.events:
        report["pressure"] = list(plugin._relief.events)
    return report


def _outcomes(plugin: MemguardPlugin) -> dict[str, str]:
    """Each finished test's outcome, from the reports pytest kept (or the recorder)."""
    if plugin._recorder is not None:
        return dict(plugin._recorder.outcomes)
    return outcomes_of(kept_reports(plugin.config) or {})


class RunSummary(NamedTuple):
    """What the terminal's ``memguard`` section shows of a run."""

    #: The entries of the tests with the largest peak growth, largest first.
    heaviest: list[dict[str, Any]]
    #: How many tests have a measured peak growth.
    measured: int
    #: The entries of the memory failures, in run order.
    violations: list[dict[str, Any]]
    not_run: int
    peak_rss: int
    #: ``{"nodeid", "peak_delta"}`` of the test with the largest growth, or None.
    worst: dict[str, Any] | None
    alerts: Sequence[Mapping[str, Any]]
    workers: Sequence[Mapping[str, Any]]


#: A test state's peak growth (a C getter, for the sorts of thousands of tests).
_PEAK_DELTA: Final = attrgetter("peak_delta")


def run_summary(plugin: MemguardPlugin, top: int) -> RunSummary:
    """The summary of the run for the terminal: from the full report when one was built
    (always in an xdist controller, see ``pytest_sessionfinish``), else from the results,
    making entries for the few tests shown only, not for the thousands of a run."""
    if plugin._report is not None:
        return _summary_of_report(plugin._report, top)
    results: list[TestState] = plugin.results
    measured = [state for state in results if state.peak_delta is not None]
    heaviest = heapq.nlargest(top, measured, key=_PEAK_DELTA) if top else []
    peaks = [state.rss_peak for state in results if state.rss_peak is not None]
    peak_rss = max([plugin.guard.max_rss, *peaks])
    worst = max(measured, key=_PEAK_DELTA, default=None)
    # A failing status is final as it is (only "ok" can read as "warning").
    failing = [state for state in results if state.status in FAILING_STATUSES]
    return RunSummary(
        heaviest=[state.entry(plugin.worker) for state in heaviest],
        measured=len(measured),
        violations=[state.entry(plugin.worker) for state in failing],
        not_run=len(set(plugin.collected).difference([state.nodeid for state in results])),
        peak_rss=peak_rss,
        worst=(
            {"nodeid": worst.nodeid, "peak_delta": worst.peak_delta} if worst is not None else None
        ),
        alerts=plugin.alerts,
        workers=[],
    )


def _summary_of_report(report: Mapping[str, Any], top: int) -> RunSummary:
    tests: list[dict[str, Any]] = report["tests"]
    measured = [test for test in tests if test["peak_delta"] is not None]
    summary = report["summary"]
    return RunSummary(
        heaviest=heapq.nlargest(top, measured, key=lambda test: test["peak_delta"]) if top else [],
        measured=len(measured),
        violations=[test for test in tests if test["status"] in FAILING_STATUSES],
        not_run=summary["statuses"]["not_run"],
        peak_rss=summary["peak_rss"],
        worst=summary["worst"],
        alerts=report["alerts"],
        workers=report["workers"],
    )
