"""What is known of one test while it runs, and the words memguard says about it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from ..core.levels import Level
from ..core.sizes import format_limit, format_size
from ..reporting.results import NO_BUDGET, Budget, Status

if TYPE_CHECKING:
    from ..core.guard import AbortInfo
    from ..core.leaks import HeapCount
    from ..core.sites import Site
    from ..reporting.results import TestMemory

__all__ = ["NO_BUDGET", "TestState"]

#: ``time.time()`` minus ``time.perf_counter()``: a test's start as a date, for the
#: report's timeline, without a second clock read per test.
_EPOCH: Final = time.time() - time.perf_counter()

#: What a run of a test measures and decides: forgotten when another run starts.
_PER_RUN: Final = (
    "rss_start",
    "rss_end",
    "heap_peak",
    "leaked",
    "sites",
    "abort",
    "stop_handled",
    "status",
    "message",
    "warnings",
    "notes",
    "traced_start",
    "counted",
    "leak_check",
    "failed_when",
    "outcome",
    "torn_down",
)


class TestState:
    """One test's measurements and verdict, from the start of its protocol to its end.

    Sizes are bytes (``None``: not measured).  ``failed_when`` is the phase whose report
    memguard failed, so that its ``memguard`` section and the status letter ``M`` go on
    that report only.  The defaults live on the class, so that an instance holds only
    what was set.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    duration_s = 0.0
    rss_start: int | None = None
    rss_peak: int | None = None
    peak_delta: int | None = None
    #: The highest growth of the summed RSS of the process's descendants during the test
    #: (the processes it started; None: none was seen).
    children_peak: int | None = None
    #: The kernel's peak of waited-for children when the test started.
    waited_children = 0
    rss_end: int | None = None
    heap_peak: int | None = None
    leaked: int | None = None
    sites: tuple[Site, ...] = ()
    abort: AbortInfo | None = None
    #: True once the guard's stop of this run of the test was dealt with.
    stop_handled = False
    levels = Level.OK
    status: Status = "ok"
    message: str | None = None
    warnings: tuple[str, ...] = ()
    #: Said in the report without making the test a warning (e.g. a warm-up).
    notes: tuple[str, ...] = ()
    #: Traced bytes when the body started (while a heap budget traces it).
    traced_start: int | None = None
    #: The allocators' counts when the body started (while a leak check screens it).
    counted: HeapCount | None = None
    leak_check: dict[str, Any] | None = None
    failed_when: str | None = None
    #: Over the reports of the test's last run: "failed" beats "skipped" beats "passed".
    outcome = "passed"
    #: The phase running now (for a stop), and how many times the setup ran.
    phase = "setup"
    runs = 0
    #: Whether the teardown of the last run is done (False: the run was interrupted).
    torn_down = False

    def __init__(self, nodeid: str, budget: Budget = NO_BUDGET, error: str | None = None) -> None:
        self.nodeid = nodeid
        self.budget = budget
        #: Why the test's marker is wrong (it errors at setup), or None.
        self.error = error
        self.started = time.perf_counter()

    def new_run(self) -> None:
        """The setup of a run starts; a run after the first (another plugin runs the test
        again) forgets the last run's figures and verdict but its peaks."""
        self.runs += 1
        self.phase = "setup"
        if self.runs == 1:
            return
        for name in _PER_RUN:  # the peaks stay: the highest of all runs
            self.__dict__.pop(name, None)

    def final_status(self) -> Status:
        """The status for the report: a crossed warning threshold marks an ok test."""
        if self.status == "ok" and (self.levels or self.warnings):  # Level.OK is 0
            return "warning"
        return self.status

    def result(self, worker: str) -> TestMemory:
        """The test's result, the public value of the report's test entry."""
        from ..reporting.results import TestMemory

        message = self.message
        if self.warnings or self.notes:
            said = [message] if message else []
            message = "; ".join([*said, *self.warnings, *self.notes])
        return TestMemory(
            self.nodeid,
            self.outcome,
            self.final_status(),
            worker,
            self.duration_s,
            rss_start=self.rss_start,
            rss_end=self.rss_end,
            rss_peak=self.rss_peak,
            peak_delta=self.peak_delta,
            children_peak=self.children_peak,
            heap_peak=self.heap_peak,
            leaked=self.leaked,
            budget=self.budget,
            sites=self.sites,
            message=message or None,
            reruns=max(0, self.runs - 1),
            leak_check=self.leak_check,
            started=_EPOCH + self.started,
        )

    def entry(self, worker: str) -> dict[str, Any]:
        """The test's entry in the JSON report."""
        return self.result(worker).to_json()

    # -- words ------------------------------------------------------------------------

    def over_budget(self) -> str | None:
        """Why the test body is over its budget, or None when it is not."""
        budget = self.budget
        if budget.peak is not None and self.peak_delta is not None:
            children = self.children_peak or 0
            if self.peak_delta + children > budget.peak:
                what = f"peak growth {format_size(self.peak_delta)}"
                if children:
                    what += (
                        f" with its child processes' {format_size(children)}"
                        f" ({format_size(self.peak_delta + children)})"
                    )
                return (
                    f"memguard: {what} is over the budget of {format_limit(budget.peak)}"
                    f" ({budget.source('peak')})"
                )
        if budget.rss is not None and self.rss_peak is not None and self.rss_peak > budget.rss:
            # Reached in report mode only: in enforce mode the guard stops the test first.
            return (
                f"memguard: RSS {format_size(self.rss_peak)} went over the cap of"
                f" {format_limit(budget.rss)} ({budget.source('rss')})"
            )
        if budget.heap is not None and self.heap_peak is not None and self.heap_peak > budget.heap:
            return (
                f"memguard: Python heap peak {format_size(self.heap_peak)} is over the budget of"
                f" {format_limit(budget.heap)} ({budget.source('heap')})"
            )
        return None

    def details(self, peak_method: str) -> str:
        """The ``memguard`` report section: what was measured, the budget, the sites."""
        lines = [
            f"RSS at start {format_size(self.rss_start)}, peak {format_size(self.rss_peak)},"
            f" growth {format_size(self.peak_delta)} ({peak_method})"
        ]
        if self.children_peak:
            lines.append(
                f"child processes' own memory at their peak {format_size(self.children_peak)}"
            )
        measured = (("Python heap peak", self.heap_peak), ("kept on a rerun", self.leaked))
        traced = [f"{what} {format_size(size)}" for what, size in measured if size is not None]
        if traced:
            lines.append(", ".join(traced))
        budget = self.budget
        if budget:
            kinds = [
                f"{kind} {format_limit(getattr(budget, kind))} ({budget.source(kind)})"
                for kind in ("peak", "rss", "heap", "leak")
                if getattr(budget, kind) is not None
            ]
            lines.append("budget: " + ", ".join(kinds))
        if self.abort is not None:
            signals, rss = self.abort.signals, format_size(self.abort.rss)
            lines.append(f"stopped after {signals} interrupt(s) at RSS {rss}")
        if self.sites:
            lines.append("allocated at:")
            lines.extend(f"  {site}" for site in self.sites)
        return "\n".join(lines) + "\n"
