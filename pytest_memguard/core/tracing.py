"""Tracing control: start tracemalloc when needed, stop only what we started, read counters.

:data:`DEFAULT_NFRAMES` is 8.  The site of an allocation is the innermost frame of user
code (:mod:`pytest_memguard.core.sites`), which needs frames past the library that
allocated: ``np.ones`` is 2 frames above the test, ``json.loads`` and ``re.compile`` 4;
pytest also has to show up behind the standard library for its bookkeeping to be left
out.  Every frame costs in every traced allocation, so an allocation-heavy body and a
traced suite slow down with each frame kept (``benchmarks/leak_costs.py`` measures it).
8 frames find the user's line for common library calls, and cost well under what 16
would.
"""

from __future__ import annotations

import threading
import tracemalloc
from typing import Final, final

__all__ = ["DEFAULT_NFRAMES", "Tracer", "take_snapshot"]

#: Frames kept per traced allocation when we start tracing.
DEFAULT_NFRAMES: Final = 8


@final
class Tracer:
    """Starts tracemalloc when it is off and stops only the tracing it started.

    Reference-counted: every :meth:`ensure` is paired with one :meth:`release`, and
    tracing this object started stops at the last release, so a per-test ``ensure`` inside
    a session-wide one does not end the session's tracing.  Tracing found on (started by
    the user with ``PYTHONTRACEMALLOC`` or ``-X tracemalloc``, or by other code) is used
    as it is and never stopped; it keeps its traceback limit, often 1 frame, so sites may
    point into a library instead of the test that called it (see :attr:`nframes`).  Use
    one tracer per process: tracemalloc is process-wide.  Thread-safe.
    """

    __slots__ = ("_lock", "_owned", "_users")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned = False
        self._users = 0

    def ensure(self, nframes: int = DEFAULT_NFRAMES) -> None:
        """Make sure tracemalloc traces; start it with ``nframes`` frames if it is off.

        Tracing that is already on is never restarted (that would drop its traces), so
        ``nframes`` only applies when this call starts it.
        """
        with self._lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start(nframes)
                self._owned = True
            elif self._users == 0:
                self._owned = False
            self._users += 1

    def release(self) -> None:
        """Undo one :meth:`ensure`; the last one stops tracing if this tracer started it.

        A release without a matching ensure does nothing.
        """
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0 and self._owned:
                self._owned = False
                tracemalloc.stop()

    @property
    def tracing(self) -> bool:
        """Whether tracemalloc traces now (code under test may have stopped it)."""
        return tracemalloc.is_tracing()

    @property
    def nframes(self) -> int:
        """Frames kept per allocation by the current (or last) tracing."""
        return tracemalloc.get_traceback_limit()

    @staticmethod
    def traced() -> int:
        """Bytes of Python allocations traced now (0 when not tracing)."""
        return tracemalloc.get_traced_memory()[0]

    @staticmethod
    def peak() -> int:
        """Highest traced bytes since tracing started or :meth:`reset_peak`."""
        return tracemalloc.get_traced_memory()[1]

    @staticmethod
    def reset_peak() -> None:
        """Set the peak to the current traced bytes (also for a user's tracing)."""
        tracemalloc.reset_peak()

    @staticmethod
    def overhead() -> int:
        """Bytes tracemalloc itself uses to store traces (not part of :meth:`traced`)."""
        return tracemalloc.get_tracemalloc_memory()


def take_snapshot() -> tracemalloc.Snapshot:
    """A snapshot of the traced heap, unfiltered: :func:`diff` drops framework traces.

    Filtering here (``Snapshot.filter_traces``) would match every trace with ``fnmatch``,
    on a session-wide heap too, where :func:`diff` classifies only the few traces that
    changed.

    :raises RuntimeError: when tracemalloc is not tracing
    """
    return tracemalloc.take_snapshot()
