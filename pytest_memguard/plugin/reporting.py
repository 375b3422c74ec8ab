"""The run's report: assembled from the plugin's results at the end of the run (or when
the guard has to end the process), for the JSON file, the terminal and the report hook."""

from __future__ import annotations

import os
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

from ..core.guard import describe_platform
from ..report import build_report, environment
from ..results import TestMemory
from .reports import kept_reports, outcomes_of

if TYPE_CHECKING:
    from .hooks import MemguardPlugin

__all__ = ["run_report"]


def run_report(
    plugin: MemguardPlugin, *, interrupted: bool, reason: str, abort: str | None = None
) -> dict[str, Any]:
    """The report of the run so far.

    :param reason: why the run ended early ("" when it did not)
    :param abort: the message of a test the guard is ending the process for, if any
    """
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
        duration_s=time.time() - plugin.started,
        interrupted=interrupted,
        not_run_reason=not_run,
    )
    extras = plugin.config.hook.pytest_memguard_report(
        config=plugin.config, report=MappingProxyType(report)
    )
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
