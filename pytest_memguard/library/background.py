"""One named daemon thread doing a step every few seconds: the library's background work.

The cache sweeper, the pressure coordinator and the process monitor each own one, and
take their ``start``/``stop``/``running`` and ``with`` support from :class:`Threaded`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar, final

__all__ = ["Background", "Threaded"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T", bound="Threaded")


@final
class Background:
    """Calls ``step()`` every ``interval()`` seconds in a named daemon thread until :meth:`stop`.

    ``interval`` is asked before each wait; when it returns None (nothing left to do) the
    thread ends by itself, and a later :meth:`start` starts a new one.  A step that raises
    is logged with ``failure`` and the thread goes on.  Restartable and thread-safe.
    """

    __slots__ = ("_failure", "_interval", "_lock", "_step", "_stop", "_thread", "name")

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        interval: Callable[[], float | None],
        *,
        failure: str,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._failure = failure
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread if it is not running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and join it (not when called from the thread itself)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while True:
            wait = self._interval()
            if wait is None:
                with self._lock:
                    # Asked again under the lock, so that work added by a start() racing
                    # this ending is not left without a thread.
                    if self._interval() is None:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return
                continue
            if self._stop.wait(wait):
                return
            try:
                self._step()
            except Exception:
                logger.exception(self._failure)


class Threaded:
    """Start, stop and ``with`` for a class whose work runs in the :class:`Background`
    it holds as ``_thread``."""

    __slots__ = ()
    _thread: Background

    def start(self) -> None:
        """Start the background thread if it is not running."""
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the background thread and join it."""
        self._thread.stop(timeout)

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread.running

    def __enter__(self: _T) -> _T:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
