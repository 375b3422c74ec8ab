"""What is using memory now, what grows, and a last-resort cleanup.

Allocation sites come from :mod:`tracemalloc`, which this class never starts on its
own: tracing costs memory and time in every allocation.  Call :meth:`start_tracing`
(or pass ``trace=True``) to opt in; while tracing is off :meth:`top_allocations` and
:meth:`leak_candidates` return empty lists and :meth:`diagnostics` says why.

Nothing runs in the background until :meth:`MemoryDiagnostics.start` turns the automatic
mode on (:mod:`.automatic`).
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, final

import psutil

from ..core.levels import Level, MemoryThresholds
from ..core.sizes import format_size
from ..probe.process import RssReader, trim_heap
from ..probe.system import SystemMemory

if TYPE_CHECKING:
    from .automatic import AutomaticMode
    from .cache import CacheManager
    from .monitor import ProcessMonitor
    from .pressure import MemoryPressureCoordinator

__all__ = ["AllocationSite", "LeakCandidate", "MemoryDiagnostics"]

TRACING_OFF: Final = "tracemalloc is not tracing; call start_tracing() or pass trace=True"
# Frames of the tracer itself and of the import machinery are noise, never the user's.
_FILTERS: Final = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


@dataclass(frozen=True)
class AllocationSite:
    """Memory traced at one ``file:line``: ``size`` bytes in ``count`` blocks."""

    file: str
    line: int
    size: int
    count: int

    @property
    def where(self) -> str:
        """``"file:line"``."""
        return f"{self.file}:{self.line}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``where``."""
        return {"where": self.where, **asdict(self)}


@dataclass(frozen=True)
class LeakCandidate:
    """A site that grew in every interval of the last snapshots: ``growth`` bytes in all."""

    file: str
    line: int
    size: int
    growth: int
    count_growth: int
    snapshots: int

    @property
    def where(self) -> str:
        """``"file:line"``."""
        return f"{self.file}:{self.line}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``where``."""
        return {"where": self.where, **asdict(self)}


_Sites = dict[tuple[str, int], tuple[int, int]]


def _read_system() -> SystemMemory:
    from ..probe.system import read_system_memory

    return read_system_memory()


@final
class MemoryDiagnostics:
    """Profiles this process and the library's parts; runs emergency cleanups.

    :param coordinator: default the process-wide one; its cooldown also governs
        :meth:`emergency_cleanup`
    :param cache_manager: default the process-wide one
    :param monitor: a :class:`ProcessMonitor` whose processes :meth:`diagnostics` lists
    :param thresholds: thresholds of this process's RSS (default: ``MEMGUARD_*`` env)
    :param trace: start tracemalloc on the first call that needs it (and stop it on
        :meth:`stop_tracing`)
    :param snapshots: snapshots kept for :meth:`leak_candidates`
    :param history: entries kept for :meth:`history`

    Thread-safe.
    """

    def __init__(
        self,
        coordinator: MemoryPressureCoordinator | None = None,
        cache_manager: CacheManager | None = None,
        monitor: ProcessMonitor | None = None,
        thresholds: MemoryThresholds | None = None,
        *,
        trace: bool = False,
        snapshots: int = 3,
        history: int = 100,
        clock: Callable[[], float] = time.monotonic,
        memory: Callable[[], SystemMemory] | None = None,
        rss: Callable[[], int] | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._cache_manager = cache_manager
        self.monitor = monitor
        self.thresholds = thresholds if thresholds is not None else MemoryThresholds.from_env()
        self._trace = trace
        self._started_tracing = False
        self._snapshots: deque[tuple[float, _Sites]] = deque(maxlen=max(2, snapshots))
        self._history: deque[dict[str, Any]] = deque(maxlen=max(1, history))
        self._clock = clock
        self._memory = memory or _read_system
        self._own_reader = RssReader() if rss is None else None
        self._rss: Callable[[], int] = rss or self._own_reader  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._automatic: AutomaticMode | None = None

    def close(self) -> None:
        """Stop the automatic mode and tracing if this started them, release the RSS reader."""
        self.stop()
        self.stop_tracing()
        if self._own_reader is not None:
            self._own_reader.close()

    def __enter__(self) -> MemoryDiagnostics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def coordinator(self) -> MemoryPressureCoordinator:
        """The coordinator used (the process-wide one unless given)."""
        if self._coordinator is None:
            from .pressure import get_memory_pressure_coordinator

            self._coordinator = get_memory_pressure_coordinator()
        return self._coordinator

    @property
    def cache_manager(self) -> CacheManager:
        """The cache manager profiled (the process-wide one unless given)."""
        if self._cache_manager is None:
            from .cache import get_cache_manager

            self._cache_manager = get_cache_manager()
        return self._cache_manager

    @property
    def automatic(self) -> AutomaticMode:
        """The automatic mode's settings and state (built on first use, not started)."""
        with self._lock:
            if self._automatic is None:
                from .automatic import AutomaticMode

                self._automatic = AutomaticMode(self, self._clock)
            return self._automatic

    def start(
        self,
        interval: float = 60.0,
        auto_cleanup: bool = True,
        threshold: int | str | None = None,
        cooldown: float = 300.0,
        *,
        gc_interval: float | None = None,
    ) -> None:
        """Profile every ``interval`` seconds in a background thread; clean up past a threshold.

        :param interval: seconds between profiles (each kept in the bounded :meth:`history`)
        :param auto_cleanup: run the coordinator's handlers at CRITICAL and ``gc.collect()``
            when this process's RSS passes ``threshold``
        :param threshold: bytes, a size string or a percentage of usable memory; default
            the critical threshold of :attr:`thresholds` (else its warning, else its max)
        :param cooldown: seconds between two automatic cleanups (the coordinator's own
            cooldown applies as well)
        :param gc_interval: also call ``gc.collect()`` every so many seconds (None: off)

        Calling it while running changes the settings.  :meth:`stop` (or :meth:`close`)
        stops the thread.
        """
        automatic = self.automatic
        automatic.configure(
            interval=interval,
            auto_cleanup=auto_cleanup,
            threshold=threshold,
            cooldown=cooldown,
            gc_interval=gc_interval,
        )
        automatic.clear(threshold=threshold is None, gc_interval=gc_interval is None)
        automatic.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the automatic mode's thread and join it (nothing when it is off)."""
        automatic = self._automatic
        if automatic is not None:
            automatic.stop(timeout)

    @property
    def running(self) -> bool:
        """True while the automatic mode runs."""
        automatic = self._automatic
        return automatic is not None and automatic.running

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Add an entry of ``kind`` to :meth:`history` and return it (``time`` by the clock)."""
        entry = {"time": self._clock(), "kind": kind, **fields}
        with self._lock:
            self._history.append(entry)
        return entry

    def _remember(self, kind: str, **fields: Any) -> None:
        self.record(kind, **fields)

    def history(self) -> list[dict[str, Any]]:
        """Past profiles, snapshots and cleanups (``kind``), oldest first; ``time`` by the clock."""
        with self._lock:
            return list(self._history)

    def system_memory(self) -> SystemMemory:
        """The memory this process can use (the cgroup's when there is one), in bytes."""
        return self._memory()

    def profile(self) -> dict[str, Any]:
        """Process RSS and its level, system memory and its source, caches, pressure level.

        Sizes are bytes; the profile is also kept in :meth:`history`.
        """
        rss = self._rss()
        system = self.system_memory()
        fraction = system.used / system.total if system.total else 0.0
        pressure = self.coordinator.level_of(fraction)
        metrics = self.cache_manager.stats()
        caches = {name: m.as_dict() for name, m in metrics.items()}
        result = {
            "pid": os.getpid(),
            "rss": rss,
            "rss_human": format_size(rss),
            "rss_level": str(self.thresholds.level(rss)),
            "thresholds": self._thresholds(),
            "system": {
                "total": system.total,
                "available": system.available,
                "used": system.used,
                "fraction_used": fraction,
                "source": system.source,
                "cgroup": system.cgroup,
            },
            "caches": caches,
            "cache_bytes": sum(m.memory_bytes for m in metrics.values()),
            "pressure": {"level": str(pressure), "fraction_used": fraction},
            "tracing": tracemalloc.is_tracing(),
        }
        self._remember("profile", rss=rss, available=system.available, pressure=str(pressure))
        return result

    def _thresholds(self) -> dict[str, int | None]:
        t = self.thresholds
        return {"warning": t.warning, "critical": t.critical, "max": t.max}

    def start_tracing(self, frames: int = 1) -> None:
        """Start tracemalloc if it is off; :meth:`stop_tracing` stops only what this started."""
        if not tracemalloc.is_tracing():
            tracemalloc.start(frames)
            self._started_tracing = True

    def stop_tracing(self) -> None:
        """Stop tracemalloc if this object started it, and forget the snapshots."""
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False
        with self._lock:
            self._snapshots.clear()

    def _tracing(self) -> bool:
        if not tracemalloc.is_tracing() and self._trace:
            self.start_tracing()
        return tracemalloc.is_tracing()

    def _sites(self) -> _Sites:
        snapshot = tracemalloc.take_snapshot().filter_traces(_FILTERS)
        sites: _Sites = {}
        for stat in snapshot.statistics("lineno"):
            frame = stat.traceback[0]
            sites[(frame.filename, frame.lineno)] = (stat.size, stat.count)
        return sites

    def top_allocations(self, n: int = 10) -> list[AllocationSite]:
        """The ``n`` sites holding the most traced memory, largest first ([] when not tracing)."""
        if not self._tracing():
            return []
        ranked = sorted(self._sites().items(), key=lambda item: item[1][0], reverse=True)
        return [AllocationSite(f, line, size, count) for (f, line), (size, count) in ranked[:n]]

    def take_snapshot(self) -> dict[str, Any] | None:
        """Keep the traced size of every site for :meth:`leak_candidates`; None when not tracing.

        Only per-site totals are kept, not the traces.
        """
        if not self._tracing():
            return None
        sites = self._sites()
        now = self._clock()
        with self._lock:
            self._snapshots.append((now, sites))
            kept = len(self._snapshots)
        traced = sum(size for size, _ in sites.values())
        self._remember("snapshot", traced=traced, sites=len(sites))
        return {"time": now, "traced": traced, "sites": len(sites), "snapshots": kept}

    def leak_candidates(self, min_growth: int = 1024) -> list[LeakCandidate]:
        """Sites whose traced size grew between each pair of the kept snapshots.

        At least two snapshots are needed; only sites that grew in every interval and by
        ``min_growth`` bytes or more in all are listed, largest growth first.
        """
        with self._lock:
            snapshots = [sites for _, sites in self._snapshots]
        if len(snapshots) < 2:
            return []
        found: list[LeakCandidate] = []
        for site, (size, count) in snapshots[-1].items():
            sizes = [s.get(site, (0, 0))[0] for s in snapshots]
            if not all(a < b for a, b in itertools.pairwise(sizes)):
                continue
            growth = sizes[-1] - sizes[0]
            if growth < min_growth:
                continue
            count_growth = count - snapshots[0].get(site, (0, 0))[1]
            found.append(
                LeakCandidate(site[0], site[1], size, growth, count_growth, len(snapshots))
            )
        return sorted(found, key=lambda c: c.growth, reverse=True)

    def diagnostics(self, n: int = 10) -> dict[str, Any]:
        """Configuration, profile, tracked processes, top allocations, leak candidates, history."""
        coordinator = self.coordinator
        monitor = self.monitor
        processes: dict[str, Any] = {}
        if monitor is not None:
            for ident in monitor.tracked():
                try:
                    processes[ident] = monitor.stats(ident)
                except KeyError:  # untracked meanwhile
                    continue
        tracing = self._tracing()
        return {
            "configuration": {
                "thresholds": self._thresholds(),
                "pressure": {
                    "warning": coordinator.warning,
                    "critical": coordinator.critical,
                    "cooldown": coordinator.cooldown,
                    "handlers": coordinator.handlers(),
                },
                "monitor": None
                if monitor is None
                else {
                    "interval": monitor.interval,
                    "aggregate_limit": monitor.aggregate_limit,
                    "min_free": monitor.min_free,
                    "abort": monitor.abort,
                },
                "automatic": None if self._automatic is None else self._automatic.settings(),
            },
            "profile": self.profile(),
            "processes": processes,
            "tracemalloc": {"tracing": tracing, "note": None if tracing else TRACING_OFF},
            "top_allocations": [site.as_dict() for site in self.top_allocations(n)],
            "leak_candidates": [c.as_dict() for c in self.leak_candidates()],
            "pressure_history": [r.as_dict() for r in coordinator.history()],
            "history": self.history(),
        }

    def emergency_cleanup(self, force: bool = False) -> dict[str, Any]:
        """Run the coordinator at ABORT (caches empty themselves), ``gc.collect()``, trim
        the heap, reap zombies.

        The coordinator's cooldown applies unless ``force``: then nothing runs and the
        result says ``"reason": "cooldown"``.  ``freed`` is the bytes the handlers
        reported; ``rss_freed`` what the process's RSS actually dropped.
        """
        before = self._rss()
        # An emergency: every handler at its strongest (a cache sheds all, not three quarters).
        response = self.coordinator.handle_memory_pressure(Level.ABORT, force=force)
        if not response.ran:
            result: dict[str, Any] = {
                "ran": False,
                "reason": response.reason,
                "retry_in": response.retry_in,
                "freed": 0,
                "actions": [],
            }
            self._remember("cleanup", ran=False, reason=response.reason)
            return result
        actions = [
            f"ran {len(response.freed) + len(response.errors)} pressure handler(s) at abort, "
            f"{format_size(response.total_freed)} reported freed"
        ]
        actions += [f"handler {name!r} failed: {error}" for name, error in response.errors.items()]
        collected = gc.collect()
        actions.append(f"gc.collect() found {collected} unreachable object(s)")
        if trim_heap():
            actions.append("returned free heap memory to the OS (malloc_trim)")
        reaped = _reap_zombies()
        if reaped:
            actions.append(f"reaped {len(reaped)} zombie child process(es): {reaped}")
        after = self._rss()
        result = {
            "ran": True,
            "reason": None,
            "forced": force,
            "freed": response.total_freed,
            "handlers": dict(response.freed),
            "errors": dict(response.errors),
            "gc_collected": collected,
            "zombies_reaped": reaped,
            "rss_before": before,
            "rss_after": after,
            "rss_freed": max(0, before - after),
            "actions": actions,
        }
        self._remember(
            "cleanup", ran=True, freed=response.total_freed, rss_freed=max(0, before - after)
        )
        return result


def _reap_zombies() -> list[int]:
    """Wait for this process's children that already exited; returns their pids.

    A ``subprocess.Popen`` whose child is reaped here later reports exit status 0.
    """
    if not hasattr(os, "WNOHANG"):
        return []
    reaped = []
    try:
        children = psutil.Process().children()
    except (psutil.Error, OSError):
        return []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                continue
            pid, _ = os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError, OSError):
            continue
        if pid == child.pid:
            reaped.append(pid)
    return reaped
