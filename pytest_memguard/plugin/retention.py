"""What pytest keeps of a test's run, which a leak check must not charge to the test.

pytest keeps, for the report of each phase, the log records its capture handlers caught
(the ``caplog`` handler and the report's handler, both on the root logger while a phase
runs), the text of the captured log, stdout and stderr (report sections), and the
reports themselves.  A test that logs 20,000 warnings keeps nothing of its own, but
pytest keeps 20,000 records and their text until the test's last report is made.

- The first run: once the function's fixtures are torn down nobody reads the records
  any more (``caplog`` is a function fixture), so :func:`forget_log_records` lets them
  go before the leak check counts; the text of the call's report sections stays (the
  teardown report repeats it) and is counted apart (:func:`section_bytes`).
- A suspect's rerun (inside the teardown phase): :func:`captured_apart` rolls back
  what the capture kept of it (log records, log text, stdout and stderr), so the rerun
  is measured with pytest's capture out of the way and its output never reaches a
  report.

The handlers and the capture manager's reading are pytest's own, found through
:mod:`.compat`.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from ..core.leaks import SMALL_BLOCK_MAX
from .compat import global_capture_reader, log_capture_handlers

__all__ = [
    "captured_apart",
    "forget_log_records",
    "log_record_lists",
    "section_bytes",
]


def log_record_lists() -> list[list[Any]]:
    """The lists the running phase's capture handlers keep their records in (a handler
    gets a new list at each phase: these are the phase's)."""
    return [handler.records for handler in log_capture_handlers()]  # type: ignore[attr-defined]


def forget_log_records(lists: list[list[Any]]) -> None:
    """Let go of the records in ``lists`` (their text stays in the handlers' streams)."""
    for records in lists:
        records.clear()


def section_bytes(report: pytest.TestReport) -> int:
    """The bytes of the report sections its phase added (captured log, stdout, stderr):
    kept by pytest for the later reports, not by the test."""
    suffix = f" {report.when}"
    total = 0
    for title, content in report.sections:
        if title.endswith(suffix) and isinstance(content, str):
            total += sys.getsizeof(content) + SMALL_BLOCK_MAX
    return total


@contextlib.contextmanager
def captured_apart(config: pytest.Config) -> Iterator[None]:
    """Within: what pytest's capture keeps of the code run is rolled back at the end
    (log records and text, stdout and stderr): measured apart from pytest, reported
    nowhere."""
    marks = []
    for handler in log_capture_handlers():
        records: list[Any] = getattr(handler, "records", [])
        stream = getattr(handler, "stream", None)
        position = stream.tell() if isinstance(stream, io.StringIO) else None
        marks.append((records, len(records), stream, position))
    read = global_capture_reader(config)
    before = read() if read is not None else None  # the phase's output so far
    try:
        yield
    finally:
        for records, count, stream, position in marks:
            del records[count:]
            if isinstance(stream, io.StringIO) and position is not None:
                stream.seek(position)
                stream.truncate()
        if read is not None and before is not None:
            read()  # the rerun's output, dropped
            out, err = before
            # Back where the phase's capture keeps it, for the phase's report.
            if out:
                sys.stdout.write(out)
            if err:
                sys.stderr.write(err)
