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
from pathlib import Path
from typing import Any

from .core.sizes import format_size
from .results import TestMemory

__all__ = ["ProcessRecords", "RecordWriter", "read_records"]


class RecordWriter:
    """Appends JSON lines to ``path`` and flushes each one; safe to call from two threads.

    No fsync: a flushed line survives the death of the process, which is what matters;
    surviving the death of the machine is not this file's job.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._file = path.open("ab", buffering=0)  # noqa: SIM115 - closed by close()

    def write(self, event: str, **fields: Any) -> None:
        """Append one ``{"event": event, **fields}`` line."""
        self._append(json.dumps({"event": event, **fields}, separators=(",", ":")).encode() + b"\n")

    def _append(self, data: bytes) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(data)

    def _start_line(self, nodeid: str, rss: int, worker: str) -> bytes:
        return (
            f'{{"event":"start","nodeid":{json.dumps(nodeid)},"rss":{rss},'
            f'"worker":{json.dumps(worker)},"pid":{self._pid},"time":{time.time():.6f}}}\n'
        ).encode()

    def start(self, nodeid: str, rss: int, worker: str) -> None:
        """A test started with ``rss`` bytes resident."""
        self._append(self._start_line(nodeid, rss, worker))

    def grew(self, nodeid: str, rss: int) -> None:
        """The running test's RSS reached ``rss`` bytes."""
        self._append(f'{{"event":"rss","nodeid":{json.dumps(nodeid)},"rss":{rss}}}\n'.encode())

    def end(self, entry: dict[str, Any], then: tuple[str, int, str] | None = None) -> None:
        """A test ended with ``entry`` (its JSON report entry).

        :param then: ``(nodeid, rss, worker)`` of the next test, whose start line goes out
            in the same write (one system call per test instead of two)
        """
        data = b'{"event":"end","test":' + json.dumps(entry, separators=(",", ":")).encode() + b"}\n"
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
    results: dict[str, TestMemory] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    running: str | None = None
    last_rss: int | None = None
    peak_rss: int = 0
    aborted: dict[str, Any] | None = None

    def unfinished(self, reason: str) -> TestMemory | None:
        """The test that was running when the process died, as a ``killed`` result."""
        if self.running is None:
            return None
        abort = self.aborted if self.aborted and self.aborted.get("nodeid") == self.running else None
        message = abort["message"] if abort else f"{reason}; last known RSS {format_size(self.last_rss)}"
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
                result = TestMemory.from_json(data["test"])
                current.results[result.nodeid] = result
                current.running = None
                current.peak_rss = max(current.peak_rss, result.rss_peak or 0)
            elif event == "alert":
                current.alerts.append({k: v for k, v in data.items() if k != "event"})
            elif event == "abort":
                current.aborted = data
        processes.append(current)
    return processes
