"""``memory_app``: memory status and control routes as a small ASGI app, to mount anywhere.

It answers to the path relative to its mount point (``root_path``), speaks JSON, and
takes no file name, module or code from a request.  ``POST`` routes need a bearer token.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, final

from ..core.sizes import EXAMPLE, parse_size
from .asgi import Message, Receive, Scope, Send
from .recorder import RequestRecorder, WebConfigError

if TYPE_CHECKING:
    from ..cache import CacheManager
    from ..diagnostics import MemoryDiagnostics
    from ..pressure import MemoryPressureCoordinator

__all__ = ["MAX_BODY", "MemoryApp", "Monitored", "memory_app"]

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
_SETTINGS: Final = ("alert_threshold", "critical", "headers", "warning")

_Response = tuple[int, Any, list[tuple[bytes, bytes]]]


class Monitored(Protocol):
    """A memory middleware: :class:`MemoryMonitorMiddleware` or its WSGI twin."""

    @property
    def recorder(self) -> RequestRecorder: ...


def _error(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None, **fields: Any
) -> _Response:
    return status, {"error": message, **fields}, headers or []


class _Refused(Exception):
    """A request refused with a response (raised inside the app only)."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response[1].get("error"))
        self.response = response


@final
class MemoryApp:
    """The ASGI app built by :func:`memory_app`; see the README for its routes."""

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
        self.max_body = max_body

    def close(self) -> None:
        """Release what the app built itself (its :class:`MemoryDiagnostics`)."""
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
        try:
            status, payload, headers = await self._respond(scope, receive)
        except _Refused as refused:
            status, payload, headers = refused.response
        except Exception as error:
            logger.exception("memguard: memory_app failed on %s", scope.get("path"))
            status, payload, headers = _error(500, f"internal error ({type(error).__name__})")
        body = json.dumps(payload, default=str).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"cache-control", b"no-store"),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _respond(self, scope: Scope, receive: Receive) -> _Response:
        path, root = str(scope.get("path", "/")), str(scope.get("root_path", ""))
        if root and path.startswith(root):  # servers put the mount point in ``path`` too
            path = path[len(root) :]
        path = path.rstrip("/") or "/"
        method = str(scope.get("method", "GET"))
        allowed = _ROUTES.get(path)
        if allowed is None:
            routes = [f"{m} {p}" for p, m in _ROUTES.items()]
            return _error(404, f"no route {method} {path}", routes=routes)
        if method != allowed:
            allow = [(b"allow", allowed.encode("ascii"))]
            return _error(405, f"method {method} not allowed on {path}", allow, allow=allowed)
        if allowed == "GET":
            return 200, await _offload(self._reader(path)), []
        self._authorize(scope)
        data = _parse(await self._read_body(scope, receive))
        if path == "/cleanup":
            _unknown(data, ())
            result: dict[str, Any] = await _offload(self.diagnostics.emergency_cleanup)
            if result.get("ran"):
                return 200, result, []
            retry = result.get("retry_in")
            after = [] if retry is None else [(b"retry-after", str(math.ceil(retry)).encode())]
            return 429, result, after
        return 200, self._configure(data), []

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
            raise _Refused(_error(404, message))
        return middleware.recorder.stats

    def _status(self) -> dict[str, Any]:
        from ..probe.process import current_rss
        from ..probe.system import read_system_memory

        system = read_system_memory()
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

    def _authorize(self, scope: Scope) -> None:
        if self._token is None:
            raise _Refused(_error(403, "POST routes are off: memory_app() was built with no token"))
        given = b""
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"authorization":
                given = bytes(value)
        scheme, _, credentials = given.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._token):
            message = "missing or wrong 'Authorization: Bearer <token>'"
            raise _Refused(_error(401, message, [(b"www-authenticate", b"Bearer")]))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        too_large = _error(413, f"request body larger than {self.max_body} bytes")
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"content-length":
                if not bytes(value).strip().isdigit():
                    raise _Refused(_error(400, f"bad Content-Length {bytes(value)!r}"))
                if int(value) > self.max_body:
                    raise _Refused(too_large)
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(_error(400, "client disconnected"))
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_body:
                raise _Refused(too_large)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _configure(self, data: dict[str, Any]) -> dict[str, Any]:
        """Check every setting first, then apply them all (or none)."""
        _unknown(data, _SETTINGS)
        recorder = None if self.middleware is None else self.middleware.recorder
        for key in ("alert_threshold", "headers"):
            if key in data and recorder is None:
                raise _bad(key, data[key], "memory_app() was given no middleware to configure")
        threshold: int | None = None
        if data.get("alert_threshold") is not None:
            value = data["alert_threshold"]
            try:
                threshold = parse_size(value)
            except ValueError:
                raise _bad("alert_threshold", value, f"expected a size (e.g. {EXAMPLE})") from None
        if "headers" in data and not isinstance(data["headers"], bool):
            raise _bad("headers", data["headers"], "expected true or false")
        fractions: dict[str, float] = {}
        for key in ("warning", "critical"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _bad(key, value, "expected a fraction in (0, 1], e.g. 0.7")
                fractions[key] = value
        try:
            self.coordinator.configure(**fractions)
        except ValueError as error:
            key = next((k for k in fractions if k in str(error)), "warning")
            raise _bad(key, fractions.get(key), str(error)) from None
        if recorder is not None:
            if "alert_threshold" in data:
                recorder.alert_threshold = threshold
            if "headers" in data:
                recorder.headers = data["headers"]
        return {
            "configured": sorted(data),
            "alert_threshold": None if recorder is None else recorder.alert_threshold,
            "headers": None if recorder is None else recorder.headers,
            "warning": self.coordinator.warning,
            "critical": self.coordinator.critical,
            "cooldown": self.coordinator.cooldown,
        }


def _bad(key: str, value: object, why: str) -> _Refused:
    return _Refused(_error(400, f"{key}: invalid value {value!r}: {why}", key=key, value=value))


def _unknown(data: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            expected = ", ".join(known) or "no keys"
            raise _Refused(
                _error(400, f"unknown key {key!r} (expected {expected})", key=key, value=data[key])
            )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid JSON number")


def _parse(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body`` (``{}`` when empty); 400 for anything else."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise _Refused(_error(400, f"malformed JSON: {error}")) from None
    if not isinstance(data, dict):
        raise _Refused(_error(400, f"expected a JSON object, got {type(data).__name__}"))
    return data


async def _offload(function: Callable[[], Any]) -> Any:
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
        from ..cache import get_cache_manager
        from ..diagnostics import MemoryDiagnostics
        from ..pressure import get_memory_pressure_coordinator

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
