"""``MemoryMonitorMiddleware``: the memory of each HTTP request of an ASGI 3 app.

Pure ASGI: it wraps any ASGI app (Starlette, FastAPI, a bare function) and runs under
any ASGI server.  Lifespan and websocket scopes pass through untouched.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, final

from .recorder import Middleware, RequestRecord

__all__ = ["ASGIApp", "MemoryMonitorMiddleware", "Message", "Receive", "Scope", "Send"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@final
class MemoryMonitorMiddleware(Middleware[ASGIApp]):
    """Measures RSS around each HTTP request of ``app``; see :class:`RequestRecorder`.

    :param app: the ASGI 3 app to wrap
    :param headers: add ``X-Memory-Delta`` and ``X-Memory-RSS`` (integer bytes) to each
        response; they are measured when the response starts, the record when the app returns
    :param alert_threshold: a request whose ``peak_growth`` passes this size logs a warning
        and calls ``on_alert`` (None: never)
    :param on_alert: ``on_alert(record)``, plain or ``async``; what it raises is logged
    :param keep: the heaviest requests kept for :meth:`stats`
    :param max_routes: paths with their own statistics, earned by an answer below 404;
        later ones count under ``"(other)"``, and every 404 or 405 under ``"(unmatched)"``
    :param sample_interval: seconds between RSS samples while a request runs (None: off)
    :param rss: returns this process's RSS in bytes; default: read from the OS (on Linux
        with the kernel's high-water mark, read and never reset); injected by tests
    :param clock: seconds, monotonic, for ``duration_s``; injected by tests

    RSS is per process: when requests overlap, each one's figures include what the others
    did meanwhile; ``overlapped`` in a record says how many ran beside it.  Task-safe and
    thread-safe.  Call :meth:`stop` at shutdown to join the sampler thread.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = self.recorder
        window = recorder.begin(str(scope.get("method", "GET")), str(scope.get("path", "/")))
        status = 0

        async def send_measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if recorder.headers:
                    delta, rss = recorder.measure(window)
                    message = dict(message)  # the app may reuse its own headers list
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-memory-delta", str(delta).encode("ascii")),
                        (b"x-memory-rss", str(rss).encode("ascii")),
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_measured)
        except Exception:
            # The server answers 500 when the app failed before starting a response.
            record = recorder.finish(window, status or 500)
            outcome = recorder.alert(record)
            if outcome is not None:
                await _awaited(outcome, record)
            raise
        except BaseException:  # cancelled or stopped: record, but await nothing more
            outcome = recorder.alert(recorder.finish(window, status or 500))
            if inspect.iscoroutine(outcome):
                outcome.close()
            raise
        record = recorder.finish(window, status or 500)
        outcome = recorder.alert(record)  # None unless the request alerted
        if outcome is not None:
            await _awaited(outcome, record)


async def _awaited(outcome: object, record: RequestRecord) -> None:
    """Await what an ``on_alert`` returned, when it is awaitable; log what it raises."""
    if inspect.isawaitable(outcome):
        try:
            await outcome
        except Exception:
            logger.exception("memguard: on_alert failed for %s %s", record.method, record.path)
