"""Crash-proof records: one JSON line per event, in the file as soon as it happens.

Each process writes its own file in the session's work folder: first a ``process`` line
(worker and pid), then for each test a ``start`` line, as it grows ``rss`` lines, and
when it ends an ``end`` line with its status (of the test started last).  When the
process dies (the OOM killer, SIGKILL, a hard-limit exit) the last lines name the test
it was running and its last known RSS, and :func:`read_records` turns them into results
that name the culprit.

The lines are copied into a shared memory map of the file, not written with a system
call each: pages of a shared file mapping belong to the kernel's page cache, so a line
is in the file the moment it is copied, whatever happens to the process after.  That
costs a copy per test instead of a system call: every test of a run writes its lines,
and inside a run of small tests, where the CPU's caches are cold, the system call is
the dearer of the two (benchmarks/).
A line is copied by ``mmap.write``, one C call under the interpreter lock, so the two
threads that write (the test's and the watchdog's) need no lock of their own for it.
The file is grown in reserved blocks (so a full disk is an error at growth, never a
``SIGBUS`` on a page), cut to its content at :meth:`RecordWriter.close`, and padded with
NUL bytes after the last line until then; where mapping fails, lines are written.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
import time
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..core.sizes import format_size

if TYPE_CHECKING:
    from .results import TestMemory

__all__ = ["ProcessRecords", "RecordWriter", "read_records"]


#: ``text`` as a JSON string: the C encoder itself, faster than ``json.dumps`` (and than
#: a function around it) for one string.
_quote: Final = encode_basestring_ascii


class RecordWriter:
    """Appends JSON lines to ``path`` (see the module docstring); safe from two threads.

    No fsync: a line in the page cache survives the death of the process, which is what
    matters; surviving the death of the machine is not this file's job.
    """

    #: Bytes reserved at a time for the mapped file.
    BLOCK = 256 * 1024

    def __init__(self, path: Path, worker: str = "main") -> None:
        self.path = path
        #: Held to grow the mapped file, to switch to written lines, and to close.
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._map: mmap.mmap | None = None
        end = os.fstat(self._fd).st_size
        try:
            size = self._reserved(end)
            os.posix_fallocate(self._fd, 0, size)
            self._map = mmap.mmap(self._fd, size)
            self._map.seek(end)  # the position in the map is where the next line goes
        except (OSError, ValueError, AttributeError):  # no posix_fallocate, no mapping
            self._unmap(end)
        self.write("process", worker=worker, pid=self._pid, time=time.time())

    def _reserved(self, end: int) -> int:
        """The file size to reserve for content up to ``end``: whole blocks, one spare."""
        return (end // self.BLOCK + 2) * self.BLOCK

    def _append(self, data: bytes) -> None:
        mapped = self._map
        if mapped is not None:
            try:
                # One C call that holds the interpreter lock: a line from the watchdog
                # thread cannot come between its copy and the move of the position.
                mapped.write(data)
                return
            except ValueError:  # the reserved blocks are full (or the writer is closed)
                pass
        with self._lock:
            if self._fd is None:
                return  # closed
            mapped = self._map
            if mapped is not None:
                try:
                    end = mapped.tell() + len(data)
                    if end > len(mapped):
                        os.posix_fallocate(self._fd, 0, self._reserved(end))
                        mapped.resize(self._reserved(end))  # the same object, position kept
                    mapped.write(data)
                    return
                except (OSError, ValueError):  # e.g. the disk is full: write lines
                    self._unmap(mapped.tell())
            os.write(self._fd, data)

    def _unmap(self, end: int) -> None:
        """Cut the file to its content (``end`` bytes) and write lines from now on."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, end)

    def write(self, event: str, **fields: Any) -> None:
        """Append one ``{"event": event, **fields}`` line."""
        self._append(json.dumps({"event": event, **fields}, separators=(",", ":")).encode() + b"\n")

    def start(self, nodeid: str, rss: int) -> None:
        """A test started with ``rss`` bytes resident."""
        self._append(f'{{"event":"start","nodeid":{_quote(nodeid)},"rss":{rss}}}\n'.encode())

    def grew(self, nodeid: str, rss: int) -> None:
        """The running test's RSS reached ``rss`` bytes."""
        self._append(f'{{"event":"rss","nodeid":{_quote(nodeid)},"rss":{rss}}}\n'.encode())

    def end(
        self,
        status: str,
        rss: int | None,
        *,
        outcome: str = "passed",
        start: int | None = None,
        peak: int | None = None,
        delta: int | None = None,
        children: int | None = None,
        duration: float = 0.0,
        message: str | None = None,
    ) -> None:
        """The test started last ended with ``status`` and ``rss`` bytes resident, and
        these figures (what ``memguard recover`` puts in a report when the run is killed
        before it writes its own).

        Formatted by hand, not by ``json.dumps``: one line per test of large suites.
        The message is written only for a test that did not end ``ok``.
        """
        line = (
            f'{{"event":"end","status":"{status}","rss":{_number(rss)},"outcome":"{outcome}",'
            f'"start":{_number(start)},"peak":{_number(peak)},"delta":{_number(delta)},'
            f'"children":{_number(children)},"duration":{duration:.6f}'
        )
        if message is not None:
            line += f',"message":{_quote(message)}'
        self._append(f"{line}}}\n".encode())

    def close(self) -> None:
        """Cut the file to its content and close it; later lines are dropped."""
        with self._lock:
            if self._map is not None:
                self._unmap(self._map.tell())
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class ProcessRecords:
    """What one process's record file says: finished results, the test left running.

    A plain class, not a dataclass: this module is imported by every guarded run, and
    the dataclass machinery would generate and compile its methods at each import.
    """

    def __init__(self, worker: str, pid: int | None) -> None:
        self.worker = worker
        self.pid = pid
        #: node id -> status of the tests that finished
        self.finished: dict[str, str] = {}
        #: The end lines of the tests that finished, with their node ids, in order.
        self.ends: list[dict[str, Any]] = []
        #: The run's own line (written by the process that owns the report), if here.
        self.run: dict[str, Any] | None = None
        #: The node ids collected (the process that owns the report writes them).
        self.collected: list[str] = []
        #: When this process's last line was written (the file's modification time).
        self.last_time: float | None = None
        self.alerts: list[dict[str, Any]] = []
        self.running: str | None = None
        self.last_rss: int | None = None
        self.peak_rss = 0
        self.aborted: dict[str, Any] | None = None

    def unfinished(self, reason: str, seen: int | None = None) -> TestMemory | None:
        """The test that was running when the process died, as a ``killed`` result.

        :param seen: the highest RSS another process (the xdist controller) sampled of
            this one during the test: its ``rss_peak`` when higher than the records'
        """
        if self.running is None:
            return None
        from .results import TestMemory

        abort = (
            self.aborted if self.aborted and self.aborted.get("nodeid") == self.running else None
        )
        recorded = abort.get("rss") if abort else self.last_rss
        peak, words = last_rss(recorded, seen)
        message = str(abort["message"]) if abort else f"{reason}; {words}"
        return TestMemory(
            nodeid=self.running,
            outcome="failed",
            status="aborted" if abort else "killed",
            worker=self.worker,
            duration_s=0.0,
            rss_start=None,
            rss_peak=peak,
            message=message,
        )


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def last_rss(recorded: int | None, seen: int | None) -> tuple[int | None, str]:
    """The highest RSS known of a dead process's last test, and words for it:
    ``recorded`` in its own records, ``seen`` from outside (the xdist controller)."""
    if seen is not None and seen > (recorded or 0):
        return seen, (
            f"RSS reached {format_size(seen)} (seen from outside;"
            f" last recorded {format_size(recorded)})"
        )
    return recorded, f"last known RSS {format_size(recorded)}"


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for raw in handle:
            # NUL bytes: the reserved end of a file whose writer did not close it.
            raw = raw.lstrip(b"\0")
            if not raw:
                continue
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
        with contextlib.suppress(OSError):
            current.last_time = path.stat().st_mtime
        for data in _lines(path):
            event = data.get("event")
            rss = data.get("rss")
            if isinstance(rss, int):
                current.last_rss = rss
                current.peak_rss = max(current.peak_rss, rss)
            if event == "start":
                current.running = data.get("nodeid")
            elif event == "end":
                if current.running is not None:
                    current.finished[current.running] = str(data.get("status"))
                    current.ends.append({**data, "nodeid": current.running})
                current.running = None
            elif event == "run":
                current.run = data
            elif event == "collected":
                nodeids = data.get("nodeids")
                if isinstance(nodeids, list):
                    current.collected = [str(nodeid) for nodeid in nodeids]
            elif event == "process":
                current.worker = data.get("worker", current.worker)
                current.pid = data.get("pid", current.pid)
            elif event == "alert":
                current.alerts.append({k: v for k, v in data.items() if k != "event"})
            elif event == "abort":
                current.aborted = data
        processes.append(current)
    return processes
