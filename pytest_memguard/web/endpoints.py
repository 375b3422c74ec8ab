"""``memory_app``: memory status and control routes as a small ASGI app, to mount anywhere.

It answers to the path relative to its mount point (``root_path``; under WSGI, where
``SCRIPT_NAME`` ends), speaks JSON, and takes no file name, module or code from a request.
``HEAD`` answers as ``GET`` without the body.  ``POST`` routes need a bearer token, and
so do ``GET /profile`` and ``GET /diagnostics`` (file paths, process details) when the
app has one; ``GET /status`` stays open for health checks.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, final

from .asgi import Receive, Scope, Send
from .control import (
    Refused,
    Response,
    authorize,
    check_cleanup,
    check_settings,
    error,
    invalid,
    parse_body,
    read_asgi_body,
    read_wsgi_body,
)
from .recorder import RequestRecorder, WebConfigError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..library.cache import CacheManager
    from ..library.diagnostics import MemoryDiagnostics
    from ..library.pressure import MemoryPressureCoordinator

__all__ = ["MAX_BODY", "PROTECTED", "MemoryApp", "Monitored", "memory_app"]

logger = logging.getLogger(__name__)

#: Largest request body accepted, in bytes (413 above).
MAX_BODY: Final = 16 * 1024
_ROUTES: Final = {
    "/status": "GET",
    "/profile": "GET",
    "/diagnostics": "GET",
    "/cache/metrics": "GET",
    "/requests": "GET",
    "/cleanup": "POST",
    "/configure": "POST",
}
#: GET routes that need the token when the app has one.
PROTECTED: Final = frozenset({"/profile", "/diagnostics"})
_T = TypeVar("_T")
#: What the ``Allow`` header of a 405 lists for a route of each method.
_ALLOW: Final = {"GET": "GET, HEAD", "POST": "POST"}


class Monitored(Protocol):
    """A memory middleware: :class:`MemoryMonitorMiddleware` or its WSGI twin."""

    @property
    def recorder(self) -> RequestRecorder: ...


@final
class MemoryApp:
    """The ASGI app built by :func:`memory_app`; :meth:`wsgi` is the same app under WSGI.

    See the README for its routes.
    """

    def __init__(
        self,
        token: str | None,
        middleware: Monitored | None,
        diagnostics: MemoryDiagnostics,
        *,
        owns_diagnostics: bool,
        max_body: int = MAX_BODY,
    ) -> None:
        self._token = None if token is None else token.encode("utf-8")
        self.middleware = middleware
        self.diagnostics = diagnostics
        self.coordinator: MemoryPressureCoordinator = diagnostics.coordinator
        self.cache_manager: CacheManager = diagnostics.cache_manager
        self._owns_diagnostics = owns_diagnostics
        self._started_automatic = False
        self.max_body = max_body

    def close(self) -> None:
        """Release what the app built or started itself: its :class:`MemoryDiagnostics`,
        the automatic mode a ``configure`` turned on."""
        if self._started_automatic:
            self.diagnostics.stop()
        if self._owns_diagnostics:
            self.diagnostics.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":  # a websocket: refused, the handshake gets a 403
            await send({"type": "websocket.close", "code": 1008})
            return
        path, root = str(scope.get("path", "/")), str(scope.get("root_path", ""))
        if root and path.startswith(root):  # servers put the mount point in ``path`` too
            path = path[len(root) :]
        method = str(scope.get("method", "GET"))
        try:
            response = await self._respond(method, _normal(path), scope, receive)
        except Refused as refused:
            response = refused.response
        except Exception as failure:
            response = _failed(path, failure)
        status, headers, body = _encode(response)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def _guard(self, path: str, authorization: bytes) -> None:
        """Refuse a request to a protected ``GET`` route without the token (when there is one)."""
        if path in PROTECTED and self._token is not None:
            authorize(self._token, authorization)

    async def _respond(self, method: str, path: str, scope: Scope, receive: Receive) -> Response:
        if self._match(method, path) == "GET":
            self._guard(path, _header(scope, b"authorization"))
            return 200, await _offload(self._reader(path)), []
        authorize(self._token, _header(scope, b"authorization"))
        data = parse_body(await read_asgi_body(scope, receive, self.max_body))
        return await _offload(lambda: self._post(path, data))

    def wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The same routes as a WSGI (PEP 3333) app, relative to where ``SCRIPT_NAME`` ends.

        Mount it in Flask with ``DispatcherMiddleware(app.wsgi_app, {"/memory": api.wsgi})``.
        Call :meth:`close` at shutdown: WSGI has no lifespan to do it.
        """
        method = str(environ.get("REQUEST_METHOD", "GET"))
        given = str(environ.get("HTTP_AUTHORIZATION", ""))  # PEP 3333: latin-1 decoded
        status, headers, body = self.respond(
            method,
            str(environ.get("PATH_INFO", "")),
            given.encode("latin-1", "replace"),
            lambda: read_wsgi_body(environ, self.max_body),
        )
        native = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        start_response(f"{status} {HTTPStatus(status).phrase}", native)
        return [b"" if method == "HEAD" else body]

    def respond(
        self, method: str, path: str, authorization: bytes, body: Callable[[], bytes]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Answer one request synchronously: status, headers and JSON body (for adapters).

        ``path`` is relative to the mount point; ``authorization`` is the header's value
        (``b""`` when absent); ``body()`` is called only once the token has been checked.
        The body is returned for ``HEAD`` too: the adapter drops it.
        """
        path = _normal(path)
        try:
            if self._match(method, path) == "GET":
                self._guard(path, authorization)
                response: Response = 200, self._reader(path)(), []
            else:
                authorize(self._token, authorization)
                response = self._post(path, parse_body(body()))
        except Refused as refused:
            response = refused.response
        except Exception as failure:
            response = _failed(path, failure)
        return _encode(response)

    def _match(self, method: str, path: str) -> str:
        """The method of the route at ``path`` (``HEAD`` is ``GET``); 404 or 405 if none."""
        allowed = _ROUTES.get(path)
        if allowed is None:
            routes = [f"{m} {p}" for p, m in _ROUTES.items()]
            raise Refused(error(404, f"no route {method} {path}", routes=routes))
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            allow = _ALLOW[allowed]
            headers = [(b"allow", allow.encode("ascii"))]
            raise Refused(
                error(405, f"method {method} not allowed on {path}", headers, allow=allow)
            )
        return allowed

    def _reader(self, path: str) -> Callable[[], Any]:
        """The function answering ``GET path``."""
        if path == "/status":
            return self._status
        if path == "/profile":
            return self.diagnostics.profile
        if path == "/diagnostics":
            return self.diagnostics.diagnostics
        if path == "/cache/metrics":
            return lambda: {name: m.as_dict() for name, m in self.cache_manager.stats().items()}
        middleware = self.middleware
        if middleware is None:
            message = "no request statistics: memory_app() was given no middleware"
            raise Refused(error(404, message))
        return middleware.recorder.stats

    def _status(self) -> dict[str, Any]:
        from ..probe.process import current_rss

        system = self.diagnostics.system_memory()
        fraction = self.coordinator.fraction_used()
        return {
            "pid": os.getpid(),
            "rss": current_rss(),
            "available": system.available,
            "total": system.total,
            "source": system.source,
            "cgroup": system.cgroup,
            "fraction_used": fraction,
            "pressure": str(self.coordinator.level_of(fraction)),
        }

    def _post(self, path: str, data: dict[str, Any]) -> Response:
        if path == "/cleanup":
            result: dict[str, Any] = self.diagnostics.emergency_cleanup(check_cleanup(data))
            if result.get("ran"):
                return 200, result, []
            retry = result.get("retry_in")
            after = [] if retry is None else [(b"retry-after", str(math.ceil(retry)).encode())]
            return 429, result, after
        return 200, self._configure(data), []

    def _configure(self, data: dict[str, Any]) -> dict[str, Any]:
        """Check every setting first, then apply them all (or none)."""
        recorder = None if self.middleware is None else self.middleware.recorder
        checked = check_settings(
            data, recorder=recorder is not None, memory=self.diagnostics.system_memory
        )
        fractions: dict[str, float] = {
            k: checked[k] for k in ("warning", "critical") if k in checked
        }
        try:
            self.coordinator.configure(**fractions, cooldown=checked.get("cooldown"))
        except ValueError as failure:
            key = next((k for k in fractions if k in str(failure)), "warning")
            raise invalid(key, fractions.get(key), str(failure)) from None
        automatic = self.diagnostics.automatic
        automatic.configure(
            interval=checked.get("interval"),
            auto_cleanup=checked.get("auto_cleanup"),
            cooldown=checked.get("cooldown"),
        )
        if checked.get("auto_cleanup") and not automatic.running:
            automatic.start()
            self._started_automatic = True
        if recorder is not None:
            if "alert_threshold" in checked:
                recorder.alert_threshold = checked["alert_threshold"]
            if "headers" in checked:
                recorder.headers = checked["headers"]
        return {
            "configured": sorted(data),
            "alert_threshold": None if recorder is None else recorder.alert_threshold,
            "headers": None if recorder is None else recorder.headers,
            "warning": self.coordinator.warning,
            "critical": self.coordinator.critical,
            "cooldown": self.coordinator.cooldown,
            "interval": automatic.interval,
            "auto_cleanup": automatic.auto_cleanup,
            "automatic": automatic.running,
        }


def _normal(path: str) -> str:
    """A route's path: no trailing slash, ``/`` when empty."""
    return path.rstrip("/") or "/"


def _header(scope: Scope, name: bytes) -> bytes:
    """The last value of header ``name`` (lower-case) in an ASGI scope, ``b""`` if none."""
    found = b""
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            found = bytes(value)
    return found


def _failed(path: str, failure: Exception) -> Response:
    logger.exception("memguard: memory_app failed on %s", path)
    return error(500, f"internal error ({type(failure).__name__})")


def _encode(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a JSON response; a ``HEAD`` gets these headers too."""
    status, payload, extra = response
    body = json.dumps(payload, default=str).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    return status, headers, body


async def _offload(function: Callable[[], _T]) -> _T:
    """Call ``function`` in a worker thread under asyncio; inline under other event loops."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return function()
    return await loop.run_in_executor(None, function)


def memory_app(
    token: str | None = None,
    middleware: Monitored | None = None,
    coordinator: MemoryPressureCoordinator | None = None,
    diagnostics: MemoryDiagnostics | None = None,
    cache_manager: CacheManager | None = None,
    *,
    max_body: int = MAX_BODY,
) -> MemoryApp:
    """An ASGI app with the memory routes, to mount under a prefix of your choice.

    :param token: the bearer token of the ``POST`` routes (None: they answer 403)
    :param middleware: the :class:`MemoryMonitorMiddleware` (or WSGI twin) whose
        statistics ``GET /requests`` shows and ``POST /configure`` changes
    :param coordinator: default: the diagnostics' coordinator, else the process-wide one
    :param diagnostics: default: one built for this app over the coordinator and caches
    :param cache_manager: default: the diagnostics' manager, else the process-wide one
    :param max_body: largest request body in bytes (413 above)
    """
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise WebConfigError(f"token: expected a non-empty string or None, got {token!r}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise WebConfigError(f"max_body: expected bytes (an int >= 1), got {max_body!r}")
    owns = diagnostics is None
    if diagnostics is None:
        from ..library.cache import get_cache_manager
        from ..library.diagnostics import MemoryDiagnostics
        from ..library.pressure import get_memory_pressure_coordinator

        diagnostics = MemoryDiagnostics(
            coordinator or get_memory_pressure_coordinator(),
            cache_manager if cache_manager is not None else get_cache_manager(),
        )
    for name, given, used in (
        ("coordinator", coordinator, diagnostics.coordinator),
        ("cache_manager", cache_manager, diagnostics.cache_manager),
    ):
        if given is not None and given is not used:
            raise WebConfigError(f"{name}: differs from the one the given diagnostics use")
    return MemoryApp(token, middleware, diagnostics, owns_diagnostics=owns, max_body=max_body)
