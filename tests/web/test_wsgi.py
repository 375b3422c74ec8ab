"""The WSGI middleware and memory_app's WSGI face: called directly, and under wsgiref.

The wsgiref server runs in a thread of the test process.  It is synchronous and serves
one request at a time, so a thread is deterministic and spares an interpreter start; the
test can read the middleware and its callback directly.  The requests allocate almost
nothing, and the middleware only reads the kernel's high-water mark, so the guard's
measure of each test is left as it was.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from pytest_memguard.library.cache import CacheManager
from pytest_memguard.library.pressure import MemoryPressureCoordinator
from pytest_memguard.web import (
    OTHER_ROUTE,
    UNMATCHED_ROUTE,
    MemoryApp,
    RequestRecord,
    WSGIMemoryMonitorMiddleware,
    memory_app,
)

from .helpers import AUTH, GET_ROUTES, PROTECTED, TOKEN, raw_head, request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MB = 1_000_000


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/stream":
        return stream(start_response)
    status = "200 OK" if path == "/hello" else "404 Not Found"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"hello"]


def stream(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # late, from the body
    yield b"one "
    yield b"two"


class Mounted:
    """``wsgi_app``, with memory_app's WSGI face mounted at ``/memory``."""

    def __init__(self) -> None:
        self.memory: MemoryApp | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if self.memory is not None and (path == "/memory" or path.startswith("/memory/")):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/memory"
            environ["PATH_INFO"] = path[len("/memory") :]
            return self.memory.wsgi(environ, start_response)
        return wsgi_app(environ, start_response)


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


@pytest.fixture
def served() -> Iterator[tuple[int, WSGIMemoryMonitorMiddleware]]:
    mounted = Mounted()
    monitored = WSGIMemoryMonitorMiddleware(mounted, max_routes=4)
    coordinator, caches = MemoryPressureCoordinator(), CacheManager()
    mounted.memory = memory_app(TOKEN, monitored, coordinator, cache_manager=caches)
    server: WSGIServer = make_server("127.0.0.1", 0, monitored, handler_class=Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref", daemon=True
    )
    thread.start()
    try:
        yield server.server_port, monitored
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        monitored.stop()
        mounted.memory.close()


def test_wsgiref_responses_carry_the_memory_headers(
    served: tuple[int, WSGIMemoryMonitorMiddleware],
) -> None:
    port, monitored = served
    for path, body in (("/hello?x=1", b"hello"), ("/stream", b"one two")):
        reply = request(port, "GET", path)
        assert (reply.status, reply.body) == (200, body)
        int(reply.headers["x-memory-delta"])
        assert int(reply.headers["x-memory-rss"]) > MB
    routes = monitored.stats()["routes"]
    assert routes["/hello"]["count"] == 1  # without the query string
    assert routes["/stream"]["count"] == 1


def test_wsgiref_unmatched_paths_failures_and_the_routes_bound(
    served: tuple[int, WSGIMemoryMonitorMiddleware],
) -> None:
    port, monitored = served
    assert request(port, "GET", "/fail").status == 500
    for n in range(10):
        assert request(port, "GET", f"/missing/{n}").status == 404
    assert request(port, "POST", "/memory/status").status == 405
    for path in ("/hello", "/stream", "/memory/status", "/memory/profile", "/memory/cache/metrics"):
        assert request(port, "GET", path, headers=AUTH).status == 200
    # The server serves one request at a time: asked over HTTP, the figures are complete.
    stats = request(port, "GET", "/memory/requests").json()
    assert [r["status"] for r in stats["heaviest"] if r["path"] == "/fail"] == [500]
    assert {path: row["count"] for path, row in stats["routes"].items()} == {
        OTHER_ROUTE: 2,  # /fail (no answer below 404 yet) and the fifth path
        UNMATCHED_ROUTE: 11,
        "/hello": 1,
        "/stream": 1,
        "/memory/status": 1,
        "/memory/profile": 1,
    }
    assert stats["max_routes"] == 4
    monitored.recorder.headers = False
    assert "x-memory-delta" not in request(port, "GET", "/hello").headers


@pytest.mark.parametrize("path", GET_ROUTES)
def test_wsgiref_head_answers_as_get_without_the_body(
    served: tuple[int, WSGIMemoryMonitorMiddleware], path: str
) -> None:
    port, _ = served
    full = request(port, "GET", f"/memory{path}", headers=AUTH)
    head = request(port, "HEAD", f"/memory{path}", headers=AUTH)
    assert (head.status, head.body) == (full.status, b"") == (200, b"")
    assert set(head.headers) == set(full.headers)
    for name in ("content-type", "cache-control"):
        assert head.headers[name] == full.headers[name]
    assert int(head.headers["content-length"]) >= len(b"{}")
    int(head.headers["x-memory-delta"])  # the middleware measured the HEAD too
    header_block, after = raw_head(port, f"/memory{path}")
    assert header_block.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\ncontent-length: " in header_block.lower()
    assert after == b""


def test_wsgiref_head_content_length_is_the_get_body_s(
    served: tuple[int, WSGIMemoryMonitorMiddleware],
) -> None:
    port, _ = served
    full = request(port, "GET", "/memory/cache/metrics")  # no cache: the same body each time
    head = request(port, "HEAD", "/memory/cache/metrics")
    assert int(head.headers["content-length"]) == len(full.body) == len(b"{}")
    refused = request(port, "HEAD", "/memory/cleanup")
    assert (refused.status, refused.headers["allow"], refused.body) == (405, "POST", b"")


class FakeRss:
    def __init__(self) -> None:
        self.value = 100 * MB

    def __call__(self) -> int:
        return self.value


class Body:
    """A response body that knows whether it was closed."""

    def __init__(self, rss: FakeRss) -> None:
        self.rss, self.closed = rss, 0

    def __iter__(self) -> Iterator[bytes]:
        self.rss.value += 30 * MB
        yield b"chunk"

    def close(self) -> None:
        self.closed += 1


def test_direct_call_records_at_close_and_passes_close_on() -> None:
    rss = FakeRss()
    body = Body(rss)
    alerts: list[RequestRecord] = []
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("202 Accepted", [("X-App", "1")])
        return body

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        seen.append((status, headers))
        return lambda data: None

    monitored = WSGIMemoryMonitorMiddleware(
        app, rss=rss, sample_interval=None, on_alert=alerts.append
    )
    environ = {"REQUEST_METHOD": "PUT", "SCRIPT_NAME": "/api", "PATH_INFO": "/x"}
    result = monitored(environ, start_response)
    assert seen == [
        ("202 Accepted", [("X-App", "1"), ("X-Memory-Delta", "0"), ("X-Memory-RSS", str(100 * MB))])
    ]
    assert monitored.stats()["in_flight"] == 1
    assert b"".join(result) == b"chunk"
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]
    assert body.closed == 2
    [record] = monitored.stats()["heaviest"]
    assert (record["method"], record["path"], record["status"]) == ("PUT", "/api/x", 202)
    assert record["peak_growth"] == record["delta"] == 30 * MB
    assert [a.path for a in alerts] == ["/api/x"]


def test_direct_call_failing_app_and_async_on_alert(caplog: pytest.LogCaptureFixture) -> None:
    rss = FakeRss()

    def failing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        rss.value += 40 * MB
        raise ValueError("bad")

    async def on_alert(record: RequestRecord) -> None:
        raise AssertionError("never awaited under WSGI")

    monitored = WSGIMemoryMonitorMiddleware(
        failing, rss=rss, sample_interval=None, on_alert=on_alert
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="bad"):
        monitored({"PATH_INFO": "/f"}, lambda *a: lambda data: None)
    assert monitored.stats()["heaviest"][0]["status"] == 500
    assert any("WSGI needs a function" in m for m in caplog.messages)


@pytest.mark.parametrize("path", PROTECTED)
def test_wsgiref_profile_and_diagnostics_need_the_token_and_status_does_not(
    served: tuple[int, WSGIMemoryMonitorMiddleware], path: str
) -> None:
    port, _ = served
    assert request(port, "GET", f"/memory{path}").status == 401
    assert (
        request(port, "GET", f"/memory{path}", headers={"Authorization": "Bearer x"}).status == 401
    )
    assert request(port, "GET", f"/memory{path}", headers=AUTH).status == 200
    assert request(port, "GET", "/memory/status").status == 200
    forced = request(port, "POST", "/memory/cleanup", b'{"force": true}', AUTH)
    assert (forced.status, forced.json()["forced"]) == (200, True)
