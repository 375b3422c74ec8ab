"""``memory_app``'s routes as an aiohttp sub-application (the ``aiohttp`` extra), mounted
with ``aiohttp_memory_app`` of this module::

    app = aiohttp.web.Application()
    app.add_subapp("/memory", aiohttp_memory_app(token=os.environ["MEMORY_API_TOKEN"]))

The same routes, answers and token rules as the ASGI and WSGI faces: each request is
answered by :meth:`MemoryApp.respond` in a worker thread, so a slow profile does not
block the event loop.  Only this module imports aiohttp, and nothing imports it for you:
``pip install 'pytest-memguard[aiohttp]'``.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from aiohttp import web
except ImportError as missing:  # pragma: no cover - the test skips without aiohttp
    raise ImportError(
        "pytest_memguard.web.aiohttp_app needs aiohttp: pip install 'pytest-memguard[aiohttp]'"
    ) from missing

from .control import Refused, error
from .endpoints import MemoryApp, memory_app

__all__ = ["aiohttp_memory_app"]

#: The key of the :class:`MemoryApp` in the sub-application.
MEMORY_APP: web.AppKey[MemoryApp] = web.AppKey("memguard_memory_app", MemoryApp)


def aiohttp_memory_app(api: MemoryApp | None = None, **keywords: Any) -> web.Application:
    """An aiohttp application with the memory routes, to mount with ``add_subapp``.

    :param api: the :class:`MemoryApp` to serve (closed with the application when built
        here from ``keywords``)
    :param keywords: those of :func:`~pytest_memguard.web.memory_app`, when ``api`` is None
    """
    if api is not None and keywords:
        raise TypeError("aiohttp_memory_app() takes an api or memory_app() keywords, not both")
    owned = api is None
    served = memory_app(**keywords) if api is None else api

    async def handle(request: web.Request) -> web.StreamResponse:
        body = b""
        if request.method not in ("GET", "HEAD"):
            body = await request.content.read(served.max_body + 1)

        def read() -> bytes:
            if len(body) > served.max_body:
                raise Refused(error(413, f"request body larger than {served.max_body} bytes"))
            return body

        authorization = request.headers.get("Authorization", "").encode("latin-1", "replace")
        path = "/" + request.match_info.get("tail", "")
        status, headers, payload = await asyncio.get_running_loop().run_in_executor(
            None, served.respond, request.method, path, authorization, read
        )
        response = web.Response(status=status, body=payload)
        for name, value in headers:
            if name != b"content-length":  # aiohttp counts the body itself
                response.headers[name.decode("latin-1")] = value.decode("latin-1")
        return response

    async def close(_: web.Application) -> None:
        if owned:
            served.close()

    application = web.Application(client_max_size=served.max_body + 1)
    application[MEMORY_APP] = served
    application.router.add_route("*", "/{tail:.*}", handle)
    application.on_cleanup.append(close)
    return application
