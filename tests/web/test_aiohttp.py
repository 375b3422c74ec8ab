"""The memory routes as an aiohttp sub-application, under aiohttp's own server on loopback.

The server runs its event loop in a thread of the test process, on a socket bound here;
the requests come from this thread over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from pytest_memguard.core.levels import MemoryThresholds
from pytest_memguard.library.cache import CacheManager
from pytest_memguard.library.diagnostics import MemoryDiagnostics
from pytest_memguard.library.pressure import MemoryPressureCoordinator
from pytest_memguard.web import memory_app

from .helpers import AUTH, GET_ROUTES, PROTECTED, TOKEN, raw_head, request

pytest.importorskip("aiohttp")

from aiohttp import web

from pytest_memguard.web.aiohttp_app import aiohttp_memory_app


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """An aiohttp app with the memory routes at ``/memory`` (token) and ``/open`` (none)."""
    coordinator, caches = MemoryPressureCoordinator(), CacheManager(sizeof=len)
    caches.create_cache("pages", max_memory="1 MB").set("a", bytes(1000))
    coordinator.register("caches", caches.handle_memory_pressure)
    diagnostics = MemoryDiagnostics(coordinator, caches, thresholds=MemoryThresholds())
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.add_subapp("/memory", aiohttp_memory_app(memory_app(TOKEN, diagnostics=diagnostics)))
    app.add_subapp("/open", aiohttp_memory_app(coordinator=coordinator, cache_manager=caches))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, name="aiohttp-server", daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        diagnostics.close()


def test_the_routes_answer_json_under_aiohttp(port: int) -> None:
    assert request(port, "GET", "/hello").body == b"hello"
    status = request(port, "GET", "/memory/status")
    assert status.status == 200
    assert status.headers["content-type"] == "application/json"
    assert status.json()["rss"] > 0
    assert request(port, "GET", "/memory/cache/metrics").json()["pages"]["size"] == 1
    assert request(port, "GET", "/memory/profile", headers=AUTH).json()["rss"] > 0
    diagnostics = request(port, "GET", "/memory/diagnostics", headers=AUTH).json()
    assert diagnostics["configuration"]["pressure"]["handlers"] == ["caches"]
    assert request(port, "GET", "/memory/requests").status == 404  # no middleware given
    missing = request(port, "GET", "/memory/nothing")
    assert (missing.status, missing.json()["error"]) == (404, "no route GET /nothing")
    wrong = request(port, "GET", "/memory/cleanup")
    assert (wrong.status, wrong.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize("path", PROTECTED)
def test_with_a_token_profile_and_diagnostics_need_it(port: int, path: str) -> None:
    refused = request(port, "GET", f"/memory{path}")
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert (
        request(port, "GET", f"/memory{path}", headers={"Authorization": "Bearer x"}).status == 401
    )
    assert request(port, "GET", "/memory/status").status == 200
    assert request(port, "GET", f"/open{path}").status == 200  # an app without a token


def test_cleanup_and_configure_under_aiohttp(port: int) -> None:
    assert request(port, "POST", "/memory/cleanup", b"{}").status == 401
    assert request(port, "POST", "/open/cleanup", b"{}", AUTH).status == 403
    forced = request(port, "POST", "/memory/cleanup", b'{"force": true}', AUTH)
    assert forced.status == 200
    assert (forced.json()["ran"], forced.json()["forced"]) == (True, True)
    assert forced.json()["handlers"] == {"caches": 1000}
    again = request(port, "POST", "/memory/cleanup", b"", AUTH)
    assert (again.status, again.json()["reason"]) == (429, "cooldown")
    bad = request(port, "POST", "/memory/configure", b'{"interval": 0}', AUTH)
    assert (bad.status, bad.json()["key"]) == (400, "interval")
    body = json.dumps({"cooldown": 0, "warning": 0.6}).encode()
    configured = request(port, "POST", "/memory/configure", body, AUTH).json()
    assert (configured["cooldown"], configured["warning"]) == (0.0, 0.6)
    too_large = request(port, "POST", "/memory/configure", b" " * (17 * 1024), AUTH)
    assert too_large.status == 413


@pytest.mark.parametrize("path", GET_ROUTES[:4])
def test_head_answers_as_get_without_the_body(port: int, path: str) -> None:
    head = request(port, "HEAD", f"/memory{path}", headers=AUTH)
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-type"] == "application/json"
    header_block, after = raw_head(port, f"/memory{path}", TOKEN)
    assert header_block.startswith(b"HTTP/1.1 200 OK\r\n")
    assert after == b""
