"""The ASGI middleware and the memory routes under a real uvicorn server (a subprocess)."""

from __future__ import annotations

import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .app import MB
from .helpers import AUTH, GET_ROUTES, PROTECTED, Reply, Server, raw_head, request


def test_responses_carry_the_memory_headers(server: Server) -> None:
    reply = server.get("/hello")
    assert reply.status == 200
    assert reply.json() == {"hello": "world"}
    int(reply.headers["x-memory-delta"])
    assert int(reply.headers["x-memory-rss"]) > 1 * MB


def test_lifespan_reaches_the_app_through_the_middleware(server: Server) -> None:
    assert server.get("/lifespan").json() == {"startup": True}


def test_a_50_mb_request_comes_first_among_the_heaviest_and_alerts(server: Server) -> None:
    assert server.get("/alloc").status == 200
    stats = server.get("/memory/requests").json()
    heaviest = stats["heaviest"][0]
    assert heaviest["path"] == "/alloc"
    assert heaviest["method"] == "GET"
    assert heaviest["status"] == 200
    assert heaviest["peak_growth"] > 40 * MB
    assert heaviest["delta"] < heaviest["peak_growth"]  # freed before the end
    assert stats["routes"]["/alloc"]["max_peak_growth"] == heaviest["peak_growth"]
    assert "/alloc" in server.get("/alerts").json()["alerts"]


def test_200_concurrent_requests_are_answered_and_counted(server: Server) -> None:
    with ThreadPoolExecutor(max_workers=64) as pool:
        replies = list(pool.map(lambda _: server.get("/concurrent"), range(200)))
    assert [r.status for r in replies] == [200] * 200
    assert all("x-memory-delta" in r.headers for r in replies)
    stats = server.get("/memory/requests").json()
    assert stats["routes"]["/concurrent"]["count"] == 200
    assert stats["in_flight"] == 1  # only the request asking for the statistics


def test_a_thousand_unmatched_paths_leave_the_real_routes_rows_intact(server: Server) -> None:
    assert server.get("/hello").status == 200
    before = server.get("/memory/requests").json()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(1000):
            reply = request(server.port, "GET", f"/r/{uuid.uuid4().hex}", connection=connection)
            assert reply.status == 404
    finally:
        connection.close()
    assert server.get("/memory/cleanup").status == 405  # memory_app's own 405
    assert server.get("/lifespan").status == 200  # a route that may be new: it gets a row
    stats = server.get("/memory/requests").json()
    routes, earlier = stats["routes"], before["routes"]
    unmatched = earlier.get("(unmatched)", {"count": 0})["count"]
    assert routes["(unmatched)"]["count"] == unmatched + 1001
    assert routes.get("(other)") == earlier.get("(other)")  # nothing pushed out
    assert routes["/hello"] == earlier["/hello"]
    assert routes["/lifespan"]["count"] >= 1
    assert not any(path.startswith("/r/") for path in routes)
    assert len(routes) <= stats["max_routes"] + 2
    assert stats["requests"] >= before["requests"] + 1003
    assert len(stats["heaviest"]) <= 10


@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_as_get_without_the_body(server: Server, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:  # one kept connection: a stray body byte would break the next response
        full = request(server.port, "GET", f"/memory{path}", None, AUTH, connection)
        head = request(server.port, "HEAD", f"/memory{path}", None, AUTH, connection)
        again = request(server.port, "GET", f"/memory{path}", None, AUTH, connection)
    finally:
        connection.close()
    assert (head.status, head.body) == (full.status, b"") == (200, b"")
    assert again.status == 200
    assert set(head.headers) == set(full.headers)
    for name in ("content-type", "cache-control"):
        assert head.headers[name] == full.headers[name]
    assert int(head.headers["content-length"]) >= len(b"{}")
    header_block, after = raw_head(server.port, f"/memory{path}")
    assert header_block.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-length: " in header_block.lower()
    assert after == b""


def test_head_of_a_refusal_has_no_body(server: Server) -> None:
    missing = request(server.port, "HEAD", "/memory/nothing-here")
    assert (missing.status, missing.body) == (404, b"")
    assert missing.headers["content-type"] == "application/json"
    assert int(missing.headers["content-length"]) > 0  # of the JSON error it did not send
    wrong = request(server.port, "HEAD", "/memory/cleanup")
    assert (wrong.status, wrong.headers["allow"], wrong.body) == (405, "POST", b"")
    assert server.get("/memory/cleanup").json()["allow"] == "POST"
    assert request(server.port, "DELETE", "/memory/status").headers["allow"] == "GET, HEAD"


def test_cleanup_needs_the_token_and_reports_what_it_freed(server: Server) -> None:
    refused = server.post("/memory/cleanup", auth=False)
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = request(server.port, "POST", "/memory/cleanup", headers={"Authorization": "Bearer x"})
    assert wrong.status == 401
    done = server.post("/memory/cleanup")
    assert done.status == 200
    result = done.json()
    assert result["ran"] is True
    assert result["handlers"]["cache_manager"] > 0  # the startup cache dropped 3/4
    assert result["freed"] == sum(result["handlers"].values())
    again = server.post("/memory/cleanup")  # within the coordinator's cooldown
    assert again.status == 429
    assert again.json()["reason"] == "cooldown"
    assert int(again.headers["retry-after"]) > 0


def test_configure_refuses_bad_input_and_applies_good_input(server: Server) -> None:
    malformed = server.post("/memory/configure", b"{not json")
    assert malformed.status == 400
    assert "malformed JSON" in malformed.json()["error"]
    unknown = server.post("/memory/configure", b'{"colour": "red"}')
    assert (unknown.status, unknown.json()["key"]) == (400, "colour")
    bad = server.post("/memory/configure", b'{"alert_threshold": "12 apples"}')
    assert bad.status == 400
    assert "alert_threshold" in bad.json()["error"]
    assert "12 apples" in bad.json()["error"]
    assert server.post("/memory/configure", b'{"headers": false}', auth=False).status == 401
    try:
        off = server.post("/memory/configure", json.dumps({"headers": False}).encode())
        assert (off.status, off.json()["headers"]) == (200, False)
        assert "x-memory-delta" not in server.get("/hello").headers
    finally:
        assert server.post("/memory/configure", b'{"headers": true}').status == 200
    assert "x-memory-delta" in server.get("/hello").headers


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        (b'{"warning": 1e-300}', "warning", "is below one page"),
        (b'{"critical": 0}', "critical", "critical must be a fraction in (0, 1], got 0"),
        (b'{"alert_threshold": 10000000000000000000000000000000000000000}', "alert_threshold", ""),
        (b'{"alert_threshold": "1 KB"}', "alert_threshold", "page"),
        (b'{"alert_threshold": 0}', "alert_threshold", "page"),
    ],
)
def test_configure_refuses_values_out_of_range(
    server: Server, body: bytes, key: str, fragment: str
) -> None:
    reply = server.post("/memory/configure", body)
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["key"] == key
    assert reply.json()["error"].startswith(f"{key}: invalid ")
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"Infinity"])
def test_configure_refuses_numbers_that_are_not_finite(server: Server, number: bytes) -> None:
    reply = server.post("/memory/configure", b'{"warning": ' + number + b"}")
    assert reply.status == 400
    assert reply.json()["error"].startswith("malformed JSON: ")


def test_status_and_the_other_read_routes(server: Server) -> None:
    status = server.get("/memory/status").json()
    assert status["rss"] > 0
    assert status["source"] in ("cgroup", "host")
    assert status["pressure"] in ("ok", "warning", "critical")
    assert "pages" in server.get("/memory/cache/metrics").json()
    assert server.get("/memory/profile", AUTH).json()["rss"] > 0
    assert "top_allocations" in server.get("/memory/diagnostics", AUTH).json()


@pytest.mark.parametrize("path", PROTECTED)
def test_with_a_token_profile_and_diagnostics_need_it_and_status_does_not(
    server: Server, path: str
) -> None:
    refused = server.get(f"/memory{path}")
    assert refused.status == 401
    assert refused.json()["error"] == "missing or wrong 'Authorization: Bearer <token>'"
    assert server.get(f"/memory{path}", {"Authorization": "Bearer wrong"}).status == 401
    assert server.get("/memory/status").status == 200
    assert server.get(f"/memory-open{path}").status == 200  # an app without a token


def test_404_405_403_and_413(server: Server) -> None:
    missing: Reply = server.get("/memory/nothing-here")
    assert missing.status == 404
    assert "GET /status" in missing.json()["routes"]
    wrong_method = server.get("/memory/cleanup")
    assert (wrong_method.status, wrong_method.headers["allow"]) == (405, "POST")
    assert server.post("/memory-open/cleanup").status == 403
    assert server.get("/memory-open/status").status == 200
    too_large = server.post("/memory/configure", b" " * (17 * 1024))
    assert too_large.status == 413
