"""Leak and heap checks of the tests that ask for them (``--memguard-leaks``, ``leak=``, ``heap=``).

Imported only when a test is checked.  Tracing is scoped to each checked test: it starts
with the test body (after its fixtures are set up) and, for a leak check, ends after the
teardown of its function-scoped fixtures, so that pytest's work between tests is not
traced.  A test that does not leak pays for the tracing and a few O(1) counters;
``gc.collect()``, snapshots and a rerun are for suspects only.  A suspect runs again
while the fixtures of every scope above the function are still set up
(:class:`~.runner.Runner`), so that the rerun measures the test, not a fixture set up
anew, and works for the last test of a session as for any other.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from ..core.leaks import (
    DEFAULT_LEAK_BUDGET,
    DEFAULT_NFRAMES,
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
from .runner import Runner
from .state import TestState

__all__ = ["LeakCheck", "LeakResult"]


class LeakResult(NamedTuple):
    """What the leak check of a test found before its real teardown."""

    #: What the teardown of its function-scoped fixtures raised, or the guard's stop of
    #: its rerun (raised after the real teardown), or None.
    teardown_error: BaseException | None
    #: Why the test fails as a leak, or None.
    failure: str | None


class LeakCheck:
    """Per-test tracing, counters and verdicts for one run (main thread only)."""

    def __init__(self, root: Path, default_budget: int | None) -> None:
        self.root = root
        self.default_budget = DEFAULT_LEAK_BUDGET if default_budget is None else default_budget
        self.tracer = Tracer()

    def begin(self, state: TestState) -> None:
        """The test body starts: trace (one frame: the counters need no more), count."""
        self.tracer.ensure(1)
        state.traced_start = self.tracer.traced()
        self.tracer.reset_peak()

    def end_call(self, state: TestState) -> None:
        """The test body ended: its heap peak; tracing stops here unless leaks are checked."""
        if state.traced_start is None:
            return
        state.heap_peak = max(0, self.tracer.peak() - state.traced_start)
        if state.budget.leak is None:
            self.tracer.release()
            state.traced_start = None

    def abandon(self, state: TestState) -> None:
        """Stop tracing ``state`` without judging it."""
        if state.traced_start is not None:
            state.traced_start = None
            self.tracer.release()

    def check(
        self, state: TestState, item: pytest.Item, runner: Runner, rss: Callable[[], int]
    ) -> LeakResult:
        """At the start of the real teardown: tear down the test's function-scoped
        fixtures, judge what it kept, and run a suspect again to tell a leak from a warm-up.

        A test that kept more than its budget is collected (``gc.collect()``) and measured
        again; if it still did, it is run once more between two snapshots: growing again
        confirms a leak, not growing was a warm-up (a cache filled, a module imported).
        A test the guard stopped, or whose fixtures failed to tear down, is not judged.
        """
        start, state.traced_start = state.traced_start, None
        assert start is not None, "only a traced test is checked"
        try:
            error = runner.teardown_function(item)
            budget = state.budget.leak
            if budget is None or error is not None or state.abort is not None:
                return LeakResult(error, None)
            tracer = self.tracer
            retained = tracer.traced() - start
            if retained > budget:
                gc.collect()
                retained = tracer.traced() - start
            state.leaked = max(0, retained)
            native = self._native_leak(state, rss, retained)
            if native is not None:
                state.warnings += (f"memguard: {native}",)
            if retained <= budget:
                return LeakResult(None, None)
            try:
                return LeakResult(None, self._confirm(state, retained, budget, item, runner))
            except MemoryLimitExceeded as stop:  # the guard stopped the rerun
                return LeakResult(stop, None)
        finally:
            self.tracer.release()

    @staticmethod
    def _native_leak(state: TestState, rss: Callable[[], int], traced: int) -> str | None:
        """A warning when RSS kept much more than traced memory, even after a heap trim.

        The RSS is read after the teardown.  Freed Python objects often stay resident
        (allocator pools and the C heap keep them), so it is read again after
        ``gc.collect()`` and ``malloc_trim`` before anything is said; both only run when
        the first reading looks suspicious.
        """
        if state.rss_start is None:
            return None
        if native_leak_message(rss() - state.rss_start, traced) is None:
            return None
        gc.collect()
        trim_heap()
        return native_leak_message(rss() - state.rss_start, traced)

    def _confirm(
        self, state: TestState, retained: int, budget: int, item: pytest.Item, runner: Runner
    ) -> str | None:
        tracer = self.tracer
        if not tracer.user_started:
            # Sites need frames beyond the library that allocated (np.ones is two frames
            # above the test); the first run did without them, at a tenth of the cost.
            tracer.release()
            tracer.ensure(DEFAULT_NFRAMES)
        before = take_snapshot()
        error = runner.run_again(item)
        gc.collect()
        after = take_snapshot()
        change = diff(before, after) if error is None else None
        verdict = judge(retained, budget, change, error)
        state.leak_check = {
            "reruns": 1,
            "verdict": verdict.kind,
            "first": retained,
            "rerun": change.growth if change is not None else None,
            "error": error,
        }
        message = f"memguard: {leak_message(verdict, root=self.root)}"
        if verdict.kind == "leak":
            state.sites = relative_sites(verdict.sites, self.root)
            return message
        if verdict.kind == "unconfirmed":
            state.warnings += (message,)
        else:  # a warm-up: said in the report, nothing more
            state.notes += (message,)
        return None
