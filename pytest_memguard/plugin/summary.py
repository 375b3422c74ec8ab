"""The run's JSON report and the summary the terminal shows, both from the run's
:class:`~.context.ResultSource` (this process's tests, or the xdist workers'), the same
way for either."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from ..reporting.results import FAILING_STATUSES, TestMemory
from .context import RunContext

__all__ = ["ExtrasHook", "RunSummary", "run_report", "run_summary"]

#: Asks the ``pytest_memguard_report`` implementations for their extra fields: the
#: fields, and an error for each wrong answer.
ExtrasHook = Callable[[Mapping[str, Any]], "tuple[dict[str, Any], list[str]]"]


def run_report(
    context: RunContext,
    *,
    interrupted: bool,
    reason: str,
    extras: ExtrasHook | None = None,
    aborted: TestMemory | None = None,
    ended: float | None = None,
    signal: str | None = None,
) -> dict[str, Any]:
    """The report of the run so far; its ``tests`` are
    :class:`~pytest_memguard.reporting.report.TestEntries`, made from the results as
    they are read.

    :param reason: why the run ended early ("" when it did not)
    :param extras: the report hook's call (None: not asked, e.g. while the process ends)
    :param aborted: the result of a test the guard is ending the process for, if any
    :param ended: when the run ended (``time.time()``; default: now)
    :param signal: the name of the signal that ended it (``SIGTERM``), if one did
    """
    from ..reporting.report import build_report
    from ..reporting.timeline import build_timeline

    source, log = context.source, context.log
    results = source.results()
    if aborted is not None:
        results.append(aborted)
    report = build_report(
        tests=results,
        collected=source.collected(),
        alerts=source.alerts(),
        workers=source.workers(reason),
        environment=context.environment,
        config=context.settings.to_json(),
        started=context.started,
        duration_s=(time.time() if ended is None else ended) - context.started,
        interrupted=interrupted,
        not_run_reason=source.not_run_reason() or (f"not run ({reason})" if reason else "not run"),
    )
    if signal is not None:
        report["signal"] = signal
    report["timeline"] = build_timeline(
        tests=report["tests"].results,
        alerts=report["alerts"],
        workers=report["workers"],
        samples=source.samples(),
    )
    if extras is not None:
        fields, hook_errors = extras(MappingProxyType(report))
        log.hook_errors.extend(text for text in hook_errors if text not in log.hook_errors)
        if fields:
            report["extra"] = fields
    if log.errors or log.hook_errors:
        report["errors"] = [*log.errors, *log.hook_errors]
    if log.pressure:
        report["pressure"] = list(log.pressure)
    return report


class RunSummary(NamedTuple):
    """What the terminal's ``memguard`` section shows of a run."""

    #: The tests with the largest peak growth, largest first.
    heaviest: list[TestMemory]
    #: How many tests the run has results for, and how many of them have a peak growth.
    tests: int
    measured: int
    #: The memory failures, in run order.
    violations: list[TestMemory]
    #: The tests with a warning that says why (a leak suspect not judged, a possible
    #: native leak), in run order.
    warned: list[TestMemory]
    not_run: int
    peak_rss: int
    #: The test with the largest growth, or None.
    worst: TestMemory | None
    alerts: Sequence[Mapping[str, Any]]
    workers: Sequence[Mapping[str, Any]]


#: A result's peak growth (a C getter, for the sorts of thousands of tests).
_PEAK_DELTA: Final = attrgetter("peak_delta")


def run_summary(context: RunContext, top: int) -> RunSummary:
    """The summary of the run for the terminal."""
    source = context.source
    results = source.results()
    measured = [result for result in results if result.peak_delta is not None]
    ran = {result.nodeid for result in results}
    workers = source.workers("")
    return RunSummary(
        heaviest=heapq.nlargest(top, measured, key=_PEAK_DELTA) if top else [],
        tests=len(results),
        measured=len(measured),
        violations=[result for result in results if result.status in FAILING_STATUSES],
        warned=[result for result in results if result.status == "warning" and result.message],
        not_run=sum(1 for nodeid in source.collected() if nodeid not in ran)
        + sum(1 for result in results if result.status == "not_run"),
        peak_rss=max(
            [source.peak_rss(), *(int(worker.get("peak_rss") or 0) for worker in workers)]
        ),
        worst=max(measured, key=_PEAK_DELTA, default=None),
        alerts=source.alerts(),
        workers=workers,
    )
