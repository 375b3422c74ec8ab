"""The guard: a watchdog thread that follows this process while units of work run.

It samples RSS, raises level events (warning, critical) to a callback, and at the hard
limit stops the running unit by raising
:class:`~pytest_memguard.errors.MemoryLimitExceeded` in the main thread.  On POSIX that
is ``pthread_kill(main, SIGUSR1)`` with a handler that raises only while a unit is
armed, so blocking calls such as ``time.sleep`` are interrupted too; elsewhere it is an
asynchronous exception.  A phase can be armed *within* a function (:meth:`Guard.arm`):
the handler then raises only while that function runs, so the phase needs no call at
its end to disarm the guard, and the code after it is never interrupted.  The signal is
re-sent every ``resend`` seconds while the unit stays over its limit, because a single
shot can be lost (raised inside a finalizer, or racing a blocking call).  A unit that
will not stop ends the process, by memguard's hand and not the kernel's: the guard
escalates when the unit reaches its *ceiling*, ``ceiling`` times its limit but never
more than a quarter of the way from the limit to ``memory`` (what the process can
really use: a container's limit), or when it stays over its limit for its grace time,
``grace`` seconds at the limit and less the nearer it is to the ceiling.  To escalate,
it holds the main thread in the interrupt's handler (for at most ``hold`` seconds: the
main thread may hold a lock the reports need), calls ``on_escalate`` (to write
reports), dumps every thread's stack and ends the process with ``os._exit``.

No single large C allocation can be interrupted from inside the process: the watchdog
may not even run until it returns.

The watchdog is paced by the headroom left: it samples every ``interval`` seconds near a
limit, and less often (at most ``max_interval``) the further RSS is below every limit,
assuming RSS cannot grow faster than ``growth_rate`` bytes a second.  Each sample takes
the interpreter lock from the test, so a watchdog that samples 50 times a second far
below any limit costs a run of small tests a few percent of its wall time for nothing.
Where the platform gives a cheap upper bound of RSS that keeps the lock (Linux:
``getrusage``'s high-water mark), a sample below every limit needs nothing more.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Final, NamedTuple

from ..errors import MemoryLimitExceeded
from ..probe.process import PeakMeter, RssReader
from .levels import Level, MemoryThresholds
from .sizes import format_size

__all__ = ["CEILING", "GRACE", "AbortInfo", "Guard", "LevelEvent"]

_LEVEL_WORDS: Final = {
    Level.WARNING: "warning threshold",
    Level.CRITICAL: "critical threshold",
    Level.ABORT: "hard limit",
}

#: Exit status of a process the guard had to end (the unit would not stop).
ESCALATION_EXIT_CODE: Final = 1
#: The policy for a process past its hard limit that does not stop (the guard's, and the
#: xdist controller's watch from outside, which allows it a margin over these):
#: seconds a unit may run on at its limit after its first interrupt...
GRACE: Final = 2.0
#: ...and the multiple of its limit (its ceiling) at which the process ends at once.
CEILING: Final = 1.25

#: Seconds between samples while a stopped unit is over its limit: a runaway that
#: allocates 4 GB a second passes 20 MB between two.
STOPPED_INTERVAL: Final = 0.005


class LevelEvent(NamedTuple):
    """A threshold crossed upward: the level reached, the RSS and the threshold, in bytes."""

    time: float
    level: Level
    rss: int
    threshold: int
    unit: str | None
    message: str


class AbortInfo(NamedTuple):
    """How a unit was stopped at its hard limit."""

    unit: str
    rss: int
    limit: int
    source: str
    signals: int
    escalated: bool

    @property
    def message(self) -> str:
        """One line for reports: what passed which limit."""
        return (
            f"RSS {format_size(self.rss)} passed the hard limit {format_size(self.limit)}"
            f" ({self.source}); the test was stopped"
        )


class _Unit:
    """State of one armed unit; written by the main thread, read and marked by the watchdog.

    One is made per test: the defaults live on the class.
    """

    phase = 0
    reported_rss = 0
    abort: _Abort | None = None
    #: The descendants' RSS when it began (the last sample), and their highest growth
    #: over it sampled while it ran: a server a session fixture started is not the test's.
    children_base = 0
    children_peak = 0

    def __init__(self, name: str, limit: int | None, source: str) -> None:
        self.name = name
        self.limit = limit
        self.source = source


class _Abort:
    __slots__ = ("escalated", "first", "phase", "rss", "signals")

    def __init__(self, rss: int, now: float, phase: int) -> None:
        self.rss = rss
        self.first = now
        self.phase = phase
        self.signals = 0
        self.escalated = False


class Guard:
    """Watches this process; see the module docstring.  Thread-safe for one driving thread.

    :param thresholds: process thresholds; ``max`` is the hard limit of every unit
    :param interval: seconds between RSS samples near a limit (and always, when the
        peak meter is sampled)
    :param max_interval: seconds between RSS samples far below every limit
    :param growth_rate: the fastest RSS growth assumed, in bytes per second, to pace the
        samples by the headroom left
    :param upper_bound: a cheap reading that is never below the RSS ``reader`` returns
        by more than ``upper_bound_slack``; when it is below every limit, the exact
        reading is skipped
    :param upper_bound_slack: bytes by which ``upper_bound`` may read below ``reader``
    :param resend: seconds between repeated interrupts of a unit over its limit
    :param grace: seconds a unit may keep running at its limit before the process ends
        (less above it, none at its ceiling)
    :param ceiling: a unit's ceiling is ``ceiling`` x its limit, at most a quarter of the
        way to ``memory``: the process ends when RSS is there after the first interrupt had
        0.1 s to work, or at once when the ceiling is the memory's and RSS still grows
    :param memory: bytes the process can really use (its cgroup's limit, or the
        machine's memory), or None: unknown
    :param hold: seconds the main thread is held while the process is ended
    :param growth_step: bytes of growth after which ``on_growth`` hears of a new RSS
    :param on_event: called (in the watchdog thread) with each :class:`LevelEvent`
    :param on_growth: called (in the watchdog thread) with ``(unit, rss)`` as a unit grows
    :param on_escalate: called (in the watchdog thread) before the process is ended
    :param escalate_fd: file descriptor for the escalation message and stack dump
    :param children: reads the summed memory of the process's descendants: sampled every
        ``children_interval`` seconds while a unit runs, counted in its RSS against the
        thresholds and limits, and their peak growth during the unit kept
        (:attr:`children_peak`); None: not read
    :param stop_error: builds the exception raised in the main thread to stop a unit
        (called there, by the signal handler); by default a
        :class:`~pytest_memguard.errors.MemoryLimitExceeded`
    """

    def __init__(
        self,
        thresholds: MemoryThresholds,
        *,
        interval: float = 0.02,
        max_interval: float = 0.1,
        growth_rate: float = 8 * 1024**3,
        resend: float = 0.05,
        grace: float = GRACE,
        ceiling: float = CEILING,
        memory: int | None = None,
        hold: float = 1.0,
        growth_step: int = 32 * 1024 * 1024,
        reader: Callable[[], int] | None = None,
        upper_bound: Callable[[], int] | None = None,
        upper_bound_slack: int = 1024 * 1024,
        peak_meter: PeakMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[LevelEvent], None] | None = None,
        on_growth: Callable[[str, int], None] | None = None,
        on_escalate: Callable[[AbortInfo], None] | None = None,
        escalate_fd: int | None = None,
        exit: Callable[[int], object] = os._exit,
        interrupt: Callable[[], None] | None = None,
        stop_error: Callable[[AbortInfo], BaseException] | None = None,
        children: Callable[[], int] | None = None,
        children_interval: float = 0.05,
    ) -> None:
        self.thresholds = thresholds
        self._max, self._max_source = thresholds.max, thresholds.sources.get("max", "max")
        self.interval = interval
        self.max_interval = max(interval, max_interval)
        self.growth_rate = growth_rate
        self.resend = resend
        self.grace = grace
        self.ceiling = ceiling
        self.memory = memory
        self.hold = hold
        #: Set while the process is being ended: the main thread's handler waits on it.
        self._ending: threading.Event | None = None
        #: Seconds the first interrupt has to unwind the unit before the ceiling applies.
        self.unwind_time = min(grace, max(2 * resend, 0.1))
        self.growth_step = growth_step
        self._read = reader or RssReader()
        self._upper_bound = upper_bound
        self._upper_bound_slack = upper_bound_slack
        self._peak_meter = peak_meter
        # A sampled peak meter misses what falls between samples: sample it at full speed.
        self._paced = peak_meter is None or peak_meter.exact
        self._wait = interval
        self._clock = clock
        self._on_event = on_event
        self._on_growth = on_growth
        self._on_escalate = on_escalate
        self._escalate_fd = escalate_fd
        self._exit = exit
        self._interrupt = interrupt
        self._unit: _Unit | None = None
        self._armed = False
        self._within: tuple[CodeType, ...] = ()
        self._stop_error = stop_error
        self._children = children
        self.children_interval = children_interval
        self._children_at = float("-inf")
        #: The descendants' RSS at the last sample (0 without a unit).
        self.children_rss = 0
        self._level = Level.OK
        self._events: deque[LevelEvent] = deque()
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._main_ident = threading.main_thread().ident
        self._previous_handler: (
            signal.Handlers | Callable[[int, FrameType | None], object] | int | None
        ) = None
        self._signal_installed = False
        #: The highest and the latest RSS the watchdog sampled, in bytes.
        self.max_rss = 0
        self.last_rss = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Guard:
        """Install the interrupt and start the watchdog thread; returns self."""
        if self._thread is not None:
            return self
        if self._interrupt is None:
            self._interrupt = self._install_interrupt()
        self.last_rss = rss = self._read()  # a true reading, whatever poll() reads
        self.max_rss = max(self.max_rss, rss)
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="memguard-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and join the watchdog and restore the previous signal handler."""
        self._armed = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._signal_installed:
            with contextlib.suppress(ValueError, TypeError):  # not the main thread
                signal.signal(signal.SIGUSR1, self._previous_handler)
            self._signal_installed = False

    def __enter__(self) -> Guard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- units -------------------------------------------------------------------------

    def begin(
        self,
        unit: str,
        *,
        limit: int | None = None,
        source: str = "",
        armed: bool = False,
        within: CodeType | tuple[CodeType, ...] = (),
    ) -> None:
        """Start following ``unit``; its hard limit is the lower of ``limit`` and ``max``.

        :param armed: arm at once (as :meth:`arm` would) for the unit's first phase
        :param within: as for :meth:`arm`
        """
        hard, origin = self._max, self._max_source
        if limit is not None and (hard is None or limit < hard):
            hard, origin = limit, source or "limit"
        new = _Unit(unit, hard, origin)
        new.children_base = self.children_rss
        self._children_at = float("-inf")  # the new unit's first sample reads them
        self._unit = new
        if armed:
            new.phase = 1
            self._within = (within,) if isinstance(within, CodeType) else within
            self._armed = True

    def arm(self, within: CodeType | tuple[CodeType, ...] = ()) -> bool:
        """Let the guard interrupt the current unit (call at the start of each phase), and
        say whether there is news from before (level events or a stopped unit), as
        :meth:`pause` does: one call at the start of a phase that follows another.

        :param within: interrupt only while a function with this code (or one of these
            codes) runs in the main thread (it, or what it called): e.g. the function
            that runs the phase's work, so that neither the code around it nor the code
            after the phase is interrupted, even before :meth:`disarm`; empty: anywhere.
            Exact where the interrupt is a signal (POSIX); elsewhere the main thread's
            stack is looked at just before the exception is set.
        """
        unit = self._unit
        if unit is None:
            return bool(self._events)
        unit.phase += 1
        self._within = (within,) if isinstance(within, CodeType) else within
        self._armed = True
        return bool(self._events) or unit.abort is not None

    def disarm(self) -> None:
        """Stop interrupting until the next :meth:`arm` (call at the end of each phase)."""
        self._armed = False

    def pause(self) -> bool:
        """:meth:`disarm`, and say whether there is news: level events or a stopped unit.

        The cheap end of a phase: only when this is True need the caller look at
        :meth:`drain_events` and :meth:`aborted`.
        """
        self._armed = False
        unit = self._unit
        return bool(self._events) or (unit is not None and unit.abort is not None)

    def end(self) -> AbortInfo | None:
        """Stop following the current unit; returns how it was stopped, if it was."""
        self._armed = False
        unit, self._unit = self._unit, None
        if unit is None or unit.abort is None:
            return None
        return self._abort_info(unit, unit.abort)

    def count_children_from(self, base: int) -> None:
        """Count the current unit's descendants from now on, over ``base`` bytes of RSS
        (theirs now): e.g. from the start of a test's body."""
        unit = self._unit
        if unit is not None:
            unit.children_base, unit.children_peak = base, 0
            self.children_rss = max(self.children_rss, base)

    def sample_children(self) -> None:
        """Sample the current unit's descendants now (e.g. at the end of a test's body,
        while they run), whenever the last sample was."""
        with self._poll_lock:
            self._children_at = float("-inf")
            self._sample_children(self._unit)

    @property
    def children_peak(self) -> int:
        """The descendants' highest RSS growth sampled while the current unit ran, over
        their RSS when it began."""
        unit = self._unit
        return unit.children_peak if unit is not None else 0

    def aborted(self) -> AbortInfo | None:
        """How the current unit was stopped so far, or None."""
        unit = self._unit
        if unit is None or unit.abort is None:
            return None
        return self._abort_info(unit, unit.abort)

    def drain_events(self) -> list[LevelEvent]:
        """Level events raised since the last call, oldest first."""
        if not self._events:
            return []
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    @property
    def wait(self) -> float:
        """Seconds the watchdog waits before its next sample (paced by the headroom)."""
        return self._wait

    # -- the watchdog ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self._wait):
            try:
                self.poll()
            except Exception as error:  # the guard must never take the run down
                self._wait = self.interval
                self._warn(f"memguard: watchdog error, guard continues: {error!r}\n")

    def _limits(self, unit: _Unit | None) -> list[int]:
        """The RSS values at which a sample has work to do: the thresholds and the
        unit's hard limit (its next growth report is added by :meth:`poll`)."""
        thresholds = self.thresholds
        candidates = (thresholds.warning, thresholds.critical, thresholds.max)
        limits = [limit for limit in candidates if limit is not None]
        if unit is not None and unit.limit is not None:
            limits.append(unit.limit)
        return limits

    def _pace(self, rss: int, limits: list[int], unit: _Unit | None) -> None:
        """Set the wait before the next sample from the headroom to the next limit."""
        if unit is not None and unit.abort is not None:  # a runaway nears the ceiling fast
            self._wait = min(self.interval, STOPPED_INTERVAL)
            return
        if not self._paced:
            self._wait = self.interval
            return
        ahead = min((limit for limit in limits if limit > rss), default=None)
        if ahead is None:  # over every limit there is, or there is none
            self._wait = self.interval if limits else self.max_interval
        else:
            headroom = (ahead - rss) / self.growth_rate
            self._wait = min(self.max_interval, max(self.interval, headroom))

    def poll(self) -> int:
        """One watchdog step (public so tests can drive it, with or without the thread:
        steps never overlap, so a crossing is raised once).

        Returns the RSS read (the descendants' included), or the cheap upper bound when
        that was below every limit.
        """
        with self._poll_lock:
            return self._poll()

    def _sample_children(self, unit: _Unit | None) -> int:
        """The descendants' RSS: sampled every ``children_interval`` while a unit runs."""
        if self._children is None or unit is None:
            self.children_rss = 0
            return 0
        now = self._clock()
        if now - self._children_at >= self.children_interval:
            self._children_at = now
            self.children_rss = rss = self._children()
            if rss - unit.children_base > unit.children_peak:
                unit.children_peak = rss - unit.children_base
        return self.children_rss

    def _poll(self) -> int:
        unit = self._unit
        limits = self._limits(unit)
        children = self._sample_children(unit)
        if self._upper_bound is not None and self._paced and (unit is None or unit.abort is None):
            quiet = min(limits, default=None)
            if unit is not None and self._on_growth is not None:
                mark = unit.reported_rss + self.growth_step
                quiet = mark if quiet is None else min(quiet, mark)
            bound = self._upper_bound() + children
            if quiet is None or bound + self._upper_bound_slack < quiet:
                self._level = Level.OK  # below every threshold
                self._pace(bound, limits, unit)
                return bound
        rss = self.last_rss = self._read()
        if rss > self.max_rss:
            self.max_rss = rss
        if self._peak_meter is not None:
            self._peak_meter.observe(rss)
        rss += children  # from here on, the process and its descendants together
        self._check_levels(rss, unit)
        self._pace(rss, limits, unit)
        if unit is None:
            return rss
        if self._on_growth is not None and rss >= unit.reported_rss + self.growth_step:
            unit.reported_rss = rss
            self._on_growth(unit.name, rss)
        if unit.limit is None or not self._armed:
            return rss
        if rss < unit.limit:
            return rss
        now = self._clock()
        abort = unit.abort
        if abort is None:
            unit.abort = abort = _Abort(rss, now, unit.phase)
            self._fire(abort, rss)
            return rss
        elapsed = now - abort.first
        growing = rss > abort.rss
        abort.rss = max(abort.rss, rss)
        ceiling = self.ceiling_of(unit.limit)
        near_the_wall = ceiling < int(unit.limit * self.ceiling)  # the memory's ceiling
        if rss >= ceiling and (elapsed >= self.unwind_time or (growing and near_the_wall)):
            # Past the first interrupt's moment to unwind the unit (a single large
            # allocation can take it past the ceiling before the interrupt arrives), or
            # still growing near what the process can use: no time to wait.
            self._escalate(unit, abort, rss)
        elif abort.phase != unit.phase:
            pass  # a later phase of a unit already stopped (its teardown) frees memory
        elif elapsed >= self.unwind_time and elapsed >= self.grace_at(rss, unit.limit):
            self._escalate(unit, abort, rss)
        elif elapsed >= abort.signals * self.resend:
            self._fire(abort, rss)
        return rss

    def ceiling_of(self, limit: int) -> int:
        """The RSS at which a unit over ``limit`` ends the process: ``ceiling`` x the
        limit, but no more than a quarter of the way from the limit to ``memory`` (the
        limit itself when it is not below ``memory``), so that a runaway that caught the
        interrupt may take one more large allocation before it is held."""
        ceiling = int(limit * self.ceiling)
        if self.memory is not None:
            ceiling = min(ceiling, limit + max(0, self.memory - limit) // 4)
        return ceiling

    def grace_at(self, rss: int, limit: int) -> float:
        """Seconds a unit at ``rss``, over ``limit``, may keep running after its first
        interrupt: ``grace`` at the limit, shrinking to none at its ceiling."""
        ceiling = self.ceiling_of(limit)
        if ceiling <= limit:
            return 0.0
        return self.grace * min(1.0, max(0.0, (ceiling - rss) / (ceiling - limit)))

    def _fire(self, abort: _Abort, rss: int) -> None:
        abort.rss = max(abort.rss, rss)
        abort.signals += 1
        assert self._interrupt is not None
        self._interrupt()

    def _check_levels(self, rss: int, unit: _Unit | None) -> None:
        level = self.thresholds.level(rss)
        if level <= self._level:
            self._level = level
            return
        self._level = level
        threshold = self.thresholds.limit_of(level)
        assert threshold is not None
        name = {Level.WARNING: "warning", Level.CRITICAL: "critical", Level.ABORT: "max"}[level]
        where = f" while running {unit.name}" if unit is not None else ""
        event = LevelEvent(
            time=time.time(),
            level=level,
            rss=rss,
            threshold=threshold,
            unit=unit.name if unit is not None else None,
            message=(
                f"RSS {format_size(rss)} reached the {_LEVEL_WORDS[level]}"
                f" {format_size(threshold)} ({self.thresholds.sources.get(name, name)}){where}"
            ),
        )
        self._events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _escalate(self, unit: _Unit, abort: _Abort, rss: int) -> None:
        abort.rss = max(abort.rss, rss)
        abort.escalated = True
        self._hold_main_thread()
        info = self._abort_info(unit, abort)
        self._warn(
            f"\nmemguard: {unit.name} kept running over its hard limit"
            f" ({format_size(rss)} > {format_size(unit.limit)}, {unit.source})"
            f" after {abort.signals} interrupt(s); ending the process.\n"
        )
        try:
            if self._on_escalate is not None:
                try:
                    self._on_escalate(info)
                except Exception as error:
                    self._warn(f"memguard: writing the report failed: {error!r}\n")
            if self._escalate_fd is not None:
                with contextlib.suppress(OSError, ValueError):  # a closed descriptor
                    faulthandler.dump_traceback(self._escalate_fd, all_threads=True)
            self._exit(ESCALATION_EXIT_CODE)
        finally:  # only an exit that returns (a test's) gets here
            ending, self._ending = self._ending, None
            if ending is not None:
                ending.set()

    def _hold_main_thread(self) -> None:
        """Stop the main thread allocating while the process is ended: its interrupt's
        handler waits (up to ``hold`` seconds) instead of raising."""
        if not self._signal_installed or self._interrupt is None:
            return  # an asynchronous exception cannot hold the thread
        self._ending = threading.Event()
        self._interrupt()

    def _warn(self, text: str) -> None:
        fd = self._escalate_fd if self._escalate_fd is not None else 2
        with contextlib.suppress(OSError):  # nowhere left to say it
            os.write(fd, text.encode(errors="replace"))

    @staticmethod
    def _abort_info(unit: _Unit, abort: _Abort) -> AbortInfo:
        return AbortInfo(
            unit=unit.name,
            rss=abort.rss,
            limit=unit.limit or 0,
            source=unit.source,
            signals=abort.signals,
            escalated=abort.escalated,
        )

    # -- interrupting the main thread --------------------------------------------------

    def _install_interrupt(self) -> Callable[[], None]:
        main = self._main_ident
        assert main is not None
        can_signal = hasattr(signal, "pthread_kill") and hasattr(signal, "SIGUSR1")
        if can_signal and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGUSR1, self._handle_signal)
            self._signal_installed = True
            return lambda: signal.pthread_kill(main, signal.SIGUSR1)
        return self._async_exception

    def _deliverable(self, frame: FrameType | None) -> AbortInfo | None:
        """The stop to raise in the main thread, now at ``frame``, or None: not armed, not
        over the limit, a later phase of a stopped unit, or outside the function the
        phase is armed within."""
        unit = self._unit
        if not self._armed or unit is None or unit.abort is None or unit.limit is None:
            return None
        if unit.abort.phase != unit.phase:
            return None
        within = self._within
        if within:
            while frame is not None and not any(frame.f_code is code for code in within):
                frame = frame.f_back
            if frame is None:
                return None  # not inside the phase's work; the watchdog sends again
        return self._abort_info(unit, unit.abort)

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        ending = self._ending
        if ending is not None:  # the process is being ended: allocate nothing more
            ending.wait(self.hold)
            return
        info = self._deliverable(frame)
        if info is not None:
            error: BaseException | None = None
            if self._stop_error is not None:
                try:
                    error = self._stop_error(info)
                except Exception as failure:  # the stop must happen all the same
                    self._warn(f"memguard: building the stop failed: {failure!r}\n")
            raise error or MemoryLimitExceeded(
                f"memguard: {info.message}", rss=info.rss, limit=info.limit, source=info.source
            )
        previous = self._previous_handler
        if callable(previous):
            previous(signum, frame)

    def _async_exception(self) -> None:
        import ctypes

        main = self._main_ident or 0
        if self._deliverable(sys._current_frames().get(main)) is None:
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(main), ctypes.py_object(MemoryLimitExceeded)
        )


def describe_platform() -> str:
    """How this platform's guard interrupts a test, for report headers."""
    if hasattr(signal, "pthread_kill") and sys.platform != "win32":
        return "signal"
    return "async-exception"
