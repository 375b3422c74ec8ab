"""The ASGI middleware called directly, with fake receive/send, RSS reader and clock."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import pytest

from pytest_memguard.web import (
    OTHER_ROUTE,
    UNMATCHED_ROUTE,
    MemoryMonitorMiddleware,
    RequestRecord,
    WebConfigError,
)
from pytest_memguard.web import recorder as recorder_module
from pytest_memguard.web.asgi import Message, Receive, Scope, Send

from .helpers import acall, call, scope_of

MB = 1_000_000


class FakeRss:
    """The RSS the middleware reads; the app under test moves it."""

    def __init__(self, value: int = 100 * MB) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class App:
    """Answers 200; between the reads it moves RSS to ``at_response``, then ``at_end``."""

    def __init__(self, rss: FakeRss, at_response: int = 0, at_end: int = 0) -> None:
        self.rss, self.at_response, self.at_end = rss, at_response, at_end
        self.headers = [(b"content-type", b"text/plain")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = self.rss.value
        self.rss.value = start + self.at_response
        await send({"type": "http.response.start", "status": 201, "headers": self.headers})
        self.rss.value = start + self.at_end
        await send({"type": "http.response.body", "body": b"ok"})


def monitor(app: Any, rss: FakeRss, **kwargs: Any) -> MemoryMonitorMiddleware:
    return MemoryMonitorMiddleware(app, rss=rss, sample_interval=None, **kwargs)


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_pass_through_untouched(kind: str) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": f"{kind}.startup"}

    async def send(message: Message) -> None:
        pass

    middleware = monitor(inner, FakeRss())
    scope: dict[str, Any] = {"type": kind, "path": "/ws"}
    asyncio.run(middleware(scope, receive, send))
    assert seen == [(scope, receive, send)]
    assert seen[0][0] is scope
    assert middleware.stats()["requests"] == 0


def test_headers_delta_and_peak_growth_come_from_the_rss_reads() -> None:
    rss = FakeRss(100 * MB)
    app = App(rss, at_response=60 * MB, at_end=20 * MB)
    middleware = monitor(app, rss)
    reply = call(middleware, scope_of("/work"))
    assert reply.status == 201
    assert reply.headers["x-memory-delta"] == str(60 * MB)
    assert reply.headers["x-memory-rss"] == str(160 * MB)
    assert reply.headers["content-type"] == "text/plain"
    record = middleware.stats()["heaviest"][0]
    assert record["delta"] == 20 * MB
    assert record["peak_growth"] == 60 * MB
    assert (record["rss_start"], record["rss_end"]) == (100 * MB, 120 * MB)
    assert app.headers == [(b"content-type", b"text/plain")]  # the app's list is not changed


def test_headers_can_be_switched_off() -> None:
    rss = FakeRss()
    middleware = monitor(App(rss), rss, headers=False)
    assert "x-memory-delta" not in call(middleware, scope_of("/")).headers
    middleware.recorder.headers = True
    assert "x-memory-delta" in call(middleware, scope_of("/")).headers


def test_a_record_has_method_path_status_duration_and_time() -> None:
    rss, clock = FakeRss(), FakeClock()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        clock.now += 1.5
        await App(rss)(scope, receive, send)

    middleware = MemoryMonitorMiddleware(app, rss=rss, clock=clock, sample_interval=None)
    call(middleware, scope_of("/items", method="POST"))
    record = middleware.stats()["heaviest"][0]
    assert (record["method"], record["path"], record["status"]) == ("POST", "/items", 201)
    assert record["duration_s"] == 1.5
    assert record["time"] > 0
    assert record["overlapped"] == 0


def test_a_request_above_the_threshold_logs_one_line_and_calls_on_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rss = FakeRss()
    alerts: list[RequestRecord] = []
    middleware = monitor(App(rss, at_response=30 * MB), rss, alert_threshold="20 MB")
    middleware.recorder.on_alert = alerts.append
    with caplog.at_level(logging.WARNING, logger="pytest_memguard.web"):
        call(middleware, scope_of("/heavy"))
        call(monitor(App(rss, at_response=10 * MB), rss), scope_of("/light"))
    assert [a.path for a in alerts] == ["/heavy"]
    assert alerts[0].peak_growth == 30 * MB
    [line] = caplog.messages
    assert "/heavy" in line
    assert "28.6 MiB" in line  # 30 MB grown
    assert "19.1 MiB" in line  # the 20 MB threshold


def test_an_exception_in_on_alert_is_logged_and_never_reaches_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rss = FakeRss()

    def on_alert(record: RequestRecord) -> None:
        raise RuntimeError("pager down")

    middleware = monitor(App(rss, at_response=30 * MB), rss, on_alert=on_alert)
    with caplog.at_level(logging.WARNING):
        reply = call(middleware, scope_of("/heavy"))
    assert (reply.status, reply.body) == (201, b"ok")
    assert any("on_alert failed" in r.message and r.exc_info for r in caplog.records)


def test_an_async_on_alert_is_awaited() -> None:
    rss = FakeRss()
    awaited: list[str] = []

    async def on_alert(record: RequestRecord) -> None:
        await asyncio.sleep(0)
        awaited.append(record.path)

    call(monitor(App(rss, at_end=30 * MB), rss, on_alert=on_alert), scope_of("/a"))
    assert awaited == ["/a"]


def test_the_threshold_can_be_changed_and_switched_off() -> None:
    rss = FakeRss()
    alerts: list[RequestRecord] = []
    middleware = monitor(App(rss, at_response=5 * MB), rss, on_alert=alerts.append)
    middleware.recorder.alert_threshold = "1 MB"
    call(middleware, scope_of("/"))
    middleware.recorder.alert_threshold = None
    call(middleware, scope_of("/"))
    assert len(alerts) == 1
    assert middleware.recorder.alert_threshold is None


def test_an_app_that_fails_is_recorded_as_500_and_the_error_propagates() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("boom")

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None  # never starts a response: the server answers 500

    for app in (failing, silent):
        middleware = monitor(app, FakeRss())
        if app is failing:
            with pytest.raises(KeyError):
                call(middleware, scope_of("/x"))
        else:
            call(middleware, scope_of("/x"))
        assert middleware.stats()["heaviest"][0]["status"] == 500
        assert middleware.stats()["in_flight"] == 0


def test_the_heaviest_are_kept_largest_first_and_bounded() -> None:
    rss = FakeRss()
    app = App(rss)
    middleware = monitor(app, rss, keep=3)
    for growth in (5, 1, 9, 3, 7):
        app.at_response = growth * MB
        call(middleware, scope_of(f"/g{growth}"))
    heaviest = middleware.stats()["heaviest"]
    assert [r["path"] for r in heaviest] == ["/g9", "/g7", "/g5"]


def test_paths_past_max_routes_count_under_other() -> None:
    rss = FakeRss()
    middleware = monitor(App(rss), rss, max_routes=3)
    for n in range(10):
        call(middleware, scope_of(f"/p{n}"))
    call(middleware, scope_of("/p0"))
    routes = middleware.stats()["routes"]
    assert sorted(routes) == sorted(["/p0", "/p1", "/p2", OTHER_ROUTE])
    assert routes[OTHER_ROUTE]["count"] == 7
    assert routes["/p0"]["count"] == 2


class Answering:
    """Answers each path with the status in ``statuses`` (404 for the others)."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses = statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = self.statuses.get(scope["path"], 404)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_404_and_405_count_under_unmatched_and_take_no_row() -> None:
    app = Answering({"/a": 200, "/b": 302, "/c": 401, "/d": 201, "/wrong-method": 405})
    middleware = monitor(app, FakeRss(), max_routes=3)
    call(middleware, scope_of("/a"))
    for n in range(1000):
        call(middleware, scope_of(f"/missing/{n}"))
    call(middleware, scope_of("/wrong-method", method="DELETE"))
    for path in ("/b", "/c", "/d", "/a"):
        call(middleware, scope_of(path))
    routes = middleware.stats()["routes"]
    assert sorted(routes) == sorted(["/a", "/b", "/c", OTHER_ROUTE, UNMATCHED_ROUTE])
    assert routes[UNMATCHED_ROUTE]["count"] == 1001
    assert routes["/a"]["count"] == 2
    assert routes[OTHER_ROUTE]["count"] == 1  # /d: past the bound of 3 paths
    assert middleware.stats()["requests"] == 1006


def test_an_error_counts_in_its_route_s_row_once_the_route_has_one() -> None:
    app = Answering({"/a": 200, "/b": 500})
    middleware = monitor(app, FakeRss(), max_routes=3)
    call(middleware, scope_of("/b"))  # a 500 first: nothing shows the app serves /b
    call(middleware, scope_of("/a"))
    app.statuses["/a"] = 503
    call(middleware, scope_of("/a"))
    app.statuses["/a"] = 405  # the route now refuses this method
    call(middleware, scope_of("/a", method="PUT"))
    routes = middleware.stats()["routes"]
    assert {path: row["count"] for path, row in routes.items()} == {
        OTHER_ROUTE: 1,
        "/a": 2,
        UNMATCHED_ROUTE: 1,
    }


def test_route_statistics_count_mean_p95_and_max() -> None:
    rss = FakeRss()
    app = App(rss)
    middleware = monitor(app, rss)
    for delta in range(1, 21):  # 1..20 MB retained
        app.at_end = app.at_response = delta * MB
        call(middleware, scope_of("/r"))
        rss.value = 100 * MB
    route = middleware.stats()["routes"]["/r"]
    assert route == {
        "count": 20,
        "mean_delta": 10_500_000,
        "p95_delta": 19 * MB,
        "max_delta": 20 * MB,
        "max_peak_growth": 20 * MB,
    }


def test_overlapping_requests_count_each_other() -> None:
    rss = FakeRss()
    first_in, second_in = asyncio.Event(), asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/first":
            first_in.set()
            await second_in.wait()
        else:
            second_in.set()
        await App(rss)(scope, receive, send)

    middleware = monitor(app, rss)

    async def both() -> None:
        first = asyncio.create_task(acall(middleware, scope_of("/first")))
        await first_in.wait()
        await acall(middleware, scope_of("/second"))
        await first

    asyncio.run(both())
    overlapped = {r["path"]: r["overlapped"] for r in middleware.stats()["heaviest"]}
    assert overlapped == {"/first": 1, "/second": 1}
    call(middleware, scope_of("/alone"))
    assert {r["path"]: r["overlapped"] for r in middleware.stats()["heaviest"]}["/alone"] == 0


def test_the_sampler_thread_catches_a_peak_between_the_reads() -> None:
    sampled = threading.Event()
    rss = FakeRss()
    high_reads: list[int] = []

    def read() -> int:
        if threading.current_thread().name == "memguard-web-sampler" and rss.value > 100 * MB:
            high_reads.append(rss.value)
            if len(high_reads) == 2:  # the first sample is folded in before the second read
                sampled.set()
        return rss.value

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        names = [t.name for t in threading.enumerate() if t.daemon]
        assert "memguard-web-sampler" in names
        rss.value = 180 * MB  # a spike that is gone before the response starts
        assert sampled.wait(10)
        rss.value = 100 * MB
        await App(rss)(scope, receive, send)

    middleware = MemoryMonitorMiddleware(app, rss=read, sample_interval=0.001)
    try:
        call(middleware, scope_of("/spike"))
    finally:
        middleware.stop()
    record = middleware.stats()["heaviest"][0]
    assert (record["peak_growth"], record["delta"]) == (80 * MB, 0)
    assert "memguard-web-sampler" not in [t.name for t in threading.enumerate()]


class ParkSpy:
    """Stands for the sampler's wake lock; sets ``parked`` when the sampler waits, idle."""

    def __init__(self, lock: Any) -> None:
        self.lock, self.parked = lock, threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout < 0:
            self.parked.set()
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        self.lock.release()


def test_an_idle_sampler_is_woken_by_the_next_request_and_catches_its_peak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recorder_module, "IDLE_AFTER", 0.001)  # idle after a quiet sample
    rss = FakeRss()
    sampled = threading.Event()

    def read() -> int:
        if threading.current_thread().name == "memguard-web-sampler" and rss.value > 100 * MB:
            sampled.set()
        return rss.value

    async def spike(scope: Scope, receive: Receive, send: Send) -> None:
        rss.value = 150 * MB  # gone before the response starts
        assert sampled.wait(10)
        rss.value = 100 * MB
        await App(rss)(scope, receive, send)

    middleware = MemoryMonitorMiddleware(App(rss), rss=read, sample_interval=0.001)
    spy = ParkSpy(middleware.recorder._wake)
    monkeypatch.setattr(middleware.recorder, "_wake", spy)
    try:
        call(middleware, scope_of("/first"))
        assert spy.parked.wait(10)  # no request in flight: the sampler waits, idle
        middleware.app = spike
        call(middleware, scope_of("/spike"))
    finally:
        middleware.stop()  # stops a sampler that waits, idle, too
    heaviest = middleware.stats()["heaviest"]
    assert [(r["path"], r["peak_growth"], r["delta"]) for r in heaviest] == [
        ("/spike", 50 * MB, 0),
        ("/first", 0, 0),
    ]
    assert "memguard-web-sampler" not in [t.name for t in threading.enumerate()]


def test_the_kernel_peak_is_read_but_never_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        assert "clear_refs" not in str(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": bytes(1000)})

    middleware = MemoryMonitorMiddleware(app)
    try:
        reply = call(middleware, scope_of("/real"))
    finally:
        middleware.stop()
    assert int(reply.headers["x-memory-rss"]) > MB
    assert middleware.stats()["heaviest"][0]["peak_growth"] >= 0
    assert not any("clear_refs" in path for path in opened)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep": 0}, "keep: expected an int >= 1, got 0"),
        ({"max_routes": "many"}, "max_routes: expected an int >= 1, got 'many'"),
        ({"sample_interval": 0}, "sample_interval: expected seconds > 0 or None, got 0"),
        ({"alert_threshold": "12 apples"}, "alert_threshold: invalid size '12 apples'"),
        ({"on_alert": "page me"}, "on_alert: expected a callable or None, got 'page me'"),
    ],
)
def test_bad_settings_are_refused_with_their_name_and_value(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(WebConfigError) as raised:
        MemoryMonitorMiddleware(App(FakeRss()), **kwargs)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, ValueError)
