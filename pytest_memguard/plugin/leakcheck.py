"""Leak and heap checks of the tests that ask for them (``--memguard-leaks``, ``leak=``, ``heap=``).

Imported only when a test is checked.  A leak check screens every test without tracing:
the allocators' counts when its body starts and after the teardown of its function
fixtures (:class:`~pytest_memguard.core.leaks.HeapCount`: counters the allocators keep,
read without walking the heap, so that every test can afford them).
What pytest keeps of the test's reports (one per subtest too) is counted apart, from
the start of each report to the end of its logging, and is not the test's.  Only a test
the counts say may have kept more than its budget is collected (``gc.collect()``) and
counted again; one still over its budget, a suspect, runs again, counted, up to twice,
and only a suspect that keeps too much on every rerun runs once more, with tracemalloc
on, to measure what the run keeps and where.  A suspect runs again while the fixtures of every scope
above the function are still set up (:class:`~.runner.Runner`), so that the rerun
measures the test, not a fixture set up anew, and works for the last test of a session
as for any other.  A heap budget traces the body of its test (one frame: the peak needs
no more).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NamedTuple

import pytest

from ..core.leaks import (
    DEFAULT_LEAK_BUDGET,
    DEFAULT_NFRAMES,
    NATIVE_LEAK_THRESHOLD,
    SMALL_BLOCK_MAX,
    HeapCount,
    LeakDiff,
    Tracer,
    diff,
    judge,
    leak_message,
    native_leak_message,
    relative_sites,
    take_snapshot,
)
from ..errors import MemoryLimitExceeded
from ..probe.process import trim_heap
from . import compat
from .retention import captured_apart, forget_log_records, log_record_lists, section_bytes
from .runner import Runner
from .state import TestState

__all__ = ["LeakCheck", "LeakResult"]


#: How many times a suspect runs again, counted, before the traced run that finds where
#: it leaks: each must keep more than the budget.  A leak keeps as much on every run; a
#: cache that random examples fill (hypothesis) keeps less and less, and is let go early.
COUNTED_RERUNS: Final = 2


class LeakResult(NamedTuple):
    """What the leak check of a test found before its real teardown."""

    #: What the teardown of its function-scoped fixtures raised, or the guard's stop of
    #: its rerun (raised after the real teardown), or None.
    teardown_error: BaseException | None
    #: Why the test fails as a leak, or None.
    failure: str | None


class LeakCheck:
    """Per-test counts, tracing and verdicts for one run (main thread only)."""

    def __init__(self, root: Path, default_budget: int | None, read_rss: Callable[[], int]) -> None:
        self.root = root
        self.default_budget = DEFAULT_LEAK_BUDGET if default_budget is None else default_budget
        self.read_rss = read_rss
        self.tracer = Tracer()
        #: What pytest kept of the counted test's reports so far, by the counts.
        self.reports_kept = 0
        self._report_start: int | None = None
        #: The lists pytest's log capture keeps the counted test's body's records in.
        self._log_records: list[list[Any]] = []
        #: A counted doctest's namespace as its body began (a doctest clears it as it ends).
        self._doctest_globs: dict[str, Any] | None = None

    def begin(self, state: TestState, item: pytest.Item) -> None:
        """The test body starts: the counts for a leak check, tracing for a heap budget
        (started after the counts: its tables are not the test's)."""
        if state.budget.leak is not None:
            self.reports_kept, self._report_start = 0, None
            self._log_records = log_record_lists()
            # A doctest runs in a namespace that its run clears: kept for its reruns.
            globs = compat.doctest_globals(item)
            self._doctest_globs = dict(globs) if globs is not None else None
            state.counted = HeapCount.now(self.read_rss)
        if state.budget.heap is not None:
            self.tracer.ensure(1)
            state.traced_start = self.tracer.traced()
            self.tracer.reset_peak()

    def end_call(self, state: TestState) -> None:
        """The test body ended: its heap peak, and the end of its tracing."""
        if state.traced_start is None:
            return
        state.heap_peak = max(0, self.tracer.peak() - state.traced_start)
        state.traced_start = None
        self.tracer.release()

    def report_starts(self) -> None:
        """pytest starts a report of the counted test (its ``makereport``)."""
        self._report_start = sys.getallocatedblocks()

    def report_logged(self, report: pytest.TestReport) -> None:
        """pytest logged that report: the blocks it kept since its start are pytest's, and
        so are the sections of captured output and log the report's phase added."""
        start, self._report_start = self._report_start, None
        if start is not None:
            self.reports_kept += max(0, sys.getallocatedblocks() - start) * SMALL_BLOCK_MAX
        if report.when == "call":
            self.reports_kept += section_bytes(report)

    def check(self, state: TestState, item: pytest.Item, runner: Runner) -> LeakResult:
        """At the start of the real teardown: tear down the test's function-scoped
        fixtures, screen what it kept, and run a suspect again to tell a leak from a
        warm-up.  A test the guard stopped, or whose fixtures failed to tear down, is not
        judged.
        """
        start, state.counted = state.counted, None
        assert start is not None, "only a counted test is checked"
        error = runner.tear_down_function_scope(item)
        # Nobody reads the records pytest's log capture kept once the function's
        # fixtures (caplog) are torn down: let them go before counting.
        forget_log_records([*self._log_records, *log_record_lists()])
        self._log_records = []
        budget = state.budget.leak
        if budget is None or error is not None or state.abort is not None:
            return LeakResult(error, None)
        kept, grew = self._screen(start, budget, self.reports_kept)
        native = grew >= NATIVE_LEAK_THRESHOLD
        if kept <= budget and not native:
            return LeakResult(None, None)
        try:
            return LeakResult(None, self._confirm(state, kept, budget, item, runner))
        except MemoryLimitExceeded as stop:  # the guard stopped the rerun
            return LeakResult(stop, None)

    def _screen(self, start: HeapCount, budget: int, kept_by_pytest: int = 0) -> tuple[int, int]:
        """What the test kept by the counts (exact where ``start`` is, else a bound from
        above), less ``kept_by_pytest`` (what pytest kept of its reports), and RSS growth
        since ``start``.  Counted again after garbage collection while the counts say it
        kept too much: the young generations first (a full collection walks every object
        of the session, which grows with the suite), then all; for a native leak's RSS
        growth a full collection and a heap trim at once."""
        count = HeapCount.now if start.small is None else HeapCount.exact
        end = count(self.read_rss)
        native = end.rss - start.rss >= NATIVE_LEAK_THRESHOLD
        for generation in (2,) if native else (1, 2):
            if not native and end.kept_since(start) - kept_by_pytest <= budget:
                break
            gc.collect(generation)
            if native:
                trim_heap()
            end = count(self.read_rss)
        return max(0, end.kept_since(start) - kept_by_pytest), end.rss - start.rss

    def _confirm(
        self,
        state: TestState,
        kept: int,
        budget: int,
        item: pytest.Item,
        runner: Runner,
    ) -> str | None:
        """Run a suspect again, counted, up to :data:`COUNTED_RERUNS` times: a run that
        keeps no more than the budget makes it a warm-up (a cache filling with random
        examples keeps less and less).  One that kept too much on every counted rerun
        runs once more, traced (with frames beyond the library that allocated:
        ``np.ones`` is two frames above the test), for what it keeps and where."""
        reruns, kept_again, traced, native_leak, error = 0, None, None, None, None
        while reruns < COUNTED_RERUNS and error is None:
            start = HeapCount.exact(self.read_rss)  # a rerun is measured, not bounded
            self._renew_doctest(item)
            with captured_apart(item.config):
                error = runner.repeat_test(item)
            reruns += 1
            if error is not None:
                break
            again, grew = self._screen(start, budget)
            kept_again = again if kept_again is None else min(kept_again, again)
            native = grew >= NATIVE_LEAK_THRESHOLD
            if again <= budget and not native:
                break
            if reruns == COUNTED_RERUNS:
                reruns += 1
                traced, traced_growth, error = self._traced_rerun(item, runner)
                if native and error is None:
                    native_leak = native_leak_message(grew, traced_growth)
        verdict = judge(kept, budget, kept_again=kept_again, traced=traced, error=error)
        state.leak_check = {
            "reruns": reruns,
            "verdict": verdict.kind,
            "first": kept,
            "rerun": verdict.growth,
            "error": error,
        }
        if native_leak is not None:
            state.warnings += (f"memguard: {native_leak}",)
        if verdict.kind == "clean":  # a suspect for its RSS only
            return None
        message = f"memguard: {leak_message(verdict, root=self.root)}"
        if verdict.kind == "unconfirmed":
            state.warnings += (message,)
            return None
        state.leaked = verdict.growth
        if verdict.kind == "leak":
            state.sites = relative_sites(verdict.sites, self.root)
            return message
        if native_leak is None:  # a warm-up: said in the report, nothing more
            state.notes += (message,)
        return None

    def _renew_doctest(self, item: pytest.Item) -> None:
        """Give a doctest back the namespace its last run cleared."""
        globs = compat.doctest_globals(item)
        if self._doctest_globs is not None and globs is not None:
            globs.update(self._doctest_globs)

    def _traced_rerun(
        self, item: pytest.Item, runner: Runner
    ) -> tuple[LeakDiff | None, int, str | None]:
        """Run ``item`` again between two snapshots: what grew, the traced bytes it kept
        (pytest's included), and what went wrong."""
        gc.collect()
        trim_heap()  # what the runs before freed goes back first: tracing costs memory
        tracer = self.tracer
        tracer.ensure(DEFAULT_NFRAMES)
        try:
            self._renew_doctest(item)
            before = take_snapshot()
            start = tracer.traced()
            with captured_apart(item.config):
                error = runner.repeat_test(item)
            gc.collect()
            growth = tracer.traced() - start
            after = take_snapshot()
        finally:
            tracer.release()
        return (diff(before, after) if error is None else None), growth, error
