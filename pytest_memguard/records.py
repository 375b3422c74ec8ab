"""Crash-proof records: one JSON line per event, appended and flushed as it happens.

Each process writes its own file in the session's work folder.  When a test starts a
``start`` line is written, as it grows ``rss`` lines, when it ends an ``end`` line with
its full result.  When the process dies (the OOM killer, SIGKILL, a hard-limit exit) the
last lines name the test it was running and its last known RSS, and
:func:`read_records` turns them into results that name the culprit.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from .core.sizes import format_size
from .results import TestMemory

__all__ = ["ProcessRecords", "RecordWriter", "read_records"]


def _quote(text: str) -> str:
    """``text`` as a JSON string (the C encoder, faster than ``json.dumps`` for one string)."""
    return encode_basestring_ascii(text)


class RecordWriter:
    """Appends JSON lines to ``path`` and flushes each one; safe to call from two threads.

    No fsync: a flushed line survives the death of the process, which is what matters;
    surviving the death of the machine is not this file's job.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._file = path.open("ab", buffering=0)

    def write(self, event: str, **fields: Any) -> None:
        """Append one ``{"event": event, **fields}`` line."""
        self._append(json.dumps({"event": event, **fields}, separators=(",", ":")).encode() + b"\n")

    def _append(self, data: bytes) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(data)

    def _start_line(self, nodeid: str, rss: int, worker: str) -> bytes:
        return (
            f'{{"event":"start","nodeid":{_quote(nodeid)},"rss":{rss},'
            f'"worker":{_quote(worker)},"pid":{self._pid},"time":{time.time():.6f}}}\n'
        ).encode()

    def start(self, nodeid: str, rss: int, worker: str) -> None:
        """A test started with ``rss`` bytes resident."""
        self._append(self._start_line(nodeid, rss, worker))

    def grew(self, nodeid: str, rss: int) -> None:
        """The running test's RSS reached ``rss`` bytes."""
        self._append(f'{{"event":"rss","nodeid":{_quote(nodeid)},"rss":{rss}}}\n'.encode())

    def end(
        self, nodeid: str, status: str, rss: int | None, then: tuple[str, int, str] | None = None
    ) -> None:
        """A test ended with ``status`` and ``rss`` bytes resident after its teardown.

        The full result is not written here: it goes into the report (and, under xdist,
        travels with the test's report), so the per-test line stays short and cheap.

        :param then: ``(nodeid, rss, worker)`` of the next test, whose start line goes out
            in the same write (one system call per test instead of two)
        """
        data = (
            f'{{"event":"end","nodeid":{_quote(nodeid)},"status":{_quote(status)},'
            f'"rss":{"null" if rss is None else rss}}}\n'
        ).encode()
        if then is not None:
            data += self._start_line(*then)
        self._append(data)

    def close(self) -> None:
        """Close the file; later writes are dropped."""
        with self._lock:
            self._file.close()


@dataclass
class ProcessRecords:
    """What one process's record file says: finished results, the test left running."""

    worker: str
    pid: int | None
    #: node id -> status of the tests that finished
    finished: dict[str, str] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    running: str | None = None
    last_rss: int | None = None
    peak_rss: int = 0
    aborted: dict[str, Any] | None = None

    def unfinished(self, reason: str) -> TestMemory | None:
        """The test that was running when the process died, as a ``killed`` result."""
        if self.running is None:
            return None
        abort = (
            self.aborted if self.aborted and self.aborted.get("nodeid") == self.running else None
        )
        message = (
            abort["message"] if abort else f"{reason}; last known RSS {format_size(self.last_rss)}"
        )
        return TestMemory(
            nodeid=self.running,
            outcome="failed",
            status="aborted" if abort else "killed",
            worker=self.worker,
            duration_s=0.0,
            rss_start=None,
            rss_peak=abort.get("rss") if abort else self.last_rss,
            message=message,
        )


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for raw in handle:
            try:
                data = json.loads(raw)
            except ValueError:  # a line cut short by the death of the process
                continue
            if isinstance(data, dict):
                yield data


def read_records(paths: Iterable[Path]) -> list[ProcessRecords]:
    """Parse record files (one per process) written by :class:`RecordWriter`."""
    processes = []
    for path in sorted(paths):
        current = ProcessRecords(worker=path.stem.rsplit("-", 1)[0], pid=None)
        for data in _lines(path):
            event = data.get("event")
            rss = data.get("rss")
            if isinstance(rss, int):
                current.last_rss = rss
                current.peak_rss = max(current.peak_rss, rss)
            if event == "start":
                current.running = data.get("nodeid")
                current.worker = data.get("worker", current.worker)
                current.pid = data.get("pid", current.pid)
            elif event == "end":
                current.finished[str(data.get("nodeid"))] = str(data.get("status"))
                current.running = None
            elif event == "alert":
                current.alerts.append({k: v for k, v in data.items() if k != "event"})
            elif event == "abort":
                current.aborted = data
        processes.append(current)
    return processes
