"""What is known of one test while it runs, its verdict, and the words memguard says
about it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..core.levels import Level
from ..core.sizes import format_limit, format_size
from ..reporting.results import NO_BUDGET, Budget, Status, TestMemory

if TYPE_CHECKING:
    from ..core.guard import AbortInfo
    from ..core.leaks import HeapCount
    from ..core.sites import Site

__all__ = ["NOT_FINISHED", "NO_BUDGET", "VERDICTS", "TestState", "Verdict"]

#: The message of a test whose protocol was cut off before its teardown ended (Ctrl-C).
NOT_FINISHED: Final = "not run (interrupted)"

#: ``time.time()`` minus ``time.perf_counter()``: a test's start as a date, for the
#: report's timeline, without a second clock read per test.
_EPOCH: Final = time.time() - time.perf_counter()

#: The kinds of memory verdict, strongest first: a test keeps the strongest it was given
#: (the later of two of one kind).  ``baseline`` (grown past a baseline report) is an
#: ``over_budget`` status, weaker than the test's own budget.
VERDICTS: Final = ("aborted", "killed", "not_run", "leak", "over_budget", "baseline")
_RANK: Final = {kind: rank for rank, kind in enumerate(VERDICTS)}

#: What a test's runs share: set when the test starts, and the peaks (the highest of all
#: its runs).  Everything else is its last run's and is forgotten when another starts.
_KEPT_ACROSS_RUNS: Final = frozenset(
    {"nodeid", "budget", "error", "started", "runs", "rss_peak", "peak_delta", "children_peak"}
)


class Verdict(NamedTuple):
    """What memguard decided of a test: one of :data:`VERDICTS`, and why."""

    kind: str
    message: str

    @property
    def status(self) -> Status:
        """The report's status for it."""
        return "over_budget" if self.kind == "baseline" else self.kind  # type: ignore[return-value]


class TestState:
    """One test's measurements and verdict, from the start of its protocol to its end.

    Sizes are bytes (``None``: not measured).  The verdict is set only through
    :meth:`judge`; ``verdict_phase`` is the phase it was given in, so that its
    ``memguard`` section and the status letter ``M`` go on that phase's report only.  The
    defaults live on the class, so that an instance holds only what was set.
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
    #: The guard's stop of this run of the test.
    abort: AbortInfo | None = None
    #: True once the end of a phase dealt with that stop.
    stop_handled = False
    #: The highest threshold level the process crossed while the test ran.
    level = Level.OK
    verdict: Verdict | None = None
    verdict_phase: str | None = None
    warnings: tuple[str, ...] = ()
    #: Said in the report without making the test a warning (e.g. a warm-up).
    notes: tuple[str, ...] = ()
    #: Traced bytes when the body started (while a heap budget traces it).
    traced_start: int | None = None
    #: The allocators' counts when the body started: set while a leak check screens the
    #: test (None: not checked).
    counted: HeapCount | None = None
    leak_check: dict[str, Any] | None = None
    #: Over the reports of the test's last run, the strongest (see ``OUTCOMES``).
    outcome = "passed"
    #: The phase running now (for a stop), and how many times the setup ran.
    phase = "setup"
    runs = 0
    #: Whether the teardown of the last run is done (False: the run was interrupted).
    torn_down = False
    #: The test's result, built once it settled (at its teardown report).
    built: TestMemory | None = None

    def __init__(self, nodeid: str, budget: Budget = NO_BUDGET, error: str | None = None) -> None:
        self.nodeid = nodeid
        self.budget = budget
        #: Why the test's marker is wrong (it errors at setup), or None.
        self.error = error
        self.started = time.perf_counter()

    def new_run(self) -> None:
        """The setup of a run starts; a run after the first (another plugin runs the test
        again) forgets the last run's figures and verdict but its peaks."""
        if self.runs:
            kept = {name: value for name, value in vars(self).items() if name in _KEPT_ACROSS_RUNS}
            vars(self).clear()
            vars(self).update(kept)
        self.runs += 1

    def judge(self, verdict: Verdict) -> bool:
        """Give the test ``verdict`` in the phase that runs, unless it has a stronger one;
        whether it was given."""
        if self.verdict is not None and _RANK[verdict.kind] > _RANK[self.verdict.kind]:
            return False
        self.verdict, self.verdict_phase = verdict, self.phase
        return True

    @property
    def status(self) -> Status:
        """The report's status: the verdict's, else "warning" when a threshold was crossed
        or something is said of the test, else "ok"."""
        if self.verdict is not None:
            return self.verdict.status
        return "warning" if self.level or self.warnings else "ok"  # Level.OK is 0

    def result(self, worker: str) -> TestMemory:
        """The test's result: its entry in the report, the result hook's value, what an
        xdist worker sends (built once, when the test has settled)."""
        said = [self.verdict.message] if self.verdict is not None else []
        if self.error is not None and self.verdict is None:
            said.append(self.error)
        said.extend(self.warnings)
        said.extend(self.notes)
        return TestMemory(
            self.nodeid,
            self.outcome,
            self.status,
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
            message="; ".join(said) or None,
            reruns=max(0, self.runs - 1),
            leak_check=self.leak_check,
            started=_EPOCH + self.started,
        )

    # -- words ------------------------------------------------------------------------

    def over_budget(self) -> Verdict | None:
        """The verdict on a test body over its budget, or None when it is not."""
        message = self._over_budget()
        return Verdict("over_budget", message) if message is not None else None

    def _over_budget(self) -> str | None:
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
