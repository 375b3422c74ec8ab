"""MemguardPlugin: the per-run plugin object that wraps every test in the guard."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core.guard import AbortInfo, Guard, LevelEvent
from ..core.levels import Level
from ..core.sizes import format_size
from ..errors import MemoryLimitExceeded
from ..probe.process import RssReader, open_peak_meter, rss_upper_bound, trim_heap
from ..probe.system import read_system_memory
from ..records import RecordWriter
from ..results import Budget, Status
from . import terminal
from .markers import MARKER, budget_of, marked
from .reporting import run_report, run_summary
from .reports import (
    FAILURES_PLUGIN_NAME,
    RECORDER_PLUGIN_NAME,
    MemoryFailures,
    OutcomeRecorder,
    kept_reports,
)
from .settings import Settings
from .state import NO_BUDGET, TestState

if TYPE_CHECKING:
    from .leakcheck import LeakCheck
    from .relief import Relief
    from .xdist import Controller

#: The name of :class:`.leakcheck.LeakTeardown` (registered with the first checked test).
LEAKS_PLUGIN_NAME: Final = "memguard-leaks"
#: Share of the machine's usable memory in use at which the run frees what it can.
MACHINE_CRITICAL: Final = 0.85

__all__ = ["LimitStop", "MemguardPlugin"]


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


def _runner_codes(config: pytest.Config, *phases: str) -> tuple[CodeType, ...]:
    """The code of pytest's own implementation of these phases' hooks (its ``runner``
    plugin: the fixtures, the test body), those that can be found."""
    codes = []
    for phase in phases:
        hook = getattr(config.hook, f"pytest_runtest_{phase}")
        for impl in hook.get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if impl.plugin_name == "runner" and isinstance(code, CodeType):
                codes.append(code)
    return tuple(codes)


class MemguardPlugin:
    """Registered as ``memguard-plugin`` while the guard is on; holds all per-run state.

    The per-test path is kept lean, because it runs thousands of times: a plain hook at
    the start of setup (which also finishes the test before) and a wrapper of the call,
    no teardown hook; the guard interrupts only code inside a phase, never pytest's own
    code between them; one record line per test, no hook per report (:mod:`.reports`),
    no report entry per test unless the JSON report or a report hook needs it.
    """

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        self.worker: str = workerinput["workerid"] if workerinput else "main"
        self.started = time.time()
        self.memory = read_system_memory()
        self.reader = RssReader()
        self.meter = open_peak_meter(read=self.reader)
        # An xdist worker writes its records into the controller's work folder.
        shared = workerinput.get("memguard_dir") if workerinput else None
        self._owns_work_dir = shared is None
        self.work_dir = Path(shared or tempfile.mkdtemp(prefix="pytest-memguard-"))
        #: The xdist controller's side (plugin/xdist.py), when this process is one.
        self.controller: Controller | None = None
        self.records = RecordWriter(
            self.work_dir / f"{self.worker}-{os.getpid()}.jsonl", self.worker
        )
        self.collected: list[str] = []
        #: Budgets of the tests with a marker (or the marker's error), by node id.
        self._budgets: dict[str, Budget | str] = {}
        #: The budget of every other test.
        self._shared: Budget = NO_BUDGET
        self.results: list[TestState] = []
        #: The test in progress, the last test to start and its item, and the test whose
        #: start line is written.
        self._running: TestState | None = None
        self._last: TestState | None = None
        self._item: pytest.Item | None = None
        #: (node id, phase) -> the ``memguard`` section of a phase memguard failed.
        self.failures: dict[tuple[str, str], Callable[[], str]] = {}
        #: Outcomes as reports come, when the terminal reporter does not keep them.
        self._recorder: OutcomeRecorder | None = None
        self._announced: str | None = None
        self.alerts: list[dict[str, Any]] = []
        self.errors: list[str] = []
        #: The full report, once built (see :attr:`report`).
        self._report: dict[str, Any] | None = None
        #: How the session ended: (interrupted, reason, time); None until it did.
        self._ending: tuple[bool, str, float] | None = None
        self.report_path: Path | None = None
        self._escalated = False
        self._ask_budget = True
        self._tell_result = True
        self._leaks: LeakCheck | None = None
        self._relief: Relief | None = None
        #: Why memory must be freed after the running test (None: no reason yet).
        self._tight: str | None = None
        self._next_machine_check = time.monotonic() + 1.0
        #: Lines for the terminal summary (e.g. what was freed under pressure).
        self.notices: list[str] = []
        #: True while a leak suspect runs again: the phase wrappers stand aside.
        self._rerunning = False
        #: The code of pytest's own work in each phase (the fixtures, the test body): the
        #: guard interrupts only while it runs.  A test is armed for its setup and its
        #: teardown at once (a test whose setup fails has no call phase), and for the
        #: teardown alone from the end of its body on.
        self._setup_work = _runner_codes(config, "setup", "teardown")
        self._call_work = _runner_codes(config, "call")
        self._teardown_work = _runner_codes(config, "teardown")
        # A duplicate of the real stderr, taken before any test captures it, so that the
        # message of a process the guard has to end is not lost in a capture file.
        self.escalate_fd = os.dup(2)
        self.guard = Guard(
            settings.thresholds,
            reader=self.reader,
            upper_bound=rss_upper_bound() if self.meter.exact else None,
            peak_meter=self.meter,
            on_event=self._on_event,
            on_growth=self.records.grew,
            on_escalate=self._on_escalate,
            escalate_fd=self.escalate_fd,
            stop_error=self._stop_error,
        )
        self.guard.start()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Undo what the constructor did: thread, signal handler, files, work folder."""
        manager = self.config.pluginmanager
        for name in (FAILURES_PLUGIN_NAME, RECORDER_PLUGIN_NAME, LEAKS_PLUGIN_NAME):
            helper = manager.get_plugin(name)
            if helper is not None:
                manager.unregister(helper, name)
        self.guard.stop()
        self.records.close()
        self.meter.close()
        self.reader.close()
        os.close(self.escalate_fd)
        if self.controller is not None:
            self.controller.close()
        if self._ending is not None and not self._escalated and self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        # The per-test data is done with: pytest's last full garbage collections (at
        # unconfigure) need not walk it (thousands of objects).
        self.results, self._report, self._ending = [], None, None

    def _show_letter(self) -> None:
        """Register the plugin of the section and the status letter at the first memory
        failure of the run."""
        manager = self.config.pluginmanager
        if not manager.has_plugin(FAILURES_PLUGIN_NAME):
            failures = MemoryFailures(self.failures, self._swallowed)
            manager.register(failures, FAILURES_PLUGIN_NAME)

    def _internal(self, where: str, error: BaseException) -> None:
        """A failure inside memguard: remembered and reported, never fatal to the run."""
        self.errors.append(f"{where}: {type(error).__name__}: {error}")

    # -- collection --------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        hook = self.config.hook
        # Every conftest is loaded by now: skip per-test hook calls nobody listens to.
        self._ask_budget = len(hook.pytest_memguard_budget.get_hookimpls()) > 1
        self._tell_result = bool(hook.pytest_memguard_test_result.get_hookimpls())
        manager = self.config.pluginmanager
        if self._tell_result or not manager.has_plugin("terminalreporter"):
            self._recorder = OutcomeRecorder(self._tell if self._tell_result else None)
            manager.register(self._recorder, RECORDER_PLUGIN_NAME)
        self._shared = self._default_budget()
        self.collected.extend([item.nodeid for item in session.items])
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

    def state_of(self, item: pytest.Item) -> TestState | None:
        """The measurements of ``item`` while it runs (from its setup to its last report)."""
        return self._last if self._item is item else None

    # -- one test: three phases ----------------------------------------------------------
    #
    # These run for every test, so they are written for a cold CPU cache: few calls, few
    # objects, the rare cases (news from the guard, a failure, a leak check) behind one
    # test each.  Measured with benchmarks/overhead.py and benchmarks/split.py.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self._rerunning:
            return
        nodeid = item.nodeid
        if self._running is not None:  # the last test, its teardown done
            self._finish(self._running, nodeid)
        budget = self._budgets.get(nodeid, self._shared) if self._budgets else self._shared
        error = None
        if isinstance(budget, str):  # a bad marker: the test errors at its setup
            error, budget = budget, NO_BUDGET
        elif self._ask_budget:
            budget = self.config.hook.pytest_memguard_budget(item=item, budget=budget)
        state = TestState(nodeid, budget)
        self._running = self._last = state
        self._item = item
        if self._announced != nodeid:
            self.records.start(nodeid, self.guard.last_rss)
        # Plain hooks, not wrappers (a wrapper costs a test some 8k instructions more in
        # pluggy): nothing runs at the end of setup or of teardown.  The guard is armed
        # within pytest's own work of the phases, which bounds it; news from setup is
        # taken at the start of the body, and the test is finished as the next one
        # starts (or when its result is asked for, :meth:`ended`).
        work = self._setup_work
        if budget.rss is not None and self.settings.enforce:
            self.guard.begin(
                nodeid,
                limit=budget.rss,
                source=budget.source("rss"),
                armed=bool(work),
                within=work,
            )
        else:
            self.guard.begin(nodeid, armed=bool(work), within=work)
        if error is not None:
            state.message = error
            pytest.fail(error, pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        state = self._running
        if state is None or self._item is not item or self._rerunning:
            return (yield)
        guard = self.guard
        if guard.arm(self._call_work):  # news from the setup phase
            self._settle(state, "call", None)
        budget = state.budget
        if budget.leak is not None or budget.heap is not None:
            self._leak_check().begin(state)  # before the meter: tracing's tables are not the test's
        state.rss_start = start = self.meter.reset()
        try:
            result = yield
        except BaseException as raised:
            if self._end_call(state, start):
                self._settle(state, "call", raised)
            raise
        if self._end_call(state, start):
            self._settle(state, "call", None)
        if budget is not NO_BUDGET:
            message = state.over_budget()
            if message is not None:
                self._fail(state, "call", "over_budget", message)
        return result

    def _end_call(self, state: TestState, start: int) -> bool:
        """The end of the body: its peak and RSS; the guard armed for the teardown; whether
        the guard has news."""
        work = self._teardown_work
        news = self.guard.arm(work) if work else self.guard.pause()  # () would arm anywhere
        peak, state.rss_end = self.meter.end()
        # The kernel's two counters may differ by a few pages; the peak is never below
        # the start.
        state.rss_peak = peak = peak if peak > start else start
        state.peak_delta = peak - start
        if state.traced_start is not None:
            self._leak_check().end_call(state)
        return news

    def _end_leak_check(
        self,
        state: TestState,
        item: pytest.Item,
        nextitem: pytest.Item | None,
        raised: BaseException | None,
    ) -> None:
        """After the teardown of a test checked for leaks (:class:`.leakcheck.LeakTeardown`):
        the guard is done with the test, then its leak is judged (maybe running it again)."""
        self._close_unit(state)
        assert self._leaks is not None
        message = self._leaks.finish(
            state,
            self.reader,
            lambda: self._run_again(item, nextitem),
            judge=raised is None and state.abort is None,
        )
        if message is not None:
            self._fail(state, "teardown", "leak", message)

    def _leak_check(self) -> LeakCheck:
        """The run's leak checker, built when the first checked test needs it."""
        if self._leaks is None:
            from .leakcheck import LeakCheck, register

            self._leaks = LeakCheck(self.config.rootpath, self.settings.leak_budget)
            register(self.config, self)
        return self._leaks

    def _run_again(self, item: pytest.Item, nextitem: pytest.Item | None) -> str | None:
        """Run a leak suspect once more (setup, call, teardown); what went wrong, or None.

        Through the public per-phase hooks, so fixtures and other plugins take part as in
        the first run; memguard's own wrappers stand aside.  No reports are made.
        """
        funcargs = getattr(item, "funcargs", None)
        if isinstance(funcargs, dict):
            funcargs.clear()  # the fixtures of the first run are torn down
        error: str | None = None
        ihook = item.ihook
        self._rerunning = True
        self.guard.begin(item.nodeid)
        self.guard.arm()
        try:
            for when in ("setup", "call", "teardown"):
                if error is not None and when == "call":
                    continue
                try:
                    if when == "setup":
                        ihook.pytest_runtest_setup(item=item)
                    elif when == "call":
                        ihook.pytest_runtest_call(item=item)
                    else:
                        ihook.pytest_runtest_teardown(item=item, nextitem=nextitem)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as raised:
                    error = error or f"{when}: {type(raised).__name__}: {raised}".strip()
        finally:
            self._rerunning = False
            self.guard.end()
        return error

    def _settle(
        self, state: TestState, when: str, raised: BaseException | None, *, fail: bool = True
    ) -> None:
        """End of a phase with news from the guard: pass level events on, and fail the
        phase the guard stopped.

        Called after :meth:`Guard.arm` or :meth:`Guard.pause` said there is news.  Raises
        ``pytest.fail`` when the guard stopped this phase (whether the test let the
        interrupt through or caught it and went on), unless ``fail`` is False (the end of
        a test, whose reports are made); returns otherwise.  A stop is settled once per
        test.
        """
        for event in self.guard.drain_events():
            state.levels = max(state.levels, event.level)
            if event.level >= Level.CRITICAL:
                self._tight = "the process passed its critical threshold"
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)
        if state.settled:
            return
        abort = self.guard.aborted()
        if abort is None:
            return
        state.settled = True
        state.abort = abort
        message = f"memguard: {abort.message}"
        if not isinstance(raised, MemoryLimitExceeded) and fail:
            message += " (it caught the interrupt and went on)"
        if not fail:
            when = state.failed_when or when
        # A LimitStop on its way out already fails the phase with this message.
        self._fail(state, when, "aborted", message, fail and not isinstance(raised, LimitStop))

    def _stop_error(self, info: AbortInfo) -> BaseException:
        """The exception that stops the running phase (the guard's signal handler calls
        this in the main thread): a failure with memguard's message rather than a
        traceback.  The failure is recorded here, before the phase's report is made."""
        message = f"memguard: {info.message}"
        state = self._running
        if state is not None and not state.settled and not self._rerunning:
            state.abort = info
            phase = self._phase_now()
            self._fail(state, phase, "aborted", message, False)
            if phase == "setup" and self._teardown_work:
                # The teardown that follows a stopped setup is left to free memory, as
                # after a stopped body: a phase of its own.
                self.guard.arm(self._teardown_work)
        return LimitStop(message, rss=info.rss, limit=info.limit, source=info.source)

    def _swallowed(self, nodeid: str, error: BaseException | None) -> str | None:
        """Why the teardown of ``nodeid`` fails when the guard stopped it and it ended
        without the stop (``error``: how it ended); None when it let the stop through."""
        state = self._last
        if state is None or state.nodeid != nodeid or state.abort is None:
            return None
        if state.failed_when != "teardown" or isinstance(error, MemoryLimitExceeded):
            return None
        state.settled = True
        state.message = f"memguard: {state.abort.message} (it caught the interrupt and went on)"
        return state.message

    def _phase_now(self) -> str:
        """The phase whose work runs now in the main thread (the guard stops only those)."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            for phase, work in (
                ("call", self._call_work),
                ("teardown", self._teardown_work),
                ("setup", self._setup_work),
            ):
                if code in work:
                    return phase
            frame = frame.f_back
        return "call"

    def _fail(
        self, state: TestState, when: str, status: Status, message: str, fail: bool = True
    ) -> None:
        """Record a memory failure, and fail the phase (unless ``fail`` is False, or in
        report mode, where only aborts fail)."""
        state.status, state.message = status, message
        state.failed_when = when
        method = self.meter.method
        self.failures[state.nodeid, when] = lambda: state.details(method)
        self._show_letter()
        if fail and (status == "aborted" or self.settings.enforce):
            pytest.fail(message, pytrace=False)

    # -- one test: its reports -----------------------------------------------------------

    def _finish(self, state: TestState, nextid: str | None) -> None:
        """The end of a test, its teardown done: the guard's news, its result kept, its
        record line (with the start of the test ``nextid``, when it is known).

        Called as the next test starts, at the end of the session, or when the test's
        result is asked for at its teardown report (:meth:`ended`).
        """
        self._running = None
        state.duration_s = time.perf_counter() - state.started
        self.results.append(state)
        try:
            self._close_unit(state)
        except Exception as error:  # e.g. a listener of pytest_memguard_threshold_crossed
            self.guard.end()
            self._internal(f"ending {state.nodeid}", error)
        try:
            if state.abort is not None:
                # The stopped test's memory is garbage now: give it back before the next
                # test, or the process stays over its limit and that test is stopped too.
                gc.collect()
                trim_heap()
            self.records.end(state.final_status(), state.rss_end, nextid)
            self._announced = nextid
            if self._tight is not None or time.monotonic() >= self._next_machine_check:
                self._check_pressure(state.nodeid)
        except Exception as error:
            self._internal(f"recording {state.nodeid}", error)

    def _close_unit(self, state: TestState) -> None:
        """The guard is done with the test: its teardown's news (a stop, levels) kept."""
        if self.guard.pause():
            self._settle(state, "teardown", None, fail=False)
        self.guard.end()

    def ended(self, nodeid: str) -> TestState | None:
        """The result of test ``nodeid`` at its teardown report (its teardown is done),
        finished now if it was not yet; None when it is not the last test that ran."""
        state = self._running
        if state is not None and state.nodeid == nodeid:
            self._finish(state, None)
        state = self.results[-1] if self.results else None
        return state if state is not None and state.nodeid == nodeid else None

    def _tell(self, nodeid: str, outcome: str) -> None:
        """Call ``pytest_memguard_test_result`` for a test that ended (its last report)."""
        state, item = self.ended(nodeid), self._item
        if state is None or item is None:
            return
        try:
            state.outcome = outcome
            result = state.result(self.worker)
            self.config.hook.pytest_memguard_test_result(item=item, result=result)
        except Exception as error:
            self._internal(f"telling the result of {nodeid}", error)

    def _check_pressure(self, nodeid: str | None) -> None:
        """Between tests: free memory when the process or the machine is at critical.

        The machine is read at most once a second; the process's critical threshold is
        heard from the watchdog.  The cleanup itself (:mod:`.relief`) is imported only
        when it is needed.
        """
        trigger, self._tight = self._tight, None
        now = time.monotonic()
        if trigger is None and now >= self._next_machine_check:
            self._next_machine_check = now + 1.0
            memory = read_system_memory()
            if memory.total and memory.available < memory.total * (1 - MACHINE_CRITICAL):
                trigger = f"the machine has {format_size(memory.available)} available"
        if trigger is not None:
            self.relieve(trigger, nodeid)

    def relieve(self, trigger: str, nodeid: str | None) -> None:
        """Free what the run can now (the pressure hook, services, gc), as under pressure.

        The run's coordinator keeps its cooldown; what was freed goes to the summary.
        """
        if self._relief is None:
            from .relief import Relief

            self._relief = Relief(self.config, self.reader)
        line = self._relief.relieve(Level.CRITICAL, trigger, nodeid)
        if line is not None:
            self.notices.append(line)

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
        self.records.write(
            "abort", nodeid=info.unit, rss=info.rss, limit=info.limit, message=message
        )
        path = self._write_report(
            interrupted=True, reason="the process was ended by memguard", abort=message
        )
        if path is not None:
            os.write(self.escalate_fd, f"memguard: JSON report written to {path}\n".encode())

    # -- the end -----------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        running = self._running
        if running is not None and (not interrupted or self._torn_down(running.nodeid)):
            self._finish(running, None)  # the last test
        for event in self.guard.drain_events():
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)
        self._ending = (interrupted, "interrupted" if interrupted else "", time.time())
        hook = self.config.hook.pytest_memguard_report
        # The full report (an entry per test) is built only when something reads it: the
        # JSON file, a report hook, the controller of workers, an interrupted run.  The
        # terminal needs a few entries (:func:`.reporting.run_summary`).
        if not (
            self.settings.json_path is not None
            or hook.get_hookimpls()
            or self.controller is not None
            or interrupted
        ):
            return
        try:
            report = self.report
            if report is not None:
                self._save(report)
        except Exception as error:
            self._internal("writing the report", error)

    def _torn_down(self, nodeid: str) -> bool:
        """Whether the teardown of ``nodeid`` was reported (in an interrupted run: the
        test ended before the interrupt, or the interrupt stopped it)."""
        stats = kept_reports(self.config) or {}
        return any(
            report.nodeid == nodeid and report.when == "teardown"
            for reports in stats.values()
            for report in list(reports)[-2:]
            if isinstance(report, pytest.TestReport)
        )

    @property
    def report(self) -> dict[str, Any] | None:
        """The run's full report, built when first asked for after the session ended
        (None before, and in an xdist worker, whose results went to the controller)."""
        if self._report is None and self._ending is not None and self._owns_work_dir:
            interrupted, reason, ended = self._ending
            try:
                self._report = run_report(self, interrupted=interrupted, reason=reason, ended=ended)
            except Exception as error:
                self._internal("building the report", error)
                self._ending = None  # no report, no summary; the work folder stays for a look
        return self._report

    def _write_report(
        self, *, interrupted: bool, reason: str, abort: str | None = None
    ) -> Path | None:
        """Build and write the report now (the guard is ending the process)."""
        if not self._owns_work_dir:
            return None  # an xdist worker: its results went to the controller
        return self._save(run_report(self, interrupted=interrupted, reason=reason, abort=abort))

    def _save(self, report: dict[str, Any]) -> Path | None:
        """Write ``report`` to the JSON path, if there is one; where it went."""
        if self.settings.json_path is None:
            return None
        from ..report import write_report  # not needed by a run without a JSON report

        self.report_path = write_report(report, self.settings.json_path)
        return self.report_path

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return terminal.header_lines(self.settings, self.meter.method, self.memory)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._ending is not None and self._owns_work_dir:
            try:
                summary = run_summary(self, self.settings.top)
            except Exception as failure:
                self._internal("summing up the run", failure)
            else:
                terminal.write_summary(terminalreporter, summary, self.settings, self.report_path)
        for line in self.notices:
            terminalreporter.write_line(line, yellow=True)
        for error in self.errors:
            terminalreporter.write_line(
                f"memguard: internal error, the guard went on: {error}", yellow=True
            )
