"""The result model: the budget a test is held to, what was measured of it
(:class:`TestMemory`, whose :meth:`~TestMemory.to_json` is the report's test entry), and
the words for its status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..core.sites import Site

__all__ = [
    "BUDGET_KINDS",
    "FAILING_STATUSES",
    "NO_BUDGET",
    "OUTCOMES",
    "STATUSES",
    "STATUS_WORDS",
    "Budget",
    "Status",
    "TestMemory",
    "merge_outcome",
    "report_outcome",
    "to_microsecond",
    "to_millisecond",
]

Status = Literal["ok", "warning", "over_budget", "leak", "aborted", "killed", "not_run"]
STATUSES: Final[tuple[Status, ...]] = (
    "ok",
    "warning",
    "over_budget",
    "leak",
    "aborted",
    "killed",
    "not_run",
)
#: How people read each status (upper case: a memory failure).
STATUS_WORDS: Final = {
    "ok": "ok",
    "warning": "warning",
    "over_budget": "OVER BUDGET",
    "leak": "LEAK",
    "aborted": "ABORTED",
    "killed": "KILLED",
    "not_run": "not run",
}
#: Statuses that are memory failures (shown with the letter ``M``).
FAILING_STATUSES: Final = frozenset({"over_budget", "leak", "aborted", "killed"})
#: The kinds of per-test budget, in the order of the marker's signature.
BUDGET_KINDS: Final = ("peak", "leak", "heap", "rss")


#: A test's outcomes, weakest first: over its reports the strongest one stays (as pytest
#: counts it: a test whose setup fails is an error, an expected failure ``xfailed``).
OUTCOMES: Final = ("passed", "skipped", "xfailed", "xpassed", "error", "failed")
_OUTCOME_RANK: Final = {outcome: rank for rank, outcome in enumerate(OUTCOMES)}


def report_outcome(outcome: str, when: str, xfail: bool) -> str:
    """The outcome one of pytest's reports gives its test: ``outcome`` is the report's,
    ``when`` its phase, ``xfail`` whether it carries ``wasxfail``."""
    if xfail:
        if outcome == "skipped":
            return "xfailed"
        if outcome == "passed":
            return "xpassed"
    if outcome == "failed" and when != "call":
        return "error"
    return outcome


def merge_outcome(old: str, new: str) -> str:
    """A test's outcome over its reports: the stronger of ``old`` and ``new`` (see
    :data:`OUTCOMES`); a "rerun" report (pytest-rerunfailures: another run follows)
    starts it again."""
    if new == "rerun":
        return "passed"
    return new if _OUTCOME_RANK.get(new, 0) > _OUTCOME_RANK.get(old, 0) else old


def to_microsecond(seconds: float) -> float:
    """A duration (never negative) rounded to the microsecond, as reports write it.

    Arithmetic rather than ``round(seconds, 6)``, which formats the float: it runs for
    every test's entry of every run.
    """
    return int(seconds * 1_000_000 + 0.5) / 1_000_000


def to_millisecond(time: float) -> float:
    """A time (epoch seconds) rounded to the millisecond, as reports write it."""
    return int(time * 1000 + 0.5) / 1000


@dataclass(frozen=True)
class Budget:
    """A test's budget in bytes (``None``: none); ``sources`` says where each value came from.

    ``peak`` bounds the RSS growth of the test body over its start, ``rss`` is an absolute
    hard cap while the test runs, ``heap`` bounds traced Python allocations and ``leak``
    the memory kept after the test.
    """

    peak: int | None = None
    leak: int | None = None
    heap: int | None = None
    rss: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, kind: str) -> str:
        """Where the ``kind`` budget came from, e.g. ``memory_budget(peak=...)``."""
        return self.sources.get(kind, kind)

    def to_json(self) -> dict[str, int | None]:
        """The budget as the JSON report writes it."""
        return {"peak": self.peak, "leak": self.leak, "heap": self.heap, "rss": self.rss}

    def __bool__(self) -> bool:
        return any(getattr(self, kind) is not None for kind in BUDGET_KINDS)


#: The budget of a test that has none (frozen: one value serves every result).
NO_BUDGET: Final = Budget()


@dataclass(frozen=True, slots=True)  # a run holds one a test: no __dict__ each
class TestMemory:
    """The memory result of one test; sizes in bytes, times in seconds.

    ``rss_peak`` is the highest RSS during the test body and ``peak_delta`` its growth
    over ``rss_start`` (RSS when the body started); ``rss_end`` is RSS when the body ended.
    A test another plugin ran again (pytest-rerunfailures) is one result: ``reruns``
    counts the extra runs, the figures are those of the last run, the peaks the highest
    of all.  ``children_peak`` is the highest growth of the summed RSS of the process's
    descendants during the body, the processes it started (None: none was seen).  Under
    ``--memguard-pack``, ``prediction`` is the peak the test was scheduled with; under
    xdist, ``beside`` names the tests that ran on other workers meanwhile (both written
    only when known).  ``leak_check`` says how a leak suspect's rerun went (leak checks
    only).  ``started`` is when the test began (epoch seconds; None when unknown, e.g. a test
    whose worker died).
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    outcome: str
    status: Status
    worker: str
    duration_s: float
    rss_start: int | None = None
    rss_end: int | None = None
    rss_peak: int | None = None
    peak_delta: int | None = None
    heap_peak: int | None = None
    leaked: int | None = None
    budget: Budget = NO_BUDGET
    children_peak: int | None = None
    prediction: int | None = None
    beside: tuple[str, ...] = ()
    sites: tuple[Site, ...] = ()
    message: str | None = None
    reruns: int = 0
    leak_check: Mapping[str, Any] | None = None
    #: When the test's protocol began (epoch seconds), for the report's timeline.
    started: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The test entry of the JSON report."""
        entry = {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "status": self.status,
            "worker": self.worker,
            "duration_s": to_microsecond(self.duration_s),
            "rss_start": self.rss_start,
            "rss_end": self.rss_end,
            "rss_peak": self.rss_peak,
            "peak_delta": self.peak_delta,
            "children_peak": self.children_peak,
            "heap_peak": self.heap_peak,
            "leaked": self.leaked,
            "budget": self.budget.to_json(),
            "sites": [site.to_json() for site in self.sites],
            "message": self.message,
            "reruns": self.reruns,
        }
        if self.leak_check is not None:
            entry["leak_check"] = dict(self.leak_check)
        if self.prediction is not None:
            entry["prediction"] = self.prediction
        if self.beside:
            entry["beside"] = list(self.beside)
        if self.started is not None:
            entry["started"] = to_millisecond(self.started)
        return entry

    @classmethod
    def not_run(cls, nodeid: str, message: str, worker: str = "") -> TestMemory:
        """The result of a test that did not run, or was cut off (``message``: why)."""
        return cls(nodeid, "not_run", "not_run", worker, 0.0, message=message)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestMemory:
        """Read back a test entry written by :meth:`to_json`."""
        budget = data.get("budget") or {}
        return cls(
            nodeid=data["nodeid"],
            outcome=data["outcome"],
            status=data["status"],
            worker=data.get("worker") or "main",
            duration_s=float(data.get("duration_s") or 0.0),
            rss_start=data.get("rss_start"),
            rss_end=data.get("rss_end"),
            rss_peak=data.get("rss_peak"),
            peak_delta=data.get("peak_delta"),
            children_peak=data.get("children_peak"),
            prediction=data.get("prediction"),
            beside=tuple(data.get("beside") or ()),
            heap_peak=data.get("heap_peak"),
            leaked=data.get("leaked"),
            budget=Budget(
                peak=budget.get("peak"),
                leak=budget.get("leak"),
                heap=budget.get("heap"),
                rss=budget.get("rss"),
            ),
            sites=tuple(Site(**site) for site in data.get("sites") or ()),
            message=data.get("message"),
            reruns=int(data.get("reruns") or 0),
            leak_check=data.get("leak_check"),
            started=data.get("started"),
        )
