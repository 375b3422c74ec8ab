"""Collections that cannot grow without bound, a windowed metrics recorder, and singletons.

Every class here is thread-safe: one lock per instance guards each operation, and
iteration walks a copy taken under that lock, so another thread may mutate meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, MutableMapping, MutableSequence
from typing import Any, ClassVar, Final, TypeVar, final, overload

from ..errors import MemguardError

__all__ = [
    "BoundedDict",
    "BoundedError",
    "BoundedList",
    "MetricsCollector",
    "SingletonMeta",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class BoundedError(MemguardError, ValueError):
    """A bound that cannot work, such as ``maxlen=0``."""


def _check_maxlen(maxlen: int, name: str = "maxlen") -> int:
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
        raise BoundedError(f"{name} must be a positive int, got {maxlen!r} (e.g. {name}=1000)")
    return maxlen


@final
class BoundedList(MutableSequence[T]):
    """A list that keeps at most ``maxlen`` items: adding past it drops the oldest (index 0).

    ``insert(i, x)`` into a full list inserts, then drops index 0, exactly as a list
    trimmed from the front would (so ``insert(0, x)`` into a full list keeps nothing new).
    ``dropped`` counts the items dropped so far.  Thread-safe.
    """

    __slots__ = ("_dropped", "_items", "_lock", "_maxlen")

    def __init__(self, maxlen: int, items: Iterable[T] = ()) -> None:
        self._maxlen: Final = _check_maxlen(maxlen)
        self._items: deque[T] = deque(maxlen=self._maxlen)
        self._lock = threading.Lock()
        self._dropped = 0
        self.extend(items)

    @property
    def maxlen(self) -> int:
        """The most items kept."""
        return self._maxlen

    @property
    def dropped(self) -> int:
        """How many items were dropped to keep the bound."""
        return self._dropped

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        with self._lock:
            if isinstance(index, slice):
                return list(self._items)[index]
            return self._items[index]

    @overload
    def __setitem__(self, index: int, value: T) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...
    def __setitem__(self, index: int | slice, value: T | Iterable[T]) -> None:
        with self._lock:
            if isinstance(index, slice):
                items = list(self._items)
                items[index] = value  # type: ignore[assignment]
                self._replace(items)
            else:
                self._items[index] = value  # type: ignore[assignment]

    def __delitem__(self, index: int | slice) -> None:
        with self._lock:
            if isinstance(index, slice):
                items = list(self._items)
                del items[index]
                self._replace(items)
            else:
                del self._items[index]

    def insert(self, index: int, value: T) -> None:
        """Insert ``value`` before ``index``; a full list then drops its oldest item."""
        with self._lock:
            items = list(self._items)
            items.insert(index, value)
            self._replace(items)

    def append(self, value: T) -> None:
        """Add ``value`` at the end, dropping the oldest item when full (O(1))."""
        with self._lock:
            if len(self._items) == self._maxlen:
                self._dropped += 1
            self._items.append(value)

    def extend(self, values: Iterable[T]) -> None:
        """Append every value in turn."""
        for value in list(values):
            self.append(value)

    def clear(self) -> None:
        """Remove every item (not counted as dropped)."""
        with self._lock:
            self._items.clear()

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            return iter(list(self._items))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BoundedList):
            return list(self) == list(other)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BoundedList({self._maxlen}, {list(self)!r})"

    def _replace(self, items: list[T]) -> None:
        """Keep the newest ``maxlen`` of ``items``; the caller holds the lock."""
        excess = max(0, len(items) - self._maxlen)
        self._dropped += excess
        self._items = deque(items[excess:], maxlen=self._maxlen)


@final
class BoundedDict(MutableMapping[K, V]):
    """A dict that keeps at most ``maxlen`` keys: a new key past it drops the oldest inserted.

    Assigning to a key already present keeps its place (as ``dict`` does).  ``dropped``
    counts the keys dropped so far.  Thread-safe.
    """

    __slots__ = ("_data", "_dropped", "_lock", "_maxlen")

    def __init__(self, maxlen: int, items: Iterable[tuple[K, V]] = ()) -> None:
        self._maxlen: Final = _check_maxlen(maxlen)
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._dropped = 0
        for key, value in items:
            self[key] = value

    @property
    def maxlen(self) -> int:
        """The most keys kept."""
        return self._maxlen

    @property
    def dropped(self) -> int:
        """How many keys were dropped to keep the bound."""
        return self._dropped

    def __getitem__(self, key: K) -> V:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._maxlen:
                self._data.popitem(last=False)
                self._dropped += 1

    def __delitem__(self, key: K) -> None:
        with self._lock:
            del self._data[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._data))

    def clear(self) -> None:
        """Remove every key (not counted as dropped)."""
        with self._lock:
            self._data.clear()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (BoundedDict, dict)):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        with self._lock:
            shown = dict(self._data)
        return f"BoundedDict({self._maxlen}, {shown!r})"


@final
class MetricsCollector:
    """Records numbers by name and summarises the last ``maxlen`` values of each.

    At most ``max_names`` names are kept: recording a new name past it forgets the name
    recorded least recently, so a stream of distinct names cannot grow it.  Thread-safe.
    """

    __slots__ = ("_lock", "_max_names", "_maxlen", "_series")

    def __init__(self, maxlen: int = 1000, *, max_names: int = 1024) -> None:
        self._maxlen: Final = _check_maxlen(maxlen)
        self._max_names: Final = _check_maxlen(max_names, "max_names")
        self._series: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def maxlen(self) -> int:
        """Values kept per name."""
        return self._maxlen

    def record(self, name: str, value: float) -> None:
        """Add ``value`` to the window of ``name``."""
        number = float(value)
        with self._lock:
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = deque(maxlen=self._maxlen)
                if len(self._series) > self._max_names:
                    self._series.popitem(last=False)
            else:
                self._series.move_to_end(name)
            series.append(number)

    def values(self, name: str) -> list[float]:
        """The kept values of ``name``, oldest first (empty when never recorded)."""
        with self._lock:
            return list(self._series.get(name, ()))

    def names(self) -> list[str]:
        """The names with kept values, least recently recorded first."""
        with self._lock:
            return list(self._series)

    def summary(self, name: str) -> dict[str, float | int | None]:
        """``count``, ``min``, ``max``, ``mean`` and ``last`` over the kept window of ``name``.

        A name never recorded gives ``count`` 0 and ``None`` for the others.
        """
        values = self.values(name)
        if not values:
            return {"count": 0, "min": None, "max": None, "mean": None, "last": None}
        return {
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "last": values[-1],
        }

    def summaries(self) -> dict[str, dict[str, float | int | None]]:
        """The summary of every name."""
        return {name: self.summary(name) for name in self.names()}

    def clear(self, name: str | None = None) -> None:
        """Forget ``name``, or every name when None."""
        with self._lock:
            if name is None:
                self._series.clear()
            else:
                self._series.pop(name, None)


class SingletonMeta(type):
    """Metaclass giving each class one instance, created once even when threads race.

    Arguments of later calls are ignored: they return the first instance.  Subclasses get
    their own instance.  ``SingletonMeta.reset(cls)`` forgets it (for tests).
    """

    _instances: ClassVar[dict[type, Any]] = {}
    # Re-entrant: a singleton's __init__ may create another singleton.
    _lock: ClassVar[threading.RLock] = threading.RLock()

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = SingletonMeta._instances.get(cls)
        if instance is None:
            with SingletonMeta._lock:
                instance = SingletonMeta._instances.get(cls)
                if instance is None:
                    instance = super().__call__(*args, **kwargs)
                    SingletonMeta._instances[cls] = instance
        return instance

    def reset(cls) -> None:
        """Forget the instance of ``cls`` so the next call creates a new one."""
        with SingletonMeta._lock:
            SingletonMeta._instances.pop(cls, None)

    def has_instance(cls) -> bool:
        """True when the instance of ``cls`` exists."""
        return cls in SingletonMeta._instances

    @staticmethod
    def reset_all() -> None:
        """Forget every singleton instance (for tests)."""
        with SingletonMeta._lock:
            SingletonMeta._instances.clear()
