"""``memguard profile|cleanup|configure --url``: against the example service under uvicorn,
and against small servers on loopback for the answers a service should never give."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from pytest_memguard.cli import main
from pytest_memguard.library.cache import CacheManager
from pytest_memguard.library.pressure import MemoryPressureCoordinator
from pytest_memguard.web import memory_app

from ..web.helpers import TOKEN, Server, example_service

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with example_service(tmp_path_factory.mktemp("service")) as served:
        yield served


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMGUARD_TOKEN", raising=False)


def url_of(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/memory"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_cleanup_force_frees_the_example_service_s_cache_and_says_what(
    service: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.get("/primes/200000").status == 200  # fills the cache
    before = service.get("/memory/cache/metrics").json()["primes"]["memory_bytes"]
    assert before > 100_000
    argv = ["cleanup", "--force", "--url", url_of(service), "--token", TOKEN]
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, [])
    assert out[0].startswith("cleanup ran (forced): handlers freed ")
    assert "freed 0 B" not in out[0]
    assert any(line.startswith("  cache_manager: ") for line in out)
    assert any("gc.collect() found" in line for line in out)
    assert service.get("/memory/cache/metrics").json()["primes"]["memory_bytes"] == 0


def test_without_the_token_it_exits_non_zero_with_one_line(
    service: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    url = url_of(service)
    code, out, err = run(capsys, "cleanup", "--force", "--url", url)
    assert (code, out) == (2, [])
    assert err == [
        f"memguard cleanup: error: the token was refused by {url}/cleanup (401): none was "
        "given (pass --token or set MEMGUARD_TOKEN)"
    ]
    code, _, err = run(capsys, "profile", "--url", url, "--token", "wrong")
    assert code == 2
    assert err == [
        f"memguard profile: error: the token was refused by {url}/profile (401): it is not "
        "the service's token"
    ]


def test_the_token_from_the_environment_profile_and_configure(
    service: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMGUARD_TOKEN", TOKEN)
    url = url_of(service)
    code, out, _ = run(capsys, "profile", "--url", url)
    assert code == 0
    assert out[0].startswith("process: pid ")
    assert any(line.startswith("  primes: ") for line in out)
    code, out, _ = run(capsys, "profile", "--url", url + "/", "--json")
    assert code == 0
    assert json.loads("\n".join(out))["caches"]["primes"]["max_size"] == 1000
    argv = ["configure", "--url", url, "--cooldown", "600", "--interval", "3600"]
    code, out, _ = run(capsys, *argv, "--no-auto-cleanup")
    assert code == 0
    assert out == [
        "configured auto_cleanup, cooldown, interval: warning 0.7, critical 0.85, "
        "cooldown 600 s, interval 3600 s, auto cleanup off (automatic mode not running)"
    ]
    code, out, err = run(capsys, "cleanup", "--url", url, "--force")
    assert code == 0
    code, out, err = run(capsys, "cleanup", "--url", url)
    assert (code, out) == (1, [])
    assert err[0].startswith("memguard cleanup: did not run (cooldown, retry in ")
    code, _, err = run(capsys, "configure", "--url", url, "--warning", "0.9")
    assert code == 2
    assert err == [
        f"memguard configure: error: {url}/configure answered 400: warning: invalid value "
        "0.9: warning 0.9 is above critical 0.85 (expected warning <= critical, e.g. 0.70 "
        "and 0.85)"
    ]
    code, _, _ = run(capsys, "configure", "--url", url, "--cooldown", "0")
    assert code == 0


def test_an_unreachable_url(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run(capsys, "profile", "--url", f"http://127.0.0.1:{port}/memory")
    assert (code, out) == (2, [])
    assert len(err) == 1
    assert err[0].startswith(
        f"memguard profile: error: cannot reach http://127.0.0.1:{port}/memory/profile: "
    )


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


def answering(status: str, body: bytes) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "text/html")])
        return [body]

    return app


def mounted(app: WSGIApplication) -> WSGIApplication:
    """``app`` under ``/memory``, as a dispatcher mounts it."""

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["SCRIPT_NAME"] = "/memory"
        environ["PATH_INFO"] = environ["PATH_INFO"].removeprefix("/memory")
        return app(environ, start_response)

    return dispatch


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApplication], str]]:
    """Serve WSGI apps with wsgiref in threads of this process; returns their base URL."""
    servers = []

    def start(app: WSGIApplication) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/memory"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        ("200 OK", b"<html>hello</html>", " (status 200): not JSON: '<html>hello</html>'"),
        ("404 Not Found", b"", " (status 404): not JSON: 'an empty body'"),
        ("200 OK", b"[1, 2]", " (status 200): expected a JSON object, got list"),
        ("200 OK", b'{"hello": 1}', ": no 'rss', 'system', 'pressure', 'caches' in it"),
    ],
)
def test_an_answer_that_is_not_the_endpoints_json(
    serve: Callable[[WSGIApplication], str],
    capsys: pytest.CaptureFixture[str],
    status: str,
    body: bytes,
    said: str,
) -> None:
    url = serve(answering(status, body))
    code, out, err = run(capsys, "profile", "--url", url, "--token", TOKEN)
    assert (code, out) == (2, [])
    assert len(err) == 1
    assert err[0].startswith(f"memguard profile: error: bad answer from {url}/profile{said}")


def test_a_service_without_a_token_refuses_with_403(
    serve: Callable[[WSGIApplication], str], capsys: pytest.CaptureFixture[str]
) -> None:
    api = memory_app(coordinator=MemoryPressureCoordinator(), cache_manager=CacheManager())
    url = serve(mounted(api.wsgi))
    try:
        code, _, err = run(capsys, "cleanup", "--url", url, "--token", TOKEN)
        assert code == 2
        assert err == [
            f"memguard cleanup: error: the token was refused by {url}/cleanup (403): POST "
            "routes are off: memory_app() was built with no token"
        ]
        code, out, _ = run(capsys, "profile", "--url", url)  # open: the app has no token
        assert code == 0
        assert out[0].startswith("process: pid ")
    finally:
        api.close()


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "configure", "--url", "http://127.0.0.1:9/memory")
    assert code == 2
    assert err == [
        "memguard configure: error: nothing to configure (give --warning, --critical, "
        "--cooldown, --interval, --auto-cleanup or --no-auto-cleanup)"
    ]
    code, _, err = run(capsys, "profile", "--url", str(tmp_path))
    assert code == 2
    assert err[-1].startswith("memguard profile: error: argument --url: invalid URL ")
    code, _, err = run(capsys, "configure", "--url", "http://h/m", "--warning", "1.5")
    assert code == 2
    assert err[-1].endswith("invalid fraction '1.5' (expected a number in (0, 1], e.g. 0.7)")


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",  # urlsplit raises ValueError: argparse used to print "invalid _url value"
        "http://127.0.0.1:abc/memory",  # a traceback (http.client.InvalidURL) when requested
        "http://127.0.0.1:99999/memory",
        "http://127.0.0.1:0/memory",
        "http://:8000/memory",
        "http://127.0.0.1:8000/me mory",
        "http://127.0.0.1:8000/me\tmory",
        "ftp://127.0.0.1/memory",
    ],
)
def test_a_malformed_url_is_a_usage_error_that_repeats_it(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, err = run(capsys, "profile", "--url", url)
    assert (code, out) == (2, [])
    assert err[-1] == (
        f"memguard profile: error: argument --url: invalid URL {url!r} (expected where the "
        "endpoints are mounted, e.g. http://127.0.0.1:8000/memory)"
    )
