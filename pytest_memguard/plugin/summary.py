"""The run's JSON report, assembled from the :class:`~.run.Run` at the end of the run (or
when the guard has to end the process), and the few figures and entries the terminal
shows, which need no entry for every test."""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..reporting.results import FAILING_STATUSES, TestMemory
from .context import Run

if TYPE_CHECKING:
    from .state import TestState

__all__ = ["RunSummary", "run_report", "run_summary"]


def run_report(
    run: Run,
    *,
    interrupted: bool,
    reason: str,
    abort: str | None = None,
    ended: float | None = None,
    signal: str | None = None,
) -> dict[str, Any]:
    """The report of the run so far.

    :param reason: why the run ended early ("" when it did not)
    :param signal: the name of the signal that ended it (``SIGTERM``), if one did
    :param abort: the message of a test the guard is ending the process for, if any
    :param ended: when the run ended (``time.time()``; default: now)
    """
    from ..reporting.report import build_report
    from ..reporting.timeline import build_timeline

    worker = run.worker
    peak = run.max_rss()
    tests = []
    for state in list(run.results):  # one pass: a run has thousands of tests
        tests.append(state.entry(worker))
        if state.rss_peak is not None and state.rss_peak > peak:
            peak = state.rss_peak
    running = run.running
    if running is not None and abort is not None:  # the guard is ending the process
        aborted = TestMemory(
            running.nodeid, "failed", "aborted", worker, 0.0, rss_peak=peak, message=abort
        )
        tests.append(aborted.to_json())
    collected, alerts = run.collected, run.alerts
    workers = [
        {
            "id": worker,
            "pid": os.getpid(),
            "peak_rss": peak,
            "killed": run.escalated,
            "reason": reason if run.escalated else None,
        }
    ]
    not_run = f"not run ({reason})" if reason else "not run"
    samples = {worker: run.samples.samples()}
    controller = run.controller
    if controller is not None and controller.active:
        tests, collected = controller.tests(), controller.collected
        alerts = [*alerts, *controller.alerts()]
        workers = controller.workers()
        not_run = controller.not_run_reason() or not_run
        samples = controller.samples()
    report = build_report(
        tests=tests,
        collected=collected,
        alerts=alerts,
        workers=workers,
        environment=run.environment(),
        config=run.settings.to_json(),
        started=run.started,
        duration_s=(time.time() if ended is None else ended) - run.started,
        interrupted=interrupted,
        not_run_reason=not_run,
    )
    if signal is not None:
        report["signal"] = signal
    report["timeline"] = build_timeline(
        tests=report["tests"], alerts=report["alerts"], workers=report["workers"], samples=samples
    )
    from .hookcalls import report_extras

    extras, hook_errors = report_extras(run.config, MappingProxyType(report))
    run.hook_errors.extend(text for text in hook_errors if text not in run.hook_errors)
    if extras:
        report["extra"] = extras
    if run.errors or run.hook_errors:
        report["errors"] = [*run.errors, *run.hook_errors]
    if run.pressure:
        report["pressure"] = list(run.pressure)
    return report


class RunSummary(NamedTuple):
    """What the terminal's ``memguard`` section shows of a run."""

    #: The entries of the tests with the largest peak growth, largest first.
    heaviest: list[dict[str, Any]]
    #: How many tests have a measured peak growth.
    measured: int
    #: The entries of the memory failures, in run order.
    violations: list[dict[str, Any]]
    #: The entries of the tests with a warning that says why (a leak suspect not judged,
    #: a possible native leak), in run order.
    warned: list[dict[str, Any]]
    not_run: int
    peak_rss: int
    #: ``{"nodeid", "peak_delta"}`` of the test with the largest growth, or None.
    worst: dict[str, Any] | None
    alerts: Sequence[Mapping[str, Any]]
    workers: Sequence[Mapping[str, Any]]


#: A test state's peak growth (a C getter, for the sorts of thousands of tests).
_PEAK_DELTA: Final = attrgetter("peak_delta")


def run_summary(run: Run, top: int, report: Mapping[str, Any] | None = None) -> RunSummary:
    """The summary of the run for the terminal: from the full ``report`` when one was
    built (always in an xdist controller), else from the results, making entries for the
    few tests shown only, not for the thousands of a run."""
    if report is not None:
        return _summary_of_report(report, top)
    results: list[TestState] = run.results
    measured = [state for state in results if state.peak_delta is not None]
    heaviest = heapq.nlargest(top, measured, key=_PEAK_DELTA) if top else []
    peaks = [state.rss_peak for state in results if state.rss_peak is not None]
    peak_rss = max([run.max_rss(), *peaks])
    worst = max(measured, key=_PEAK_DELTA, default=None)
    # A failing status is final as it is (only "ok" can read as "warning").
    failing = [state for state in results if state.status in FAILING_STATUSES]
    return RunSummary(
        heaviest=[state.entry(run.worker) for state in heaviest],
        measured=len(measured),
        violations=[state.entry(run.worker) for state in failing],
        warned=[state.entry(run.worker) for state in results if state.warnings],
        not_run=len(set(run.collected).difference([s.nodeid for s in results]))
        + sum(1 for state in results if state.status == "not_run"),
        peak_rss=peak_rss,
        worst=(
            {"nodeid": worst.nodeid, "peak_delta": worst.peak_delta} if worst is not None else None
        ),
        alerts=run.alerts,
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
        warned=[test for test in tests if test["status"] == "warning" and test["message"]],
        not_run=summary["statuses"]["not_run"],
        peak_rss=summary["peak_rss"],
        worst=summary["worst"],
        alerts=report["alerts"],
        workers=report["workers"],
    )
