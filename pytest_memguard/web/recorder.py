"""Per-request memory records and route statistics, shared by the ASGI and WSGI middlewares.

RSS belongs to the process, not to a request.  When requests overlap (several in flight
in one process, as under uvicorn or a threaded WSGI server), a request's ``delta`` and
``peak_growth`` include what the others allocated or freed meanwhile; its record's
``overlapped`` counts the requests that ran beside it, so a figure with ``overlapped``
0 is the request's own (plus background threads).

``peak_growth`` is the highest RSS seen during the request minus its RSS at start.  The
highest RSS is the largest of the reads at start, at response start and at end, of the
samples of one named daemon thread that polls RSS every ``sample_interval`` seconds while
a request is in flight (idle after a second without one), and of the process's peak RSS
(``ru_maxrss``; on Linux the kernel's high-water mark ``VmHWM``) when it rose during the
request: the process then reached it within the request, an exact figure.  The mark is
only read, never reset: a reset is process-wide and would corrupt overlapping requests
and the pytest plugin's per-test peak.  A spike shorter than the sampling interval that
sets no new process high can be missed.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, TypeVar, final

from ..core.sizes import format_size, parse_size
from ..errors import MemguardError

if TYPE_CHECKING:
    from ..probe.process import RssReader

__all__ = ["OTHER_ROUTE", "UNMATCHED_ROUTE", "RequestRecord", "RequestRecorder", "WebConfigError"]

logger = logging.getLogger(__name__)

#: The row of requests whose path has no row of its own: past ``max_routes`` paths, or a
#: path that has only been answered with a status of 406 or more.
OTHER_ROUTE: Final = "(other)"
#: The row of every request answered 404 or 405: paths and methods the app does not serve.
UNMATCHED_ROUTE: Final = "(unmatched)"
#: Statuses that say the app has no such route (or not for that method).
_UNMATCHED: Final = frozenset({404, 405})
#: Deltas kept per route for ``p95_delta`` (the latest ones).
WINDOW: Final = 128
#: Characters of a path kept in records and route names (a bound on hostile URLs).
MAX_PATH: Final = 512
#: Seconds without a request after which the sampler thread waits, idle, for the next.
IDLE_AFTER: Final = 1.0


class WebConfigError(MemguardError, ValueError):
    """Bad middleware or endpoint settings; the message names the setting and its value."""


class RequestRecord(NamedTuple):
    """The memory of one HTTP request: bytes, seconds, ``time`` in seconds since the epoch.

    ``overlapped``: how many other requests were in flight at some point during this one.
    """

    method: str
    path: str
    status: int
    delta: int
    peak_growth: int
    duration_s: float
    time: float
    rss_start: int
    rss_end: int
    overlapped: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self._asdict()


@final
class _Window:
    """One request in flight: its start and the highest RSS seen so far.

    ``peak`` is written by the request's own reads only, ``sampled`` by the sampler thread
    only (under the lock): one writer each, so the request's path takes no lock for it.
    """

    __slots__ = ("hwm", "method", "overlapped", "path", "peak", "rss", "sampled", "started", "time")

    def __init__(self, method: str, path: str, rss: int, hwm: int | None, started: float) -> None:
        self.method, self.path, self.rss, self.hwm = method, path, rss, hwm
        self.peak = self.sampled = rss
        self.started, self.time, self.overlapped = started, time.time(), 0


@final
class _Route:
    """Counts of one route and a ring of its latest deltas."""

    __slots__ = ("count", "max_delta", "max_peak", "next", "total", "window")

    def __init__(self) -> None:
        self.count = self.total = self.next = 0
        self.max_delta = self.max_peak = -(2**63)
        self.window = array("q")

    def add(self, delta: int, peak_growth: int) -> None:
        self.count += 1
        self.total += delta
        self.max_delta = max(self.max_delta, delta)
        self.max_peak = max(self.max_peak, peak_growth)
        if len(self.window) < WINDOW:
            self.window.append(delta)
        else:
            self.window[self.next] = delta
            self.next = (self.next + 1) % WINDOW

    def as_dict(self) -> dict[str, int]:
        ordered = sorted(self.window)
        return {
            "count": self.count,
            "mean_delta": round(self.total / self.count),
            "p95_delta": ordered[math.ceil(0.95 * len(ordered)) - 1],
            "max_delta": self.max_delta,
            "max_peak_growth": self.max_peak,
        }


Reading = Callable[[], tuple[int, "int | None"]]

#: Forks of this process seen by this module (``os.register_at_fork``): a reader opened
#: before a fork reads the parent.  Compared on every request, where ``os.getpid()``
#: would be one more system call.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _statm() -> tuple[Callable[[], int], Callable[[], None]] | None:
    """This process's RSS in bytes from a kept ``/proc/PID/statm`` descriptor (Linux), and
    how to close it; None where it cannot be read.

    ``os.pread`` lets the interpreter lock go for the call, where the guard's
    :class:`~pytest_memguard.probe.process.RssReader` keeps it at twice the cost (its
    watchdog must not wait on the test it stops): a request's path lets the lock go on
    every socket call anyway, and reads RSS three times (benchmarks/web_overhead.py).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(f"/proc/{os.getpid()}/statm", os.O_RDONLY)
    except OSError:
        return None
    pread, page = os.pread, os.sysconf("SC_PAGE_SIZE")
    try:
        int(pread(fd, 128, 0).split(None, 2)[1])
    except (OSError, ValueError, IndexError):
        os.close(fd)
        return None

    def rss() -> int:
        return int(pread(fd, 128, 0).split(None, 2)[1]) * page

    return rss, functools.partial(os.close, fd)


def _open_reader() -> tuple[Reading, Callable[[], int], Callable[[], None]]:
    """How to read this process's ``(rss, lifetime peak or None)`` and its RSS alone, in
    bytes, and how to release the readers.

    The peak is ``getrusage().ru_maxrss`` (kilobytes on Linux, bytes on macOS): on Linux
    the kernel high-water mark, which the pytest plugin may reset, and nobody else.
    """
    kept = _statm()
    if kept is None:
        from ..probe.process import RssReader

        reader = RssReader()
        kept = reader, reader.close
    rss, release = kept
    try:
        import resource
    except ImportError:  # Windows: samples only
        return (lambda: (rss(), None)), rss, release
    scale = 1 if sys.platform == "darwin" else 1024
    getrusage, who = resource.getrusage, resource.RUSAGE_SELF

    def read() -> tuple[int, int | None]:
        return rss(), getrusage(who).ru_maxrss * scale

    return read, rss, release


def _positive(value: object, kinds: tuple[type[int] | type[float], ...] = (int,)) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool) and value > 0


@final
class RequestRecorder:
    """Measures requests, keeps the heaviest and per-route statistics, raises alerts.

    The keywords are those of :class:`~pytest_memguard.web.MemoryMonitorMiddleware`.
    ``headers`` and ``alert_threshold`` may be changed at any time.  Thread-safe; the RSS
    reader is opened on first use, and again in a forked child (a preloading server).
    """

    def __init__(
        self,
        *,
        headers: bool = True,
        alert_threshold: int | str | None = "20 MB",
        on_alert: Callable[[RequestRecord], object] | None = None,
        keep: int = 50,
        max_routes: int = 256,
        sample_interval: float | None = 0.005,
        rss: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _positive(keep):
            raise WebConfigError(f"keep: expected an int >= 1, got {keep!r}")
        if not _positive(max_routes):
            raise WebConfigError(f"max_routes: expected an int >= 1, got {max_routes!r}")
        if sample_interval is not None and not _positive(sample_interval, (int, float)):
            raise WebConfigError(
                f"sample_interval: expected seconds > 0 or None, got {sample_interval!r}"
            )
        if on_alert is not None and not callable(on_alert):
            raise WebConfigError(f"on_alert: expected a callable or None, got {on_alert!r}")
        self.headers = bool(headers)
        self._alert_threshold: int | None = None
        self.alert_threshold = alert_threshold
        self.on_alert = on_alert
        self.keep, self.max_routes, self.sample_interval = keep, max_routes, sample_interval
        self._rss, self._clock = rss, clock
        self._lock = threading.Lock()
        self._inflight: set[_Window] = set()
        self._routes: dict[str, _Route] = {}
        self._named = 0  # rows of real paths in ``_routes``, at most ``max_routes``
        self._heaviest: list[tuple[int, int, RequestRecord]] = []
        self._seq = itertools.count()
        self._requests = 0
        self._forks = -1  # the module's count of forks when the reader was opened
        self._read: Reading | None = None
        self._read_rss: Callable[[], int] | None = None
        self._sampler_rss: RssReader | None = None  # the sampler thread's own reader
        self._release: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        # The sampler sleeps in ``_wake.acquire``; ``_wake`` is locked but between a
        # release and the sampler's acquire, when ``_signalled`` is True.  ``_stopping``,
        # ``_idle`` (it waits for a request) and ``_signalled`` are set under the lock.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._signalled = self._stopping = self._idle = False

    @property
    def alert_threshold(self) -> int | None:
        """Bytes of ``peak_growth`` above which a request alerts; None: never."""
        return self._alert_threshold

    @alert_threshold.setter
    def alert_threshold(self, value: int | str | None) -> None:
        try:
            self._alert_threshold = None if value is None else parse_size(value)
        except ValueError as error:
            raise WebConfigError(f"alert_threshold: {error}") from None

    def _reading(self) -> Reading:
        """The RSS reader of this process, (re)opened on first use or after a fork."""
        read = self._read
        if read is not None and self._forks == _forks:
            return read
        return self._open()[0]

    def _rss_reading(self) -> Callable[[], int]:
        """The reader of RSS alone (no peak), (re)opened as :meth:`_reading`."""
        read = self._read_rss
        if read is not None and self._forks == _forks:
            return read
        return self._open()[1]

    def _open(self) -> tuple[Reading, Callable[[], int]]:
        with self._lock:
            if self._read is None or self._read_rss is None or self._forks != _forks:
                if self._forks != _forks and self._read is not None:
                    # A forked child: the parent's thread is gone, its readers read the parent.
                    self._thread, self._inflight = None, set()
                    if self._release is not None:
                        self._release()
                    if self._sampler_rss is not None:
                        self._sampler_rss.close()
                        self._sampler_rss = None
                rss = self._rss
                if rss is None:
                    self._read, self._read_rss, self._release = _open_reader()
                else:
                    self._read, self._read_rss, self._release = (lambda: (rss(), None)), rss, None
                self._forks = _forks
            return self._read, self._read_rss

    def begin(self, method: str, path: str) -> _Window:
        """Start measuring one request; pass what it returns to :meth:`finish`."""
        rss, hwm = self._reading()()
        window = _Window(method, path.partition("?")[0][:MAX_PATH] or "/", rss, hwm, self._clock())
        with self._lock:
            window.overlapped = len(self._inflight)
            for other in self._inflight:
                other.overlapped += 1
            self._inflight.add(window)
            if self.sample_interval is not None and self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._sample, name="memguard-web-sampler", daemon=True
                )
                self._thread.start()
            if self._idle:  # the sampler waits for this one
                self._signal()
        return window

    def _signal(self) -> None:
        """Wake the sampler thread; called under the lock."""
        if not self._signalled:
            self._signalled = True
            self._wake.release()

    def measure(self, window: _Window) -> tuple[int, int]:
        """``(delta, rss)`` now, in bytes, for the response headers."""
        rss = self._rss_reading()()
        if rss > window.peak:
            window.peak = rss
        return rss - window.rss, rss

    def finish(self, window: _Window, status: int) -> RequestRecord:
        """End the request: record it in the statistics and among the heaviest."""
        rss, hwm = self._reading()()
        ended = self._clock()
        with self._lock:
            self._inflight.discard(window)
            peak = max(window.peak, window.sampled, rss)
            if hwm is not None and window.hwm is not None and hwm > window.hwm:
                peak = max(peak, hwm)  # the process set a new high during this request
            record = RequestRecord(
                window.method,
                window.path,
                status,
                rss - window.rss,
                peak - window.rss,
                max(0.0, ended - window.started),
                window.time,
                window.rss,
                rss,
                window.overlapped,
            )
            self._requests += 1
            self._route(record.path, status).add(record.delta, record.peak_growth)
            heaviest = self._heaviest
            if len(heaviest) < self.keep:
                heapq.heappush(heaviest, (record.peak_growth, next(self._seq), record))
            elif record.peak_growth >= heaviest[0][0]:  # else heappushpop would drop it
                heapq.heapreplace(heaviest, (record.peak_growth, next(self._seq), record))
        return record

    def _route(self, path: str, status: int) -> _Route:
        """The row a request counts in; called under the lock.

        Only a path the app answered below 404 earns a row, so URLs nobody serves cannot
        take the rows of real routes: 404 and 405 count under ``"(unmatched)"``; a path
        without a row counts under ``"(other)"`` when the table is full, or when its answer
        (406 and up) does not show that the app serves it.
        """
        own = path not in (OTHER_ROUTE, UNMATCHED_ROUTE)
        if status in _UNMATCHED:
            key = UNMATCHED_ROUTE
        elif own and path in self._routes:
            key = path
        elif own and status < 404 and self._named < self.max_routes:
            key = path
            self._named += 1
        else:
            key = OTHER_ROUTE
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = _Route()
        return route

    def alert(self, record: RequestRecord) -> object:
        """Log and call ``on_alert`` when ``record`` passes the threshold; returns its result.

        The result may be awaitable (the ASGI middleware awaits it).
        """
        threshold = self._alert_threshold
        if threshold is None or record.peak_growth <= threshold:
            return None
        logger.warning(
            "memguard: %s %s grew RSS by %s at peak, above the alert threshold of %s"
            " (delta %s, status %d, %d overlapping request(s))",
            record.method,
            record.path,
            format_size(record.peak_growth),
            format_size(threshold),
            format_size(record.delta),
            record.status,
            record.overlapped,
        )
        try:
            return None if self.on_alert is None else self.on_alert(record)
        except Exception:
            logger.exception("memguard: on_alert failed for %s %s", record.method, record.path)
            return None

    def stats(self) -> dict[str, Any]:
        """Per-route statistics and the heaviest requests, largest ``peak_growth`` first.

        ``routes`` has at most ``max_routes`` paths, each first answered below 404, plus two
        rows: ``"(unmatched)"``, every request answered 404 or 405, and ``"(other)"``, paths
        past the bound or without a row that were answered 406 and up.  ``p95_delta`` is
        over the latest 128 requests of a row; the rest over all.
        """
        with self._lock:
            routes = {path: route.as_dict() for path, route in self._routes.items()}
            heaviest = sorted(self._heaviest, key=lambda item: (-item[0], item[1]))
            requests, in_flight = self._requests, len(self._inflight)
        return {
            "routes": routes,
            "heaviest": [record.as_dict() for _, _, record in heaviest],
            "requests": requests,
            "in_flight": in_flight,
            "max_routes": self.max_routes,
        }

    def _sample(self) -> None:
        """Poll RSS while a request is in flight; wait, idle, once none was for a second.

        Between requests it keeps its pace for :data:`IDLE_AFTER` seconds: a server
        answering one request after another would otherwise wake it at every request,
        and each wake takes the interpreter lock from the requests
        (benchmarks/web_overhead.py).  So a wake holds the interpreter lock once and
        briefly: it sleeps in a lock's timed ``acquire`` (C code, no ``Condition``), and
        reads RSS under the recorder's lock with the probe's reader, which keeps the
        interpreter lock, so the sample goes to exactly the requests in flight at the read.
        """
        interval = self.sample_interval or 1.0
        patience = max(1, math.ceil(IDLE_AFTER / interval))
        read, release = self._sampler_reader()
        wake, lock = self._wake, self._lock
        try:
            quiet = 0  # samples in a row that found no request in flight
            timeout = interval
            while True:
                woken = wake.acquire(True, timeout)
                with lock:
                    if woken:
                        self._signalled = False
                    if self._stopping:
                        return
                    windows = self._inflight
                    if windows:
                        quiet = 0
                        rss = read()
                        for window in windows:
                            if rss > window.sampled:
                                window.sampled = rss
                    else:
                        quiet += 1
                    idle = self._idle = quiet >= patience
                timeout = -1 if idle else interval
        finally:
            release()

    def _sampler_reader(self) -> tuple[Callable[[], int], Callable[[], None]]:
        """The sampler's RSS reader, and how to release it: its own, holding the lock."""
        if self._rss is not None:
            return self._rss, lambda: None
        from ..probe.process import RssReader

        reader = self._sampler_rss = RssReader()
        return reader, reader.close

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop and join the sampler thread, release the reader; a later request reopens them.

        Call it when no request is in flight (at shutdown).
        """
        with self._lock:
            thread, self._thread = self._thread, None
            release, self._release = self._release, None
            self._read = self._read_rss = None
            self._stopping = True
            self._signal()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if release is not None:
            release()


App = TypeVar("App")


class Middleware(Generic[App]):
    """What the ASGI and the WSGI middleware share: the wrapped app and its recorder.

    The keywords are those of :class:`RequestRecorder`.
    """

    def __init__(
        self,
        app: App,
        *,
        headers: bool = True,
        alert_threshold: int | str | None = "20 MB",
        on_alert: Callable[[RequestRecord], object] | None = None,
        keep: int = 50,
        max_routes: int = 256,
        sample_interval: float | None = 0.005,
        rss: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.recorder = RequestRecorder(
            headers=headers,
            alert_threshold=alert_threshold,
            on_alert=on_alert,
            keep=keep,
            max_routes=max_routes,
            sample_interval=sample_interval,
            rss=rss,
            clock=clock,
        )

    def stats(self) -> dict[str, Any]:
        """Per-route statistics and the heaviest requests (see :meth:`RequestRecorder.stats`)."""
        return self.recorder.stats()

    def stop(self) -> None:
        """Join the sampler thread and release the RSS reader (reopened on the next request)."""
        self.recorder.stop()
