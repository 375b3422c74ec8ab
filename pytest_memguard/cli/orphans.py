"""What ``memguard run``'s command leaves behind: adopt its orphans, wait for them, end them.

On Linux memguard makes itself the child subreaper of what it starts
(``prctl(PR_SET_CHILD_SUBREAPER)``): a process of the command's tree whose parent exits is
reparented to memguard instead of init, so it stays in sight however soon it was
orphaned (``sh -c 'work &'`` exits at once), and memguard reaps it.  Elsewhere the
:class:`~pytest_memguard.library.monitor.ProcessMonitor` keeps the descendants it saw at a reading.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import psutil

from ..core.sizes import format_size
from ..library.monitor import ProcessMonitor
from ..probe.process import end_processes

__all__ = ["Adopted", "Leftovers", "child_subreaper", "wait_for_leftovers"]

#: prctl(2) options (linux/prctl.h).
_PR_SET_CHILD_SUBREAPER: Final = 36
_PR_GET_CHILD_SUBREAPER: Final = 37


@contextmanager
def child_subreaper() -> Iterator[bool]:
    """Make this process the child subreaper of its descendants while the block runs;
    yields whether it is one (Linux only; feature-detected).  The previous setting is
    restored after, so a process that runs ``main()`` twice keeps its own."""
    prctl: Any = None
    if sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None
    previous = ctypes.c_int(0)
    zero = ctypes.c_ulong(0)
    if (
        prctl is None
        or prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), zero, zero, zero) != 0
        or prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), zero, zero, zero) != 0
    ):
        yield False
        return
    try:
        yield True
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(previous.value), zero, zero, zero)


class Adopted:
    """The command's orphans that were reparented to this process (a subreaper): handed
    to the monitor as the command's, and reaped once they end.

    Built before the command starts: the children this process had then are not the
    command's.  A child another thread of this process starts meanwhile would be taken
    for one (the ``memguard`` script has no such thread).
    """

    def __init__(self, active: bool, mark: tuple[str, str] | None = None) -> None:
        self.active = active
        #: The environment variable (name, value) the command was started with, which its
        #: descendants inherit: an orphan without it is not the command's (a process this
        #: one started before, reparented here meanwhile), and is left alone.
        self.mark = mark
        #: The command's pid, once started (a child of ours, not an orphan).
        self.command: int | None = None
        self.pids: set[int] = set()
        self._me = psutil.Process()
        self._before = self._children() if active else set()

    def _children(self) -> set[int]:
        try:
            return {child.pid for child in self._me.children()}
        except (psutil.Error, OSError):
            return set()

    def adopt(self, monitor: ProcessMonitor, ident: str) -> None:
        """Hand the orphans reparented since the last call to the monitor."""
        if not self.active:
            return
        new = self._children() - self._before - self.pids - {self.command or 0}
        new = {pid for pid in new if self._carries_mark(pid)}
        if new:
            self.pids |= new
            monitor.adopt(ident, new)

    def _carries_mark(self, pid: int) -> bool:
        """Whether ``pid`` descends from the command (its environment has the mark); a
        process whose environment cannot be read is taken for the command's, as before
        the mark."""
        if self.mark is None:
            return True
        name, value = self.mark
        try:
            return psutil.Process(pid).environ().get(name) == value
        except psutil.AccessDenied:
            return True
        except psutil.Error:  # gone, or a zombie: nothing left to watch
            return False

    def reap(self) -> None:
        """Collect the exit status of the adopted processes that ended (no zombies)."""
        for pid in list(self.pids):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not (or no longer) ours
                done = pid
            if done:
                self.pids.discard(pid)


@dataclass
class Leftovers:
    """The processes the command left running when it exited, and what became of them."""

    #: Their pids, in the order seen.
    pids: list[int] = field(default_factory=list)
    #: Bytes of RSS they used together, at most (None: never read).
    peak: int | None = None
    #: How memguard ended them when the wait was over: None (they ended on their own, or
    #: the hard limit stopped them), ``"SIGTERM"`` or ``"SIGKILL"``.
    ended_by: str | None = None
    #: Still running when memguard gave up on them (SIGKILL had no effect).
    running: int = 0

    def record(self) -> dict[str, Any]:
        """As in the ``--json`` summary."""
        return {
            "count": len(self.pids),
            "pids": list(self.pids),
            "peak_rss": self.peak,
            "ended_by": self.ended_by,
            "still_running": self.running,
        }

    def describe(self, name: str, wait: float, *, stopped: bool) -> str:
        """What became of them, in a line (``stopped``: at the hard limit)."""
        count = len(self.pids)
        them = "it" if count == 1 else "them"
        pids = ", ".join(map(str, self.pids))
        line = (
            f"{name} left {count} process{'' if count == 1 else 'es'} running (pid"
            f"{'' if count == 1 else 's'} {pids}; peak RSS {format_size(self.peak)}"
            f"{'' if count == 1 else ' together'}): "
        )
        if stopped:
            return line + f"stopped {them} at the hard limit"
        if self.ended_by is None:
            return line + f"waited for {them} to end"
        line += f"still running after --wait-children {wait:g} s: sent {them} {self.ended_by}"
        if self.running:
            line += f"; {self.running} still running"
        return line


def wait_for_leftovers(
    monitor: ProcessMonitor,
    ident: str,
    adopted: Adopted,
    poll: Callable[[], None],
    wait: float,
    stop: threading.Event,
) -> Leftovers:
    """After the command exited: poll (``poll`` reads the monitor and reports what it
    saw) until its leftovers ended, at most ``wait`` seconds or until ``stop`` is set;
    then SIGTERM them, SIGKILL them ``monitor.grace`` seconds later, and give up on
    what still runs another ``grace`` after that."""
    found = Leftovers()
    deadline = time.monotonic() + wait
    signalled_at: float | None = None
    while True:
        adopted.adopt(monitor, ident)
        poll()
        adopted.reap()
        alive = monitor.leftovers(ident)
        if not alive:
            return found
        found.pids += [process.pid for process in alive if process.pid not in found.pids]
        last = monitor.stats(ident)["end"]
        if last is not None:
            found.peak = max(found.peak or 0, last)
        now = time.monotonic()
        if found.ended_by is None and (now >= deadline or stop.is_set()):
            found.ended_by, signalled_at = "SIGTERM", now
            _signal(alive, kill=False)
        elif found.ended_by == "SIGTERM" and signalled_at is not None:
            if now >= signalled_at + monitor.grace:
                found.ended_by, signalled_at = "SIGKILL", now
                _signal(alive, kill=True)
        elif signalled_at is not None and now >= signalled_at + max(monitor.grace, 1.0):
            found.running = len(alive)  # not even SIGKILL ended them (e.g. stuck in I/O)
            return found
        time.sleep(monitor.interval)


def _signal(processes: list[psutil.Process], kill: bool) -> None:
    end_processes(processes, kill=kill)  # one not ours to signal is left to the report
