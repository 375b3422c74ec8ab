"""What ``MemoryMonitorMiddleware`` costs per request, under uvicorn, on a trivial app.

Starts one uvicorn server process per variant on loopback, each on a socket this script
listens on first (no port is guessed): the trivial ASGI app alone, the app wrapped in
the middleware of this checkout, and, with ``--against SRC``, wrapped in the middleware
of another source tree (``PYTHONPATH=SRC``; e.g. ``git archive main | tar -x -C
/tmp/main``).  The middleware runs with its defaults: response headers on, the sampler
thread every 5 ms, the alert threshold of 20 MB.

One client (a raw socket per server, kept alive, one request at a time) times
``--requests`` requests against each server in turn, in alternating rounds whose order
rotates, so that a busy machine slows every variant of a round alike.  Prints each
variant's requests per second (median over the rounds) and the median of its per-round
per-request time ratio to the plain app, with the middle half (first to third quartile)
of those ratios; then the same for the server process's CPU time per request (user and
system, all its threads, read from ``/proc``: Linux), which a loaded machine moves less.  Usage:

    python benchmarks/web_overhead.py [--rounds 21] [--requests 2000] [--against SRC]

The client's own time is in every figure, as in any client's measure; the ratio is the
request as a keep-alive client sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent.parent)

SERVER = """
import socket, sys
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

if sys.argv[2] == "middleware":
    from pytest_memguard.web import MemoryMonitorMiddleware
    app = MemoryMonitorMiddleware(app)
config = uvicorn.Config(app, fd=int(sys.argv[1]), log_level="warning", access_log=False,
                        lifespan="off", timeout_keep_alive=3600)
uvicorn.Server(config).run()
"""

REQUEST = b"GET /items/7?q=1 HTTP/1.1\r\nHost: bench\r\n\r\n"


class Server:
    """One uvicorn process serving a variant on a loopback socket opened here."""

    def __init__(self, name: str, source: str, middleware: bool) -> None:
        self.name = name
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        # uvicorn takes a passed socket for a Unix one, and asyncio then leaves Nagle's
        # algorithm on: each response's second write would wait for the client's ACK.
        # An accepted socket inherits the option from its listener (Linux).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = listener.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        environ["PYTHONPATH"] = source
        kind = "middleware" if middleware else "plain"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(listener.fileno()), kind],
            pass_fds=(listener.fileno(),),
            env=environ,
            cwd=Path(source).anchor,  # not a folder holding another pytest_memguard
        )
        listener.close()  # the server has its own copy; connections wait in its backlog
        self.client = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def request(self) -> bytes:
        """One request on the kept connection; the response's head."""
        self.client.sendall(REQUEST)
        data = self.pending
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head = data[:end]
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                total = end + 4 + length
                if len(data) >= total:
                    self.pending = data[total:]
                    return head
            chunk = self.client.recv(65536)
            if not chunk:
                raise ConnectionError(f"{self.name}: the server closed the connection")
            data += chunk

    def timed(self, requests: int) -> tuple[float, float]:
        """Seconds per request, over ``requests`` requests: wall time at the client, and
        the server process's CPU time (user and system, all its threads)."""
        cpu = self._cpu()
        began = time.perf_counter()
        for _ in range(requests):
            self.request()
        wall = time.perf_counter() - began
        return wall / requests, (self._cpu() - cpu) / requests

    def _cpu(self) -> float:
        """Seconds on a CPU of the server's threads (``schedstat``: nanoseconds, where
        ``stat`` counts clock ticks of 10 ms)."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        total = 0
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)


def _spread(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return q1, median, q3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--requests", type=int, default=2000, help="Requests a variant a round")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="SRC",
        help="Another version's source tree (holding pytest_memguard/) to time alongside",
    )
    args = parser.parse_args()
    servers = [Server("plain", HERE, False), Server("middleware", HERE, True)]
    for source in args.against:
        servers.append(Server(f"middleware of {source}", str(Path(source).resolve()), True))
    try:
        for server in servers:  # warm up; the middleware variants must add their headers
            head = b""
            for _ in range(200):
                head = server.request()
            if (b"x-memory-rss" in head.lower()) != (server.name != "plain"):
                raise SystemExit(f"{server.name}: unexpected headers {head!r}")
        times: dict[str, list[float]] = {server.name: [] for server in servers}
        cpus: dict[str, list[float]] = {server.name: [] for server in servers}
        for round_ in range(args.rounds):
            shift = round_ % len(servers)
            for server in servers[shift:] + servers[:shift]:
                wall, cpu = server.timed(args.requests)
                times[server.name].append(wall)
                cpus[server.name].append(cpu)
    finally:
        for server in servers:
            server.stop()
    print(f"{args.rounds} rounds of {args.requests} keep-alive requests a variant")
    print(
        f"{'variant':<36} {'requests/s':>10} {'time ratio':>10} {'q1-q3':>12}"
        f" {'server CPU/req':>14} {'ratio':>7} {'q1-q3':>12}"
    )
    for name, seconds in times.items():
        rate = statistics.median(1 / s for s in seconds)
        q1, median, q3 = _spread([s / p for s, p in zip(seconds, times["plain"], strict=True)])
        c1, cpu_ratio, c3 = _spread([c / p for c, p in zip(cpus[name], cpus["plain"], strict=True)])
        cpu = statistics.median(cpus[name]) * 1e6
        label = name if len(name) <= 36 else "..." + name[-33:]
        print(
            f"{label:<36} {rate:>10,.0f} {median:>9.3f}x {q1:>6.3f}-{q3:.3f}"
            f" {cpu:>11.1f} us {cpu_ratio:>6.3f}x {c1:>6.3f}-{c3:.3f}"
        )


if __name__ == "__main__":
    main()
