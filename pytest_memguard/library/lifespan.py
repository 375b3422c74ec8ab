"""``start_memory_cleanup()`` / ``stop_memory_cleanup()``: the automatic mode of
:class:`~.diagnostics.MemoryDiagnostics` for an app's lifespan (startup and shutdown).

One process-wide pair: a second start before the stop returns the running diagnostics.
"""

from __future__ import annotations

import asyncio
import threading

from .diagnostics import MemoryDiagnostics

__all__ = ["start_memory_cleanup", "stop_memory_cleanup"]

_lifespan: list[tuple[MemoryDiagnostics, bool]] = []
_lifespan_lock = threading.Lock()


async def start_memory_cleanup(
    diagnostics: MemoryDiagnostics | None = None,
    *,
    interval: float = 60.0,
    auto_cleanup: bool = True,
    threshold: int | str | None = None,
    cooldown: float = 300.0,
    gc_interval: float | None = None,
) -> MemoryDiagnostics:
    """Start automatic mode for an app's lifespan (startup); returns the diagnostics used.

    :param diagnostics: default: one built over the process-wide coordinator and caches
        (closed by :func:`stop_memory_cleanup`)
    :param gc_interval: seconds between ``gc.collect()`` calls (None: only after cleanups)

    The other keywords are those of :meth:`MemoryDiagnostics.start`.  A second call
    before :func:`stop_memory_cleanup` returns the running diagnostics unchanged.
    """
    with _lifespan_lock:
        if _lifespan:
            return _lifespan[0][0]
        owned = diagnostics is None
        if diagnostics is None:
            diagnostics = MemoryDiagnostics()
        diagnostics.start(
            interval=interval,
            auto_cleanup=auto_cleanup,
            threshold=threshold,
            cooldown=cooldown,
            gc_interval=gc_interval,
        )
        _lifespan.append((diagnostics, owned))
        return diagnostics


async def stop_memory_cleanup() -> bool:
    """Stop what :func:`start_memory_cleanup` started (shutdown); False if nothing ran.

    The thread is joined in a worker thread, so the event loop is not blocked.
    """
    with _lifespan_lock:
        if not _lifespan:
            return False
        diagnostics, owned = _lifespan.pop()
    await asyncio.get_running_loop().run_in_executor(None, diagnostics.stop)
    if owned:
        diagnostics.close()
    return True
