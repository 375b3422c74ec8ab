"""The WSGI middleware: called directly, and under the standard library's wsgiref server.

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

from pytest_memguard.web import OTHER_ROUTE, RequestRecord, WSGIMemoryMonitorMiddleware

from .helpers import request

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


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


@pytest.fixture
def served() -> Iterator[tuple[int, WSGIMemoryMonitorMiddleware]]:
    monitored = WSGIMemoryMonitorMiddleware(wsgi_app, max_routes=4)
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


def test_wsgiref_failures_routes_bound_and_switch(
    served: tuple[int, WSGIMemoryMonitorMiddleware],
) -> None:
    port, monitored = served
    assert request(port, "GET", "/fail").status == 500
    for n in range(10):
        assert request(port, "GET", f"/missing/{n}").status == 404
    stats = monitored.stats()
    assert [r["status"] for r in stats["heaviest"] if r["path"] == "/fail"] == [500]
    assert len(stats["routes"]) == 5
    assert stats["routes"][OTHER_ROUTE]["count"] == 7
    monitored.recorder.headers = False
    assert "x-memory-delta" not in request(port, "GET", "/hello").headers


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
