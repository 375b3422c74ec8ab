"""Resident memory of this process and of others, and this process's resettable peak.

On Linux the peak is the kernel's high-water mark (``VmHWM`` in ``/proc/self/status``),
reset by writing ``5`` to ``/proc/self/clear_refs``: exact, and a few system calls per
test with the file descriptors kept open (the first of a group is the dear one when a
test run has left the CPU's caches cold, so the meter makes as few as it can, together).
Resetting it also resets what ``getrusage().ru_maxrss`` reports inside this process.
Elsewhere the peak is the largest of the samples fed to
:meth:`SampledPeakMeter.observe` and says so.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = [
    "ChildrenCheck",
    "DescendantsMemory",
    "KernelPeakMeter",
    "PeakMeter",
    "RssReader",
    "SampledPeakMeter",
    "c_heap_in_use",
    "current_rss",
    "descendants_rss",
    "end_processes",
    "open_peak_meter",
    "process_own_memory",
    "rss_of",
    "rss_upper_bound",
    "small_object_bytes",
    "tree_of",
    "trim_heap",
    "waited_children_peak",
]

if sys.platform.startswith("linux"):
    import resource

    _RUSAGE: Final = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    _getrusage: Final = resource.getrusage

_PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@functools.cache
def _held_pread() -> Callable[[int, int], bytes] | None:
    """``pread(fd, size)`` that keeps the interpreter lock (libc's, through
    ``ctypes.PyDLL``), or None where there is none.

    ``os.pread`` lets the lock go for the call; taking it back waits until the thread
    that has it reaches its next bytecode, which can be the end of a long C call (a
    large ``bytearray`` filled).  The watchdog reads a few small ``/proc`` files per
    sample: with the lock kept, each read is one short system call, and the guard is
    not slowed by the very test it has to stop.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.PyDLL(None, use_errno=True).pread
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
    function.restype = ctypes.c_ssize_t
    buffers = threading.local()

    def pread(fd: int, size: int) -> bytes:
        buffer = getattr(buffers, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = buffers.buffer = ctypes.create_string_buffer(size)
        count = function(fd, buffer, size, 0)
        if count < 0:
            raise OSError(ctypes.get_errno(), "pread failed")
        return buffer.raw[:count]

    return pread


def _kept_read(fd: int, size: int) -> bytes:
    """Read a kept ``/proc`` descriptor from its start, keeping the interpreter lock where
    the platform allows (see :func:`_held_pread`)."""
    pread = _held_pread()
    return pread(fd, size) if pread is not None else os.pread(fd, size, 0)


class RssReader:
    """Reads this process's RSS in bytes (on Linux one ``pread`` of a kept ``statm``
    descriptor, so the guard can read it at every sample and phase).

    Thread-safe: ``os.pread`` does not move a shared file position.
    """

    __slots__ = ("_fd", "_pid", "_process")

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._fd: int | None = None
        self._process: Any = None
        if sys.platform.startswith("linux"):
            try:
                self._fd = os.open(f"/proc/{self._pid}/statm", os.O_RDONLY)
            except OSError:
                self._fd = None
        if self._fd is None:
            import psutil

            self._process = psutil.Process(self._pid)

    def __call__(self) -> int:
        if self._fd is not None:
            fields = _kept_read(self._fd, 128).split()
            return int(fields[1]) * _PAGE_SIZE
        if self._process is None:  # closed: psutil from now on (imported only if needed)
            import psutil

            self._process = psutil.Process(self._pid)
        return int(self._process.memory_info().rss)

    def close(self) -> None:
        """Release the kept file descriptor (later reads go through psutil)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def descendants_rss() -> int:
    """The memory of this process's descendants that is theirs, summed, in bytes (0: none).

    A one-off read of :class:`DescendantsMemory` (keep one of those for loops).
    """
    return DescendantsMemory()()


class DescendantsMemory:
    """Reads the memory of this process's descendants that is theirs, summed, in bytes.

    A child forked without ``exec`` (a ``multiprocessing`` fork pool's worker) shows the
    pages it shares with its parent, copy-on-write, in its RSS: counting them would count
    the parent's memory again, once per child.  So each child counts its private pages
    (``Private_Clean + Private_Dirty`` of ``/proc/PID/smaps_rollup``, the USS): what
    ending it would give back.  Not ``Pss``: that still charges a forked child half of
    the parent's pages it shares, which the parent's own RSS already counts; private
    memory leaves out only what it shares (a program started with ``exec`` shares just
    its libraries' pages).

    ``smaps_rollup`` walks the child's page tables, in a time that grows with the
    child's memory, where ``statm`` reads counters (benchmarks/README.md), and the
    watchdog samples children many times a second.  So each sample reads ``statm``'s RSS
    and takes off the child's shared pages as last read from ``smaps_rollup``, read again
    when the RSS moved by :data:`REREAD_STEP` or after :data:`REREAD_AFTER` seconds (a
    child writing to pages it shares turns them into its own without changing its RSS).
    Where ``smaps_rollup`` cannot be read (kernels before 4.14, denied access) a child
    counts its full RSS; elsewhere than Linux, psutil's USS where it has one, else RSS.

    :attr:`forked` turns True when this process calls ``os.fork`` (``multiprocessing``'s
    fork context does; ``subprocess`` does not: it starts a program with ``exec``) or a
    sample sees a child sharing anonymous memory (a fork made in C); :meth:`reset` clears
    it.  Called from one thread at a time (the guard's samples are serialized);
    :attr:`forked` may be read from another.
    """

    __slots__ = ("__weakref__", "_clock", "_has_children", "_known", "_root", "_scanned", "forked")

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        root: int | None = None,
        has_children: Callable[[], bool] | None = None,
    ) -> None:
        self._clock = clock
        #: Whose descendants: another process's (a monitor's), or this one's (None).
        self._root = root
        #: A cheap check of whether the main thread has children (:class:`ChildrenCheck`):
        #: with none there, and none seen last time, the full scan (a few files per
        #: thread) is made at most every :data:`FULL_SCAN_EVERY` seconds.
        self._has_children = has_children
        self._scanned = -FULL_SCAN_EVERY
        #: By pid: the RSS when smaps_rollup was last read, the bytes it shared then,
        #: when, and whether it was a fork of this process.
        self._known: dict[int, tuple[int, int, float, bool]] = {}
        self.forked = False
        if root is None and hasattr(os, "register_at_fork"):  # not Windows
            # Cannot be unregistered: it holds this object weakly, a no-op once gone.
            os.register_at_fork(after_in_parent=functools.partial(_forked, weakref.ref(self)))

    def reset(self) -> None:
        """Forget whether a forked child was seen."""
        self.forked = False

    def __call__(self) -> int:
        root = os.getpid() if self._root is None else self._root
        if not _PROC_CHILDREN:
            return _psutil_descendants(root)
        now = self._clock()
        quiet = self._has_children is not None and not self._known and not self._has_children()
        if quiet and now - self._scanned < FULL_SCAN_EVERY:
            return 0  # another thread's child is seen at the next full scan
        self._scanned = now
        total = 0
        known: dict[int, tuple[int, int, float, bool]] = {}
        for pid in _proc_descendants(root):
            rss = _statm_rss(pid)
            if rss is None:  # ended meanwhile
                continue
            last = self._known.get(pid)
            if last is None or abs(rss - last[0]) >= REREAD_STEP or now - last[2] >= REREAD_AFTER:
                rollup = _rollup(pid)
                if rollup is None:
                    last = (rss, 0, now, False)
                else:
                    private, anonymous_shared = rollup
                    last = (rss, max(rss - private, 0), now, anonymous_shared >= FORKED_SHARE)
            if last[3]:
                self.forked = True
            known[pid] = last
            total += max(rss - last[1], 0)
        self._known = known
        return total


def _forked(memory: weakref.ref[DescendantsMemory]) -> None:
    reader = memory()
    if reader is not None:
        reader.forked = True


#: Seconds between full scans for children while the main thread has none.
FULL_SCAN_EVERY: Final = 1.0
#: A child's RSS moves by this many bytes before its ``smaps_rollup`` is read again.
REREAD_STEP: Final = 8 * 1024 * 1024
#: Seconds after which a child's ``smaps_rollup`` is read again anyway.
REREAD_AFTER: Final = 1.0
#: Anonymous memory a child shares (after a fork without ``exec``) from which it is
#: taken to be a fork of this process: a program started with ``exec`` shares its
#: libraries' file pages, not anonymous ones.
FORKED_SHARE: Final = 4 * 1024 * 1024


def _statm_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def _rollup(pid: int) -> tuple[int, int] | None:
    """A process's private bytes and the anonymous bytes it shares, from its
    ``smaps_rollup``; None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            text = rollup.read()
        fields = {}
        for key in (b"Private_Clean:", b"Private_Dirty:", b"Anonymous:"):
            start = text.index(key) + len(key)
            fields[key] = int(text[start : text.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        return None
    private = fields[b"Private_Clean:"] + fields[b"Private_Dirty:"]
    # Anonymous pages are dirty or zero: those not private are shared (with a parent).
    return private, max(fields[b"Anonymous:"] - fields[b"Private_Dirty:"], 0)


def tree_of(process: Any, *, root: bool = True, children: bool = True) -> list[Any]:
    """A psutil process's descendants (when ``children``), the deepest first, then the
    process itself (when ``root``): the order to end them in, so that no parent is gone
    while its children run on (they would be another parent's then, out of reach)."""
    import psutil

    found: list[Any] = []
    if children:
        with contextlib.suppress(psutil.Error, OSError):
            found = list(reversed(process.children(recursive=True)))
    return [*found, process] if root else found


def end_processes(processes: list[Any], *, kill: bool = True) -> list[tuple[Any, BaseException]]:
    """SIGKILL (``kill``) or SIGTERM each psutil process, in order; one that ended
    meanwhile is skipped.  The processes that could not be signalled (not ours), each
    with its error."""
    import psutil

    refused: list[tuple[Any, BaseException]] = []
    for process in processes:
        try:
            if kill:
                process.kill()
            else:
                process.terminate()
        except psutil.NoSuchProcess:
            continue
        except (psutil.Error, OSError) as error:
            refused.append((process, error))
    return refused


def _psutil_descendants(root: int) -> int:
    """The descendants' summed USS (RSS where psutil has none), through psutil."""
    import psutil

    total = 0
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        with contextlib.suppress(psutil.Error, OSError):
            total += process_own_memory(child)
    return total


def process_own_memory(process: Any) -> int:
    """A psutil process's unique set size (USS) in bytes where psutil can read it, else
    its RSS: the one feature-detected reading of USS.

    :raises psutil.Error: the process is gone or hides its memory
    """
    import psutil

    with process.oneshot():
        try:
            return int(process.memory_full_info().uss)
        except (AttributeError, psutil.AccessDenied, NotImplementedError):
            return int(process.memory_info().rss)


class ChildrenCheck:
    """Whether this process's main thread has child processes now: on Linux one read of
    a kept descriptor on its ``children`` list, cheap enough for every phase of every
    test; elsewhere always False (unknown).

    :param hold_lock: keep the interpreter lock during the read (see
        :func:`_held_pread`), as a watchdog thread needs; the thread that runs the tests
        reads faster without (``os.pread``: no ``ctypes`` call)
    """

    __slots__ = ("_fd", "_hold_lock")

    def __init__(self, *, hold_lock: bool = True) -> None:
        self._fd: int | None = None
        self._hold_lock = hold_lock
        if _PROC_CHILDREN:
            with contextlib.suppress(OSError):
                self._fd = os.open(f"/proc/{os.getpid()}/task/{os.getpid()}/children", os.O_RDONLY)

    def __call__(self) -> bool:
        if self._fd is None:
            return False
        if self._hold_lock:
            return bool(_kept_read(self._fd, 16).strip())
        return bool(os.pread(self._fd, 16, 0).strip())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _proc_descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as listing:
                    children = [int(child) for child in listing.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            todo.extend(children)
    return found


_PROC_CHILDREN: Final = sys.platform.startswith("linux") and os.path.exists(
    f"/proc/self/task/{os.getpid()}/children"
)


def waited_children_peak() -> int:
    """The peak RSS in bytes of the largest descendant already waited for (the kernel's
    ``RUSAGE_CHILDREN`` high-water mark; 0 where unknown).  It only grows: a rise
    between two readings is a child waited for in between.

    It is a full RSS, and it overstates in two ways: a child forked without ``exec``
    counts the pages it shares with its parent, and a child that did ``exec`` keeps, as a
    floor, the high-water mark of the image it replaced (its parent's, through ``fork``,
    ``vfork`` and ``posix_spawn`` alike).  So a rise counts only above the parent's own
    peak meanwhile, and only when no forked child was seen (:class:`DescendantsMemory`).
    """
    if _children_usage is None:  # Windows
        return 0
    peak = _children_usage().ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _load_children_usage() -> Callable[[], Any] | None:
    try:
        import resource
    except ImportError:
        return None
    return functools.partial(resource.getrusage, resource.RUSAGE_CHILDREN)


_children_usage: Final = _load_children_usage()


def current_rss() -> int:
    """This process's RSS in bytes (a one-off read; keep an :class:`RssReader` for loops)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def rss_of(pid: int) -> int | None:
    """The RSS of process ``pid`` in bytes, or ``None`` when it is gone or access is denied."""
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


class PeakMeter(Protocol):
    """A resettable peak-RSS meter for this process."""

    @property
    def exact(self) -> bool:
        """True when the peak comes from the kernel, False when it is sampled."""

    @property
    def method(self) -> str:
        """A short description of how the peak is measured, for reports."""

    def reset(self) -> int:
        """Start a new peak window; returns the current RSS in bytes."""

    def end(self) -> tuple[int, int]:
        """End the peak window: its peak and the RSS now, in bytes.

        One call for the end of a test body, cheaper than :meth:`peak` and a separate
        RSS reading where the meter can read the RSS back from a reset (so a new window
        starts).
        """

    def observe(self, rss: int) -> None:
        """Feed one RSS sample (used by sampled meters; kernel meters ignore it)."""

    def peak(self) -> int:
        """The highest RSS in bytes since the last :meth:`reset`."""

    def close(self) -> None:
        """Release what the meter holds."""


class KernelPeakMeter:
    """Exact peak from Linux ``VmHWM``, reset through ``/proc/self/clear_refs``.

    Reading ``VmHWM`` means having the kernel format all of ``/proc/self/status``;
    ``getrusage().ru_maxrss`` gives the same high-water mark without formatting any
    text, but it is the larger of that mark and a floor the process inherited at
    ``exec`` (the peak of the image it replaced, e.g. a forking parent).  So the cheap
    reading is used whenever it is above that floor, and ``VmHWM`` otherwise.
    """

    __slots__ = ("_clear_fd", "_floor", "_read", "_status_fd")
    exact: Final = True
    method: Final = "exact (kernel VmHWM)"

    def __init__(self, read: Callable[[], int] | None = None) -> None:
        pid = os.getpid()
        self._read = read or RssReader()
        self._clear_fd = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY)
        try:
            self._status_fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
            os.pwrite(self._clear_fd, b"5", 0)
            # Right after a reset the mark is the current RSS; what getrusage reports
            # above it is the inherited floor (fixed for the life of this image).
            floor = _maxrss()
            self._floor = floor if floor > self._status_peak() + _SLACK else 0
        except (OSError, ValueError):
            os.close(self._clear_fd)
            raise

    # reset() and end() run twice per test: written out, without helper calls.

    def reset(self) -> int:
        os.pwrite(self._clear_fd, b"5", 0)
        # Right after a reset the mark is the RSS now: read back at the cost of a
        # getrusage (the kernel's code is warm from the reset), not of a statm read.
        rss = _getrusage(_RUSAGE).ru_maxrss * 1024
        return rss if rss > self._floor + _SLACK else self._read()

    def end(self) -> tuple[int, int]:
        # The RSS now is read back from a reset (a getrusage on kernel code the reset just
        # warmed), not from statm: inside a test run that costs half as much (measured).
        floor = self._floor + _SLACK
        peak = _getrusage(_RUSAGE).ru_maxrss * 1024
        if peak <= floor:
            # Under the inherited floor (an xdist worker, until it outgrows the controller
            # it was started from): one read of the status file gives both figures.
            return self._status()
        os.pwrite(self._clear_fd, b"5", 0)
        rss = _getrusage(_RUSAGE).ru_maxrss * 1024
        return peak, rss if rss > floor else self._read()

    def observe(self, rss: int) -> None:
        """The kernel tracks the peak itself; samples are not needed."""

    def peak(self) -> int:
        peak = _maxrss()
        if peak > self._floor + _SLACK:
            return peak
        return self._status_peak()

    def _status_peak(self) -> int:
        return self._status()[0]

    def _status(self) -> tuple[int, int]:
        """``VmHWM`` and ``VmRSS`` from ``/proc/self/status``, in bytes."""
        status = os.pread(self._status_fd, 4096, 0)
        figures = []
        for key in (b"VmHWM:", b"VmRSS:"):
            start = status.index(key) + 6
            figures.append(int(status[start : status.index(b"kB", start)]) * 1024)
        return figures[0], figures[1]

    def close(self) -> None:
        for fd in (self._clear_fd, self._status_fd):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)


#: getrusage and /proc read the kernel's RSS counters at different precision (per-CPU
#: batches of up to a few hundred KiB); differences below this are not a floor.
_SLACK: Final = 1024 * 1024


def rss_upper_bound() -> Callable[[], int] | None:
    """A reading never below this process's RSS (by more than the counters' slack, 1 MiB)
    that does not release the interpreter lock, or None where there is none.

    On Linux it is ``getrusage``'s high-water mark, which :class:`KernelPeakMeter` resets
    at the start of each test; a watchdog thread that reads it instead of ``statm`` does
    not hand the lock back and forth with the test.
    """
    return _maxrss if sys.platform.startswith("linux") else None


def _maxrss() -> int:
    """The process's ``ru_maxrss`` in bytes (Linux reports KiB).

    ``RUSAGE_THREAD``: its ``ru_maxrss`` is the process's high-water mark too (the
    memory is shared by the threads), without ``RUSAGE_SELF``'s sum over every thread's
    CPU time, which grows with the threads and slows most on a loaded machine, where
    the guard needs its readings most.
    """
    return _getrusage(_RUSAGE).ru_maxrss * 1024


class SampledPeakMeter:
    """Peak from samples: may miss spikes shorter than the sampling interval."""

    __slots__ = ("_lock", "_peak", "_read")
    exact: Final = False
    method: Final = "sampled (may miss short spikes)"

    def __init__(self, read: Callable[[], int] | None = None) -> None:
        self._read = read or RssReader()
        self._lock = threading.Lock()
        self._peak = 0

    def reset(self) -> int:
        rss = self._read()
        with self._lock:
            self._peak = rss
        return rss

    def observe(self, rss: int) -> None:
        if rss > self._peak:
            with self._lock:
                self._peak = max(self._peak, rss)

    def peak(self) -> int:
        rss = self._read()
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak

    def end(self) -> tuple[int, int]:
        rss = self._read()
        with self._lock:
            peak, self._peak = max(self._peak, rss), rss
        return peak, rss

    def close(self) -> None:
        """Nothing to release."""


def open_peak_meter(*, exact: bool = True, read: Callable[[], int] | None = None) -> PeakMeter:
    """The best peak meter this platform allows: the kernel's if it works, else sampled.

    :param read: the RSS reader to share (one kept descriptor instead of two)
    """
    if exact and sys.platform.startswith("linux"):
        try:
            return KernelPeakMeter(read)
        except (OSError, ValueError):
            pass
    return SampledPeakMeter(read)


@functools.cache
def _libc() -> Any:
    """glibc through ctypes, or None (not Linux, or no C library ctypes can load)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def _mallinfo2() -> Callable[[], Any] | None:
    """glibc's ``mallinfo2`` (2.33 and later) with its result type, or None."""
    import ctypes

    function = getattr(_libc(), "mallinfo2", None)
    if function is None:
        return None
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

    function.restype = MallInfo2
    function.argtypes = []
    return function  # type: ignore[no-any-return]


def c_heap_in_use() -> int | None:
    """Bytes the C allocator (glibc ``malloc``) has handed out and not got back, or None
    where that cannot be read (not glibc, or glibc before 2.33).

    That is every ``malloc``'d block, mapped ones included: Python objects over 512 bytes,
    numpy's buffers, C extensions' memory, but not pymalloc's arenas of small objects
    (``sys.getallocatedblocks()`` counts those).  One call that reads glibc's counters
    and walks no heap, cheap enough for every test.
    """
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


#: The line of ``sys._debugmallocstats()`` that sums pymalloc's blocks in use.
_ALLOCATED_BLOCKS: Final = re.compile(rb"# bytes in allocated blocks\s*=\s*([\d,]+)")


def small_object_bytes() -> int | None:
    """Bytes in the blocks of Python's small-object allocator (pymalloc) in use now, or
    None where it cannot be read (another interpreter, ``PYTHONMALLOC=malloc``).

    Exact, where ``sys.getallocatedblocks()`` only counts blocks: read from CPython's
    ``sys._debugmallocstats()``, which writes to the C ``stderr``, so file descriptor 2 is
    sent to a temporary file meanwhile (what another thread writes there then is lost).
    It walks every pool of the allocator: for a leak suspect's reruns, not for every test
    (see benchmarks/leak_costs.py for what a call costs).
    """
    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return None
    try:
        with tempfile.TemporaryFile() as capture:
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(capture.fileno(), 2)
                stats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            capture.seek(0)
            found = _ALLOCATED_BLOCKS.search(capture.read())
    except (OSError, ValueError):
        return None
    return int(found.group(1).replace(b",", b"")) if found else None


def trim_heap() -> bool:
    """Return freed heap memory to the OS (glibc ``malloc_trim``); False where unavailable.

    glibc keeps freed memory resident, so after a test was stopped at its hard limit the
    process can stay above that limit although nothing holds the memory any more.
    """
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True
