"""A cache that can never grow without bound, the manager of named caches, and their sweeper.

:class:`BoundedCache` is LRU with a time to live, a bound on entries and one on bytes.
Expired entries are never returned; they are swept every ``cleanup_interval`` seconds
on access, and idle caches made with ``background=True`` are swept by one shared
cleaner thread (:class:`CacheSweeper`), never a thread per cache.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import asdict, dataclass
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final, overload

from ..core.levels import Level
from ..core.sizes import format_size, parse_size
from ..errors import MemguardError
from .background import Background, Threaded

if TYPE_CHECKING:
    from .pressure import MemoryPressureCoordinator

__all__ = [
    "BoundedCache",
    "CacheError",
    "CacheExistsError",
    "CacheManager",
    "CacheMetrics",
    "CacheSweeper",
    "deep_sizeof",
    "get_cache_manager",
    "get_cache_sweeper",
    "reset_cache_manager",
]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_NEVER: Final = math.inf
# Objects shared by everything: counted by nobody.
_OPAQUE: Final = (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType)
_ATOMIC: Final = (str, bytes, bytearray, int, float, complex, bool, type(None), memoryview)


class CacheError(MemguardError, ValueError):
    """Cache settings that cannot work; the message names the setting and its value."""


class CacheExistsError(CacheError, KeyError):
    """A cache of that name already exists in the manager."""

    __str__ = BaseException.__str__


def deep_sizeof(obj: object, *, limit: int = 100_000) -> int:
    """Estimate the bytes held by ``obj`` and what it contains, each object counted once.

    Follows dicts, lists, tuples, sets, deques and other iterables of the standard
    containers, instance ``__dict__`` and ``__slots__``; classes, modules and functions
    are shared and not counted.  Stops after ``limit`` objects (an estimate, not a bound).
    """
    if type(obj) in _ATOMIC:  # the common case, without the walk
        return sys.getsizeof(obj)
    seen: set[int] = set()
    stack = [obj]
    total = 0
    while stack and len(seen) < limit:
        item = stack.pop()
        ident = id(item)
        if ident in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(ident)
        total += sys.getsizeof(item)
        if isinstance(item, _ATOMIC):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, deque)):
            stack.extend(item)
        instance_dict = getattr(item, "__dict__", None)
        if isinstance(instance_dict, dict):
            stack.append(instance_dict)
        for klass in type(item).__mro__:
            for slot in klass.__dict__.get("__slots__", ()):
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                    value = getattr(item, slot, None)
                    if value is not None:
                        stack.append(value)
    return total


@dataclass(frozen=True)
class CacheMetrics:
    """Counters and sizes of one cache; bytes for sizes, ``pressure`` = bytes / byte bound.

    ``ttl`` (None: entries never expire) and ``cleanup_interval`` are the cache's
    settings, in seconds.
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    rejected: int
    size: int
    max_size: int
    memory_bytes: int
    max_memory_bytes: int
    hit_rate: float
    pressure: float
    ttl: float | None = None
    cleanup_interval: float = 60.0

    def as_dict(self) -> dict[str, int | float | None]:
        """A JSON-ready dict."""
        return asdict(self)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CacheError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


class BoundedCache(Generic[K, V]):
    """LRU cache with a TTL, at most ``max_size`` entries and ``max_memory`` bytes.

    :param max_size: entries kept; past it the least recently used goes
    :param max_memory: bytes (int or size string) no entry may exceed; when the bytes held
        pass ``pressure_threshold * max_memory``, least recently used entries go until
        they are back under it
    :param ttl: default seconds an entry lives (None: no expiry)
    :param cleanup_interval: seconds between sweeps of expired entries
    :param pressure_threshold: fraction (0-1] of ``max_memory`` that triggers eviction
    :param sizeof: bytes of a value; default :func:`deep_sizeof` of the key and value
    :param clock: monotonic seconds; injected by tests
    :param background: also sweep from the shared cleaner thread while this cache is idle

    Thread-safe (one lock per cache; ``sizeof`` runs outside it).
    """

    __slots__ = (
        "__weakref__",
        "_bytes",
        "_clock",
        "_data",
        "_earliest",
        "_evictions",
        "_expirations",
        "_hits",
        "_interval",
        "_lock",
        "_max_memory",
        "_max_size",
        "_misses",
        "_next_sweep",
        "_pressure_bytes",
        "_pressure_threshold",
        "_rejected",
        "_sizeof",
        "_ttl",
        "name",
    )

    def __init__(
        self,
        max_size: int = 500,
        max_memory: int | str = "50 MB",
        ttl: float | None = 300.0,
        cleanup_interval: float = 60.0,
        pressure_threshold: float = 0.8,
        sizeof: Callable[[V], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = False,
        name: str | None = None,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise CacheError(f"max_size must be a positive int of entries, got {max_size!r}")
        try:
            memory = parse_size(max_memory)
        except ValueError as error:
            raise CacheError(f"max_memory: {error}") from None
        if memory < 1:
            raise CacheError(f"max_memory must be at least 1 byte, got {max_memory!r}")
        if not isinstance(pressure_threshold, (int, float)) or not 0 < pressure_threshold <= 1:
            raise CacheError(
                f"pressure_threshold must be a fraction in (0, 1], got {pressure_threshold!r}"
            )
        self.name = name
        self._max_size: Final = max_size
        self._max_memory: Final = memory
        self._pressure_threshold: Final = float(pressure_threshold)
        self._pressure_bytes: Final = int(memory * pressure_threshold)
        self._ttl = None if ttl is None else _positive("ttl", ttl)
        self._interval: Final = _positive("cleanup_interval", cleanup_interval)
        self._sizeof = sizeof
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[K, tuple[V, int, float]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = self._expirations = self._rejected = 0
        self._earliest = _NEVER
        self._next_sweep = clock() + cleanup_interval
        if background:
            get_cache_sweeper().add(self)

    @property
    def max_size(self) -> int:
        """Entries kept at most."""
        return self._max_size

    @property
    def max_memory(self) -> int:
        """The byte bound."""
        return self._max_memory

    @property
    def ttl(self) -> float | None:
        """Default seconds an entry lives (None: no expiry)."""
        return self._ttl

    @property
    def cleanup_interval(self) -> float:
        """Seconds between sweeps of expired entries."""
        return self._interval

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the entries, as measured by ``sizeof``."""
        return self._bytes

    def _link(self, key: K, entry: tuple[V, int, float]) -> None:
        self._data[key] = entry
        self._bytes += entry[1]
        if entry[2] < self._earliest:
            self._earliest = entry[2]

    def _unlink(self, key: K) -> tuple[V, int, float]:
        entry = self._data.pop(key)
        self._bytes -= entry[1]
        return entry

    def _evict_lru(self, count: int) -> int:
        """Evict the ``count`` least recently used entries; returns the bytes freed."""
        freed = 0
        for _ in range(min(count, len(self._data))):
            freed += self._unlink(next(iter(self._data)))[1]
            self._evictions += 1
        return freed

    def _remove_expired(self, now: float) -> int:
        """Remove every expired entry and recompute the earliest expiry; lock held."""
        expired = [key for key, entry in self._data.items() if entry[2] <= now]
        for key in expired:
            self._unlink(key)
        self._expirations += len(expired)
        self._earliest = min((entry[2] for entry in self._data.values()), default=_NEVER)
        return len(expired)

    def _sweep(self, now: float) -> int:
        self._next_sweep = now + self._interval
        return self._remove_expired(now) if now >= self._earliest else 0

    def _shrink(self, now: float) -> None:
        """Restore both bounds, expired entries first, then least recently used (not the newest)."""
        if now >= self._earliest:
            self._remove_expired(now)
        excess = len(self._data) - self._max_size
        if excess > 0:
            self._evict_lru(excess)
        while self._bytes > self._pressure_bytes and len(self._data) > 1:
            self._evict_lru(1)

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        """The value of ``key`` (refreshing its LRU place), or ``default`` if absent or expired."""
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            entry = self._data.get(key)
            if entry is None:
                self._misses += 1
                return default
            if entry[2] <= now:
                self._unlink(key)
                self._expirations += 1
                self._misses += 1
                return default
            self._data.move_to_end(key)
            self._hits += 1
            return entry[0]

    def set(self, key: K, value: V, ttl: float | None = None) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the cache's TTL).

        Returns False, stores nothing and counts a rejection when the value alone is
        larger than ``max_memory``; any previous value of ``key`` is then dropped too.
        """
        lifetime = self._ttl if ttl is None else _positive("ttl", ttl)
        if self._sizeof is not None:
            size = int(self._sizeof(value))
            if size < 0:
                raise CacheError(f"sizeof returned {size} for {key!r}; expected bytes >= 0")
        else:
            size = deep_sizeof(key) + deep_sizeof(value)
        now = self._clock()
        expires = _NEVER if lifetime is None else now + lifetime
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            if key in self._data:
                self._unlink(key)
            if size > self._max_memory:
                self._rejected += 1
                logger.debug(
                    "cache %s: rejected %r of %s (bound %s)",
                    self.name,
                    key,
                    format_size(size),
                    format_size(self._max_memory),
                )
                return False
            self._link(key, (value, size, expires))
            if len(self._data) > self._max_size or self._bytes > self._pressure_bytes:
                self._shrink(now)
            return True

    def __setitem__(self, key: K, value: V) -> None:
        self.set(key, value)

    def __getitem__(self, key: K) -> V:
        marker: Any = _MISSING
        value = self.get(key, marker)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        lookup: Any = key  # any object may be asked about; only K can be present
        now = self._clock()
        with self._lock:
            entry = self._data.get(lookup)
            if entry is None:
                return False
            if entry[2] <= now:
                self._unlink(lookup)
                self._expirations += 1
                return False
            return True

    def __len__(self) -> int:
        """Live entries (expired ones are removed first)."""
        now = self._clock()
        with self._lock:
            if now >= self._earliest:
                self._remove_expired(now)
            return len(self._data)

    def __iter__(self) -> Iterator[K]:
        """Iterate over a snapshot of the live keys, least recently used first."""
        return iter(self.keys())

    def keys(self) -> list[K]:
        """Live keys, least recently used first."""
        now = self._clock()
        with self._lock:
            if now >= self._earliest:
                self._remove_expired(now)
            return list(self._data)

    def delete(self, key: K) -> bool:
        """Remove ``key``; False when it was not there."""
        with self._lock:
            if key not in self._data:
                return False
            self._unlink(key)
            return True

    def clear(self) -> None:
        """Remove every entry (not counted as evictions)."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self._earliest = _NEVER

    def cleanup(self) -> int:
        """Remove expired entries now; returns how many went."""
        now = self._clock()
        with self._lock:
            self._next_sweep = now + self._interval
            return self._remove_expired(now)

    def sweep_if_due(self) -> int:
        """Remove expired entries if ``cleanup_interval`` has passed since the last sweep."""
        now = self._clock()
        with self._lock:
            return self._sweep(now) if now >= self._next_sweep else 0

    def handle_memory_pressure(self, level: Level) -> int:
        """Shed entries for ``level``; returns the bytes freed.

        WARNING drops the least recently used half of the entries, CRITICAL three
        quarters (rounded down), ABORT all of them, OK nothing.
        """
        level = Level(level)
        with self._lock:
            count = len(self._data)
            if level >= Level.ABORT:
                drop = count
            elif level >= Level.CRITICAL:
                drop = count * 3 // 4
            elif level >= Level.WARNING:
                drop = count // 2
            else:
                return 0
            return self._evict_lru(drop) if drop else 0

    def metrics(self) -> CacheMetrics:
        """A consistent snapshot of the counters and sizes."""
        now = self._clock()
        with self._lock:
            if now >= self._earliest:
                self._remove_expired(now)
            lookups = self._hits + self._misses
            return CacheMetrics(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                rejected=self._rejected,
                size=len(self._data),
                max_size=self._max_size,
                memory_bytes=self._bytes,
                max_memory_bytes=self._max_memory,
                hit_rate=self._hits / lookups if lookups else 0.0,
                pressure=self._bytes / self._max_memory,
                ttl=self._ttl,
                cleanup_interval=self._interval,
            )

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<BoundedCache{label} {len(self._data)}/{self._max_size} entries, "
            f"{format_size(self._bytes)} of {format_size(self._max_memory)}>"
        )


_MISSING: Final = object()


@final
class CacheSweeper(Threaded):
    """One named daemon thread that sweeps expired entries of every registered cache.

    Caches are held weakly.  The thread wakes every smallest ``cleanup_interval``
    (wall-clock seconds, at least ``min_interval``) and sweeps each cache whose own
    clock says a sweep is due; it ends by itself when no cache is left, or on
    :meth:`stop`.  Thread-safe.
    """

    __slots__ = ("_caches", "_lock", "_min_interval", "_passes", "_thread", "name")

    def __init__(self, name: str = "memguard-cache-sweeper", *, min_interval: float = 0.01) -> None:
        self.name = name
        self._caches: weakref.WeakSet[BoundedCache[Any, Any]] = weakref.WeakSet()
        self._lock = threading.Lock()
        # Ends by itself when no cache is left (the interval is None then).
        self._thread = Background(
            name, self._pass, self._interval, failure="memguard: sweeping caches failed"
        )
        self._min_interval = min_interval
        self._passes = 0

    def add(self, cache: BoundedCache[Any, Any], *, start: bool = True) -> None:
        """Sweep ``cache`` from now on, starting the thread unless ``start`` is False."""
        with self._lock:
            self._caches.add(cache)
        if start:
            self.start()

    def discard(self, cache: BoundedCache[Any, Any]) -> None:
        """Stop sweeping ``cache``."""
        with self._lock:
            self._caches.discard(cache)

    def caches(self) -> list[BoundedCache[Any, Any]]:
        """The caches swept, alive now."""
        with self._lock:
            return list(self._caches)

    @property
    def passes(self) -> int:
        """Sweeping passes done by the thread so far."""
        return self._passes

    def sweep(self) -> int:
        """One pass over every cache that is due; returns the entries removed."""
        removed = 0
        for cache in self.caches():
            try:
                removed += cache.sweep_if_due()
            except Exception:
                logger.exception("memguard: sweeping cache %r failed", cache.name)
        return removed

    def _interval(self) -> float | None:
        intervals = [cache.cleanup_interval for cache in self.caches()]
        return max(self._min_interval, min(intervals)) if intervals else None

    def _pass(self) -> None:
        self.sweep()
        self._passes += 1

    def __enter__(self) -> CacheSweeper:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@final
class CacheManager:
    """Named :class:`BoundedCache` instances, their metrics and shared pressure handling.

    ``defaults`` are keyword arguments given to every :meth:`create_cache` (overridden
    by its own).  Thread-safe.
    """

    def __init__(self, **defaults: Any) -> None:
        self._defaults = defaults
        self._caches: dict[str, BoundedCache[Any, Any]] = {}
        self._lock = threading.Lock()

    def create_cache(self, name: str, **kwargs: Any) -> BoundedCache[Any, Any]:
        """Create and keep a cache named ``name`` (keywords as :class:`BoundedCache`;
        ``ttl_seconds`` is taken for ``ttl``).

        :raises CacheExistsError: when a cache of that name exists
        """
        if "ttl_seconds" in kwargs:
            if "ttl" in kwargs:
                raise TypeError("create_cache() takes ttl or ttl_seconds, not both")
            kwargs["ttl"] = kwargs.pop("ttl_seconds")
        options = {**self._defaults, **kwargs, "name": name}
        with self._lock:
            if name in self._caches:
                raise CacheExistsError(
                    f"a cache named {name!r} already exists; use get_cache({name!r}) "
                    "or remove_cache() first"
                )
            cache: BoundedCache[Any, Any] = BoundedCache(**options)
            self._caches[name] = cache
        return cache

    def get_cache(self, name: str) -> BoundedCache[Any, Any] | None:
        """The cache named ``name``, or None."""
        with self._lock:
            return self._caches.get(name)

    def remove_cache(self, name: str) -> bool:
        """Forget (and clear) the cache ``name``; False when there was none."""
        with self._lock:
            cache = self._caches.pop(name, None)
        if cache is None:
            return False
        cache.clear()
        get_cache_sweeper().discard(cache)
        return True

    def names(self) -> list[str]:
        """Names of the caches, in creation order."""
        with self._lock:
            return list(self._caches)

    def _all(self) -> list[BoundedCache[Any, Any]]:
        with self._lock:
            return list(self._caches.values())

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._caches

    def __len__(self) -> int:
        return len(self._caches)

    def stats(self) -> dict[str, CacheMetrics]:
        """The metrics of every cache, by name."""
        with self._lock:
            caches = dict(self._caches)
        return {name: cache.metrics() for name, cache in caches.items()}

    def get_cache_stats(self) -> dict[str, CacheMetrics]:
        """:meth:`stats`, under the name the design this library implements uses."""
        return self.stats()

    def memory_bytes(self) -> int:
        """Bytes held by all caches together."""
        return sum(cache.memory_bytes for cache in self._all())

    def clear_all(self) -> None:
        """Empty every cache (the caches stay)."""
        for cache in self._all():
            cache.clear()

    def cleanup_all(self) -> int:
        """Remove expired entries of every cache; returns how many went."""
        return sum(cache.cleanup() for cache in self._all())

    def handle_memory_pressure(self, level: Level) -> int:
        """Shed entries of every cache for ``level``; returns the bytes freed."""
        return sum(cache.handle_memory_pressure(level) for cache in self._all())


_DEFAULTS_LOCK: Final = threading.Lock()
_manager: CacheManager | None = None
_registered_with: weakref.ReferenceType[MemoryPressureCoordinator] | None = None
_sweeper: CacheSweeper | None = None

#: Name under which the process-wide manager registers with the process-wide coordinator.
PRESSURE_HANDLER_NAME: Final = "cache_manager"


def get_cache_manager() -> CacheManager:
    """The process-wide manager, built on first use.

    It registers its ``handle_memory_pressure`` with the process-wide coordinator (and
    registers again if that coordinator was reset).
    """
    global _manager, _registered_with
    from .pressure import get_memory_pressure_coordinator

    with _DEFAULTS_LOCK:
        if _manager is None:
            _manager = CacheManager()
        manager = _manager
        registered = _registered_with() if _registered_with is not None else None
        coordinator = get_memory_pressure_coordinator()
        if registered is not coordinator:
            coordinator.unregister(PRESSURE_HANDLER_NAME)
            coordinator.register(PRESSURE_HANDLER_NAME, manager.handle_memory_pressure)
            _registered_with = weakref.ref(coordinator)
    return manager


def get_cache_sweeper() -> CacheSweeper:
    """The shared cleaner of every cache made with ``background=True``."""
    global _sweeper
    with _DEFAULTS_LOCK:
        if _sweeper is None:
            _sweeper = CacheSweeper()
        return _sweeper


def reset_cache_manager() -> None:
    """Forget the process-wide manager and stop the shared cleaner (for tests)."""
    global _manager, _registered_with, _sweeper
    from .pressure import current_memory_pressure_coordinator

    with _DEFAULTS_LOCK:
        manager, _manager = _manager, None
        registered = _registered_with() if _registered_with is not None else None
        _registered_with = None
        sweeper, _sweeper = _sweeper, None
    if manager is not None:
        manager.clear_all()
    if registered is not None and registered is current_memory_pressure_coordinator():
        registered.unregister(PRESSURE_HANDLER_NAME)
    if sweeper is not None:
        sweeper.stop()


def __getattr__(name: str) -> Any:
    # PEP 562: ``cache_manager`` is built on first access, not at import.
    if name == "cache_manager":
        return get_cache_manager()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
