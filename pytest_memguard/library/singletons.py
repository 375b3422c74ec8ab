"""``AgentSingleton``: a base class for one-per-process services, beside ``SingletonMeta``.

    class Embeddings(AgentSingleton):
        def _setup(self) -> None:
            self.model = load_model()        # runs once, on the first Embeddings()

    Embeddings() is Embeddings()             # True
    AgentSingleton.instance_stats()          # {"instances": 1, "classes": {...}}

Each subclass has its own instance (a subclass of a subclass too).  ``_setup(*args,
**kwargs)`` gets the arguments of the first call; later calls return the instance and
are counted.  ``SingletonMeta.reset(cls)`` forgets an instance (for tests).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, ClassVar

from .bounded import SingletonMeta

__all__ = ["AgentSingleton"]


class _CountingMeta(SingletonMeta):
    """SingletonMeta that counts the calls of each class (created or returned)."""

    _calls: ClassVar[weakref.WeakKeyDictionary[type, int]] = weakref.WeakKeyDictionary()
    _calls_lock: ClassVar[threading.Lock] = threading.Lock()

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        with _CountingMeta._calls_lock:
            _CountingMeta._calls[cls] = _CountingMeta._calls.get(cls, 0) + 1
        return super().__call__(*args, **kwargs)


class AgentSingleton(metaclass=_CountingMeta):
    """A base whose ``_setup()`` runs once per class; see the module docstring.

    Override ``_setup``, not ``__init__``.  Creation is thread-safe: threads racing for the
    first instance get the same one, and ``_setup`` runs once.  Thread-safety of what
    ``_setup`` builds is the subclass's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        self.created_at = time.time()
        self._setup(*args, **kwargs)
        self.setup_seconds = time.perf_counter() - started

    def _setup(self, *args: Any, **kwargs: Any) -> None:
        """Build what the instance holds; runs once per class.  Override it."""

    @staticmethod
    def instance_stats() -> dict[str, Any]:
        """Live instances of AgentSingleton subclasses: ``instances`` (count) and
        ``classes``: qualified name -> ``calls`` (since the first, resets included),
        ``created_at`` (epoch seconds), ``setup_seconds``."""
        live = {
            cls: instance
            for cls, instance in list(SingletonMeta._instances.items())
            if isinstance(instance, AgentSingleton)
        }
        with _CountingMeta._calls_lock:
            calls = dict(_CountingMeta._calls)
        classes = {
            f"{cls.__module__}.{cls.__qualname__}": {
                "calls": calls.get(cls, 0),
                "created_at": getattr(instance, "created_at", None),
                "setup_seconds": getattr(instance, "setup_seconds", None),
            }
            for cls, instance in live.items()
        }
        return {"instances": len(live), "classes": classes}
