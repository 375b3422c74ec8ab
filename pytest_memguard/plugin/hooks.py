"""MemguardPlugin: the per-run plugin object that wraps every test in the guard.

One test, one owner: the ``pytest_runtest_protocol`` wrapper begins a test and finishes
it in ``finally``; the phase wrappers (setup, call, teardown) arm the guard for the
phase, measure the body and take the guard's news at the end of each phase.  A test
another plugin runs several times (pytest-rerunfailures) goes through the phases once a
run and stays one result.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import time
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from ..core.guard import AbortInfo, Guard, LevelEvent
from ..core.levels import Level
from ..core.stopsignals import StopSignals
from ..errors import MemoryLimitExceeded
from ..probe.process import (
    ChildrenCheck,
    DescendantsMemory,
    RssReader,
    open_peak_meter,
    rss_upper_bound,
    trim_heap,
    waited_children_peak,
)
from ..probe.system import read_system_memory
from ..reporting.crashlog import RecordWriter
from ..reporting.results import Budget, Status, merge_outcome
from . import terminal
from .context import Run
from .ending import PLUGIN_NAME as END_NAME
from .ending import RunEnd
from .markers import MARKER, budget_of, marked
from .records import records_folder
from .relief import Pressure
from .runner import find_runner
from .settings import Settings
from .state import NO_BUDGET, TestState
from .terminal import CAUSE_KEY

if TYPE_CHECKING:
    from .leakcheck import LeakCheck

#: ``node.workerinput`` key: the xdist controller's work folder, where workers log.
DIR_KEY: Final = "memguard_dir"
#: Report attribute (set in an xdist worker, sent with the report): the test's entry, as
#: JSON text (execnet serializes one string several times faster than a dict of 18 keys).
ENTRY_KEY: Final = "memguard"
#: Bytes by which a waited child's peak must pass the test's own peak to be its own (the
#: kernel's counters are batched per CPU).
WAITED_SLACK: Final = 1024 * 1024
#: The message of a test whose protocol was cut off before its teardown ended (Ctrl-C).
NOT_FINISHED: Final = "not run (interrupted)"

__all__ = ["CAUSE_KEY", "DIR_KEY", "ENTRY_KEY", "NOT_FINISHED", "LimitStop", "MemguardPlugin"]


class LimitStop(MemoryLimitExceeded, pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """The interrupt that stops a test at its hard limit, as pytest shows it: a failure
    with memguard's message, without a traceback (``pytest.fail(..., pytrace=False)``).

    Named ``MemoryLimitExceeded`` in pytest's summary lines (as pytest names its own
    outcome exceptions), for that is what a test can catch.
    """

    __module__ = "builtins"
    __qualname__ = "MemoryLimitExceeded"

    def __init__(self, message: str, *, rss: int = 0, limit: int = 0, source: str = "") -> None:
        super().__init__(message, rss=rss, limit=limit, source=source)
        self.msg = message
        self.pytrace = False


class MemguardPlugin:
    """Registered as ``memguard-plugin`` while the guard is on; owns the run's guard."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        # An xdist worker logs into the controller's work folder.
        shared = workerinput.get(DIR_KEY) if workerinput else None
        self.records = None if shared else records_folder(settings)
        self.reader = RssReader()
        self.has_children = ChildrenCheck()
        self.descendants = DescendantsMemory(has_children=self.has_children)
        self.meter = open_peak_meter(read=self.reader)
        self.run = Run(
            config,
            settings,
            worker=workerinput["workerid"] if workerinput else "main",
            work_dir=self.records.folder if self.records is not None else Path(str(shared)),
            owns_work_dir=shared is None,
            memory=read_system_memory(),
            peak_method=self.meter.method,
            max_rss=lambda: self.guard.max_rss,
        )
        self.in_worker = workerinput is not None
        self.crashlog = RecordWriter(
            self.run.work_dir / f"{self.run.worker}-{os.getpid()}.jsonl", self.run.worker
        )
        self.run.record = self.crashlog.write
        if self.run.owns_work_dir:  # what memguard recover needs to know of the run
            self.crashlog.write(
                "run",
                started=self.run.started,
                config=settings.to_json(),
                environment=self.run.environment(),
            )
        self.runner = find_runner(config)
        #: The guard interrupts only while pytest's own work of a phase runs.
        self._work = self.runner.code()
        #: Budgets of the tests with a marker (or the marker's error), by node id.
        self._budgets: dict[str, Budget | str] = {}
        #: The budget of every other test.
        self._shared: Budget = NO_BUDGET
        self._ask_budget = self._tell_result = True
        self._leaks: LeakCheck | None = None
        self.pressure = Pressure(config, self.reader, self.run.pressure, self.run.notices)
        self.signals = StopSignals(on_signal=self._signalled).install()
        self.end = RunEnd(self.run, self.signals, self.records)
        config.pluginmanager.register(self.end, END_NAME)
        # A duplicate of the real stderr, taken before any test captures it, so that the
        # message of a process the guard has to end is not lost in a capture file.
        self.escalate_fd = os.dup(2)
        self.guard = Guard(
            settings.thresholds,
            reader=self.reader,
            upper_bound=rss_upper_bound() if self.meter.exact else None,
            peak_meter=self.meter,
            on_event=self._on_event,
            on_growth=self._grew,
            on_escalate=self._on_escalate,
            escalate_fd=self.escalate_fd,
            memory=self.run.memory.total,  # a container's limit: the kernel's wall
            stop_error=self._stop_error,
            children=self.descendants,  # a test's memory is its child processes' too
        )
        self.guard.start()

    def close(self) -> None:
        """Undo what the constructor did: thread, signal handlers, files, work folder."""
        self.signals.restore()
        self.guard.stop()
        self.crashlog.close()
        self.meter.close()
        self.reader.close()
        self.has_children.close()
        os.close(self.escalate_fd)
        run = self.run
        if run.controller is not None:
            run.controller.close()
        # The crash-proof records are kept only when a session that ran tests did not
        # end (what they say is not in a report) or the guard ended the process.
        nothing_ran = not run.results and run.running is None
        if self.records is not None and not run.escalated and (self.end.ended or nothing_ran):
            self.records.remove()
        self.end.close()
        self.config.pluginmanager.unregister(self.end, END_NAME)

    # -- collection --------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        hook = self.config.hook
        # Every conftest is loaded by now: no per-test hook call that nobody listens to.
        self._ask_budget = len(hook.pytest_memguard_budget.get_hookimpls()) > 1
        self._tell_result = bool(hook.pytest_memguard_test_result.get_hookimpls())
        self._shared = self._default_budget()
        self.run.collected.extend([item.nodeid for item in session.items])
        if self.run.owns_work_dir and self.run.controller is None:
            self.crashlog.write("collected", nodeids=self.run.collected)
        for item in marked(session.items, MARKER):
            try:
                self._budgets[item.nodeid] = budget_of(item, self._shared)
            except ValueError as error:
                self._budgets[item.nodeid] = str(error)

    def _default_budget(self) -> Budget:
        """The budget of a test without a marker: the default peak, and a leak budget
        when every test is checked for leaks."""
        settings = self.settings
        if settings.budget is None and not settings.leaks:
            return NO_BUDGET
        values: dict[str, int | None] = {"peak": settings.budget}
        sources = {"peak": settings.source("budget")}
        if settings.leaks:
            values["leak"] = self._leak_check().default_budget
            sources["leak"] = settings.sources.get("leak_budget", settings.source("leaks"))
        return Budget(**values, sources=sources)

    @pytest.hookimpl(trylast=True)
    def pytest_memguard_budget(self, item: pytest.Item, budget: Budget) -> Budget:
        return budget

    # -- one test ------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self._begin(item)
        try:
            return (yield)
        finally:
            self._finish(state, item)

    def _begin(self, item: pytest.Item) -> TestState:
        budget = self._budgets.get(item.nodeid, self._shared)
        error = None
        if isinstance(budget, str):  # a bad marker: the test errors at its setup
            error, budget = budget, NO_BUDGET
        elif self._ask_budget:
            answer = self.config.hook.pytest_memguard_budget(item=item, budget=budget)
            if isinstance(answer, Budget):
                budget = answer
            else:  # the test errors at its setup, naming the hook and who answered
                from .hookcalls import wrong_budget

                error, budget = wrong_budget(self.config, answer, self), NO_BUDGET
        state = self.run.running = TestState(item.nodeid, budget, error)
        self.crashlog.start(item.nodeid, self.guard.last_rss)
        return state

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.run.state_of(item)
        if state is None:
            return (yield)
        state.new_run()
        rss_cap = state.budget.rss if self.settings.enforce else None
        self.guard.begin(item.nodeid, limit=rss_cap, source=state.budget.source("rss"))
        if state.error is not None:
            state.message = state.error
            pytest.fail(state.error, pytrace=False)
        self.guard.arm(self._work)
        try:
            result = yield
        except BaseException as raised:
            self._end_phase(state, raised)
            raise
        self._end_phase(state, None)
        return result

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.run.state_of(item)
        if state is None:
            return (yield)
        state.phase = "call"
        budget = state.budget
        if budget.leak is not None or budget.heap is not None:
            self._leak_check().begin(
                state, item
            )  # before the meter: tracing's tables are not the test's
        self._count_children(state)
        state.rss_start = self.meter.reset()
        self.guard.arm(self._work)
        try:
            result = yield
        except BaseException as raised:
            self._end_body(state)
            self._end_phase(state, raised)
            raise
        self._end_body(state)
        self._end_phase(state, None)
        if budget is not NO_BUDGET:
            message = state.over_budget()
            if message is not None:
                self._fail(state, "over_budget", message)
        return result

    def _end_body(self, state: TestState) -> None:
        """The end of the body: its peak and RSS (the kernel's two counters may differ by
        a few pages: the peak is never below the start)."""
        start = state.rss_start or 0
        peak, state.rss_end = self.meter.end()
        peak = max(peak, start)
        if state.rss_peak is None or peak > state.rss_peak:  # the highest of all runs
            state.rss_peak = peak
        if state.peak_delta is None or peak - start > state.peak_delta:
            state.peak_delta = peak - start
        if state.traced_start is not None:
            self._leak_check().end_call(state)
        self._children_peak(state, peak)

    def _count_children(self, state: TestState) -> None:
        """The body starts: its child processes are counted from their RSS now (read only
        when there are any: a server a fixture started is not the body's)."""
        self.descendants.reset()
        base = self.descendants() if self.guard.children_rss or self.has_children() else 0
        self.guard.count_children_from(base)
        state.waited_children = waited_children_peak()

    def _children_peak(self, state: TestState, own_peak: int) -> None:
        """The body's child processes at their highest: the watchdog's samples of their
        own memory (one more now, if any still run), or what the kernel's peak of a child
        waited for since the body started says of the child's own memory.

        That mark is a full RSS.  For a program started with ``exec`` it is its own peak
        when above this process's (``own_peak``; below, it can be the floor a child
        inherits at ``exec``).  A forked child's counts the pages it shares with this
        process, at most ``own_peak``: what is above is its own, at least.
        """
        if self.has_children():
            self.guard.sample_children()
        peak = self.guard.children_peak
        waited = waited_children_peak()
        if waited > state.waited_children and waited > own_peak + WAITED_SLACK:
            peak = max(peak, waited - own_peak if self.descendants.forked else waited)
        if peak and peak > (state.children_peak or 0):
            state.children_peak = peak

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        state = self.run.state_of(item)
        if state is None:
            return (yield)
        state.phase = "teardown"
        self.guard.arm(self._work)
        leak = None
        if state.counted is not None:  # checked for leaks
            if self.runner.found:
                peak = self.guard.max_rss
                leak = self._leak_check().check(state, item, self.runner)
                if state.leak_check is not None:  # run again: memguard's doing, not the suite's
                    self.guard.max_rss = peak
            else:
                state.counted = None  # it cannot run again: not judged
        try:
            result = yield
        except BaseException as raised:
            self._end_teardown(state, raised)
            raise
        self._end_teardown(state, leak.teardown_error if leak is not None else None)
        if leak is not None and leak.teardown_error is not None:
            raise leak.teardown_error
        if leak is not None and leak.failure is not None:
            self._fail(state, "leak", leak.failure)
        return result

    def _end_teardown(self, state: TestState, raised: BaseException | None) -> None:
        state.torn_down = True
        state.duration_s = time.perf_counter() - state.started
        self._end_phase(state, raised)

    def _end_phase(self, state: TestState, raised: BaseException | None) -> None:
        """Disarm the guard; pass its level events on, and fail the phase when the guard
        stopped it and it went on (caught the interrupt)."""
        if not self.guard.pause():
            return
        self._pass_events(state)
        abort = self.guard.aborted()
        if abort is None or state.stop_handled:
            return
        state.stop_handled = True
        state.abort = abort
        if isinstance(raised, MemoryLimitExceeded):
            # The stop came out of the phase (recorded by _stop_error).  What the stopped
            # frames hold is garbage now, even where a plugin keeps the exception
            # (pytest-rerunfailures keeps every failure's).
            traceback.clear_frames(raised.__traceback__)
            return
        self._fail(
            state, "aborted", f"memguard: {abort.message} (it caught the interrupt and went on)"
        )

    def _pass_events(self, state: TestState | None) -> None:
        for event in self.guard.drain_events():
            if state is not None:
                state.levels = max(state.levels, event.level)
            if event.level >= Level.CRITICAL:
                self.pressure.tight("the process passed its critical threshold")
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)

    def _stop_error(self, info: AbortInfo) -> BaseException:
        """The exception that stops the running phase (the guard's signal handler calls
        this in the main thread): a failure with memguard's message, recorded here, before
        the phase's report is made."""
        message = f"memguard: {info.message}"
        state = self.run.running
        if state is not None and not state.stop_handled:
            state.abort = info
            self._record_failure(state, "aborted", message)
        return LimitStop(message, rss=info.rss, limit=info.limit, source=info.source)

    def _record_failure(self, state: TestState, status: Status, message: str) -> None:
        state.status, state.message, state.failed_when = status, message, state.phase

    def _fail(self, state: TestState, status: Status, message: str) -> None:
        """Record a memory failure of the running phase, and fail it (in report mode
        only aborts fail)."""
        self._record_failure(state, status, message)
        if status == "aborted" or self.settings.enforce:
            pytest.fail(message, pytrace=False)

    def _finish(self, state: TestState, item: pytest.Item) -> None:
        """The end of a test's protocol: its result kept, its record line, the pressure
        check; memory freed after a stopped test, before the next one starts."""
        run = self.run
        run.running = None
        try:
            self.guard.end()
            self._pass_events(state)
            if not state.torn_down:  # interrupted (Ctrl-C) before its teardown ended
                state.outcome = state.status = "not_run"
                state.message = NOT_FINISHED
            run.results.append(state)
            if state.abort is not None:
                gc.collect()
                trim_heap()
            status = state.final_status()
            self.crashlog.end(
                status,
                state.rss_end,
                outcome=state.outcome,
                start=state.rss_start,
                peak=state.rss_peak,
                delta=state.peak_delta,
                children=state.children_peak,
                duration=state.duration_s,
                message=None if status == "ok" else state.message,
            )
            if self._tell_result:
                result = state.result(run.worker)
                self.config.hook.pytest_memguard_test_result(item=item, result=result)
            self.pressure.after(state.nodeid)
        except Exception as error:  # e.g. a listener of a memguard hook
            run.error(f"ending {state.nodeid}", error)

    # -- reports ---------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.run.running
        if state is not None and state.counted is not None:  # pytest's, not the test's
            self._leak_check().report_starts()
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """The test's outcome; the ``memguard`` section on the report of the phase it
        failed; in an xdist worker, the entry on the teardown report (it travels with it).
        A leak-checked test's report is logged: what pytest kept of it is pytest's."""
        state = self.run.running
        if state is None or state.nodeid != report.nodeid:
            return (yield)
        state.outcome = merge_outcome(state.outcome, report.outcome)
        if state.failed_when == report.when and state.status != "ok":
            report.sections.append(("memguard", state.details(self.meter.method)))
            if report.failed:
                setattr(report, CAUSE_KEY, True)
        if self.in_worker and report.when == "teardown":
            try:
                setattr(report, ENTRY_KEY, json.dumps(state.entry(self.run.worker)))
            except Exception as error:
                self.run.error(f"sending the result of {report.nodeid}", error)
        yield
        if state.counted is not None:
            self._leak_check().report_logged(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str | tuple[str, dict[str, bool]]] | None:
        return terminal.memory_status(report)

    def _leak_check(self) -> LeakCheck:
        """The run's leak checker, built when the first checked test needs it."""
        if self._leaks is None:
            from .leakcheck import LeakCheck

            root, budget = self.config.rootpath, self.settings.leak_budget
            self._leaks = LeakCheck(root, budget, self.reader)
        return self._leaks

    # -- the watchdog's callbacks (watchdog thread) -------------------------------------

    def _grew(self, nodeid: str, rss: int) -> None:
        """The running test grew by a step: a record line, and a sample of the timeline."""
        self.crashlog.grew(nodeid, rss)
        self.run.samples.add(time.time(), rss)

    def _on_event(self, event: LevelEvent) -> None:
        alert = {
            "timestamp": event.time,
            "level": str(event.level),
            "process": self.run.worker,
            "pid": os.getpid(),
            "rss": event.rss,
            "threshold": event.threshold,
            "nodeid": event.unit,
            "message": event.message,
        }
        self.run.alerts.append(alert)
        self.crashlog.write("alert", **alert)

    def _signalled(self, signum: int) -> None:
        """SIGTERM or SIGHUP reached the xdist controller: its workers end as it does
        (signal handler, main thread)."""
        if self.run.controller is not None and signum != signal.SIGINT:
            self.run.controller.signal_workers(signum)

    def _on_escalate(self, info: AbortInfo) -> None:
        self.run.escalated = True
        _kill_descendants()  # they would outlive the process, holding their memory
        message = (
            f"memguard: {info.message}, but it caught the interrupt and kept running;"
            " memguard ended the process"
        )
        self.crashlog.write(
            "abort", nodeid=info.unit, rss=info.rss, limit=info.limit, message=message
        )
        path = self.end.save_now(message)
        if path is not None:
            os.write(self.escalate_fd, f"memguard: JSON report written to {path}\n".encode())
            if self.records is not None:  # the report says what the records say
                self.records.remove()

    # -- the end -----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self._pass_events(None)  # before the report is written

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = terminal.header_lines(self.settings, self.meter.method, self.run.memory)
        if not self.runner.found:
            lines.append(
                "memguard: pytest's runner was not found: a stop may interrupt other"
                " plugins' work of a phase, and leak suspects are not run again"
            )
        return lines


def _kill_descendants() -> None:
    """Kill this process's descendants (as the process is being ended)."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in reversed(children):
        with contextlib.suppress(psutil.Error):
            child.kill()
