"""Watch other processes (subprocesses, xdist workers): thresholds, limits, logs.

Each tracked process has warning/critical/max thresholds on its RSS (children included
by default).  :meth:`ProcessMonitor.poll` reads them all once: it records peaks, writes
an alert when a process reaches a new level, terminates a process at its hard limit
(SIGTERM, then SIGKILL after ``grace`` seconds), and when the sum passes
``aggregate_limit`` terminates the largest.  With a ``log_dir``, alerts are JSON lines
in ``memory-alerts.log``, final statistics in ``subprocess-stats.jsonl`` and system-wide
samples in ``memory-monitor.log`` (bounded in size); :mod:`.monitorlog` has the format.

A process tracked with ``leftovers=True`` is guarded as a tree that outlives it: the
descendants it leaves behind (orphaned, or still running after it ended) stay counted
and signalled at its hard limit until the last of them ended; :meth:`~ProcessMonitor.adopt`
adds orphans reparented to the caller (a child subreaper, as ``memguard run`` is).

A process that vanishes mid-read is normal; one we may not read has an unknown RSS.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, final

import psutil

from ..core.levels import Level, MemoryThresholds
from ..core.sizes import format_size, parse_limit
from ..errors import MemguardError
from ..probe.process import DescendantsMemory, end_processes, tree_of
from ..probe.system import SystemMemory
from .background import Background, Threaded
from .monitorlog import (
    ALERTS_FILE,
    MONITOR_FILE,
    STATS_FILE,
    aggregate_message,
    alert_message,
    append_record,
    append_sample,
    megabytes,
    stats_record,
    system_record,
)

__all__ = [
    "ALERTS_FILE",
    "MONITOR_FILE",
    "STATS_FILE",
    "MonitorError",
    "MonitorEvent",
    "ProcessGoneError",
    "ProcessMonitor",
    "UnknownProcessError",
]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: Final = ("1 GB", "2 GB", "4 GB")
_MB: Final = 1_000_000
_WORDS: Final = {Level.WARNING: "warning", Level.CRITICAL: "critical", Level.ABORT: "hard limit"}


class MonitorError(MemguardError, ValueError):
    """Bad monitor settings, or a name already tracked."""

    __str__ = BaseException.__str__


class UnknownProcessError(MemguardError, KeyError):
    """No tracked process has that id."""

    __str__ = BaseException.__str__


class ProcessGoneError(MemguardError, ProcessLookupError):
    """The process to track does not exist (or already exited)."""


@dataclass(frozen=True)
class MonitorEvent:
    """Something :meth:`ProcessMonitor.poll` saw or did.

    ``kind`` is ``"warning"``, ``"critical"`` or ``"abort"`` (a level reached),
    ``"aggregate"`` (the sum passed the aggregate limit), ``"terminate"`` (SIGTERM sent),
    ``"kill"`` (SIGKILL sent after the grace period) or ``"exit"`` (the process ended).
    ``rss`` is bytes or None when unknown; ``time`` is from the monitor's clock.
    """

    time: float
    id: str
    pid: int
    kind: str
    level: Level
    rss: int | None
    message: str


class _Tracked:
    """Mutable state of one tracked process; guarded by the monitor's lock."""

    __slots__ = (
        "aborted",
        "children",
        "end",
        "ended_at",
        "id",
        "keep",
        "killed",
        "last",
        "level",
        "members",
        "peak",
        "pid",
        "popen",
        "process",
        "reason",
        "returncode",
        "start",
        "started_at",
        "term_deadline",
        "thresholds",
        "warnings",
    )

    def __init__(
        self,
        ident: str,
        process: psutil.Process,
        popen: subprocess.Popen[Any] | None,
        thresholds: MemoryThresholds,
        now: float,
        keep: bool = False,
    ) -> None:
        self.id = ident
        self.pid = process.pid
        self.process = process
        self.popen = popen
        self.thresholds = thresholds
        self.started_at = now
        self.start: int | None = None
        self.last: int | None = None
        self.peak: int | None = None
        self.end: int | None = None
        self.level = Level.OK
        self.warnings: list[str] = []
        self.aborted = False
        self.killed = False
        self.term_deadline: float | None = None
        self.ended_at: float | None = None
        self.returncode: int | None = None
        self.reason: str | None = None
        #: ``leftovers``: count descendants after they were orphaned or the process ended.
        self.keep = keep
        #: The running descendants seen (and adopted), by pid; only when ``keep``.
        self.members: dict[int, psutil.Process] = {}
        #: Reads what its descendants hold of their own (a fork's shared pages are its).
        self.children = DescendantsMemory(root=process.pid)

    def observe(self, rss: int) -> None:
        if self.start is None:
            self.start = rss
        self.last = rss
        self.peak = rss if self.peak is None else max(self.peak, rss)

    def stats(self, now: float) -> dict[str, Any]:
        until = self.ended_at if self.ended_at is not None else now
        return {
            "id": self.id,
            "pid": self.pid,
            "start": self.start,
            "peak": self.peak,
            "end": self.end if self.ended_at is not None else self.last,
            "duration": until - self.started_at,
            "warnings": list(self.warnings),
            "aborted": self.aborted,
            "killed": self.killed,
            "running": self.ended_at is None,
            "returncode": self.returncode,
            "reason": self.reason,
            "thresholds": {
                "warning": self.thresholds.warning,
                "critical": self.thresholds.critical,
                "max": self.thresholds.max,
            },
        }


class _Gone:
    """Marker: the process ended (exited, zombie, or its pid was reused)."""


_GONE: Final = _Gone()


def _running(process: psutil.Process) -> bool:
    """Whether the process runs (not ended, not a zombie, its pid not reused)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def _default_thresholds() -> MemoryThresholds:
    return MemoryThresholds.from_env(default=MemoryThresholds(*DEFAULT_THRESHOLDS))


def _read_system() -> SystemMemory:
    from ..probe.system import read_system_memory

    return read_system_memory()


@final
class ProcessMonitor(Threaded):
    """Tracks other processes' memory against thresholds; see the module docstring.

    :param thresholds: per-process default; None reads ``MEMGUARD_WARN``/``_CRITICAL``/
        ``_MAX`` over the defaults 1 GB, 2 GB and 4 GB
    :param aggregate_limit: bytes (or size string) the tracked processes may use together;
        like ``min_free``, at least one memory page (:func:`~.core.sizes.parse_limit`)
    :param interval: seconds between polls of the background thread
    :param include_children: count each process's descendants in its RSS
    :param min_free: bytes that must stay available for :meth:`can_create_subprocess`
    :param abort: terminate processes at their hard limit (False: alert only)
    :param log_dir: folder of ``memory-alerts.log``, ``subprocess-stats.jsonl`` and
        ``memory-monitor.log``
    :param max_log_bytes: size bound of ``memory-monitor.log`` (rotated once to ``.1``)
    :param grace: seconds between SIGTERM and SIGKILL
    :param clock: monotonic seconds; ``wall``: epoch seconds for log timestamps
    :param memory: reads the machine's memory (default: the container-aware probe)

    Thread-safe.
    """

    def __init__(
        self,
        thresholds: MemoryThresholds | None = None,
        aggregate_limit: int | str | None = None,
        interval: float = 2.0,
        include_children: bool = True,
        min_free: int | str | None = "1 GB",
        abort: bool = True,
        log_dir: str | Path | None = None,
        *,
        grace: float = 5.0,
        max_log_bytes: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        memory: Callable[[], SystemMemory] | None = None,
    ) -> None:
        if interval <= 0:
            raise MonitorError(f"interval must be > 0 seconds, got {interval!r}")
        if grace < 0:
            raise MonitorError(f"grace must be >= 0 seconds, got {grace!r}")
        if (
            isinstance(max_log_bytes, bool)
            or not isinstance(max_log_bytes, int)
            or (max_log_bytes < 1)
        ):
            raise MonitorError(f"max_log_bytes must be an int >= 1, got {max_log_bytes!r}")
        self.max_log_bytes = max_log_bytes
        self.thresholds = thresholds if thresholds is not None else _default_thresholds()
        self.aggregate_limit = None if aggregate_limit is None else parse_limit(aggregate_limit)
        self.min_free = None if min_free is None else parse_limit(min_free)
        # Shown as the user wrote it: "need at least 1 GB", not "953.7 MiB".
        self._min_free_text = (
            min_free.strip() if isinstance(min_free, str) else format_size(self.min_free)
        )
        self.interval = float(interval)
        self.include_children = include_children
        self.abort = abort
        self.grace = float(grace)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._clock = clock
        self._wall = wall
        self._memory = memory or _read_system
        self._lock = threading.RLock()
        self._tracked: dict[str, _Tracked] = {}
        self._alerts: deque[dict[str, Any]] = deque(maxlen=1000)
        self._thread = Background(
            "memguard-process-monitor",
            self.poll,
            lambda: self.interval,
            failure="memguard: polling tracked processes failed",
        )

    def track(
        self,
        pid_or_popen: int | subprocess.Popen[Any],
        name: str | None = None,
        thresholds: MemoryThresholds | None = None,
        *,
        leftovers: bool = False,
    ) -> str:
        """Start tracking a process; returns its id (``name``, or ``"pid-<pid>"``).

        With ``leftovers`` (and ``include_children``), the descendants it leaves behind
        stay counted, and signalled at its hard limit, after they were orphaned or it
        ended: it ends when the last of them ended (see :meth:`leftovers`, :meth:`adopt`).

        :raises ProcessGoneError: when the process does not exist
        :raises MonitorError: when the name or the process is already tracked
        """
        popen = pid_or_popen if isinstance(pid_or_popen, subprocess.Popen) else None
        pid = popen.pid if popen is not None else int(pid_or_popen)  # type: ignore[arg-type]
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            raise ProcessGoneError(f"process {pid} does not exist (or already exited)") from None
        ident = name or f"pid-{pid}"
        with self._lock:
            if ident in self._tracked:
                raise MonitorError(f"a process is already tracked as {ident!r}")
            for other in self._tracked.values():
                if other.pid == pid and other.ended_at is None:
                    raise MonitorError(f"process {pid} is already tracked as {other.id!r}")
            entry = _Tracked(
                ident,
                process,
                popen,
                thresholds or self.thresholds,
                self._clock(),
                keep=leftovers and self.include_children,
            )
            self._tracked[ident] = entry
            rss = self._read(entry)
            if isinstance(rss, int):
                entry.observe(rss)
        return ident

    def adopt(self, ident: str, pids: Iterable[int]) -> None:
        """Count these processes (and their descendants) as the tracked process's: its
        tree's orphans, reparented to this process, a child subreaper.  Only for a
        process tracked with ``leftovers``; one that already ended is skipped.

        :raises MonitorError: when the process was not tracked with ``leftovers``
        """
        with self._lock:
            entry = self._entry(ident)
            if not entry.keep:
                raise MonitorError(f"{ident!r} was not tracked with leftovers=True")
            for pid in pids:
                try:
                    entry.members.setdefault(pid, psutil.Process(pid))
                except (psutil.Error, OSError):
                    continue

    def leftovers(self, ident: str) -> list[psutil.Process]:
        """The descendants of a process tracked with ``leftovers`` that are still
        running, as last seen (orphaned ones included; read again at each poll)."""
        with self._lock:
            entry = self._entry(ident)
            return [process for process in entry.members.values() if _running(process)]

    def tracked(self) -> list[str]:
        """Ids of the tracked processes (ended ones stay until :meth:`untrack`)."""
        with self._lock:
            return list(self._tracked)

    def __contains__(self, ident: object) -> bool:
        return ident in self._tracked

    def __len__(self) -> int:
        return len(self._tracked)

    def _entry(self, ident: str) -> _Tracked:
        try:
            return self._tracked[ident]
        except KeyError:
            raise UnknownProcessError(f"no tracked process has the id {ident!r}") from None

    def _read(self, entry: _Tracked) -> int | _Gone | None:
        """RSS in bytes (children included if asked), None when unknown, or ``_GONE``."""
        if entry.keep:
            return self._read_tree(entry)
        if entry.popen is not None and entry.popen.poll() is not None:
            entry.returncode = entry.popen.returncode
            return _GONE
        process = entry.process
        try:
            with process.oneshot():
                if process.status() == psutil.STATUS_ZOMBIE:
                    return _GONE
                rss = int(process.memory_info().rss)
            if rss == 0:  # an exiting process, or one with no memory of its own to show
                return None
        except psutil.NoSuchProcess:  # ZombieProcess included
            return _GONE
        except (psutil.AccessDenied, OSError):
            return None
        if self.include_children:
            # A forked child counts its own pages, not those it shares with the process.
            rss += entry.children()
        return rss

    def _read_tree(self, entry: _Tracked) -> int | _Gone | None:
        """:meth:`_read` of a process tracked with ``leftovers``: it, while it runs, and
        every running process of its tree; ``_GONE`` once none runs."""
        processes = self._tree(entry)
        if not processes:
            return _GONE
        total, known = 0, False
        for process in processes:
            try:
                with process.oneshot():
                    total += int(process.memory_info().rss)
                known = True
            except (psutil.Error, OSError):
                continue  # ended meanwhile, or hides its memory
        return total if known and total > 0 else None

    def _tree(self, entry: _Tracked) -> list[psutil.Process]:
        """The running processes of a ``leftovers`` entry, the tracked one first (if it
        runs); remembers its descendants as members, so that they stay counted once
        orphaned, and forgets the members that ended."""
        roots: list[psutil.Process] = []
        if entry.popen is not None and entry.popen.poll() is not None:
            entry.returncode = entry.popen.returncode
        elif _running(entry.process):
            roots.append(entry.process)
        roots += [process for process in entry.members.values() if _running(process)]
        found: dict[int, psutil.Process] = {}
        for root in roots:
            found.setdefault(root.pid, root)
            try:
                descendants = root.children(recursive=True)
            except (psutil.Error, OSError):
                continue
            for process in descendants:
                if _running(process):
                    found.setdefault(process.pid, process)
        entry.members = {
            pid: process for pid, process in found.items() if process is not entry.process
        }
        return list(found.values())

    def check(self, ident: str) -> tuple[float, Level]:
        """The process's RSS in MB (10**6 bytes) and its level, read now.

        An ended or unreadable process reports its last known RSS (0.0 if none).
        """
        with self._lock:
            entry = self._entry(ident)
            rss = self._read(entry) if entry.ended_at is None else None
            if isinstance(rss, int):
                entry.observe(rss)
            known = entry.last or 0
            return known / _MB, entry.thresholds.level(known)

    def should_abort(self, ident: str) -> bool:
        """True when the process is at or past its hard limit (or was aborted)."""
        _, level = self.check(ident)
        with self._lock:
            return level >= Level.ABORT or self._entry(ident).aborted

    def stats(self, ident: str) -> dict[str, Any]:
        """``start``, ``peak``, ``end`` (bytes), ``duration`` (seconds), ``warnings``,
        ``aborted`` and more of one process; ``end`` is the last reading while it runs."""
        with self._lock:
            return self._entry(ident).stats(self._clock())

    def untrack(self, ident: str) -> dict[str, Any]:
        """Stop tracking; returns :meth:`stats` and appends them to ``subprocess-stats.jsonl``."""
        with self._lock:
            entry = self._entry(ident)
            if entry.ended_at is None:
                rss = self._read(entry)
                if isinstance(rss, _Gone):  # it ended since the last poll
                    self._ended(entry, self._clock())
                elif isinstance(rss, int):
                    entry.observe(rss)
            stats = entry.stats(self._clock())
            del self._tracked[ident]
        append_record(self.log_dir, STATS_FILE, stats_record(ident, stats, self._timestamp()))
        return stats

    def poll(self) -> list[MonitorEvent]:
        """Read every tracked process once and act on what is seen; returns the events."""
        events: list[MonitorEvent] = []
        with self._lock:
            now = self._clock()
            live: list[tuple[_Tracked, int]] = []
            for entry in list(self._tracked.values()):
                if entry.ended_at is not None:
                    continue
                rss = self._read(entry)
                if isinstance(rss, _Gone):
                    events.append(self._ended(entry, now))
                    continue
                self._escalate(entry, now, events)
                if rss is None:
                    continue
                entry.observe(rss)
                self._check_level(entry, rss, now, events)
                if entry.term_deadline is None:
                    live.append((entry, rss))
            self._check_aggregate(live, now, events)
            if self.log_dir is not None:
                self._sample(live)
        return events

    def _sample(self, live: list[tuple[_Tracked, int]]) -> None:
        """Append one system-wide sample to ``memory-monitor.log``; under the lock."""
        processes = {entry.id: megabytes(rss) for entry, rss in live}
        record = {
            "timestamp": self._timestamp(),
            "system_memory": system_record(self._reading()),
            "processes": processes,
            "total_mb": megabytes(sum(rss for _, rss in live)),
        }
        append_sample(self.log_dir, record, self.max_log_bytes)

    def _ended(self, entry: _Tracked, now: float) -> MonitorEvent:
        entry.ended_at = now
        entry.end = entry.last
        message = f"{entry.id} (pid {entry.pid}) ended"
        if entry.returncode is not None:
            message += f" with exit status {entry.returncode}"
        return MonitorEvent(now, entry.id, entry.pid, "exit", entry.level, entry.last, message)

    def _check_level(
        self, entry: _Tracked, rss: int, now: float, events: list[MonitorEvent]
    ) -> None:
        level = entry.thresholds.level(rss)
        if level <= entry.level:
            return
        entry.level = level
        limit = entry.thresholds.limit_of(level)
        message = (
            f"{entry.id} (pid {entry.pid}): RSS {format_size(rss)} reached the "
            f"{_WORDS[level]} {format_size(limit)}"
        )
        if level >= Level.ABORT and self.abort:
            message += "; terminating it"
        assert limit is not None  # a level above OK has its limit
        alert = alert_message(level, limit, rss)
        entry.warnings.append(alert)
        self._alert(entry, level, alert)
        events.append(
            MonitorEvent(now, entry.id, entry.pid, level.name.lower(), level, rss, message)
        )
        if level >= Level.ABORT and self.abort and not entry.aborted:
            self._terminate(entry, now, f"hard limit {format_size(limit)}", events)

    def _check_aggregate(
        self, live: list[tuple[_Tracked, int]], now: float, events: list[MonitorEvent]
    ) -> None:
        limit = self.aggregate_limit
        total = sum(rss for _, rss in live)
        if limit is None or total <= limit:
            return
        for entry, rss in sorted(live, key=lambda pair: pair[1], reverse=True):
            if total <= limit:
                break
            message = (
                f"tracked processes use {format_size(total)} together, past the aggregate "
                f"limit {format_size(limit)}; the largest is {entry.id} (pid {entry.pid}) "
                f"at {format_size(rss)}"
            )
            if self.abort:
                message += ", terminating it"
            alert = aggregate_message(limit, total, entry.id, rss)
            entry.warnings.append(alert)
            self._alert(entry, Level.ABORT, alert)
            events.append(
                MonitorEvent(now, entry.id, entry.pid, "aggregate", Level.ABORT, rss, message)
            )
            if not self.abort:
                return
            self._terminate(entry, now, f"aggregate limit {format_size(limit)}", events)
            total -= rss

    def _targets(self, entry: _Tracked) -> list[psutil.Process]:
        """The process and (if counted) its descendants, children first."""
        if entry.keep:
            return list(reversed(self._tree(entry))) or [entry.process]
        return tree_of(entry.process, children=self.include_children)

    def _signal(self, entry: _Tracked, kill: bool) -> None:
        for process, error in end_processes(self._targets(entry), kill=kill):
            logger.warning("memguard: cannot signal pid %d: %s", process.pid, error)

    def _terminate(
        self, entry: _Tracked, now: float, reason: str, events: list[MonitorEvent]
    ) -> None:
        entry.aborted = True
        entry.reason = reason
        entry.term_deadline = now + self.grace
        self._signal(entry, kill=False)
        message = f"sent SIGTERM to {entry.id} (pid {entry.pid}): {reason}"
        events.append(
            MonitorEvent(now, entry.id, entry.pid, "terminate", Level.ABORT, entry.last, message)
        )

    def _escalate(self, entry: _Tracked, now: float, events: list[MonitorEvent]) -> None:
        """SIGKILL a process still alive ``grace`` seconds after its SIGTERM."""
        if entry.term_deadline is None or entry.killed or now < entry.term_deadline:
            return
        entry.killed = True
        self._signal(entry, kill=True)
        message = (
            f"sent SIGKILL to {entry.id} (pid {entry.pid}): still running "
            f"{self.grace:g} s after SIGTERM"
        )
        self._alert(
            entry,
            Level.ABORT,
            f"ABORT: Killed at {megabytes(entry.last)}MB, still running {self.grace:g} s"
            " after SIGTERM",
        )
        events.append(
            MonitorEvent(now, entry.id, entry.pid, "kill", Level.ABORT, entry.last, message)
        )

    def can_create_subprocess(self) -> tuple[bool, str]:
        """Whether at least ``min_free`` bytes are available, and a message saying so."""
        reading = self._memory()
        available = format_size(reading.available)
        if self.min_free is None:
            return True, f"{available} available ({reading.source}); no minimum set"
        if reading.available < self.min_free:
            return False, f"only {available} available, need at least {self._min_free_text}"
        return (
            True,
            f"{available} available ({reading.source}), need at least {self._min_free_text}",
        )

    def alerts(self) -> list[dict[str, Any]]:
        """The latest alerts (as written to ``memory-alerts.log``), oldest first."""
        with self._lock:
            return list(self._alerts)

    def _timestamp(self) -> str:
        return datetime.fromtimestamp(self._wall(), timezone.utc).isoformat()

    def _reading(self) -> SystemMemory | None:
        try:
            return self._memory()
        except Exception as error:  # the alert matters more than its context
            logger.warning("memguard: reading system memory failed: %s", error)
            return None

    def _alert(self, entry: _Tracked, level: Level, message: str) -> None:
        """Keep, log and write one alert line (the documented format, see :mod:`.monitorlog`)."""
        record = {
            "timestamp": self._timestamp(),
            "level": level.name,
            "subprocess_id": entry.id,
            "message": message,
            "system_memory": system_record(self._reading()),
        }
        self._alerts.append(record)
        logger.warning("memguard: %s (pid %d): %s", entry.id, entry.pid, message)
        append_record(self.log_dir, ALERTS_FILE, record)
