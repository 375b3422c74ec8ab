"""memory_app called directly, as ASGI and as WSGI: routes, HEAD, auth, JSON checks, limits."""

from __future__ import annotations

import asyncio
import json
import mmap
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_memguard.core.levels import MemoryThresholds
from pytest_memguard.core.sizes import format_size
from pytest_memguard.library.cache import CacheManager, get_cache_manager, reset_cache_manager
from pytest_memguard.library.diagnostics import MemoryDiagnostics
from pytest_memguard.library.pressure import (
    MemoryPressureCoordinator,
    get_memory_pressure_coordinator,
    reset_memory_pressure_coordinator,
)
from pytest_memguard.probe.system import SystemMemory
from pytest_memguard.web import MemoryApp, MemoryMonitorMiddleware, WebConfigError, memory_app
from pytest_memguard.web.asgi import Message, Receive, Scope, Send

from .helpers import AUTH, GET_ROUTES, TOKEN, Reply, call, scope_of, wsgi_call

MB = 1_000_000
PAGE = mmap.PAGESIZE
#: The memory the fake diagnostics say this process can use.
TOTAL = 1000 * MB


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def middleware() -> MemoryMonitorMiddleware:
    return MemoryMonitorMiddleware(ok, rss=lambda: 50 * MB, sample_interval=None)


@pytest.fixture
def api(clock: FakeClock, middleware: MemoryMonitorMiddleware) -> Iterator[MemoryApp]:
    coordinator = MemoryPressureCoordinator(memory=lambda: (500, 1000), clock=clock)
    manager = CacheManager(sizeof=len, clock=clock)
    cache = manager.create_cache("pages", max_memory="1 MB")
    for n in range(8):
        cache.set(n, bytes(1000))
    coordinator.register("caches", manager.handle_memory_pressure)
    diagnostics = MemoryDiagnostics(
        coordinator,
        manager,
        thresholds=MemoryThresholds(),
        clock=clock,
        memory=lambda: SystemMemory(TOTAL, 400 * MB, "host"),
        rss=lambda: 50 * MB,
        history=1,  # the bodies of /diagnostics stay the same from one request to the next
    )
    app = memory_app(token=TOKEN, middleware=middleware, diagnostics=diagnostics)
    yield app
    app.close()


def get(app: MemoryApp, path: str, **kwargs: Any) -> Reply:
    """``GET path`` with the token (``headers={}`` for none)."""
    return call(app, scope_of(path, **{"headers": AUTH, **kwargs}))


def post(app: MemoryApp, path: str, body: bytes = b"", auth: bool = True) -> Reply:
    return call(app, scope_of(path, "POST", AUTH if auth else None), [body])


def test_get_routes_answer_json(api: MemoryApp, middleware: MemoryMonitorMiddleware) -> None:
    status = get(api, "/status")
    assert status.headers["content-type"] == "application/json"
    assert status.json()["pressure"] == "ok"  # 500 of 1000 used
    assert status.json()["fraction_used"] == 0.5
    assert get(api, "/profile").json()["rss"] == 50 * MB
    assert get(api, "/diagnostics").json()["configuration"]["pressure"]["handlers"] == ["caches"]
    assert get(api, "/cache/metrics").json()["pages"]["size"] == 8
    call(middleware, scope_of("/seen"))
    assert get(api, "/requests").json()["routes"]["/seen"]["count"] == 1


@pytest.mark.parametrize(
    ("path", "root_path"),
    [("/memory/status", "/memory"), ("/status", "/memory"), ("/status/", ""), ("/status", "")],
)
def test_the_path_is_relative_to_the_mount_point(api: MemoryApp, path: str, root_path: str) -> None:
    assert get(api, path, root_path=root_path).status == 200


def test_unknown_paths_404_and_wrong_methods_405(api: MemoryApp) -> None:
    missing = get(api, "/nope")
    assert missing.status == 404
    assert missing.json()["error"] == "no route GET /nope"
    for method, path, allow in (
        ("DELETE", "/status", "GET, HEAD"),
        ("GET", "/configure", "POST"),
        ("HEAD", "/cleanup", "POST"),
    ):
        reply = get(api, path, method=method)
        assert (reply.status, reply.headers["allow"]) == (405, allow)
        if method == "HEAD":
            assert reply.body == b""
        else:
            assert reply.json()["allow"] == allow


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch, middleware: MemoryMonitorMiddleware) -> None:
    """The figures of every GET route stay put between two requests."""
    monkeypatch.setattr("pytest_memguard.probe.process.current_rss", lambda: 50 * MB)
    call(middleware, scope_of("/seen"))  # a route for /requests to show


@pytest.mark.usefixtures("steady")
@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_as_get_without_the_body(api: MemoryApp, path: str) -> None:
    full, head = get(api, path), get(api, path, method="HEAD")
    assert (head.status, head.body) == (200, b"")
    assert head.headers == full.headers
    assert int(head.headers["content-length"]) == len(full.body) > 2
    assert head.headers["content-type"] == "application/json"


@pytest.mark.usefixtures("steady")
@pytest.mark.parametrize("path", GET_ROUTES)
def test_wsgi_answers_as_asgi_and_head_without_the_body(api: MemoryApp, path: str) -> None:
    asgi = get(api, path)
    full = wsgi_call(api.wsgi, path, headers=AUTH, script_name="/memory")
    head = wsgi_call(api.wsgi, path + "/", "HEAD", AUTH, script_name="/memory")
    assert (full.status, full.headers, full.body) == (200, asgi.headers, asgi.body)
    assert (head.status, head.headers, head.body) == (200, asgi.headers, b"")


def test_head_of_a_refusal_has_its_headers_and_no_body(clock: FakeClock) -> None:
    coordinator = MemoryPressureCoordinator(memory=lambda: (1, 10), clock=clock)
    app = memory_app(coordinator=coordinator, cache_manager=CacheManager())  # no middleware
    try:
        for reply in (
            get(app, "/requests", method="HEAD"),
            wsgi_call(app.wsgi, "/requests", "HEAD"),
        ):
            assert (reply.status, reply.body) == (404, b"")
            assert int(reply.headers["content-length"]) == len(get(app, "/requests").body)
        missing = wsgi_call(app.wsgi, "/nope", "HEAD")
        assert (missing.status, missing.body) == (404, b"")
    finally:
        app.close()


def test_wsgi_post_routes_need_the_token_and_read_the_body(
    api: MemoryApp, middleware: MemoryMonitorMiddleware
) -> None:
    assert wsgi_call(api.wsgi, "/configure", "POST", body=b'{"headers": false}').status == 401
    wrong = wsgi_call(api.wsgi, "/cleanup", "POST", {"Authorization": "Bearer nope"})
    assert (wrong.status, wrong.headers["www-authenticate"]) == (401, "Bearer")
    done = wsgi_call(api.wsgi, "/configure", "POST", AUTH, b'{"headers": false}')
    assert (done.status, done.json()["headers"]) == (200, False)
    assert middleware.recorder.headers is False
    bad = wsgi_call(api.wsgi, "/configure", "POST", AUTH, b'{"warning": 1e-300}')
    assert (bad.status, bad.json()["key"]) == (400, "warning")
    assert wsgi_call(api.wsgi, "/cleanup", "POST", AUTH).json()["ran"] is True
    large = wsgi_call(api.wsgi, "/configure", "POST", AUTH, b" " * (17 * 1024))
    assert large.status == 413
    declared = {**AUTH, "Content-Length": "12 apples"}
    assert wsgi_call(api.wsgi, "/configure", "POST", declared).status == 400


def test_requests_is_404_without_a_middleware(clock: FakeClock) -> None:
    coordinator = MemoryPressureCoordinator(memory=lambda: (1, 10), clock=clock)
    app = memory_app(coordinator=coordinator, cache_manager=CacheManager())
    try:
        reply = get(app, "/requests")
        assert reply.status == 404
        assert "no middleware" in reply.json()["error"]
        assert post(app, "/cleanup").status == 403
    finally:
        app.close()


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"]
)
def test_post_without_the_right_token_is_401(api: MemoryApp, authorization: str | None) -> None:
    headers = None if authorization is None else {"Authorization": authorization}
    reply = call(api, scope_of("/configure", "POST", headers), [b"{}"])
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == "Bearer"


def test_the_bearer_scheme_is_case_insensitive(api: MemoryApp) -> None:
    reply = call(api, scope_of("/configure", "POST", {"authorization": f"bearer {TOKEN}"}))
    assert reply.status == 200


def test_cleanup_runs_then_waits_for_the_cooldown(api: MemoryApp, clock: FakeClock) -> None:
    first = post(api, "/cleanup")
    assert first.status == 200
    assert first.json()["ran"] is True
    assert first.json()["handlers"] == {"caches": 8000}  # an emergency empties the caches
    clock.now += 10
    second = post(api, "/cleanup")
    assert second.status == 429
    assert (second.json()["ran"], second.json()["reason"]) == (False, "cooldown")
    assert second.headers["retry-after"] == "50"
    clock.now += 50
    assert post(api, "/cleanup").status == 200
    forced = post(api, "/cleanup", b'{"force": true}')  # within the cooldown, forced
    assert (forced.status, forced.json()["ran"], forced.json()["forced"]) == (200, True, True)
    for body in (b'{"force": "yes"}', b'{"force": 1}'):
        refused = post(api, "/cleanup", body)
        assert refused.status == 400
        assert refused.json()["key"] == "force"
        assert refused.json()["error"].startswith("force: invalid value ")
    assert post(api, "/cleanup", b'{"forse": true}').json()["key"] == "forse"


def test_configure_applies_every_setting(
    api: MemoryApp, middleware: MemoryMonitorMiddleware
) -> None:
    body = {"alert_threshold": "5 MB", "headers": False, "warning": 0.6, "critical": 0.9}
    reply = post(api, "/configure", json.dumps(body).encode())
    assert reply.status == 200
    assert reply.json()["configured"] == ["alert_threshold", "critical", "headers", "warning"]
    assert middleware.recorder.alert_threshold == 5 * MB
    assert middleware.recorder.headers is False
    assert (api.coordinator.warning, api.coordinator.critical) == (0.6, 0.9)
    assert post(api, "/configure", b'{"alert_threshold": null}').json()["alert_threshold"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON: Expecting property name"),
        (b'{"warning": NaN}', "malformed JSON: NaN is not a valid JSON number"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"colour": 1}', "unknown key 'colour' (expected alert_threshold, auto_cleanup,"),
        (b'{"alert_threshold": "12 apples"}', "alert_threshold: invalid size '12 apples'"),
        (b'{"alert_threshold": -5}', "alert_threshold: invalid size -5: a size cannot be negative"),
        (b'{"alert_threshold": 1e6}', "alert_threshold: invalid size 1000000.0: expected an int"),
        (b'{"headers": "yes"}', "headers: invalid value 'yes': expected true or false"),
        (b'{"warning": "0.7"}', "warning: invalid value '0.7': expected a fraction"),
        (b'{"critical": 1.5}', "critical: invalid value 1.5: critical must be a fraction"),
        (b'{"warning": 0.99}', "warning: invalid value 0.99: warning 0.99 is above critical"),
    ],
)
def test_configure_refuses_bad_input_naming_key_and_value(
    api: MemoryApp, body: bytes, message: str
) -> None:
    reply = post(api, "/configure", body)
    assert reply.status == 400
    assert reply.json()["error"].startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # a fraction is in (0, 1] and, of the memory the process can use, one page or more
        ({"warning": 1e-300}, "warning: invalid value 1e-300: 1e-300 of the 953.7 MiB"),
        ({"critical": PAGE / 2 / TOTAL}, f"critical: invalid value {PAGE / 2 / TOTAL!r}: "),
        ({"warning": 0}, "warning: invalid value 0: warning must be a fraction in (0, 1], got 0"),
        ({"warning": -0.5}, "warning: invalid value -0.5: warning must be a fraction in (0, 1]"),
        ({"critical": 10**40}, f"critical: invalid value {10**40}: critical must be a fraction"),
        # a size is at least one page and at most the memory the process can use
        ({"alert_threshold": 10**40}, f"alert_threshold: invalid size {10**40}"),
        ({"alert_threshold": "2 GB"}, "alert_threshold: invalid size '2 GB': more than the 953.7"),
        ({"alert_threshold": TOTAL + 1}, f"alert_threshold: invalid size {TOTAL + 1}: more than"),
        ({"alert_threshold": 0}, "alert_threshold: invalid size 0"),
        ({"alert_threshold": "1 KB"}, "alert_threshold: invalid size '1 KB'"),
        ({"alert_threshold": PAGE - 1}, f"alert_threshold: invalid size {PAGE - 1}"),
    ],
)
def test_configure_refuses_values_out_of_range(
    api: MemoryApp, middleware: MemoryMonitorMiddleware, body: dict[str, Any], message: str
) -> None:
    reply = post(api, "/configure", json.dumps(body).encode())
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    [(key, value)] = body.items()
    assert reply.json()["error"].startswith(message)
    assert (reply.json()["key"], reply.json()["value"]) == (key, value)
    assert (api.coordinator.warning, api.coordinator.critical) == (0.7, 0.85)
    assert middleware.recorder.alert_threshold == 20 * MB


def test_configure_says_why_a_size_or_fraction_is_too_small_or_too_large(api: MemoryApp) -> None:
    fraction = post(api, "/configure", b'{"warning": 1e-300}').json()["error"]
    assert fraction == (
        "warning: invalid value 1e-300: 1e-300 of the 953.7 MiB this process can use is"
        f" below one page ({format_size(PAGE)}) (expected a fraction in (0, 1], e.g. 0.7)"
    )
    large = post(api, "/configure", b'{"alert_threshold": "2 GB"}').json()["error"]
    assert large == (
        "alert_threshold: invalid size '2 GB': more than the 953.7 MiB this process can use"
        " (host) (expected e.g. 20MB, or null for no alerts)"
    )
    small = post(api, "/configure", json.dumps({"alert_threshold": PAGE - 1}).encode())
    assert "page" in small.json()["error"]


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"warning": 2 * PAGE / TOTAL}, 2 * PAGE / TOTAL),
        ({"critical": 1}, 1.0),
        ({"alert_threshold": PAGE}, PAGE),
        ({"alert_threshold": "1000 MB"}, TOTAL),
        ({"alert_threshold": "64 KiB"}, 64 * 1024),
    ],
)
def test_configure_accepts_the_bounds(
    api: MemoryApp, body: dict[str, Any], accepted: float
) -> None:
    reply = post(api, "/configure", json.dumps(body).encode())
    assert reply.status == 200
    [(key, _)] = body.items()
    assert reply.json()[key] == accepted


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"Infinity", b"-Infinity", b"NaN"])
@pytest.mark.parametrize("key", [b"warning", b"critical", b"alert_threshold"])
def test_configure_refuses_numbers_that_are_not_finite(
    api: MemoryApp, key: bytes, number: bytes
) -> None:
    reply = post(api, "/configure", b'{"' + key + b'": ' + number + b"}")
    assert reply.status == 400
    assert reply.json()["error"].startswith("malformed JSON: ")
    assert number.lstrip(b"-").decode() in reply.json()["error"]
    assert api.coordinator.warning == 0.7


def test_configure_changes_nothing_when_one_value_is_bad(
    api: MemoryApp, middleware: MemoryMonitorMiddleware
) -> None:
    reply = post(api, "/configure", b'{"headers": false, "critical": 2}')
    assert reply.status == 400
    assert middleware.recorder.headers is True
    assert api.coordinator.critical == 0.85


def test_configure_without_a_middleware_names_the_key(clock: FakeClock) -> None:
    coordinator = MemoryPressureCoordinator(memory=lambda: (1, 10), clock=clock)
    app = memory_app(token=TOKEN, coordinator=coordinator, cache_manager=CacheManager())
    try:
        reply = post(app, "/configure", b'{"headers": false}')
        assert (reply.status, reply.json()["key"]) == (400, "headers")
    finally:
        app.close()


def test_bodies_above_the_cap_are_413(api: MemoryApp) -> None:
    declared = {**AUTH, "Content-Length": str(1024 * 1024)}
    assert call(api, scope_of("/configure", "POST", declared)).status == 413
    streamed = [b" " * 8192, b" " * 8192, b" " * 8192]  # no Content-Length: counted as read
    assert call(api, scope_of("/configure", "POST", AUTH), streamed).status == 413
    assert call(api, scope_of("/configure", "POST", AUTH), [b" " * 8192, b"{}"]).status == 200


def test_a_failing_route_is_a_json_500(clock: FakeClock) -> None:
    def broken() -> int:
        raise RuntimeError("no /proc here")

    coordinator = MemoryPressureCoordinator(memory=lambda: (1, 10), clock=clock)
    diagnostics = MemoryDiagnostics(
        coordinator, CacheManager(), thresholds=MemoryThresholds(), rss=broken
    )
    reply = get(memory_app(diagnostics=diagnostics), "/profile")
    assert reply.status == 500
    assert reply.json() == {"error": "internal error (RuntimeError)"}


def test_lifespan_and_websocket_scopes(api: MemoryApp) -> None:
    sent: list[Message] = []
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(api({"type": "lifespan"}, receive, send))
    asyncio.run(api({"type": "websocket", "path": "/status"}, receive, send))
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token": ""}, "token: expected a non-empty string or None, got ''"),
        ({"max_body": 0}, "max_body: expected bytes (an int >= 1), got 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WebConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        memory_app(**kwargs)


@pytest.fixture
def fresh_defaults() -> Iterator[None]:
    reset_cache_manager()
    reset_memory_pressure_coordinator()
    yield
    reset_cache_manager()
    reset_memory_pressure_coordinator()


@pytest.mark.usefixtures("fresh_defaults")
def test_defaults_are_the_process_wide_coordinator_and_cache_manager() -> None:
    app = memory_app()
    try:
        assert app.coordinator is get_memory_pressure_coordinator()
        assert app.cache_manager is get_cache_manager()
    finally:
        app.close()
    other = MemoryPressureCoordinator()
    diagnostics = MemoryDiagnostics(other, CacheManager())
    with pytest.raises(WebConfigError, match="coordinator: differs"):
        memory_app(coordinator=get_memory_pressure_coordinator(), diagnostics=diagnostics)


def test_configure_sets_the_cooldown_and_the_automatic_mode(api: MemoryApp) -> None:
    automatic = api.diagnostics.automatic
    assert not automatic.running
    body = {"cooldown": 5, "interval": 30, "auto_cleanup": True}
    reply = post(api, "/configure", json.dumps(body).encode())
    assert reply.status == 200
    answer = reply.json()
    assert (answer["cooldown"], answer["interval"], answer["auto_cleanup"]) == (5.0, 30.0, True)
    assert answer["automatic"] is True
    assert (api.coordinator.cooldown, automatic.cooldown, automatic.interval) == (5.0, 5.0, 30.0)
    assert automatic.running  # auto_cleanup turned on starts it; app.close() stops it
    off = post(api, "/configure", b'{"auto_cleanup": false}').json()
    assert off["auto_cleanup"] is False
    api.close()
    assert not automatic.running


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"cooldown": -1}', "cooldown: invalid value -1: expected seconds >= 0"),
        (b'{"cooldown": "5"}', "cooldown: invalid value '5': expected seconds >= 0"),
        (b'{"interval": 0}', "interval: invalid value 0: expected seconds > 0"),
        (b'{"interval": true}', "interval: invalid value True: expected seconds > 0"),
        (b'{"auto_cleanup": "on"}', "auto_cleanup: invalid value 'on': expected true or false"),
        (b'{"cooldown": 5, "warning": 0.99}', "warning: invalid value 0.99: warning 0.99"),
        (b'{"interval": 5, "cooldown": -2}', "cooldown: invalid value -2"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it_and_changes_nothing(
    api: MemoryApp, body: bytes, message: str
) -> None:
    before = (
        api.coordinator.cooldown,
        api.coordinator.warning,
        api.diagnostics.automatic.settings(),
    )
    reply = post(api, "/configure", body)
    assert reply.status == 400
    assert reply.json()["error"].startswith(message)
    assert reply.json()["key"] == message.partition(":")[0]
    after = (
        api.coordinator.cooldown,
        api.coordinator.warning,
        api.diagnostics.automatic.settings(),
    )
    assert after == before


@pytest.mark.parametrize("path", ["/profile", "/diagnostics"])
def test_with_a_token_profile_and_diagnostics_need_it(api: MemoryApp, path: str) -> None:
    for reply in (get(api, path, headers={}), wsgi_call(api.wsgi, path)):
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == "Bearer"
    assert get(api, "/status", headers={}).status == 200
    assert wsgi_call(api.wsgi, "/status").status == 200
    assert get(api, "/cache/metrics", headers={}).status == 200


def test_respond_reads_the_body_only_once_the_token_is_checked(api: MemoryApp) -> None:
    reads: list[int] = []

    def body() -> bytes:
        reads.append(1)
        return b'{"force": true}'

    status, headers, payload = api.respond("POST", "/cleanup", b"Bearer nope", body)
    assert (status, reads) == (401, [])
    assert (b"www-authenticate", b"Bearer") in headers
    status, _, payload = api.respond("POST", "/cleanup/", f"Bearer {TOKEN}".encode(), body)
    assert (status, reads, json.loads(payload)["forced"]) == (200, [1], True)
    status, _, payload = api.respond("GET", "/status", b"", body)
    assert (status, json.loads(payload)["pressure"]) == (200, "ok")


HUGE = "9" * 400  # a JSON integer no float holds


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f'{{"cooldown": {HUGE}}}', f"cooldown: invalid value {HUGE}: expected seconds >= 0"),
        (f'{{"interval": {HUGE}}}', f"interval: invalid value {HUGE}: expected seconds > 0"),
        (f'{{"interval": -{HUGE}}}', f"interval: invalid value -{HUGE}: expected seconds > 0"),
        ('{"cooldown": 1e300}', "cooldown: invalid value 1e+300: expected seconds >= 0 and <="),
        ('{"interval": 86401}', "interval: invalid value 86401: expected seconds > 0 and <= 86400"),
        ('{"cooldown": -0.5}', "cooldown: invalid value -0.5: expected seconds >= 0"),
        ('{"cooldown": false}', "cooldown: invalid value False: expected seconds >= 0"),
        ('{"interval": null}', "interval: invalid value None: expected seconds > 0"),
        (f'{{"warning": {HUGE}}}', f"warning: invalid value {HUGE}: warning must be a fraction"),
        (f'{{"critical": -{HUGE}}}', f"critical: invalid value -{HUGE}: critical must be a"),
        ('{"warning": true}', "warning: invalid value True: expected a fraction in (0, 1]"),
        (f'{{"alert_threshold": {HUGE}}}', f"alert_threshold: invalid size {HUGE}"),
        (f'{{"alert_threshold": -{HUGE}}}', f"alert_threshold: invalid size -{HUGE}"),
        ('{"alert_threshold": true}', "alert_threshold: invalid size True"),
        ('{"auto_cleanup": 1}', "auto_cleanup: invalid value 1: expected true or false"),
    ],
)
def test_configure_answers_400_naming_the_key_for_any_number_out_of_range(
    api: MemoryApp, body: str, message: str
) -> None:
    """A huge integer is compared, never turned into a float (which overflows: a 500)."""
    coordinator = api.coordinator
    before = (coordinator.warning, coordinator.critical, coordinator.cooldown)
    automatic = api.diagnostics.automatic.settings()
    for reply in (
        post(api, "/configure", body.encode()),
        wsgi_call(api.wsgi, "/configure", "POST", AUTH, body.encode()),
    ):
        assert reply.status == 400, reply.body[:300]
        answer = reply.json()
        assert answer["error"].startswith(message)
        assert answer["key"] == message.partition(":")[0]
    assert (coordinator.warning, coordinator.critical, coordinator.cooldown) == before
    assert api.diagnostics.automatic.settings() == automatic


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"Infinity", b"-Infinity", b"NaN"])
@pytest.mark.parametrize("key", [b"cooldown", b"interval"])
def test_configure_refuses_seconds_that_are_not_finite(
    api: MemoryApp, key: bytes, number: bytes
) -> None:
    body = b'{"' + key + b'": ' + number + b"}"
    for reply in (
        post(api, "/configure", body),
        wsgi_call(api.wsgi, "/configure", "POST", AUTH, body),
    ):
        assert reply.status == 400
        assert reply.json()["error"].startswith("malformed JSON: ")


def test_configure_accepts_seconds_up_to_a_day(api: MemoryApp) -> None:
    reply = post(api, "/configure", b'{"cooldown": 86400, "interval": 86400}')
    assert reply.status == 200
    assert (reply.json()["cooldown"], reply.json()["interval"]) == (86400.0, 86400.0)
