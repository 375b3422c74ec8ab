"""The controller's watch over xdist workers: one monitor thread, kills, and why they died.

Workers guard their own tests (the same engine as a single process).  From outside, the
controller reads every worker's RSS with :class:`~pytest_memguard.library.monitor.ProcessMonitor`
and kills a worker that stays past its hard limit longer than its own guard needs to end
it (``grace`` seconds), that passes ``ceiling`` times the limit (its own guard cannot run:
a long C call holds the interpreter), or that is the largest when the sum of all workers
passes the aggregate limit (less what other guarded runs on the machine hold and reserve,
with the ledger: ``outside``).  No pytest import: :mod:`.controller` drives this from hooks.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil

from ...core.guard import CEILING, GRACE
from ...core.levels import MemoryThresholds
from ...core.sizes import format_size
from ...library.monitor import MonitorEvent, ProcessMonitor
from ...probe.process import end_processes, tree_of
from ...reporting.crashlog import ProcessRecords, read_records
from ...reporting.timeline import SampleBuffer

__all__ = ["WorkerState", "WorkerWatch", "exit_status"]

#: Seconds a worker may stay past its hard limit: its own guard, which ends it after
#: its grace, goes first (one policy: the engine's, with a second's room).
KILL_AFTER: Final = GRACE + 1.0
#: A worker this many times past its hard limit is killed at once: past the ceiling at
#: which its own guard ends it, by a fifth, for the guard is not running then (a long C
#: call holds the interpreter).
OUTSIDE_CEILING: Final = CEILING * 1.2


@dataclass
class WorkerState:
    """What the controller knows of one worker (sizes in bytes)."""

    id: str
    pid: int | None = None
    peak_rss: int = 0
    #: The highest RSS sampled since the worker's last test ended (its running test's).
    test_peak: int = 0
    #: The last RSS sampled.
    rss: int = 0
    #: Why memguard killed it (from outside), or None.
    kill: str | None = None
    #: How it ended when it did not finish properly: a signal, an exit status, or None.
    death: str | None = None
    #: Whether the evidence says the kernel's OOM killer ended it.
    oom: bool = False
    down: bool = False
    crashed: bool = False
    #: Why the worker was replaced on purpose between two tests (``--memguard-recycle``).
    recycled: str | None = None
    over_since: float | None = None
    process: psutil.Process | None = None
    #: The RSS sampled at each sweep, for the report's timeline.
    samples: SampleBuffer = field(default_factory=SampleBuffer)

    def to_json(self) -> dict[str, Any]:
        """The worker's entry in the report's ``workers`` list."""
        reason = (self.kill or self.death or "crashed") if self.crashed or self.kill else None
        return {
            "id": self.id,
            "pid": self.pid,
            "peak_rss": self.peak_rss,
            "killed": self.crashed or self.kill is not None,
            "reason": reason or self.recycled,
            "recycled": self.recycled is not None,
        }


def exit_status(pid: int, wait: float = 0.5) -> str | None:
    """How a dead child ended ("killed by signal 9 (SIGKILL)", "exit status 1"), if known.

    Read without reaping it (xdist's own process handle does that): on Linux from the
    zombie's ``/proc/<pid>/stat``; elsewhere unknown.
    """
    if not sys.platform.startswith("linux"):
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X") and len(fields) >= 50:
            status = int(fields[-1])
            signum = status & 0x7F
            if signum:
                import signal

                try:
                    name = signal.Signals(signum).name
                except ValueError:
                    name = "?"
                return f"killed by signal {signum} ({name})"
            return f"exit status {(status >> 8) & 0xFF}"
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


class WorkerWatch:
    """Tracks the workers of one run; thread-safe (a monitor thread and pytest's thread)."""

    def __init__(
        self,
        folder: Path,
        thresholds: MemoryThresholds,
        aggregate: int | None,
        *,
        interval: float = 0.25,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.folder = folder
        self.thresholds = thresholds
        self.aggregate = aggregate
        self.interval = interval
        self.on_error = on_error
        self.workers: dict[str, WorkerState] = {}
        #: The RSS a worker is expected to have now (``--memguard-pack``'s prediction), or
        #: None: when the workers pass the aggregate limit together, the one furthest past
        #: its expected RSS is killed (the largest, without predictions).
        self.expected: Callable[[str], int | None] | None = None
        #: Bytes the other guarded runs on the machine hold and reserve (the ledger), or
        #: None: the aggregate limit is the workers' less that.
        self.outside: Callable[[], int] | None = None
        self.alerts: list[dict[str, Any]] = []
        # Alerts only: the kill decisions need the worker's own guard to have its chance.
        self.monitor = ProcessMonitor(
            thresholds=MemoryThresholds(thresholds.warning, thresholds.critical, None),
            aggregate_limit=aggregate,
            interval=interval,
            min_free=None,
            abort=False,
        )
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- workers come and go -------------------------------------------------------------

    def add(self, worker: str) -> WorkerState:
        """A worker is being set up."""
        with self._lock:
            return self.workers.setdefault(worker, WorkerState(worker))

    def ready(self, worker: str) -> None:
        """The worker runs: find its pid (its record file's name) and watch it."""
        state = self.add(worker)
        pid = None
        for path in self.folder.glob(f"{worker}-*.jsonl"):
            tail = path.stem.rsplit("-", 1)[-1]
            if tail.isdigit():
                pid = int(tail)
        if pid is None:
            return
        with self._lock:
            state.pid = pid
            try:
                state.process = psutil.Process(pid)
                self.monitor.track(pid, name=worker)
            except Exception as error:  # gone already, or not readable
                self._error(f"watching worker {worker}", error)
                return
        self._start()

    def down(self, worker: str, crashed: bool) -> WorkerState:
        """The worker ended; when it crashed, find out how."""
        state = self.add(worker)
        with self._lock:
            state.down = True
            state.crashed = crashed
            if worker in self.monitor:
                stats = self.monitor.untrack(worker)
                state.peak_rss = max(state.peak_rss, stats.get("peak") or 0)
        if crashed and state.pid is not None:
            state.death = exit_status(state.pid)
        return state

    def test_ended(self, worker: str) -> None:
        """The worker's test ended (its teardown report came): a new test's peak starts."""
        with self._lock:
            state = self.workers.get(worker)
            if state is not None:
                state.test_peak = 0

    def records(self, worker: str) -> ProcessRecords | None:
        """The worker's crash-proof records (None when it wrote none)."""
        found = read_records(self.folder.glob(f"{worker}-*.jsonl"))
        return found[-1] if found else None

    # -- the monitor thread ------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="memguard-worker-watch", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the monitor thread and join it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as error:  # the watch must never take the run down
                self._error("watching the workers", error)

    def poll(self, now: float | None = None) -> None:
        """One sweep: alerts, and the kills the limits call for."""
        with self._lock:
            if self.outside is not None and self.aggregate is not None:
                self.monitor.aggregate_limit = self._less_outside(self.aggregate)
            events = self.monitor.poll()
            now = time.monotonic() if now is None else now
            for event in events:
                self._on_event(event)
            limit = self.thresholds.max
            for state in self.workers.values():
                if state.down or state.kill is not None or state.id not in self.monitor:
                    continue
                stats = self.monitor.stats(state.id)
                rss = stats.get("end") or 0
                if rss:
                    state.samples.add(time.time(), rss)
                state.peak_rss = max(state.peak_rss, stats.get("peak") or 0)
                state.test_peak = max(state.test_peak, rss)
                state.rss = rss
                if limit is None or rss < limit:
                    state.over_since = None
                    continue
                if state.over_since is None:
                    state.over_since = now
                source = self.thresholds.sources.get("max", "max")
                if rss >= limit * OUTSIDE_CEILING:
                    self.kill(
                        state,
                        f"RSS {format_size(rss)} passed {OUTSIDE_CEILING:g} x the hard limit"
                        f" {format_size(limit)} ({source})",
                        rss,
                    )
                elif now - state.over_since >= KILL_AFTER:
                    self.kill(
                        state,
                        f"RSS {format_size(rss)} stayed over the hard limit {format_size(limit)}"
                        f" ({source}) for {KILL_AFTER:g} s",
                        rss,
                    )

    def _on_event(self, event: MonitorEvent) -> None:
        if event.kind == "aggregate":
            assert self.aggregate is not None
            if any(state.kill is not None and not state.down for state in self.workers.values()):
                return  # one was killed for it already: its memory is on its way back
            found = self._furthest_past_expected()
            state: WorkerState | None
            if found is not None:
                state, rss, expected = found
                why = (
                    f"{state.id} went furthest past its prediction: RSS {format_size(rss)},"
                    f" expected {format_size(expected)}"
                )
            else:
                state, rss = self.workers.get(event.id), event.rss or 0
                why = f"{event.id} was the largest at {format_size(rss)}"
            limit = self.monitor.aggregate_limit or self.aggregate
            if limit < self.aggregate:
                shown = (
                    f"{format_size(limit)} (the aggregate limit {format_size(self.aggregate)}"
                    f" less {format_size(self.aggregate - limit)} other guarded runs hold)"
                )
            else:
                shown = format_size(limit)
            if state is not None and state.kill is None:
                self.kill(
                    state,
                    f"the workers used more than the aggregate limit {shown} together; {why}",
                    rss,
                )
            return
        if event.kind in ("warning", "critical"):
            self._alert(event.kind, event.id, event.rss, event.message)

    def _less_outside(self, aggregate: int) -> int:
        """The aggregate limit less what the other guarded runs hold and reserve, but never
        below what this run's workers are predicted to use now: packing and the ledger let
        those run, so a worker is killed for room another run holds only past its own
        prediction.  Without predictions, the aggregate limit as it is (the workers' gate
        still makes their heavy tests wait)."""
        assert self.outside is not None
        if self.expected is None:
            return aggregate
        predicted = sum(
            self.expected(state.id) or 0
            for state in self.workers.values()
            if not state.down and state.kill is None
        )
        if not predicted:
            return aggregate
        return min(aggregate, max(aggregate - self.outside(), predicted))

    def _furthest_past_expected(self) -> tuple[WorkerState, int, int] | None:
        """The live worker whose RSS is furthest past what it is expected to have, with
        both (None: no expectations)."""
        if self.expected is None:
            return None
        found: tuple[WorkerState, int, int] | None = None
        for state in self.workers.values():
            if state.down or state.kill is not None or state.id not in self.monitor:
                continue
            expected = self.expected(state.id)
            if expected is None:
                continue
            rss = self.monitor.stats(state.id).get("end") or 0
            if found is None or rss - expected > found[1] - found[2]:
                found = (state, rss, expected)
        return found

    def _alert(self, level: str, worker: str, rss: int | None, message: str) -> None:
        state = self.workers.get(worker)
        self.alerts.append(
            {
                "timestamp": time.time(),
                "level": level,
                "process": f"{worker} (seen by the controller)",
                "pid": state.pid if state is not None and state.pid is not None else 0,
                "rss": rss or 0,
                "threshold": None,
                "nodeid": None,
                "message": message,
            }
        )

    def kill(self, state: WorkerState, reason: str, rss: int | None) -> None:
        """Kill a worker (and its children) and remember why."""
        state.kill = f"killed by memguard: {reason}"
        state.test_peak = max(state.test_peak, rss or 0)
        self._alert("abort", state.id, rss, f"{state.id}: {state.kill}")
        if state.process is not None:
            end_processes(tree_of(state.process))

    def _error(self, where: str, error: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(where, error)
