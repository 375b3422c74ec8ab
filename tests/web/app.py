"""The ASGI app the server tests serve in a subprocess (``tests.web.app:app``).

Plain ASGI routes under :class:`MemoryMonitorMiddleware`, with :func:`memory_app`
mounted at ``/memory`` (token ``test-token``) and at ``/memory-open`` (no token).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pytest_memguard.library.cache import get_cache_manager
from pytest_memguard.web import MemoryMonitorMiddleware, RequestRecord, memory_app
from pytest_memguard.web.asgi import ASGIApp, Receive, Scope, Send

MB = 1_000_000
TOKEN = "test-token"
MAX_ROUTES = 32


class Routes:
    """A few routes, two mounts and the lifespan; knows whether startup ran."""

    def __init__(self) -> None:
        self.started = False
        self.alerts: list[str] = []
        self.mounts: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        path = scope["path"]
        for prefix, mounted in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                root = scope.get("root_path", "") + prefix
                await mounted({**scope, "root_path": root}, receive, send)
                return
        if path == "/hello":
            await reply(send, 200, {"hello": "world"})
        elif path == "/alloc":
            block = bytearray(50 * MB)  # zero-filled, so every page is touched
            await asyncio.sleep(0.05)  # held across an await: the work of a real handler
            del block
            await reply(send, 200, {"allocated": 50 * MB})
        elif path == "/concurrent":
            await asyncio.sleep(0.01)  # lets the requests overlap in the server
            await reply(send, 200, {"ok": True})
        elif path == "/lifespan":
            await reply(send, 200, {"startup": self.started})
        elif path == "/alerts":
            await reply(send, 200, {"alerts": self.alerts})
        else:
            await reply(send, 404, {"error": "not found"})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                cache = get_cache_manager().create_cache("pages", max_memory="10 MB")
                for n in range(100):
                    cache.set(n, bytes(10_000))
                self.started = True
                await send({"type": "lifespan.startup.complete"})
            else:
                monitored.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def on_alert(self, record: RequestRecord) -> None:
        self.alerts.append(record.path)


async def reply(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


routes = Routes()
monitored = MemoryMonitorMiddleware(
    routes, alert_threshold="30 MB", on_alert=routes.on_alert, keep=10, max_routes=MAX_ROUTES
)
routes.mounts["/memory"] = memory_app(token=TOKEN, middleware=monitored)
routes.mounts["/memory-open"] = memory_app(middleware=monitored)
app = monitored
