"""Memory for services: per-request middleware (ASGI 3 and WSGI) and status endpoints.

Pure ASGI/WSGI: no web framework is imported.  :class:`MemoryMonitorMiddleware` and
:class:`WSGIMemoryMonitorMiddleware` measure RSS around each request;
:func:`memory_app` serves memory status and control routes under a prefix.
"""

from __future__ import annotations

from .asgi import MemoryMonitorMiddleware
from .endpoints import MemoryApp, memory_app
from .recorder import (
    OTHER_ROUTE,
    UNMATCHED_ROUTE,
    RequestRecord,
    RequestRecorder,
    WebConfigError,
)
from .wsgi import WSGIMemoryMonitorMiddleware

__all__ = [
    "OTHER_ROUTE",
    "UNMATCHED_ROUTE",
    "MemoryApp",
    "MemoryMonitorMiddleware",
    "RequestRecord",
    "RequestRecorder",
    "WSGIMemoryMonitorMiddleware",
    "WebConfigError",
    "memory_app",
]
