"""MemguardPlugin: the per-run plugin object that wraps every test in the guard."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import pytest

from ..core.guard import AbortInfo, Guard, LevelEvent, describe_platform
from ..core.levels import Level
from ..core.sizes import format_size
from ..errors import MemoryLimitExceeded
from ..probe.process import RssReader, open_peak_meter, trim_heap
from ..probe.system import read_system_memory
from ..records import RecordWriter
from ..report import build_report, environment, write_report
from ..results import Budget, Status, TestMemory
from . import terminal
from .markers import MARKER, budget_of
from .settings import Settings

__all__ = ["BUDGET_KEY", "PLUGIN_KEY", "MemguardPlugin"]

#: A test's budget from its marker and the options, or the message of a bad marker.
BUDGET_KEY: Final = pytest.StashKey["Budget | str"]()


class _TestState:
    """What is known of one test while it runs."""

    __slots__ = (
        "abort",
        "abort_when",
        "budget",
        "levels",
        "message",
        "next",
        "nodeid",
        "outcomes",
        "peak_delta",
        "rss_end",
        "rss_peak",
        "rss_start",
        "started",
        "status",
    )

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.started = time.perf_counter()
        self.budget = Budget()
        self.rss_start: int | None = None
        self.rss_peak: int | None = None
        self.peak_delta: int | None = None
        self.rss_end: int | None = None
        self.abort: AbortInfo | None = None
        self.abort_when: str | None = None
        self.levels = Level.OK
        self.status: Status = "ok"
        self.message: str | None = None
        self.next: str | None = None
        self.outcomes: dict[str, str] = {}

    def outcome(self) -> str:
        values = self.outcomes.values()
        if "failed" in values:
            return "failed"
        if "skipped" in values:
            return "skipped"
        return "passed"


STATE_KEY: Final = pytest.StashKey[_TestState]()


class MemguardPlugin:
    """Registered as ``memguard-plugin`` while the guard is on; holds all per-run state."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        self.worker: str = workerinput["workerid"] if workerinput else "main"
        self.started = time.time()
        self.memory = read_system_memory()
        self.reader = RssReader()
        self.meter = open_peak_meter(read=self.reader)
        self.work_dir = Path(tempfile.mkdtemp(prefix="pytest-memguard-"))
        self.records = RecordWriter(self.work_dir / f"{self.worker}-{os.getpid()}.jsonl")
        self.collected: list[str] = []
        self.results: list[TestMemory] = []
        #: The test in progress, and the one whose start line is already written.
        self._running: str | None = None
        self._announced: str | None = None
        self.alerts: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.report: dict[str, Any] | None = None
        self.report_path: Path | None = None
        self._escalated = False
        self._ask_budget = True
        self._tell_result = True
        # A duplicate of the real stderr, taken before any test captures it, so that the
        # message of a process the guard has to end is not lost in a capture file.
        self.escalate_fd = os.dup(2)
        self.guard = Guard(
            settings.thresholds,
            reader=self.reader,
            peak_meter=self.meter,
            on_event=self._on_event,
            on_growth=self.records.grew,
            on_escalate=self._on_escalate,
            escalate_fd=self.escalate_fd,
        )
        self.guard.start()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Undo what the constructor did: thread, signal handler, files, work folder."""
        self.guard.stop()
        self.records.close()
        self.meter.close()
        self.reader.close()
        os.close(self.escalate_fd)
        if self.report is not None and not self._escalated:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _internal(self, where: str, error: BaseException) -> None:
        """A failure inside memguard: remembered and reported, never fatal to the run."""
        self.errors.append(f"{where}: {type(error).__name__}: {error}")

    # -- collection --------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        hook = self.config.hook
        # Every conftest is loaded by now: skip per-test hook calls nobody listens to.
        self._ask_budget = len(hook.pytest_memguard_budget.get_hookimpls()) > 1
        self._tell_result = bool(hook.pytest_memguard_test_result.get_hookimpls())
        default, source = self.settings.budget, self.settings.source("budget")
        shared = Budget(peak=default, sources={"peak": source} if default is not None else {})
        for item in session.items:
            self.collected.append(item.nodeid)
            if item.get_closest_marker(MARKER) is None:
                item.stash[BUDGET_KEY] = shared
                continue
            try:
                item.stash[BUDGET_KEY] = budget_of(item, default, source)
            except ValueError as error:
                item.stash[BUDGET_KEY] = str(error)

    @pytest.hookimpl(trylast=True)
    def pytest_memguard_budget(self, item: pytest.Item, budget: Budget) -> Budget:
        return budget

    # -- one test ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        nodeid = item.nodeid
        state = item.stash[STATE_KEY] = _TestState(nodeid)
        self._running = nodeid
        if self._announced != nodeid:
            self.records.start(nodeid, self.guard.last_rss, self.worker)
        budget = item.stash.get(BUDGET_KEY, None)
        error = budget if isinstance(budget, str) else None
        if error is None:
            if budget is None:
                budget = Budget()
            if self._ask_budget:
                budget = self.config.hook.pytest_memguard_budget(item=item, budget=budget)
            state.budget = budget
            cap = budget.rss if self.settings.enforce else None
            self.guard.begin(nodeid, limit=cap, source=budget.source("rss"))
        self.guard.arm()
        try:
            result = yield
        finally:
            self._end_phase(state)
        if error is not None:
            state.message = error
            # Raised after the inner setup ran, so every plugin's teardown finds its state.
            pytest.fail(error, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        state = item.stash.get(STATE_KEY, None)
        if state is None:
            return (yield)
        state.rss_start = self.meter.reset()
        self.guard.arm()
        try:
            return (yield)
        finally:
            self.guard.disarm()
            state.rss_peak = self.meter.peak()
            state.peak_delta = state.rss_peak - state.rss_start
            self._end_phase(state)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        state = item.stash.get(STATE_KEY, None)
        if state is None:
            return (yield)
        state.next = nextitem.nodeid if nextitem is not None else None
        if state.abort is not None:
            # The stopped test's memory is garbage now; give it back before teardown,
            # or the process stays over its limit and the next test is stopped too.
            gc.collect()
            trim_heap()
        self.guard.arm()
        try:
            return (yield)
        finally:
            self._end_phase(state)
            self.guard.end()
            state.rss_end = self.reader()

    def _end_phase(self, state: _TestState) -> None:
        guard = self.guard
        guard.disarm()
        if state.abort is None:
            state.abort = guard.aborted()
        for event in guard.drain_events():
            state.levels = max(state.levels, event.level)
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: pytest.TestReport = yield
        state = item.stash.get(STATE_KEY, None)
        if state is None:
            return report
        try:
            self._judge(state, call, report)
            state.outcomes[report.when] = report.outcome
            if report.when == "teardown":
                self._finish(item, state, report)
        except Exception as error:
            self._internal(f"judging {state.nodeid}", error)
        return report

    def _judge(self, state: _TestState, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        if state.abort is not None and state.abort_when is None:
            state.abort_when = report.when
            interrupted = call.excinfo is not None and call.excinfo.errisinstance(MemoryLimitExceeded)
            message = f"memguard: {state.abort.message}"
            if not interrupted:
                message += " (it caught the interrupt and went on)"
            self._fail(state, report, "aborted", message)
            return
        if report.when != "call" or state.peak_delta is None:
            return
        budget = state.budget
        if budget.peak is not None and state.peak_delta > budget.peak:
            self._fail(
                state,
                report,
                "over_budget",
                f"memguard: peak growth {format_size(state.peak_delta)} is over the budget of"
                f" {format_size(budget.peak)} ({budget.source('peak')})",
            )
        elif budget.rss is not None and state.rss_peak is not None and state.rss_peak > budget.rss:
            # Only reached in report mode: in enforce mode the guard stops the test.
            self._fail(
                state,
                report,
                "over_budget",
                f"memguard: RSS {format_size(state.rss_peak)} went over the cap of"
                f" {format_size(budget.rss)} ({budget.source('rss')})",
            )

    def _fail(self, state: _TestState, report: pytest.TestReport, status: Status, message: str) -> None:
        state.status, state.message = status, message
        report.sections.append(("memguard", self._details(state)))
        causes = status == "aborted" or self.settings.enforce
        if causes and report.outcome != "failed":
            report.outcome = "failed"
            report.longrepr = message
        elif causes and status == "aborted":
            report.longrepr = message
        report.memguard_cause = causes  # type: ignore[attr-defined]

    def _details(self, state: _TestState) -> str:
        budget = state.budget
        lines = []
        lines.append(
            f"RSS at start {format_size(state.rss_start)}, peak {format_size(state.rss_peak)},"
            f" growth {format_size(state.peak_delta)} ({self.meter.method})"
        )
        if budget:
            lines.append(
                "budget: "
                + ", ".join(
                    f"{kind} {format_size(getattr(budget, kind))} ({budget.source(kind)})"
                    for kind in ("peak", "rss", "heap", "leak")
                    if getattr(budget, kind) is not None
                )
            )
        if state.abort is not None:
            lines.append(
                f"stopped after {state.abort.signals} interrupt(s) at RSS {format_size(state.abort.rss)}"
            )
        return "\n".join(lines) + "\n"

    def _finish(self, item: pytest.Item, state: _TestState, report: pytest.TestReport) -> None:
        status = state.status
        if status == "ok" and state.levels >= Level.WARNING:
            status = "warning"
        result = TestMemory(
            nodeid=state.nodeid,
            outcome=state.outcome(),
            status=status,
            worker=self.worker,
            duration_s=time.perf_counter() - state.started,
            rss_start=state.rss_start,
            rss_end=state.rss_end,
            rss_peak=state.rss_peak,
            peak_delta=state.peak_delta,
            budget=state.budget,
            message=state.message,
        )
        self.results.append(result)
        then = None
        if state.next is not None:
            then = (state.next, state.rss_end or 0, self.worker)
        self.records.end(result.to_json(), then)
        self._announced, self._running = state.next, None
        if self._tell_result:
            self.config.hook.pytest_memguard_test_result(item=item, result=result)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.outcome == "failed" and report.__dict__.get("memguard_cause"):
            category = "failed" if report.when == "call" else "error"
            return category, "M", ("MEMORY", {"red": True})
        return None

    # -- the watchdog's callbacks (watchdog thread) -------------------------------------

    def _on_event(self, event: LevelEvent) -> None:
        alert = {
            "timestamp": event.time,
            "level": str(event.level),
            "process": self.worker,
            "pid": os.getpid(),
            "rss": event.rss,
            "threshold": event.threshold,
            "nodeid": event.unit,
            "message": event.message,
        }
        self.alerts.append(alert)
        self.records.write("alert", **alert)

    def _on_escalate(self, info: AbortInfo) -> None:
        self._escalated = True
        message = (
            f"memguard: {info.message}, but it caught the interrupt and kept running;"
            " memguard ended the process"
        )
        self.records.write("abort", nodeid=info.unit, rss=info.rss, limit=info.limit, message=message)
        path = self._write_report(
            interrupted=True, reason="the process was ended by memguard", abort=message
        )
        if path is not None:
            os.write(self.escalate_fd, f"memguard: JSON report written to {path}\n".encode())

    # -- the end -----------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for event in self.guard.drain_events():
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            self._write_report(interrupted=interrupted, reason="interrupted" if interrupted else "")
        except Exception as error:
            self._internal("writing the report", error)

    def _write_report(self, *, interrupted: bool, reason: str, abort: str | None = None) -> Path | None:
        results = list(self.results)
        running = self._running
        if running is not None and abort is not None:
            rss = self.guard.max_rss
            results.append(TestMemory(running, "failed", "aborted", self.worker, 0.0, rss_peak=rss, message=abort))
        elif running is not None and interrupted:
            results.append(TestMemory(running, "not_run", "not_run", self.worker, 0.0, message=reason))
        peak = max([self.guard.max_rss] + [r.rss_peak or 0 for r in results])
        report = build_report(
            results=results,
            collected=self.collected,
            alerts=self.alerts,
            workers=[
                {
                    "id": self.worker,
                    "pid": os.getpid(),
                    "peak_rss": peak,
                    "killed": self._escalated,
                    "reason": reason if self._escalated else None,
                }
            ],
            environment=environment(
                self.memory,
                peak_method=self.meter.method,
                interrupt=describe_platform(),
                pytest_version=pytest.__version__,
            ),
            config=self.settings.to_json(),
            started=self.started,
            duration_s=time.time() - self.started,
            interrupted=interrupted,
            not_run_reason=f"not run ({reason})" if reason else "not run",
        )
        extras = self.config.hook.pytest_memguard_report(
            config=self.config, report=MappingProxyType(report)
        )
        if extras:
            report["extra"] = {k: v for extra in extras for k, v in dict(extra).items()}
        if self.errors:
            report["errors"] = list(self.errors)
        self.report = report
        if self.settings.json_path is None:
            return None
        self.report_path = write_report(report, self.settings.json_path)
        return self.report_path

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return terminal.header_lines(self.settings, self.meter.method, self.memory)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is not None:
            terminal.write_summary(terminalreporter, self.report, self.settings, self.report_path)
        for error in self.errors:
            terminalreporter.write_line(f"memguard: internal error, the guard went on: {error}", yellow=True)

