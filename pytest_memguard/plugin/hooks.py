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
import os
import signal
import time
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core.guard import AbortInfo, Guard
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
from ..probe.system import SystemMemory, read_system_memory
from ..reporting.crashlog import RecordWriter
from ..reporting.results import Budget, merge_outcome, report_outcome
from . import terminal
from .context import LocalResults, ResultSource, RunContext, RunLog
from .distributed.wire import DIR_KEY, ENTRY_KEY, encode_result
from .ending import RunEnd
from .markers import MARKER, budget_of, marked
from .records import records_folder
from .relief import Pressure
from .roles import Roles
from .runner import find_runner
from .settings import Settings
from .state import NO_BUDGET, NOT_FINISHED, TestState, Verdict
from .terminal import CAUSE_KEY, LETTERS_NAME, MemoryLetters
from .watchdog import WatchdogCalls

if TYPE_CHECKING:
    from .ci import Baseline
    from .distributed.controller import Controller
    from .leakcheck import LeakCheck
    from .preflight import Preflight

#: The names memguard's plugin objects are registered under (they exist only while the
#: guard is on).
PLUGIN_NAME: Final = "memguard-plugin"
END_NAME: Final = "memguard-report"
#: The leak check's report hooks (:class:`LeakReports`), once a test is checked.
LEAK_REPORTS_NAME: Final = "memguard-leak-reports"
#: Bytes by which a waited child's peak must pass the test's own peak to be its own (the
#: kernel's counters are batched per CPU).
WAITED_SLACK: Final = 1024 * 1024
__all__ = ["PLUGIN_NAME", "LimitStop", "MemguardPlugin"]


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
    """Registered as ``memguard-plugin`` while the guard is on; owns the run's guard, its
    other plugin objects (registered with it, unregistered in reverse by :meth:`close`)
    and every resource it holds (released in reverse by :meth:`close`).

    :param baseline: the loaded ``--memguard-baseline``, whose growth check is a verdict
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        roles: Roles,
        baseline: Baseline | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.roles = roles
        self._stack = contextlib.ExitStack()
        try:
            self._start(baseline)
        except BaseException:
            self._stack.close()
            raise

    def _start(self, baseline: Baseline | None) -> None:
        config, settings, stack = self.config, self.settings, self._stack
        workerinput = getattr(config, "workerinput", None)
        # An xdist worker logs into the controller's work folder.
        shared = workerinput.get(DIR_KEY) if workerinput else None
        worker = workerinput["workerid"] if workerinput else "main"
        log = RunLog()
        self.local = LocalResults(worker, log, lambda: self.guard.max_rss)
        self.records = None if shared else records_folder(settings)
        # Last of all, once the records are closed: keep or remove them, let results go.
        stack.callback(self._release)
        self.reader = stack.enter_context(contextlib.closing(RssReader()))
        # The test's thread reads its own descriptor, without holding the interpreter
        # lock (twice a test); the watchdog's samples read theirs holding it.
        self.has_children = stack.enter_context(contextlib.closing(ChildrenCheck(hold_lock=False)))
        sampled = stack.enter_context(contextlib.closing(ChildrenCheck()))
        self.descendants = DescendantsMemory(has_children=sampled)
        self.meter = stack.enter_context(contextlib.closing(open_peak_meter(read=self.reader)))
        memory = read_system_memory()
        work_dir = self.records.folder if self.records is not None else Path(str(shared))
        self.controller: Controller | None = None
        source: ResultSource = self.local
        if self.roles.controller:
            from .distributed import make_controller

            self.controller = source = make_controller(
                config, settings, log, work_dir, memory.total, self._say
            )
            stack.callback(self.controller.close)
        self.context = RunContext(
            settings,
            worker,
            work_dir,
            owns_work_dir=shared is None,
            memory=memory,
            peak_method=self.meter.method,
            environment=_environment(memory, self.meter.method),
            source=source,
            log=log,
        )
        self.crashlog = stack.enter_context(
            contextlib.closing(RecordWriter(work_dir / f"{worker}-{os.getpid()}.jsonl", worker))
        )
        if self.controller is not None:
            self.controller.record = self.crashlog.write
        if self.context.owns_work_dir:  # what memguard recover needs to know of the run
            self.crashlog.write(
                "run",
                started=self.context.started,
                config=settings.to_json(),
                environment=self.context.environment,
            )
        self.runner = find_runner(config)
        #: The guard interrupts only while pytest's own work of a phase runs.
        self._runner_code = self.runner.code()
        #: Budgets of the tests with a marker (or the marker's error), by node id.
        self._budgets: dict[str, Budget | str] = {}
        #: The budget of every other test.
        self._default: Budget = NO_BUDGET
        self._ask_budget = self._tell_result = True
        self._leaks: LeakCheck | None = None
        self.baseline = baseline
        self.preflight: Preflight | None = None
        if settings.min_free is not None:
            from .preflight import Preflight

            self.preflight = Preflight(
                settings.min_free, settings.source("min_free"), self._relieve
            )
        self.pressure = Pressure(config, self.reader, log.pressure, log.notices)
        self.signals = StopSignals(on_signal=self._signalled).install()
        stack.callback(self.signals.restore)
        self.end = RunEnd(config, self.context, self.signals, self.records)
        # A duplicate of the real stderr, taken before any test captures it, so that the
        # message of a process the guard has to end is not lost in a capture file.
        self.escalate_fd = os.dup(2)
        stack.callback(os.close, self.escalate_fd)
        watchdog = WatchdogCalls(
            self.crashlog, self.local, log, self.end, self.records, self.escalate_fd
        )
        self.guard = Guard(
            settings.thresholds,
            reader=self.reader,
            upper_bound=rss_upper_bound() if self.meter.exact else None,
            peak_meter=self.meter,
            on_event=watchdog.event,
            on_growth=watchdog.grew,
            on_escalate=watchdog.escalate,
            escalate_fd=self.escalate_fd,
            memory=memory.total,  # a container's limit: the kernel's wall
            stop_error=self._stop_error,
            children=self.descendants,  # a test's memory is its child processes' too
        )
        self.guard.start()
        stack.callback(self.guard.stop)
        for name, plugin in [(PLUGIN_NAME, self), (END_NAME, self.end), *self._helpers()]:
            config.pluginmanager.register(plugin, name)
            stack.callback(config.pluginmanager.unregister, plugin, name)

    def _helpers(self) -> list[tuple[str, object]]:
        """memguard's other plugin objects this process needs (see :class:`Roles`)."""
        roles, config, context = self.roles, self.config, self.context
        helpers: list[tuple[str, object]] = []
        if not roles.controller and self.settings.ledger:
            from .gate import gate_of

            helpers.extend(gate_of(config, context, self.reader))
        if roles.worker:
            from .distributed import worker_sides

            helpers.extend(worker_sides(config, context, self.reader))
        elif roles.controller and self.controller is not None:
            from .distributed import CONTROLLER_NAME

            helpers.append((CONTROLLER_NAME, self.controller))
            # Its workers' reports: memguard's failures, a recycled worker's stand-ins.
            helpers.append((LETTERS_NAME, MemoryLetters(recycled=True)))
        elif self.settings.pack:
            context.log.notices.append(
                f"memguard: {self.settings.source('pack')} packs pytest-xdist workers: nothing"
                " to pack in one process (run with -n N)"
            )
        if roles.html:
            from .htmlresults import HTML_NAME, HtmlColumns

            helpers.append((HTML_NAME, HtmlColumns(context)))
        if roles.junit or roles.github:
            from .ci import ci_plugins

            report = lambda: self.end.report  # noqa: E731 - read when the session ends
            helpers.extend(ci_plugins(config, context, roles, report, self.local.state_of))
        return helpers

    def close(self) -> None:
        """Undo what the constructor did, in reverse: plugins, thread, signal handlers,
        files, the records folder."""
        self._stack.close()

    def _release(self) -> None:
        """Keep the crash-proof records only when a session that ran tests did not end
        (what they say is not in a report) or the guard ended the process; let the
        per-test data go (pytest's last garbage collections need not walk it)."""
        local = self.local
        nothing_ran = not local.finished and local.running is None
        end = getattr(self, "end", None)
        ended = end is not None and end.ended
        if self.records is not None and not local.escalated and (ended or nothing_ran):
            self.records.remove()
        local.finished = []
        if end is not None:
            end.close()

    def _say(self, line: str) -> None:
        """A line in the terminal, as the run goes (the xdist controller's packing)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    def _relieve(self, trigger: str, nodeid: str | None) -> None:
        self.pressure.relieve(trigger, nodeid)

    # -- collection --------------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        hook = self.config.hook
        # Every conftest is loaded by now: no per-test hook call that nobody listens to.
        self._ask_budget = len(hook.pytest_memguard_budget.get_hookimpls()) > 1
        self._tell_result = bool(hook.pytest_memguard_test_result.get_hookimpls())
        self._default = self._default_budget()
        nodeids = [item.nodeid for item in session.items]
        self.local.collect(nodeids)
        if self.context.owns_work_dir and self.controller is None:
            self.crashlog.write("collected", nodeids=nodeids)
        for item in marked(session.items, MARKER):
            try:
                self._budgets[item.nodeid] = budget_of(item, self._default)
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
        budget = self._budgets.get(item.nodeid, self._default)
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
        state = self.local.running = TestState(item.nodeid, budget, error)
        self.crashlog.start(item.nodeid, self.guard.last_rss)
        return state

    # -- the verdict -----------------------------------------------------------------------

    def _judge(self, state: TestState, verdict: Verdict | None) -> None:
        """Give the test ``verdict`` (see :data:`~.state.VERDICTS` for which one stays),
        and fail the running phase with it (in report mode only a stop fails)."""
        if verdict is None or not state.judge(verdict):
            return
        if verdict.kind == "aborted" or self.settings.enforce:
            pytest.fail(verdict.message, pytrace=False)

    # -- the phases --------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.local.state_of(item.nodeid)
        if state is None:
            return (yield)
        state.new_run()
        rss_cap = state.budget.rss if self.settings.enforce else None
        self.guard.begin(item.nodeid, limit=rss_cap, source=state.budget.source("rss"))
        if state.error is not None:
            pytest.fail(state.error, pytrace=False)
        if self.preflight is not None:
            self._preflight(state)
        self.guard.arm(self._runner_code)
        try:
            result = yield
        except BaseException as raised:
            self._end_phase(state, raised)
            raise
        self._end_phase(state, None)
        return result

    def _preflight(self, state: TestState) -> None:
        """``--memguard-min-free``: the test is not started while too little is free."""
        assert self.preflight is not None
        try:
            shortfall = self.preflight.shortfall(state.nodeid)
        except Exception as error:  # never the cause of a lost run: the test goes on
            self.context.log.error(f"pre-flight check of {state.nodeid}", error)
            return
        if shortfall is not None:
            state.judge(Verdict("not_run", shortfall))
            pytest.fail(shortfall, pytrace=False)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.local.state_of(item.nodeid)
        if state is None:
            return (yield)
        state.phase = "call"
        budget = state.budget
        if budget.leak is not None or budget.heap is not None:
            # before the meter: tracing's tables are not the test's
            self._leak_check().begin(state, item)
        self._count_children(state)
        state.rss_start = self.meter.reset()
        self.guard.arm(self._runner_code)
        try:
            result = yield
        except BaseException as raised:
            self._end_body(state)
            self._end_phase(state, raised)
            raise
        self._end_body(state)
        self._end_phase(state, None)
        if budget is not NO_BUDGET:
            self._judge(state, state.over_budget())
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
        state = self.local.state_of(item.nodeid)
        if state is None:
            return (yield)
        state.phase = "teardown"
        self.guard.arm(self._runner_code)
        leak = None
        if state.counted is not None:  # checked for leaks
            if self.runner.found:
                peak = self.guard.max_rss
                leak = self._leak_check().check(state, item, self.runner)
                if state.leak_check is not None:  # run again: memguard's doing, not the suite's
                    self.guard.max_rss = peak
            else:
                state.counted = None  # it cannot run again: not judged
        failure = leak.failure if leak is not None else None
        try:
            result = yield
        except BaseException as raised:
            self._settle(state, raised, failure)
            raise
        rerun_error = leak.teardown_error if leak is not None else None
        self._settle(state, rerun_error, failure)
        if rerun_error is not None:
            raise rerun_error
        return result

    def _settle(self, state: TestState, raised: BaseException | None, leak: str | None) -> None:
        """The end of the test's teardown: the guard's last news, and the verdicts that
        need the whole test (the leak check's, the baseline's), which fail the teardown;
        a teardown that failed for a reason of its own (``raised``) is left at that.  The
        test's result is final from here."""
        state.torn_down = True
        state.duration_s = time.perf_counter() - state.started
        try:
            self._end_phase(state, raised)
        finally:
            self.guard.end()
            self._pass_events(state)
        if raised is not None:
            return
        self._judge(state, Verdict("leak", leak) if leak is not None else None)
        if self.baseline is not None:
            try:
                verdict = self.baseline.judge(state)
            except Exception as error:
                self.context.log.error(f"comparing {state.nodeid} with the baseline", error)
            else:
                self._judge(state, verdict)

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
            # The stop came out of the phase (judged by _stop_error).  What the stopped
            # frames hold is garbage now, even where a plugin keeps the exception
            # (pytest-rerunfailures keeps every failure's).
            traceback.clear_frames(raised.__traceback__)
            return
        message = f"memguard: {abort.message} (it caught the interrupt and went on)"
        self._judge(state, Verdict("aborted", message))

    def _pass_events(self, state: TestState | None) -> None:
        for event in self.guard.drain_events():
            if state is not None:
                state.level = max(state.level, event.level)
            if event.level >= Level.CRITICAL:
                self.pressure.tight("the process passed its critical threshold")
            self.config.hook.pytest_memguard_threshold_crossed(config=self.config, event=event)

    def _stop_error(self, info: AbortInfo) -> BaseException:
        """The exception that stops the running phase (the guard's signal handler calls
        this in the main thread): a failure with memguard's message, judged here, before
        the phase's report is made."""
        message = f"memguard: {info.message}"
        state = self.local.running
        if state is not None and state.abort is None:
            state.abort = info
            state.judge(Verdict("aborted", message))
        return LimitStop(message, rss=info.rss, limit=info.limit, source=info.source)

    def _finish(self, state: TestState, item: pytest.Item) -> None:
        """The end of a test's protocol: its result kept, its record line, the pressure
        check; memory freed after a stopped test, before the next one starts."""
        local = self.local
        try:
            self.guard.end()  # ended by _settle, unless the test was cut off
            if state.built is None:  # interrupted (Ctrl-C) before its teardown ended
                self._pass_events(state)
                if state.judge(Verdict("not_run", NOT_FINISHED)):
                    state.outcome = "not_run"
                state.built = state.result(local.worker)
            result = state.built
            local.running = None
            local.finished.append(result)
            if state.abort is not None:
                gc.collect()
                trim_heap()
            self.crashlog.end(
                result.status,
                result.rss_end,
                outcome=result.outcome,
                start=result.rss_start,
                peak=result.rss_peak,
                delta=result.peak_delta,
                children=result.children_peak,
                duration=result.duration_s,
                message=None if result.status == "ok" else result.message,
            )
            if self._tell_result:
                self.config.hook.pytest_memguard_test_result(item=item, result=result)
            self.pressure.after(state.nodeid)
        except Exception as error:  # e.g. a listener of a memguard hook
            local.running = None
            self.context.log.error(f"ending {state.nodeid}", error)

    # -- reports ---------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """The test's outcome; the ``memguard`` section on the report of the phase its
        verdict was given in; on the teardown report, the test's result, built once (in
        an xdist worker it travels on that report).  A wrapper, so that it comes before
        every plain implementation (pytest-html's columns read the section, xdist sends
        the report)."""
        state = self.local.running
        if state is None or state.nodeid != report.nodeid:
            return (yield)
        outcome = report_outcome(report.outcome, report.when, hasattr(report, "wasxfail"))
        state.outcome = merge_outcome(state.outcome, outcome)
        if state.verdict_phase == report.when and state.verdict is not None:
            report.sections.append(("memguard", state.details(self.meter.method)))
            if report.failed:
                setattr(report, CAUSE_KEY, True)
                self._show_letters()
        if report.when == "teardown":
            try:
                state.built = state.result(self.local.worker)
                if self.roles.worker:
                    setattr(report, ENTRY_KEY, encode_result(state.built))
            except Exception as error:
                self.context.log.error(f"the result of {report.nodeid}", error)
        return (yield)

    def _show_letters(self) -> None:
        """Register the status letter of the reports memguard failed, once one is."""
        pluginmanager = self.config.pluginmanager
        if not pluginmanager.has_plugin(LETTERS_NAME):
            letters = MemoryLetters()
            pluginmanager.register(letters, LETTERS_NAME)
            self._stack.callback(pluginmanager.unregister, letters, LETTERS_NAME)

    def _leak_check(self) -> LeakCheck:
        """The run's leak checker, built when the first checked test needs it (with the
        report hooks it needs, which no other run pays for)."""
        if self._leaks is None:
            from .leakcheck import LeakCheck

            root, budget = self.config.rootpath, self.settings.leak_budget
            self._leaks = LeakCheck(root, budget, self.reader)
            reports = LeakReports(self.local, self._leaks)
            self.config.pluginmanager.register(reports, LEAK_REPORTS_NAME)
            self._stack.callback(self.config.pluginmanager.unregister, reports, LEAK_REPORTS_NAME)
        return self._leaks

    def _signalled(self, signum: int) -> None:
        """SIGTERM or SIGHUP reached the xdist controller: its workers end as it does
        (signal handler, main thread)."""
        if self.controller is not None and signum != signal.SIGINT:
            self.controller.signal_workers(signum)

    # -- the end -----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self) -> Generator[None, None, None]:
        self._pass_events(None)  # before any implementation: the report is written by one
        return (yield)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = terminal.header_lines(self.settings, self.meter.method, self.context.memory)
        if not self.runner.found:
            lines.append(
                "memguard: pytest's runner was not found: a stop may interrupt other"
                " plugins' work of a phase, and leak suspects are not run again"
            )
        return lines


class LeakReports:
    """Registered once a test is checked for leaks: what pytest itself keeps of a checked
    test's reports (the blocks allocated while a report is made and logged) is not the
    test's."""

    def __init__(self, local: LocalResults, leaks: LeakCheck) -> None:
        self.local = local
        self.leaks = leaks

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, object, object]:
        state = self.local.running
        if state is not None and state.counted is not None:  # pytest's, not the test's
            self.leaks.report_starts()
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """A checked test's report is logged: what pytest kept of it is pytest's."""
        state = self.local.running
        yield
        if state is not None and state.nodeid == report.nodeid and state.counted is not None:
            self.leaks.report_logged(report)


def _environment(memory: SystemMemory, peak_method: str) -> dict[str, Any]:
    """The report's ``environment`` section for this process."""
    from ..core.guard import describe_platform
    from ..reporting.report import environment

    return environment(
        memory,
        peak_method=peak_method,
        interrupt=describe_platform(),
        pytest_version=pytest.__version__,
    )
