"""Each test's measured peak, kept from one guarded run to the next: what packing predicts.

A test's *peak* here is what it adds to its process at its highest: the peak growth of
its body over RSS at its start, plus the peak RSS of its child processes.  The history
keeps the last measured peak of each test and the RSS its process had when it started,
and learns from every run's test entries (those of the JSON report): a test that ran
replaces what was known of it, a test that did not run keeps its old figures, and a test
that was killed before it ended keeps the larger of its old peak and what it reached.

No pytest import: the plugin keeps it in pytest's cache folder (:mod:`.plugin.history`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["HISTORY_VERSION", "Peak", "PeakHistory"]

#: The version of the history's own JSON form (in pytest's cache).
HISTORY_VERSION: Final = 1


@dataclass(frozen=True)
class Peak:
    """What one test added to its process at its highest, in bytes.

    ``growth`` is the body's peak RSS growth, ``children`` its child processes' peak
    RSS, ``rss_start`` the process's RSS when the test started (None: unknown).
    """

    growth: int
    children: int = 0
    rss_start: int | None = None

    @property
    def total(self) -> int:
        """What the test needs beyond its process's RSS: its growth and its children's."""
        return self.growth + self.children

    def to_json(self) -> list[int | None]:
        """``[growth, children, rss_start]``: compact, for thousands of tests."""
        return [self.growth, self.children, self.rss_start]


def _size(value: object) -> int | None:
    """A size from JSON: a non-negative int (bools are not sizes), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


class PeakHistory(Mapping[str, Peak]):
    """Node id -> :class:`Peak`: the peaks of the tests measured so far.

    :param source: where the history came from, for people ("pytest cache",
        "report.json")
    """

    def __init__(self, peaks: Mapping[str, Peak] | None = None, source: str = "") -> None:
        self._peaks: dict[str, Peak] = dict(peaks or {})
        self.source = source

    def __getitem__(self, nodeid: str) -> Peak:
        return self._peaks[nodeid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._peaks)

    def __len__(self) -> int:
        return len(self._peaks)

    # -- its JSON forms ------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: object, source: str = "") -> PeakHistory:
        """The history as :meth:`to_json` wrote it; what is not understood is skipped."""
        history = cls(source=source)
        if not isinstance(data, Mapping) or data.get("version") != HISTORY_VERSION:
            return history
        tests = data.get("tests")
        if not isinstance(tests, Mapping):
            return history
        for nodeid, value in tests.items():
            if not isinstance(nodeid, str) or not isinstance(value, list) or len(value) != 3:
                continue
            growth, children, start = (_size(figure) for figure in value)
            if growth is not None:
                history._peaks[nodeid] = Peak(growth, children or 0, start)
        return history

    def to_json(self) -> dict[str, Any]:
        """The history as pytest's cache keeps it: node id -> ``[growth, children,
        rss_start]``."""
        tests = {nodeid: peak.to_json() for nodeid, peak in self._peaks.items()}
        return {"version": HISTORY_VERSION, "tests": tests}

    @classmethod
    def from_report(cls, report: Mapping[str, Any], source: str = "") -> PeakHistory:
        """The peaks of the tests of a JSON report (``--memguard-history``)."""
        history = cls(source=source)
        history.learn(report.get("tests") or ())
        return history

    # -- learning ------------------------------------------------------------------------

    def learn(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Take in a run's test entries (the JSON report's ``tests``)."""
        entries = [entry for entry in entries if isinstance(entry, Mapping)]
        starts = [_size(entry.get("rss_start")) for entry in entries]
        known_starts = [start for start in starts if start is not None]
        # A killed test has no start of its own: the run's usual one stands for it.
        usual_start = int(statistics.median(known_starts)) if known_starts else 0
        for entry, start in zip(entries, starts, strict=True):
            nodeid = entry.get("nodeid")
            if not isinstance(nodeid, str):
                continue
            children = _size(entry.get("children_peak")) or 0
            growth = _size(entry.get("peak_delta"))
            if entry.get("status") == "killed":
                reached = _size(entry.get("rss_peak"))
                old = self._peaks.get(nodeid)
                if reached is None:
                    continue
                growth = max(0, reached - (start or usual_start))
                if old is not None and old.total >= growth + children:
                    continue
            if growth is None:  # not run, or stopped before its body: nothing measured
                continue
            self._peaks[nodeid] = Peak(growth, children, start)

    # -- predictions ---------------------------------------------------------------------

    def default_estimate(self) -> int:
        """The prediction for a test with no history: the median peak of those with one
        (0 when none has one)."""
        if not self._peaks:
            return 0
        return int(statistics.median(peak.total for peak in self._peaks.values()))

    def usual_start(self) -> int | None:
        """The median RSS of a process when its tests started (None: unknown)."""
        starts = [peak.rss_start for peak in self._peaks.values() if peak.rss_start is not None]
        return int(statistics.median(starts)) if starts else None
