"""The budget a test (or any unit of work) is held to, and the words for its status.

What is measured of a test (:class:`~pytest_memguard.measured.TestMemory`) lives in
:mod:`pytest_memguard.measured`: a guarded run that writes no JSON report never makes
one, and defining a frozen dataclass costs an import some 4 million instructions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "BUDGET_KINDS",
    "FAILING_STATUSES",
    "STATUSES",
    "STATUS_WORDS",
    "Budget",
    "Status",
    "to_microsecond",
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


def to_microsecond(seconds: float) -> float:
    """A duration (never negative) rounded to the microsecond, as reports write it.

    Arithmetic rather than ``round(seconds, 6)``, which formats the float and costs a
    run of thousands of tests about a microsecond a test.
    """
    return int(seconds * 1_000_000 + 0.5) / 1_000_000


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
