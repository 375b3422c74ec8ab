"""What is known of one test while it runs, and the words memguard says about it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from ..core.levels import Level
from ..core.sizes import format_size
from ..results import Budget, Status, to_microsecond

if TYPE_CHECKING:
    from ..core.guard import AbortInfo
    from ..measured import Site, TestMemory

__all__ = ["NO_BUDGET", "TestState"]

NO_BUDGET: Final = Budget()


class TestState:
    """One test's measurements and verdict.

    Sizes are bytes (``None``: not measured).  ``failed_when`` is the phase whose report
    memguard failed, so that the status letter ``M`` goes on that report only.  One is
    made per test, so the defaults live on the class and an instance holds only what was
    set: making one costs three stores, not twenty.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    duration_s = 0.0
    rss_start: int | None = None
    rss_peak: int | None = None
    peak_delta: int | None = None
    rss_end: int | None = None
    heap_peak: int | None = None
    leaked: int | None = None
    sites: tuple[Site, ...] = ()
    abort: AbortInfo | None = None
    #: True once the guard's stop of the test was settled (its phase failed or recorded).
    settled = False
    levels = Level.OK
    status: Status = "ok"
    message: str | None = None
    warnings: tuple[str, ...] = ()
    #: Said in the report without making the test a warning (e.g. a warm-up).
    notes: tuple[str, ...] = ()
    #: Traced bytes when the body started (while a leak or heap check traces it).
    traced_start: int | None = None
    leak_check: dict[str, Any] | None = None
    failed_when: str | None = None
    #: Over the test's reports ("failed" beats "skipped" beats "passed"); set when the
    #: report is written, from the reports pytest kept (see :mod:`.reports`).
    outcome = "passed"

    def __init__(self, nodeid: str, budget: Budget = NO_BUDGET) -> None:
        self.nodeid = nodeid
        self.budget = budget
        self.started = time.perf_counter()

    def final_status(self) -> Status:
        """The status for the report: a crossed warning threshold marks an ok test."""
        if self.status == "ok" and (self.levels or self.warnings):  # Level.OK is 0
            return "warning"
        return self.status

    def entry(
        self, worker: str, budgets: dict[int, dict[str, int | None]] | None = None
    ) -> dict[str, Any]:
        """The test's entry in the JSON report.

        :param budgets: budgets in JSON form by ``id()``, filled as it goes: the tests
            of a run share a few budget objects, so the report needs a few dicts, not one
            per test
        """
        message = self.message
        if self.warnings or self.notes:
            said = [message] if message else []
            message = "; ".join([*said, *self.warnings, *self.notes])
        budget = self.budget
        if budgets is None:
            budget_json = budget.to_json()
        else:
            budget_json = budgets.get(id(budget)) or budgets.setdefault(
                id(budget), budget.to_json()
            )
        entry: dict[str, Any] = {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "status": self.final_status(),
            "worker": worker,
            "duration_s": to_microsecond(self.duration_s),
            "rss_start": self.rss_start,
            "rss_end": self.rss_end,
            "rss_peak": self.rss_peak,
            "peak_delta": self.peak_delta,
            "heap_peak": self.heap_peak,
            "leaked": self.leaked,
            "budget": budget_json,
            "sites": [site.to_json() for site in self.sites] if self.sites else [],
            "message": message or None,
        }
        if self.leak_check is not None:
            entry["leak_check"] = self.leak_check
        return entry

    def result(self, worker: str) -> TestMemory:
        """The test's result as the public :class:`TestMemory` value."""
        from ..measured import TestMemory  # only for listeners of the result hook

        return TestMemory.from_json(self.entry(worker))

    # -- words ------------------------------------------------------------------------

    def over_budget(self) -> str | None:
        """Why the test body is over its budget, or None when it is not."""
        budget = self.budget
        if (
            budget.peak is not None
            and self.peak_delta is not None
            and self.peak_delta > budget.peak
        ):
            return (
                f"memguard: peak growth {format_size(self.peak_delta)} is over the budget of"
                f" {format_size(budget.peak)} ({budget.source('peak')})"
            )
        if budget.rss is not None and self.rss_peak is not None and self.rss_peak > budget.rss:
            # Reached in report mode only: in enforce mode the guard stops the test first.
            return (
                f"memguard: RSS {format_size(self.rss_peak)} went over the cap of"
                f" {format_size(budget.rss)} ({budget.source('rss')})"
            )
        if budget.heap is not None and self.heap_peak is not None and self.heap_peak > budget.heap:
            return (
                f"memguard: Python heap peak {format_size(self.heap_peak)} is over the budget of"
                f" {format_size(budget.heap)} ({budget.source('heap')})"
            )
        return None

    def details(self, peak_method: str) -> str:
        """The ``memguard`` report section: what was measured, the budget, the sites."""
        lines = [
            f"RSS at start {format_size(self.rss_start)}, peak {format_size(self.rss_peak)},"
            f" growth {format_size(self.peak_delta)} ({peak_method})"
        ]
        if self.heap_peak is not None or self.leaked is not None:
            heap, kept = format_size(self.heap_peak), format_size(self.leaked)
            lines.append(f"Python heap peak {heap}, retained {kept}")
        budget = self.budget
        if budget:
            kinds = [
                f"{kind} {format_size(getattr(budget, kind))} ({budget.source(kind)})"
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
