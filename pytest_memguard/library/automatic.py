"""Automatic mode of :class:`~.diagnostics.MemoryDiagnostics`: background profiling that
cleans up by itself.

Off by default.  One line turns it on::

    diagnostics.start(interval=60, auto_cleanup=True, threshold="2 GB", cooldown=300)

Every ``interval`` seconds a named daemon thread takes a :meth:`profile` (kept in the
diagnostics' bounded history).  When this process's RSS passes ``threshold`` and
``auto_cleanup`` is on, it runs the coordinator's handlers at CRITICAL and
``gc.collect()``, at most once every ``cooldown`` seconds (the coordinator's own
cooldown applies too).  With ``gc_interval`` it also calls ``gc.collect()`` that often.
:mod:`.lifespan` has the async helpers for an app's startup and shutdown.
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

from ..core.levels import Level
from ..core.sizes import format_size, parse_limit
from ..errors import MemguardError
from .background import Background

if TYPE_CHECKING:
    from .diagnostics import MemoryDiagnostics

__all__ = ["AutomaticError", "AutomaticMode", "check_seconds"]

#: The shortest wait of the thread, in seconds (a due time already passed).
_MIN_WAIT: Final = 0.01


class AutomaticError(MemguardError, ValueError):
    """A setting of the automatic mode that cannot work (an interval of 0, say)."""


def check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as finite seconds above 0 (or at it, with ``zero``); else AutomaticError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise AutomaticError(f"{name}: expected seconds {bound}, got {value!r}")
    return number


@final
class AutomaticMode:
    """The background profiling of one :class:`MemoryDiagnostics`; see the module docstring.

    Settings (``interval``, ``auto_cleanup``, ``threshold``, ``cooldown``,
    ``gc_interval``) may be changed while it runs, through :meth:`configure`; a new
    interval counts from the next wait.  Thread-safe.
    """

    def __init__(self, diagnostics: MemoryDiagnostics, clock: Callable[[], float]) -> None:
        self._diagnostics = diagnostics
        self._clock = clock
        self._lock = threading.Lock()
        self.interval = 60.0
        self.auto_cleanup = True
        self.threshold: int | None = None
        self.cooldown = 300.0
        self.gc_interval: float | None = None
        self._last_cleanup: float | None = None
        self._next_profile = 0.0
        self._next_gc: float | None = None
        self.cleanups = 0
        self._thread = Background(
            "memguard-diagnostics",
            self.step,
            self._wait,
            failure="memguard: automatic memory profiling failed",
        )

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread.running

    def configure(
        self,
        *,
        interval: float | None = None,
        auto_cleanup: bool | None = None,
        threshold: int | str | None = None,
        cooldown: float | None = None,
        gc_interval: float | None = None,
    ) -> None:
        """Change any setting; every value is checked before any is changed.

        ``threshold`` is bytes, a size string or a percentage (``"80%"``) of the memory
        this process can use.
        """
        checked: dict[str, Any] = {}
        if interval is not None:
            checked["interval"] = check_seconds("interval", interval)
        if gc_interval is not None:
            checked["gc_interval"] = check_seconds("gc_interval", gc_interval)
        if cooldown is not None:
            checked["cooldown"] = check_seconds("cooldown", cooldown, zero=True)
        if auto_cleanup is not None:
            if not isinstance(auto_cleanup, bool):
                raise AutomaticError(f"auto_cleanup: expected true or false, got {auto_cleanup!r}")
            checked["auto_cleanup"] = auto_cleanup
        if threshold is not None:
            total = self._diagnostics.system_memory().total
            try:
                checked["threshold"] = parse_limit(threshold, percent_of=total)
            except ValueError as error:
                raise AutomaticError(f"threshold: {error}") from None
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)
            if "gc_interval" in checked:
                self._next_gc = self._clock() + checked["gc_interval"]

    def clear(self, *, threshold: bool = False, gc_interval: bool = False) -> None:
        """Go back to no ``threshold`` of its own and, or, no periodic collection."""
        with self._lock:
            if threshold:
                self.threshold = None
            if gc_interval:
                self.gc_interval = self._next_gc = None

    def start(self) -> None:
        """Start the thread (a profile at once, then every ``interval``) if not running."""
        with self._lock:
            if not self._thread.running:
                now = self._clock()
                self._next_profile = now
                self._next_gc = None if self.gc_interval is None else now + self.gc_interval
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and join it."""
        self._thread.stop(timeout)

    def threshold_in_use(self) -> int | None:
        """The RSS in bytes past which a cleanup runs: ``threshold``, else the critical
        (then the warning, then the max) of the diagnostics' thresholds; None: never."""
        if self.threshold is not None:
            return self.threshold
        limits = self._diagnostics.thresholds
        return next((t for t in (limits.critical, limits.warning, limits.max) if t), None)

    def settings(self) -> dict[str, Any]:
        """The settings and state, JSON-ready (bytes and seconds)."""
        with self._lock:
            last = self._last_cleanup
        return {
            "running": self.running,
            "interval": self.interval,
            "auto_cleanup": self.auto_cleanup,
            "threshold": self.threshold_in_use(),
            "cooldown": self.cooldown,
            "gc_interval": self.gc_interval,
            "cleanups": self.cleanups,
            "last_cleanup": last,
        }

    def _wait(self) -> float:
        """Seconds until the next profile or collection is due."""
        with self._lock:
            due = [self._next_profile]
            if self._next_gc is not None:
                due.append(self._next_gc)
        return max(_MIN_WAIT, min(due) - self._clock())

    def step(self) -> dict[str, Any]:
        """Do what is due now: a profile (and a cleanup past the threshold), a collection.

        Returns what was done: ``profiled``, ``collected`` (objects, or None), ``cleanup``
        (the diagnostics' history entry of an automatic cleanup, or None).
        """
        diagnostics = self._diagnostics
        now = self._clock()
        done: dict[str, Any] = {"profiled": False, "collected": None, "cleanup": None}
        with self._lock:
            profile_due = now >= self._next_profile
            if profile_due:
                self._next_profile = now + self.interval
            gc_due = self._next_gc is not None and now >= self._next_gc
            if gc_due and self.gc_interval is not None:
                self._next_gc = now + self.gc_interval
        if gc_due:
            done["collected"] = gc.collect()
        if not profile_due:
            return done
        rss = int(diagnostics.profile()["rss"])
        done["profiled"] = True
        threshold = self.threshold_in_use()
        if not self.auto_cleanup or threshold is None or rss < threshold:
            return done
        with self._lock:
            if self._last_cleanup is not None and now - self._last_cleanup < self.cooldown:
                return done
        response = diagnostics.coordinator.handle_memory_pressure(Level.CRITICAL)
        if not response.ran:  # the coordinator's own cooldown: try again at the next profile
            return done
        collected = gc.collect()
        with self._lock:
            self._last_cleanup = now
            self.cleanups += 1
        done["cleanup"] = diagnostics.record(
            "auto_cleanup",
            rss=rss,
            threshold=threshold,
            freed=response.total_freed,
            handlers=dict(response.freed),
            gc_collected=collected,
            message=f"RSS {format_size(rss)} passed {format_size(threshold)}",
        )
        return done
