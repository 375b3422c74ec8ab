"""Leak and heap checks of the tests that ask for them (``--memguard-leaks``, ``leak=``, ``heap=``).

Imported only when a test is checked.  Tracing is scoped to each checked test: it starts
with the test body (after its fixtures are set up) and, for a leak check, ends after its
teardown, so that pytest's work between tests is not traced and memory a module fixture
frees cannot hide a leak.  A test that does not leak pays for the tracing and a few O(1)
counters; ``gc.collect()``, snapshots and a rerun are for suspects only.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from ..probe.process import trim_heap
from .state import TestState

if TYPE_CHECKING:
    from .hooks import MemguardPlugin

__all__ = ["LeakCheck", "LeakTeardown", "register"]


#: Runs the test once more (setup, call, teardown); returns what went wrong, or None.
RunAgain = Callable[[], "str | None"]


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

    def finish(
        self,
        state: TestState,
        rss: Callable[[], int],
        run_again: RunAgain,
        *,
        judge: bool = True,
    ) -> str | None:
        """After the teardown: judge what the test kept; returns a failure message or None.

        A test that kept more than its budget is collected (``gc.collect()``) and measured
        again; if it still did, it is run once more between two snapshots: growing again
        confirms a leak, not growing was a warm-up (a cache filled, a module imported).
        With ``judge`` False (the test was stopped, or its teardown failed) tracing just ends.
        """
        start, state.traced_start = state.traced_start, None
        budget = state.budget.leak
        if start is None or budget is None or not judge:
            if start is not None:
                self.tracer.release()
            return None
        try:
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
                return None
            return self._confirm(state, retained, budget, run_again)
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
        self, state: TestState, retained: int, budget: int, run_again: RunAgain
    ) -> str | None:
        tracer = self.tracer
        if not tracer.user_started:
            # Sites need frames beyond the library that allocated (np.ones is two frames
            # above the test); the first run did without them, at a tenth of the cost.
            tracer.release()
            tracer.ensure(DEFAULT_NFRAMES)
        before = take_snapshot()
        error = run_again()
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


class LeakTeardown:
    """The end of a checked test's teardown, where its leak is judged.

    Registered with the run's first checked test (:func:`register`), so that the tests of
    a run without leak checks pay for no teardown hook.
    """

    def __init__(self, plugin: MemguardPlugin) -> None:
        self.plugin = plugin

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        plugin = self.plugin
        state = plugin.state_of(item)
        if state is None or state.traced_start is None or plugin._rerunning:
            return (yield)
        try:
            result = yield
        except BaseException as raised:
            plugin._end_leak_check(state, item, nextitem, raised)
            raise
        plugin._end_leak_check(state, item, nextitem, None)
        return result


def register(config: pytest.Config, plugin: MemguardPlugin) -> None:
    """Register :class:`LeakTeardown` (once a run; unregistered at the end of the run)."""
    from .hooks import LEAKS_PLUGIN_NAME

    if not config.pluginmanager.has_plugin(LEAKS_PLUGIN_NAME):
        config.pluginmanager.register(LeakTeardown(plugin), LEAKS_PLUGIN_NAME)
