"""The history file a project commits or caches: each test's peak, for a fresh CI runner.

pytest's cache keeps the peaks on one machine (:mod:`.history`); a CI runner starts
without it.  ``--memguard-history-save PATH`` merges a run's peaks into a compact file
that a project commits, or keeps as a CI cache or artifact, and ``--memguard-history
PATH`` reads it back (as pytest-split's ``.test_durations``, but with a schema, stable
bytes, and a merge that knows which figure is newer)::

    {"schema": "pytest-memguard-history/1",
    "fields": ["growth", "children", "rss_start", "measured"],
    "tests": {
    "tests/test_model.py::test_train[large]": [1073741824, 0, 52428800, "2026-12-04T16:13:43Z"],
    "tests/test_model.py::test_train[small]": [12288, 0, 51380224, "2026-12-04T16:13:43Z"]
    }}

One test a line, sorted by node id; figures are whole bytes (``rss_start`` null when
unknown), ``measured`` when they were (UTC, to the second; null when unknown: a
report without its date).  The file does not churn:

- a run rewrites a test's figures only when its peak (growth + children) moved by more
  than :data:`CHURN_SHARE` (10%) of the kept peak *and* more than :data:`CHURN_BYTES`
  (1 MiB) either way; else the line stays as it was, date included;
- a test the run did not measure keeps its line; nothing counts runs (the cache's "runs
  since seen" is the cache's);
- the same figures give the same bytes (ASCII, sorted, no float, no per-run field).

Merging (several shards' files, or reports, in order): a test new to the merge is
added; one already there takes the figures of a later input when they were measured
later (or at the same time) and moved past the same rule, so that merging shards' fresh
files into the committed one (named first) rewrites only what changed.  A report's tests
count as measured when the report was created.  At most :data:`~.history.MAX_TESTS`
tests are kept, those measured last first.  No pytest import.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..core.files import InputFileError, read_json
from .history import MAX_TESTS, HistoryError, Peak, PeakHistory, _is_size, _shown

__all__ = [
    "CHURN_BYTES",
    "CHURN_SHARE",
    "FIELDS",
    "HISTORY_SCHEMA",
    "LOCK_TIMEOUT",
    "HistoryFile",
    "Record",
    "load_histories",
    "load_history_file",
    "lock_path",
    "moved",
    "utc_stamp",
]

#: The schema key of the history file.
HISTORY_SCHEMA: Final = "pytest-memguard-history/1"
#: What each test's array holds, in order (written into the file, checked on reading).
FIELDS: Final = ("growth", "children", "rss_start", "measured")
#: A peak is rewritten only when it moved by more than this share of the kept one ...
CHURN_SHARE: Final = 0.10
#: ... and by more than this many bytes (1 MiB).
CHURN_BYTES: Final = 1 << 20
_STAMP: Final = "%Y-%m-%dT%H:%M:%SZ"
_EXPECTED: Final = f'(expected {{"schema": "{HISTORY_SCHEMA}", "tests": {{...}}}})'


def utc_stamp(when: float) -> str:
    """``when`` (seconds since the epoch) as the file's ``measured``: UTC, to the second."""
    return datetime.datetime.fromtimestamp(int(when), datetime.timezone.utc).strftime(_STAMP)


#: The shape of a stamp (read for every test of a large file: a pattern, not strptime).
_STAMP_PATTERN: Final = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ", re.ASCII
)


def _is_stamp(value: object) -> bool:
    return isinstance(value, str) and _STAMP_PATTERN.fullmatch(value) is not None


def moved(old: Peak, new: Peak) -> bool:
    """Whether ``new`` differs from ``old`` enough to be written: its peak moved by more
    than :data:`CHURN_SHARE` of ``old``'s and more than :data:`CHURN_BYTES`."""
    change = abs(new.total - old.total)
    return change > CHURN_BYTES and change > CHURN_SHARE * old.total


@dataclass(frozen=True, slots=True)
class Record:
    """A test's figures in the file and when they were measured ("": unknown, the oldest)."""

    peak: Peak
    measured: str = ""

    def newer_than(self, other: Record) -> bool:
        """Measured after ``other`` (the stamps sort as text: UTC, fixed width)."""
        return self.measured > other.measured


class HistoryFile(Mapping[str, Record]):
    """Node id -> :class:`Record`: the history file's tests.  Not thread-safe.

    :param source: where it came from, for people (a path, several joined by ", ")
    """

    def __init__(self, records: Mapping[str, Record] | None = None, source: str = "") -> None:
        self._records: dict[str, Record] = dict(records or {})
        self.source = source
        #: Entries of its source that were not understood and left out.
        self.dropped = 0

    def __getitem__(self, nodeid: str) -> Record:
        return self._records[nodeid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    # -- reading and writing -------------------------------------------------------------

    @classmethod
    def from_json(cls, data: object, source: str = "") -> HistoryFile:
        """The file as :meth:`encode` wrote it.  :class:`HistoryError` when its shape is
        not understood; a test entry that is not is left out and counted in :attr:`dropped`."""
        if not isinstance(data, Mapping) or "schema" not in data:
            raise HistoryError(f"not a memguard history {_EXPECTED}")
        schema, tests, fields = data["schema"], data.get("tests"), data.get("fields", list(FIELDS))
        if schema != HISTORY_SCHEMA:
            raise HistoryError(f"a history of schema {_shown(schema)}, not read here {_EXPECTED}")
        if not isinstance(tests, Mapping):
            raise HistoryError(f'"tests" is {_shown(tests)}, not an object of tests {_EXPECTED}')
        if fields != list(FIELDS):
            raise HistoryError(f'"fields" is {_shown(fields)}, not {json.dumps(list(FIELDS))}')
        history = cls(source=source)
        records = history._records
        for nodeid, value in tests.items():
            if (
                isinstance(value, list)
                and len(value) == len(FIELDS)
                and _is_size(value[0])
                and _is_size(value[1])
                and (value[2] is None or _is_size(value[2]))
                and (value[3] is None or _is_stamp(value[3]))
            ):
                records[nodeid] = Record(Peak(value[0], value[1], value[2]), value[3] or "")
            else:
                history.dropped += 1
        return history

    @classmethod
    def from_report(cls, report: Mapping[str, Any], source: str = "") -> HistoryFile:
        """The peaks of a JSON report's tests, measured when it was ``created``."""
        peaks = PeakHistory.from_report(report, source=source)
        measured = _report_stamp(report.get("created"))
        history = cls({nodeid: Record(peak, measured) for nodeid, peak in peaks.items()}, source)
        history.dropped = peaks.dropped
        return history

    def encode(self) -> str:
        """The file's text: one test a line, sorted by node id; the same tests, the same bytes."""
        lines = [_line(nodeid, self._records[nodeid]) for nodeid in sorted(self._records)]
        head = f'{{"schema": "{HISTORY_SCHEMA}",\n"fields": {json.dumps(list(FIELDS))},\n'
        body = "".join(f"{line},\n" for line in lines[:-1]) + (f"{lines[-1]}\n" if lines else "")
        return f'{head}"tests": {{\n{body}}}}}\n'

    # -- changing it ---------------------------------------------------------------------

    def record_run(self, entries: Iterable[Mapping[str, Any]], measured: str) -> list[str]:
        """Take in a run's test entries (the JSON report's ``tests``): a test it measured
        gets the new figures when they :func:`moved` (or it is new), stamped ``measured``;
        the others keep theirs.  Returns the node ids rewritten.

        Past :data:`~.history.MAX_TESTS` tests, those the run measured stay first: a
        test whose figures hold still keeps an old date."""
        entries = list(entries)
        old = {nodeid: record.peak for nodeid, record in self._records.items()}
        learned = PeakHistory(old)
        learned.learn(entries)  # its rules: a killed test keeps the larger peak, ...
        rewritten = []
        for nodeid, peak in learned.items():
            before = old.get(nodeid)
            if before is None or moved(before, peak):
                self._records[nodeid] = Record(peak, measured)
                rewritten.append(nodeid)
        ran = {entry.get("nodeid") for entry in entries if isinstance(entry, Mapping)}
        self.keep(MAX_TESTS, first=ran)
        return rewritten

    def merge(self, other: Mapping[str, Record]) -> None:
        """Take in ``other``'s tests: a test in both takes ``other``'s figures when they
        were measured no earlier than the kept ones and :func:`moved` from them."""
        records = self._records
        for nodeid, record in other.items():
            mine = records.get(nodeid)
            if mine is None or (not mine.newer_than(record) and moved(mine.peak, record.peak)):
                records[nodeid] = record
        self.keep(MAX_TESTS)

    def drop(self, nodeids: Iterable[str]) -> list[str]:
        """Forget these tests; returns those that were there."""
        return [nodeid for nodeid in nodeids if self._records.pop(nodeid, None) is not None]

    def keep(self, count: int, first: Container[object] = ()) -> list[str]:
        """Keep the ``count`` tests measured last (ties: by node id), those in ``first``
        before any other; returns those dropped."""
        if len(self._records) <= count:
            return []
        order = sorted(
            self._records.items(),
            key=lambda item: (item[0] in first, item[1].measured, item[0]),
        )
        dropped = [nodeid for nodeid, _ in order[: len(order) - count]]
        self.drop(dropped)
        return dropped

    def peaks(self) -> PeakHistory:
        """What packing predicts from."""
        peaks = {nodeid: record.peak for nodeid, record in self._records.items()}
        history = PeakHistory(peaks, source=self.source)
        history.dropped = self.dropped
        return history


def _line(nodeid: str, record: Record) -> str:
    """A test's line (ASCII: a node id's other characters are escaped)."""
    peak, when = record.peak, json.dumps(record.measured or None)
    start = "null" if peak.rss_start is None else peak.rss_start
    return f"{json.dumps(nodeid)}: [{peak.growth}, {peak.children}, {start}, {when}]"


def _report_stamp(created: object) -> str:
    """A report's ``created`` (local time with its offset) as a UTC stamp, "" if unknown."""
    if not isinstance(created, str):
        return ""
    try:
        when = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return ""
    return when.astimezone(datetime.timezone.utc).strftime(_STAMP)


def load_history_file(path: str | os.PathLike[str], *, reports: bool = True) -> HistoryFile:
    """A history file or (when ``reports``) a JSON report, told apart by its ``schema``.

    :class:`HistoryError` (whose text starts with the path) for a file that cannot be
    read, is neither, or whose shape is not understood.
    """
    from .report import SCHEMA

    try:
        data = read_json(path)
    except InputFileError as error:
        raise HistoryError(str(error)) from None
    schema = data.get("schema") if isinstance(data, dict) else None
    try:
        if schema == SCHEMA and reports:
            return HistoryFile.from_report(data, source=os.fspath(path))
        if isinstance(schema, str) and schema.startswith("pytest-memguard-history/"):
            return HistoryFile.from_json(data, source=os.fspath(path))
    except HistoryError as error:
        raise HistoryError(f"{os.fspath(path)}: {error}") from None
    if not reports:
        what = "a memguard report" if schema == SCHEMA else "not a memguard history"
        raise HistoryError(f'{os.fspath(path)}: {what} (expected "schema": "{HISTORY_SCHEMA}")')
    raise HistoryError(
        f"{os.fspath(path)}: neither a memguard history nor a report (expected"
        f' "schema": "{HISTORY_SCHEMA}" or "{SCHEMA}")'
    )


def load_histories(paths: Iterable[str | os.PathLike[str]]) -> HistoryFile:
    """Several history files or reports merged, in order (:meth:`HistoryFile.merge`)."""
    merged = HistoryFile()
    sources = []
    for path in paths:
        history = load_history_file(path)
        merged.merge(history)
        merged.dropped += history.dropped
        sources.append(history.source)
    merged.source = ", ".join(sources)
    return merged


#: Seconds a writer of a history file waits for another's turn at it.
LOCK_TIMEOUT: Final = 30.0


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock of the history file at ``path``, taken by every process that rewrites it
    (a run that saves it, ``memguard history prune`` and ``merge``): in the temporary
    folder, named after the file's real path, never beside a file a project commits."""
    import hashlib
    import tempfile

    name = hashlib.sha256(os.fsencode(os.path.realpath(path))).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"memguard-history-{name}.lock"
