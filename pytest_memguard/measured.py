"""What is measured of one test (or any unit of work): :class:`TestMemory` and its
allocation :class:`Site` values, as the JSON report writes and reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .core.sizes import format_size
from .results import Budget, Status, to_microsecond

__all__ = ["Site", "TestMemory"]

#: The budget of a test that has none (frozen: one value serves every result).
_NO_BUDGET: Final = Budget()


@dataclass(frozen=True)
class Site:
    """One allocation site: ``file:line``, the bytes it holds and how many blocks."""

    file: str
    line: int
    size: int
    count: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {format_size(self.size)} in {self.count} blocks"

    def to_json(self) -> dict[str, Any]:
        """The site as the JSON report writes it."""
        return {"file": self.file, "line": self.line, "size": self.size, "count": self.count}


@dataclass(frozen=True)
class TestMemory:
    """The memory result of one test; sizes in bytes, times in seconds.

    ``rss_peak`` is the highest RSS during the test body and ``peak_delta`` its growth
    over ``rss_start`` (RSS when the body started); ``rss_end`` is RSS when the body ended.
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
    budget: Budget = _NO_BUDGET
    sites: tuple[Site, ...] = ()
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The test entry of the JSON report."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "status": self.status,
            "worker": self.worker,
            "duration_s": to_microsecond(self.duration_s),
            "rss_start": self.rss_start,
            "rss_end": self.rss_end,
            "rss_peak": self.rss_peak,
            "peak_delta": self.peak_delta,
            "heap_peak": self.heap_peak,
            "leaked": self.leaked,
            "budget": self.budget.to_json(),
            "sites": [site.to_json() for site in self.sites],
            "message": self.message,
        }

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
        )
