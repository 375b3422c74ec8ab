"""Each test's measured peak, kept from one guarded run to the next: what packing predicts.

A test's *peak* here is what it adds to its process at its highest: the peak growth of
its body over RSS at its start, plus the peak RSS of its child processes.  The history
keeps the last measured peak of each test and the RSS its process had when it started,
and learns from every run's test entries (those of the JSON report): a test that ran
replaces what was known of it, a test that did not run keeps its old figures, and a test
that was killed before it ended keeps the larger of its old peak and what it reached.

It stays small, whatever the suite once was:

- it counts the runs it learned from, and each test's last one; a test no run collected
  for :data:`KEEP_RUNS` (100) runs in a row is forgotten (renamed, removed, or a
  parameter id that changes every run);
- it keeps at most :data:`MAX_TESTS` (100,000) tests, those seen most recently first;
- a figure is a measurement only when it is a whole number of bytes from 0 to
  :data:`MAX_FIGURE` (1 PiB, far above the memory of any machine a test runs on): an
  entry with anything else (a string, a negative or larger number, a missing peak) is
  left out and counted (:attr:`PeakHistory.dropped`), never guessed at.

Its own JSON form (version 2) is ``{"version": 2, "runs": N, "tests": {node id:
[growth, children, rss_start, last run]}}``.  Version 1 (no run numbers, written before
0.1.0) is still read, but with nothing to tell a stale test from a current one: its
tests count as last seen :data:`KEEP_RUNS` - 1 runs ago, so the next run keeps those it
collects and forgets the rest (a million stale entries cost one run, not a hundred).

No pytest import: the plugin keeps it in pytest's cache folder (:mod:`.plugin.history`).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from ..errors import MemguardError

__all__ = [
    "HISTORY_VERSION",
    "KEEP_RUNS",
    "MAX_FIGURE",
    "MAX_TESTS",
    "HistoryError",
    "Peak",
    "PeakHistory",
]

#: The version of the history's own JSON form (in pytest's cache).
HISTORY_VERSION: Final = 2
#: The largest figure taken as a measurement, in bytes: 1 PiB.
MAX_FIGURE: Final = 1 << 50
#: A test not collected by this many runs in a row is forgotten.
KEEP_RUNS: Final = 100
#: The most tests the history keeps (those seen most recently).
MAX_TESTS: Final = 100_000
#: The figures of a report's test entry the history reads (each absent, null or a size).
_FIGURES: Final = ("peak_delta", "children_peak", "rss_start", "rss_peak")


class HistoryError(MemguardError, ValueError):
    """A history whose shape is not understood at all (not one bad entry: those are
    left out and counted)."""


@dataclass(frozen=True, slots=True)
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


def _is_size(value: object) -> bool:
    """Whether ``value`` (from JSON) is a measurement: an int from 0 to :data:`MAX_FIGURE`
    (bools are not sizes)."""
    return type(value) is int and 0 <= value <= MAX_FIGURE


class PeakHistory(Mapping[str, Peak]):
    """Node id -> :class:`Peak`: the peaks of the tests measured so far.

    Not thread-safe: one run learns, then it is written.

    :param source: where the history came from, for people ("pytest cache",
        "report.json")
    :param runs: how many runs it learned from (:meth:`add_run`)
    :param seen: the last of those runs that collected each test (0 when not given)
    """

    def __init__(
        self,
        peaks: Mapping[str, Peak] | None = None,
        source: str = "",
        *,
        runs: int = 0,
        seen: Mapping[str, int] | None = None,
    ) -> None:
        self._peaks: dict[str, Peak] = dict(peaks or {})
        self._seen: dict[str, int] = {nodeid: (seen or {}).get(nodeid, 0) for nodeid in self._peaks}
        self.source = source
        self.runs = runs
        #: Entries of its source that were not understood and left out.
        self.dropped = 0

    def __getitem__(self, nodeid: str) -> Peak:
        return self._peaks[nodeid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._peaks)

    def __len__(self) -> int:
        return len(self._peaks)

    def last_seen(self, nodeid: str) -> int:
        """The last run (of :attr:`runs`) that collected the test."""
        return self._seen[nodeid]

    # -- its JSON forms ------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: object, source: str = "") -> PeakHistory:
        """The history as :meth:`to_json` wrote it (or version 1 of it).

        :class:`HistoryError` when its shape is not understood at all; a test entry that
        is not understood is left out and counted in :attr:`dropped`, and one that is
        older than :data:`KEEP_RUNS` runs is left out as the next run would forget it.
        """
        expected = f'(expected {{"version": {HISTORY_VERSION}, "runs": N, "tests": {{...}}}})'
        if not isinstance(data, Mapping) or "version" not in data:
            raise HistoryError(f"not a memguard history {expected}")
        version, tests, runs = data.get("version"), data.get("tests"), data.get("runs", 0)
        if version not in (1, HISTORY_VERSION):
            raise HistoryError(f"a memguard history of version {version!r} {expected}")
        if not isinstance(tests, Mapping) or not (type(runs) is int and runs >= 0):
            raise HistoryError(f"not a memguard history {expected}")
        if version == 1:  # no run numbers: each test one run from being forgotten
            runs = KEEP_RUNS - 1
        history = cls(source=source, runs=runs)
        peaks, seen = history._peaks, history._seen
        width = 3 if version == 1 else 4
        for nodeid, value in tests.items():
            if not isinstance(value, list) or len(value) != width:
                history.dropped += 1
                continue
            last = value[3] if width == 4 else 0
            if not (type(last) is int and 0 <= last <= runs):
                history.dropped += 1
            elif runs - last >= KEEP_RUNS:
                continue  # stale: no run collected it for long
            elif (
                _is_size(value[0])
                and _is_size(value[1])
                and (value[2] is None or _is_size(value[2]))
            ):
                peaks[nodeid] = Peak(value[0], value[1], value[2])
                seen[nodeid] = last
            else:
                history.dropped += 1
        return history

    def to_json(self) -> dict[str, Any]:
        """The history as pytest's cache keeps it: node id -> ``[growth, children,
        rss_start, last run]``."""
        seen = self._seen
        tests = {nodeid: [*peak.to_json(), seen[nodeid]] for nodeid, peak in self._peaks.items()}
        return {"version": HISTORY_VERSION, "runs": self.runs, "tests": tests}

    def json_pieces(self) -> Iterator[str]:
        """:meth:`to_json` as compact JSON text (``json.dumps(..., separators=(",", ":"))``'s
        bytes), a test at a time: a run of many thousand tests writes it without holding
        it whole, nor a list per test."""
        yield f'{{"version":{HISTORY_VERSION},"runs":{self.runs},"tests":{{'
        seen, separator = self._seen, ""
        for nodeid, peak in self._peaks.items():
            start = "null" if peak.rss_start is None else peak.rss_start
            yield (
                f"{separator}{json.dumps(nodeid)}:"
                f"[{peak.growth},{peak.children},{start},{seen[nodeid]}]"
            )
            separator = ","
        yield "}}"

    @classmethod
    def from_report(cls, report: Mapping[str, Any], source: str = "") -> PeakHistory:
        """The peaks of the tests of a JSON report (``--memguard-history``).

        :class:`HistoryError` when its ``tests`` is not a list; an entry that is not
        understood is left out and counted in :attr:`dropped`.
        """
        tests = report.get("tests")
        if not isinstance(tests, list):
            raise HistoryError(f'"tests" is {_shown(tests)}, not a list of test entries')
        history = cls(source=source)
        history.learn(tests)
        return history

    # -- learning ------------------------------------------------------------------------

    def add_run(self, entries: Iterable[Mapping[str, Any]], collected: Iterable[str] = ()) -> None:
        """Take in one more run: its test entries (:meth:`learn`) and the node ids it
        collected (seen, run or not); then forget what is stale or too much."""
        self.runs += 1
        self.learn(entries)
        seen, runs = self._seen, self.runs
        for nodeid in collected:
            if nodeid in seen:
                seen[nodeid] = runs
        self.keep(MAX_TESTS, stale=KEEP_RUNS)

    def learn(self, entries: Iterable[object]) -> None:
        """Take in a run's test entries (the JSON report's ``tests``); each counts as seen
        by the current run.  An entry that is not understood is counted in :attr:`dropped`.

        One entry at a time: a run of many thousand tests makes its entries as they are
        read, and only the killed ones wait here for the run's usual start.
        """
        starts: list[int] = []
        killed: list[Mapping[str, Any]] = []
        for entry in entries:
            if not _is_entry(entry):
                self.dropped += 1
                continue
            start = entry.get("rss_start")
            if start is not None:
                starts.append(start)
            if entry.get("status") == "killed":
                killed.append(entry)
            else:
                self._take(entry["nodeid"], entry["peak_delta"], entry.get("children_peak"), start)
        # A killed test has no start of its own: the run's usual one stands for it.
        usual_start = int(statistics.median(starts)) if starts else 0
        for entry in killed:
            nodeid, start = entry["nodeid"], entry.get("rss_start")
            children = entry.get("children_peak") or 0
            reached = entry.get("rss_peak")
            growth = None
            if reached is not None:
                growth = max(0, reached - (start or usual_start))
                old = self._peaks.get(nodeid)
                if old is not None and old.total >= growth + children:
                    growth = None
            self._take(nodeid, growth, children, start)

    def _take(
        self, nodeid: str, growth: int | None, children: int | None, start: int | None
    ) -> None:
        """Keep a test's measured peak (``growth`` None: not measured now)."""
        if growth is not None:
            self._peaks[nodeid] = Peak(growth, children or 0, start)
        if nodeid in self._peaks:  # measured now or before: this run saw it
            self._seen[nodeid] = self.runs

    def keep(self, count: int, stale: int | None = None) -> None:
        """Forget the tests last seen ``stale`` runs ago or more (when given), then all but
        the ``count`` seen most recently."""
        seen, runs = self._seen, self.runs
        if stale is not None:
            for nodeid in [nodeid for nodeid, last in seen.items() if runs - last >= stale]:
                del seen[nodeid], self._peaks[nodeid]
        if len(seen) > count:
            kept = sorted(seen, key=seen.__getitem__, reverse=True)[:count]
            self._peaks = {nodeid: self._peaks[nodeid] for nodeid in kept}
            self._seen = {nodeid: seen[nodeid] for nodeid in kept}

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


def _is_entry(entry: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether a report's test entry is one the history understands: a node id, a
    ``peak_delta`` (null when not measured), a status if any, and sizes for figures."""
    return (
        isinstance(entry, Mapping)
        and isinstance(entry.get("nodeid"), str)
        and "peak_delta" in entry
        and isinstance(entry.get("status", ""), str)
        and all((value := entry.get(name)) is None or _is_size(value) for name in _FIGURES)
    )


def _shown(value: object) -> str:
    """A value for a message: its JSON-ish repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
