"""The signals that end a job early, turned into the interrupt Ctrl-C is.

CI systems end a job that ran out of time with SIGTERM (``timeout``, GitLab, Jenkins,
Kubernetes), a closed terminal sends SIGHUP, a person presses Ctrl-C (SIGINT).  Python
turns only the last into ``KeyboardInterrupt``: the others end the process at once, with
nothing written.  :class:`StopSignals` handles the three alike: the first SIGTERM or
SIGHUP raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so the
work unwinds as on Ctrl-C; every signal is remembered, so whoever writes the report
knows the run was interrupted and by what, even when a second Ctrl-C cut short the
handling of the first.

A handler is installed only over the default disposition: a signal ignored (``nohup``)
or handled by someone else is left to them.  SIGINT keeps Python's own behaviour (every
press raises); SIGTERM and SIGHUP raise once, and later ones are only remembered, so a
job that is sent the signal twice (its process group, then its main process) still
unwinds in order.  No pytest here: the plugin and the CLI use the same class.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

__all__ = ["SIGNAL_EXIT_BASE", "StopSignals", "Terminated", "signal_name"]

#: A process ended by signal N exits ``128 + N`` as a shell reports it.
SIGNAL_EXIT_BASE: Final = 128


class Terminated(KeyboardInterrupt):
    """The interrupt raised for SIGTERM or SIGHUP (a ``KeyboardInterrupt``, so the work
    unwinds as on Ctrl-C, and ``except Exception`` does not swallow it)."""

    # As pytest names its summary line: "Terminated: SIGTERM ...".
    __module__ = "builtins"

    def __init__(self, signum: int) -> None:
        super().__init__(
            f"{signal_name(signum)} received: the run ends as on Ctrl-C (the report is written)"
        )
        self.signum = signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15 (the number itself where the platform has no name for it)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _names() -> tuple[str, ...]:
    return tuple(name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals:
    """Handles SIGTERM, SIGHUP and SIGINT in the main thread (see the module).

    :param on_signal: called with the signal number before anything is raised (e.g. the
        xdist controller passes the signal on to its workers); its errors are ignored
    """

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.on_signal = on_signal
        #: The signals received, in order.
        self.received: list[int] = []
        #: While True, nothing is raised (the report is being written): only remembered.
        self.holding = False
        self._previous: dict[int, Any] = {}

    @property
    def first(self) -> int | None:
        """The first signal received, or None."""
        return self.received[0] if self.received else None

    def install(self) -> StopSignals:
        """Take the signals that still have their default handling (main thread only;
        elsewhere nothing is installed).  A child this process forks (a multiprocessing
        pool's worker) gets the handlers back that were there before: it is not the
        run, and a pool ends its workers with SIGTERM."""
        if threading.current_thread() is not threading.main_thread():
            return self
        if hasattr(os, "register_at_fork"):  # not Windows
            # Cannot be unregistered: it holds this object weakly, a no-op once gone.
            os.register_at_fork(after_in_child=functools.partial(_restore, weakref.ref(self)))
        for name in _names():
            number = getattr(signal, name)
            if signal.getsignal(number) is signal.SIG_DFL:
                self._previous[number] = signal.signal(number, self._handle)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced (where they are still ours)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number, previous in self._previous.items():
            if signal.getsignal(number) == self._handle:
                signal.signal(number, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raised = any(number != signal.SIGINT for number in self.received)
        self.received.append(signum)
        if self.on_signal is not None:
            # Passing it on is a courtesy: the interrupt must happen all the same.
            with contextlib.suppress(Exception):
                self.on_signal(signum)
        if self.holding:
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not raised:
            raise Terminated(signum)

    def exit_status(self) -> int | None:
        """The exit status a shell expects after the first SIGTERM or SIGHUP (``128 + N``),
        or None (no signal, or only Ctrl-C: pytest's own status stands)."""
        for signum in self.received:
            if signum != signal.SIGINT:
                return SIGNAL_EXIT_BASE + signum
        return None


def _restore(signals: weakref.ref[StopSignals]) -> None:
    """In a forked child: the handlers from before :meth:`StopSignals.install`."""
    taken = signals()
    if taken is not None:
        taken.restore()
