"""One place where services register cleanup handlers, run when memory gets tight.

The level comes from the fraction of memory in use, read through a ``memory`` callable
(default: the container-aware probe, so a cgroup limit counts, not the host).  Handlers
take the :class:`Level` and return the bytes they freed (or None); they may be plain or
``async def``.  A handler that raises is logged and recorded; the others still run.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MethodType
from typing import Any, Final, Protocol, Union, final

from ..core.levels import Level
from ..errors import MemguardError
from .background import Background, Threaded

__all__ = [
    "Handler",
    "MemoryPressureCoordinator",
    "PressureError",
    "PressureResponse",
    "get_memory_pressure_coordinator",
    "reset_memory_pressure_coordinator",
]

logger = logging.getLogger(__name__)

#: ``handler(level)`` returns the bytes it freed, None, or an awaitable of either.
Handler = Callable[[Level], Union[int, Awaitable[Union[int, None]], None]]


class _Reading(Protocol):
    @property
    def used(self) -> int: ...
    @property
    def total(self) -> int: ...


#: Returns ``(used, total)`` bytes, or an object with ``used`` and ``total`` attributes.
MemoryReader = Callable[[], Union[tuple[int, int], _Reading]]


class PressureError(MemguardError, ValueError):
    """Bad coordinator settings, or a handler name already registered."""


class HandlerExistsError(PressureError, KeyError):
    """A handler is already registered under that name."""

    __str__ = BaseException.__str__


@dataclass(frozen=True)
class PressureResponse:
    """What one ``handle_memory_pressure`` call did.

    ``freed`` maps each handler that ran to the bytes it reported; ``errors`` maps each
    handler that failed to its message; ``reason`` says why nothing ran (``"ok"``,
    ``"cooldown"``) and is None when the handlers ran.  ``time`` is from the clock.
    """

    level: Level
    ran: bool
    freed: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None
    time: float = 0.0
    retry_in: float | None = None

    @property
    def total_freed(self) -> int:
        """Bytes freed by all handlers together."""
        return sum(self.freed.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "level": str(self.level),
            "ran": self.ran,
            "freed": dict(self.freed),
            "total_freed": self.total_freed,
            "errors": dict(self.errors),
            "reason": self.reason,
            "time": self.time,
            "retry_in": self.retry_in,
        }


class _Registered:
    """A handler held strongly, or weakly when it is a bound method."""

    __slots__ = ("_ref", "_strong", "name")

    def __init__(self, name: str, handler: Handler, weak: bool) -> None:
        self.name = name
        self._strong: Handler | None = None
        self._ref: weakref.WeakMethod[Any] | None = None
        if weak and isinstance(handler, MethodType):
            # No callback: purging happens under the coordinator's lock, not inside gc.
            self._ref = weakref.WeakMethod(handler)
        else:
            self._strong = handler

    def resolve(self) -> Handler | None:
        """The handler, or None when its object is gone."""
        if self._ref is not None:
            method: Handler | None = self._ref()
            return method
        return self._strong


def _default_memory() -> tuple[int, int]:
    from ..probe.system import read_system_memory

    reading = read_system_memory()
    return reading.used, reading.total


@final
class MemoryPressureCoordinator(Threaded):
    """Runs registered cleanup handlers when the share of memory in use passes a level.

    :param warning: fraction of memory in use (0-1] at which the level is WARNING
    :param critical: fraction at which it is CRITICAL
    :param cooldown: seconds after a run during which no new run starts unless forced
    :param memory: returns used and total bytes; default: the container-aware probe
    :param clock: seconds, monotonic; injected by tests
    :param history: responses kept for :meth:`history`

    Thread-safe.  Handlers run outside the lock, so they may register or unregister.
    """

    def __init__(
        self,
        warning: float = 0.70,
        critical: float = 0.85,
        cooldown: float = 60.0,
        memory: MemoryReader | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        history: int = 50,
    ) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, _Registered] = {}
        self._memory: MemoryReader = memory or _default_memory
        self._clock = clock
        self._last_run: float | None = None
        self._history: deque[PressureResponse] = deque(maxlen=max(1, history))
        self._every = 5.0
        self._thread = Background(
            "memguard-pressure",
            self.handle_memory_pressure,
            lambda: self._every,
            failure="memguard: memory pressure check failed",
        )
        self._warning = 0.0
        self._critical = 0.0
        self._cooldown = 0.0
        self.configure(warning=warning, critical=critical, cooldown=cooldown)

    @property
    def warning(self) -> float:
        """Fraction of memory in use at which the level is WARNING."""
        return self._warning

    @property
    def critical(self) -> float:
        """Fraction of memory in use at which the level is CRITICAL."""
        return self._critical

    @property
    def cooldown(self) -> float:
        """Seconds after a run during which no new run starts unless forced."""
        return self._cooldown

    def configure(
        self,
        *,
        warning: float | None = None,
        critical: float | None = None,
        cooldown: float | None = None,
    ) -> None:
        """Change any of the fractions or the cooldown; refused when out of order."""
        new_warning = self._warning if warning is None else warning
        new_critical = self._critical if critical is None else critical
        new_cooldown = self._cooldown if cooldown is None else cooldown
        for label, value in (("warning", new_warning), ("critical", new_critical)):
            if isinstance(value, bool) or not 0 < value <= 1:
                raise PressureError(f"{label} must be a fraction in (0, 1], got {value!r}")
        if new_warning > new_critical:
            raise PressureError(
                f"warning {new_warning!r} is above critical {new_critical!r}"
                " (expected warning <= critical, e.g. 0.70 and 0.85)"
            )
        if new_cooldown < 0:
            raise PressureError(f"cooldown must be >= 0 seconds, got {new_cooldown!r}")
        with self._lock:
            self._warning, self._critical = float(new_warning), float(new_critical)
            self._cooldown = float(new_cooldown)

    def register(self, name: str, handler: Handler, *, weak: bool = True) -> None:
        """Register ``handler`` under ``name``.

        With ``weak=True`` a bound method does not keep its object alive: when the object
        dies the handler goes.  Plain functions are always held strongly.
        :raises HandlerExistsError: when ``name`` is taken by a live handler
        """
        if not callable(handler):
            raise PressureError(f"handler {name!r} is not callable: {handler!r}")
        with self._lock:
            self._purge()
            if name in self._handlers:
                raise HandlerExistsError(f"a handler named {name!r} is already registered")
            self._handlers[name] = _Registered(name, handler, weak)

    def unregister(self, name: str) -> bool:
        """Remove the handler ``name``; False when there was none."""
        with self._lock:
            return self._handlers.pop(name, None) is not None

    def handlers(self) -> list[str]:
        """Names of the live handlers, in registration order."""
        with self._lock:
            self._purge()
            return list(self._handlers)

    def _purge(self) -> None:
        """Drop handlers whose object died; the caller holds the lock."""
        dead = [name for name, entry in self._handlers.items() if entry.resolve() is None]
        for name in dead:
            del self._handlers[name]

    def fraction_used(self) -> float:
        """The share of memory in use, 0.0 to 1.0, read through ``memory``."""
        reading = self._memory()
        if isinstance(reading, tuple) and not hasattr(reading, "used"):
            used, total = reading
        else:  # an object with the two names (SystemMemory is a named tuple with more)
            used, total = reading.used, reading.total  # type: ignore[union-attr]
        return min(1.0, max(0.0, used / total)) if total > 0 else 0.0

    def level(self) -> Level:
        """The level of the memory in use now: OK, WARNING or CRITICAL."""
        return self.level_of(self.fraction_used())

    def level_of(self, fraction: float) -> Level:
        """The level for a ``fraction`` of memory in use."""
        if fraction >= self._critical:
            return Level.CRITICAL
        if fraction >= self._warning:
            return Level.WARNING
        return Level.OK

    def _begin(
        self, level: Level | None, force: bool
    ) -> tuple[PressureResponse | None, Level, float, list[tuple[str, Handler]]]:
        """Decide whether to run; when it does, claim the run and snapshot the handlers."""
        level = self.level() if level is None else Level(level)
        with self._lock:
            now = self._clock()
            if level <= Level.OK:
                return PressureResponse(level, False, reason="ok", time=now), level, now, []
            if not force and self._last_run is not None:
                elapsed = now - self._last_run
                if elapsed < self._cooldown:
                    response = PressureResponse(
                        level,
                        False,
                        reason="cooldown",
                        time=now,
                        retry_in=self._cooldown - elapsed,
                    )
                    return response, level, now, []
            self._last_run = now
            self._purge()
            chosen = [(n, h) for n, e in self._handlers.items() if (h := e.resolve()) is not None]
        return None, level, now, chosen

    def _finish(self, response: PressureResponse) -> PressureResponse:
        with self._lock:
            self._history.append(response)
        if response.ran:
            logger.info(
                "memory pressure %s: %d handler(s), %d bytes freed, %d error(s)",
                response.level,
                len(response.freed),
                response.total_freed,
                len(response.errors),
            )
        return response

    def handle_memory_pressure(
        self, level: Level | None = None, *, force: bool = False
    ) -> PressureResponse:
        """Run every handler at ``level`` (default: the level now), unless OK or cooling down.

        ``force`` skips the cooldown.  Async handlers are awaited on a private event loop
        (in a helper thread when this thread already runs one).
        """
        early, level, now, chosen = self._begin(level, force)
        if early is not None:
            return self._finish(early)
        freed: dict[str, int] = {}
        errors: dict[str, str] = {}
        pending = _call_all(chosen, level, freed, errors)
        if pending:
            for name, result in _run_blocking(_gather(pending)):
                _record_result(name, result, freed, errors)
        return self._finish(PressureResponse(level, True, freed, errors, None, now))

    async def ahandle_memory_pressure(
        self, level: Level | None = None, *, force: bool = False
    ) -> PressureResponse:
        """As :meth:`handle_memory_pressure`, awaiting async handlers on the running loop.

        Plain handlers are called directly in the loop's thread.
        """
        early, level, now, chosen = self._begin(level, force)
        if early is not None:
            return self._finish(early)
        freed: dict[str, int] = {}
        errors: dict[str, str] = {}
        pending = _call_all(chosen, level, freed, errors)
        if pending:
            for name, result in await _gather(pending):
                _record_result(name, result, freed, errors)
        return self._finish(PressureResponse(level, True, freed, errors, None, now))

    def history(self) -> list[PressureResponse]:
        """The latest responses, oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def last_run(self) -> float | None:
        """Clock time of the last run, or None."""
        return self._last_run

    def start(self, interval: float = 5.0) -> None:
        """Check the level every ``interval`` seconds in a named daemon thread.

        Calling it while the thread runs does nothing.
        """
        if interval <= 0:
            raise PressureError(f"interval must be > 0 seconds, got {interval!r}")
        if not self._thread.running:
            self._every = interval
        self._thread.start()


def _call_all(
    chosen: list[tuple[str, Handler]], level: Level, freed: dict[str, int], errors: dict[str, str]
) -> list[tuple[str, Awaitable[int | None]]]:
    """Call each handler; return the awaitables of async ones, to be awaited by the caller."""
    pending: list[tuple[str, Awaitable[int | None]]] = []
    try:
        for name, handler in chosen:
            outcome = _call(name, handler, level, errors)
            if inspect.isawaitable(outcome):
                pending.append((name, outcome))
            elif name not in errors:
                _record(name, outcome, freed, errors)
    except BaseException:
        # Something like KeyboardInterrupt: close what was created so nothing warns later.
        for _, awaitable in pending:
            close = getattr(awaitable, "close", None)
            if callable(close):
                close()
        raise
    return pending


def _call(name: str, handler: Handler, level: Level, errors: dict[str, str]) -> Any:
    try:
        return handler(level)
    except Exception as error:
        logger.exception("memguard: pressure handler %r failed", name)
        errors[name] = f"{type(error).__name__}: {error}"
        return None


def _record(name: str, result: object, freed: dict[str, int], errors: dict[str, str]) -> None:
    if result is None:
        freed[name] = 0
    elif isinstance(result, (int, float)) and not isinstance(result, bool) and result >= 0:
        freed[name] = int(result)
    else:
        message = f"returned {result!r}, expected bytes freed (an int >= 0) or None"
        logger.warning("memguard: pressure handler %r %s", name, message)
        errors[name] = message


def _record_result(
    name: str, result: object, freed: dict[str, int], errors: dict[str, str]
) -> None:
    if isinstance(result, Exception):
        logger.error("memguard: pressure handler %r failed", name, exc_info=result)
        errors[name] = f"{type(result).__name__}: {result}"
    else:
        _record(name, result, freed, errors)


async def _gather(pending: list[tuple[str, Awaitable[int | None]]]) -> list[tuple[str, object]]:
    import asyncio

    results = await asyncio.gather(*(a for _, a in pending), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    return [(name, result) for (name, _), result in zip(pending, results, strict=True)]


def _run_blocking(coro: Any) -> list[tuple[str, object]]:
    """Run ``coro`` to completion from synchronous code, even inside a running loop."""
    import asyncio  # only when an async handler exists: keeps this module cheap to import

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        result: list[tuple[str, object]] = asyncio.run(coro)
        return result
    box: list[list[tuple[str, object]]] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            box.append(asyncio.run(coro))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, name="memguard-pressure-async")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box[0]


_DEFAULT_LOCK: Final = threading.Lock()
_default: MemoryPressureCoordinator | None = None


def get_memory_pressure_coordinator() -> MemoryPressureCoordinator:
    """The process-wide coordinator, built on first use with the default settings."""
    global _default
    coordinator = _default
    if coordinator is None:
        with _DEFAULT_LOCK:
            if _default is None:
                _default = MemoryPressureCoordinator()
            coordinator = _default
    return coordinator


def current_memory_pressure_coordinator() -> MemoryPressureCoordinator | None:
    """The process-wide coordinator if it was built, without building it."""
    return _default


def reset_memory_pressure_coordinator() -> None:
    """Stop and forget the process-wide coordinator (for tests)."""
    global _default
    with _DEFAULT_LOCK:
        coordinator, _default = _default, None
    if coordinator is not None:
        coordinator.stop()
