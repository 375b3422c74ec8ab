"""Helpers of the web tests: ASGI and WSGI callers, an HTTP client, a server."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_memguard.web.asgi import ASGIApp, Message

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The GET routes of memory_app, which HEAD answers too.
GET_ROUTES = ("/status", "/profile", "/diagnostics", "/cache/metrics", "/requests")
#: The GET routes that need the token when the app has one.
PROTECTED = ("/profile", "/diagnostics")


@dataclass
class Reply:
    """A response: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def scope_of(
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    root_path: str = "",
) -> dict[str, Any]:
    """An HTTP scope as a server builds it (``path`` includes ``root_path``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }


async def acall(app: ASGIApp, scope: dict[str, Any], chunks: Iterable[bytes] = (b"",)) -> Reply:
    """Run ``app`` once with a fake receive (``chunks`` of body) and a recording send."""
    pending = list(chunks)
    reply = Reply(0)

    async def receive() -> Message:
        if not pending:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {bytes(k).decode(): bytes(v).decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")

    await app(scope, receive, send)
    return reply


def call(app: ASGIApp, scope: dict[str, Any], chunks: Iterable[bytes] = (b"",)) -> Reply:
    """:func:`acall` on a fresh event loop."""
    return asyncio.run(acall(app, scope, chunks))


def wsgi_call(
    app: Callable[[dict[str, Any], Any], Iterable[bytes]],
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    script_name: str = "",
) -> Reply:
    """Call a WSGI app once as a server would (``PATH_INFO`` relative to ``script_name``)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{key}"] = value
    reply = Reply(0)

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc: Any = None
    ) -> Any:
        reply.status = int(status.split(" ", 1)[0])
        reply.headers = {name.lower(): value for name, value in response_headers}
        return lambda data: None

    result = app(environ, start_response)
    try:
        reply.body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return reply


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Reply:
    """One real HTTP request to 127.0.0.1:``port`` (on ``connection`` when given, kept open)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        names = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, names, data)
    finally:
        if connection is None:
            conn.close()


def raw_head(port: int, path: str, token: str | None = TOKEN) -> tuple[bytes, bytes]:
    """``HEAD path`` on a fresh socket, read to its close: the header block and what follows.

    What follows the headers must be empty: a byte of body would be read, on a kept
    connection, as the start of the next response.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        auth = "" if token is None else f"Authorization: Bearer {token}\r\n"
        sent = f"HEAD {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        sock.sendall(sent.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


@dataclass
class Server:
    """A uvicorn server in a subprocess; :meth:`stop` terminates it and waits."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return request(self.port, "GET", path, headers=headers)

    def post(self, path: str, body: bytes | None = None, auth: bool = True) -> Reply:
        return request(self.port, "POST", path, body, AUTH if auth else None)

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_server(target: str, log: Path, env: Mapping[str, str] | None = None) -> Server:
    """Serve ``module:attribute`` with uvicorn on a free port, in a subprocess.

    The child binds port 0 and prints the port once it listens; connections made from
    then on wait in the listen queue until uvicorn serves them.
    """
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.web.launch", target],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
    assert process.stdout is not None
    with ThreadPoolExecutor(1, thread_name_prefix="read-port") as pool:
        line = pool.submit(process.stdout.readline)
        try:
            first = line.result(timeout=60)
        except FutureTimeout:
            process.kill()
            raise
    process.stdout.close()
    if not first.startswith(b"port "):
        process.kill()
        process.wait()
        raise RuntimeError(f"{target} did not start:\n{log.read_text()}")
    return Server(process, int(first.split()[1]), log)


@contextmanager
def example_service(folder: Path) -> Iterator[Server]:
    """``examples/service.py`` under uvicorn, with :data:`TOKEN` as its API token; its
    stderr goes to ``folder``."""
    served = start_server(
        "examples.service:app", folder / "stderr.log", env={"MEMORY_API_TOKEN": TOKEN}
    )
    try:
        yield served
    finally:
        served.stop()
