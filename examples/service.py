"""An example service: a bounded cache, the pressure coordinator, the per-request memory
middleware and the memory endpoints together, in plain ASGI (no framework).

Run it from the repository root with either of::

    python -m uvicorn examples.service:app
    python examples/service.py --port 8000

then try ``curl -i localhost:8000/primes/50000`` (computed once, then cached) and
``curl localhost:8000/memory/requests``.  Set ``MEMORY_API_TOKEN`` to enable the POST
routes: ``curl -X POST -H "Authorization: Bearer $MEMORY_API_TOKEN" localhost:8000/memory/cleanup``,
or from the command line: ``memguard cleanup --force --url http://127.0.0.1:8000/memory
--token "$MEMORY_API_TOKEN"``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from pytest_memguard.library.cache import get_cache_manager
from pytest_memguard.library.pressure import get_memory_pressure_coordinator
from pytest_memguard.web import MemoryMonitorMiddleware, RequestRecord, memory_app
from pytest_memguard.web.asgi import Receive, Scope, Send

logger = logging.getLogger("service")
LIMIT = 1_000_000

# Caches made by the process-wide manager are emptied by the process-wide coordinator when
# memory gets tight: the manager registers itself with it on first use.
coordinator = get_memory_pressure_coordinator()
primes_cache = get_cache_manager().create_cache("primes", max_size=1000, max_memory="20 MB")


def primes_below(n: int) -> list[int]:
    """The primes below ``n`` (a sieve: memory grows with ``n``)."""
    sieve = bytearray([1]) * max(n, 2)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, n, i)))
    return [i for i in range(n) if sieve[i]]


def limit_of(text: str) -> int | None:
    """``text`` as a number up to :data:`LIMIT`; None for anything else.

    ASCII digits only: ``str.isdigit`` also takes ``"²"``, which ``int`` refuses.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(LIMIT)):
        return None
    n = int(text)
    return n if n <= LIMIT else None


async def respond(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def routes(scope: Scope, receive: Receive, send: Send) -> None:
    """The service's own routes, the lifespan, and ``memory`` mounted at ``/memory``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                coordinator.start(interval=5.0)  # check the pressure level in the background
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                coordinator.stop()
                monitored.stop()
                memory.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/memory" or path.startswith("/memory/"):
        await memory({**scope, "root_path": scope.get("root_path", "") + "/memory"}, receive, send)
    elif path.startswith("/primes/") and (n := limit_of(path[8:])) is not None:
        primes = primes_cache.get(n)
        if primes is None:
            primes = primes_below(n)
            primes_cache.set(n, primes)
        await respond(send, 200, {"n": n, "count": len(primes), "largest": primes[-1:]})
    elif path == "/":
        await respond(send, 200, {"service": "primes", "try": ["/primes/50000", "/memory/status"]})
    else:
        await respond(send, 404, {"error": f"no route {path}"})


def on_alert(record: RequestRecord) -> None:
    """Where a real service would page someone or emit a metric."""
    logger.warning("heavy request: %s", record.as_dict())


monitored = MemoryMonitorMiddleware(routes, alert_threshold="50 MB", on_alert=on_alert)
memory = memory_app(token=os.environ.get("MEMORY_API_TOKEN") or None, middleware=monitored)
app = monitored


if __name__ == "__main__":
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="The pytest-memguard example service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args(sys.argv[1:])
    uvicorn.run(app, host=arguments.host, port=arguments.port)
