"""What ``MemoryMonitorMiddleware`` costs per request, under uvicorn, on a trivial app.

Starts one uvicorn server process per variant on loopback, each on a socket this script
listens on first (no port is guessed): the trivial ASGI app alone, the app wrapped in
the middleware of this checkout, with ``--no-sampler`` that middleware without its
sampler thread (``sample_interval=None``: what the thread costs), and, with ``--against
SRC``, wrapped in the middleware of another source tree (``PYTHONPATH=SRC``; e.g. ``git
archive main pytest_memguard | tar -x -C /tmp/main``; give two copies of one tree to see
how far two processes of the same code differ).  The middleware runs with its defaults:
response headers on, the sampler thread every 5 ms, the alert threshold of 20 MB.

One client (a raw socket per server, kept alive, one request at a time) times
``--requests`` requests against each server in turn, in alternating rounds whose order
rotates, so that a busy machine slows every variant of a round alike.  By default the
client runs on the first CPU and every server on the second (``--pin apart``): left to
the scheduler (``--pin none``), a server process that shares a CPU with the client stays
slower for its whole life, and that, not the code, decided a variant's figure; even
pinned, two processes of the same code differ by up to a tenth, so each variant runs in
``--processes`` processes in turn, a share of the rounds each.  Prints
each variant's requests per second (median over the rounds), then per-round ratios to
the plain app (median, and the middle half: first to third quartile) of the mean time a
request, of the median of single requests' times (a request the machine's other work
delayed does not move it), and of the server process's CPU time a request (user and
system, all its threads, read from ``/proc``: Linux).  Usage:

    python benchmarks/web_overhead.py [--rounds 21] [--requests 2000] [--no-sampler]
        [--processes 3] [--pin apart|together|none] [--against SRC]

The client's own time is in every figure, as in any client's measure; the ratio is the
request as a keep-alive client sees it.  With the client on another CPU, the work the
middleware does after the response is sent (the record) overlaps the client's next
request; ``--pin together`` puts it in the time too.
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

if sys.argv[2] != "plain":
    from pytest_memguard.web import MemoryMonitorMiddleware
    if sys.argv[2] == "no-sampler":
        app = MemoryMonitorMiddleware(app, sample_interval=None)
    else:
        app = MemoryMonitorMiddleware(app)
config = uvicorn.Config(app, fd=int(sys.argv[1]), log_level="warning", access_log=False,
                        lifespan="off", timeout_keep_alive=3600)
uvicorn.Server(config).run()
"""

REQUEST = b"GET /items/7?q=1 HTTP/1.1\r\nHost: bench\r\n\r\n"


class Server:
    """One uvicorn process serving a variant on a loopback socket opened here."""

    def __init__(self, name: str, source: str, kind: str, cpus: set[int] | None) -> None:
        self.name = name
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        # uvicorn takes a passed socket for a Unix one, and asyncio then leaves Nagle's
        # algorithm on: each response's second write would wait for the client's ACK.
        # An accepted socket inherits the option from its listener (Linux).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = listener.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        environ["PYTHONPATH"] = source
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(listener.fileno()), kind],
            pass_fds=(listener.fileno(),),
            env=environ,
            cwd=Path(source).anchor,  # not a folder holding another pytest_memguard
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
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

    def timed(self, requests: int) -> tuple[float, float, float]:
        """Seconds per request, over ``requests`` requests: the mean at the client, the
        median of the single requests' times (a request the machine's other work delayed
        does not move it), and the server process's CPU time (all its threads)."""
        single = [0] * requests
        clock = time.perf_counter_ns
        cpu = self._cpu()
        began = clock()
        for index in range(requests):
            start = clock()
            self.request()
            single[index] = clock() - start
        wall = (clock() - began) / 1e9
        typical = statistics.median(single) / 1e9
        return wall / requests, typical, (self._cpu() - cpu) / requests

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
    parser.add_argument(
        "--no-sampler",
        action="store_true",
        help="Also time this checkout's middleware with sample_interval=None",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=3,
        help="Server processes a variant, one after the other, each for its share of the rounds",
    )
    parser.add_argument(
        "--pin",
        choices=["apart", "together", "none"],
        default="apart",
        help="The client on the first CPU and every server on the second (apart), all on"
        " the first (together), or where the scheduler puts them (none)",
    )
    args = parser.parse_args()
    cpus: set[int] | None = None
    if args.pin != "none":
        first, *others = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {first})
        cpus = {others[0] if args.pin == "apart" and others else first}
    variants = [("plain", HERE, "plain"), ("middleware", HERE, "middleware")]
    if args.no_sampler:
        variants.append(("middleware, no sampler", HERE, "no-sampler"))
    for source in args.against:
        variants.append((f"middleware of {source}", str(Path(source).resolve()), "middleware"))
    names = [name for name, _, _ in variants]
    times: dict[str, list[float]] = {name: [] for name in names}
    typicals: dict[str, list[float]] = {name: [] for name in names}
    server_cpu: dict[str, list[float]] = {name: [] for name in names}
    for block in range(args.processes):  # fresh server processes for each block of rounds
        servers = [Server(name, tree, kind, cpus) for name, tree, kind in variants]
        try:
            for server in servers:  # warm up; the middleware variants add their headers
                head = b""
                for _ in range(200):
                    head = server.request()
                if (b"x-memory-rss" in head.lower()) != (server.name != "plain"):
                    raise SystemExit(f"{server.name}: unexpected headers {head!r}")
            for round_ in range(block, args.rounds, args.processes):
                shift = round_ % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    wall, typical, cpu = server.timed(args.requests)
                    times[server.name].append(wall)
                    typicals[server.name].append(typical)
                    server_cpu[server.name].append(cpu)
        finally:
            for server in servers:
                server.stop()
    print(
        f"{args.rounds} rounds of {args.requests} keep-alive requests a variant,"
        f" {args.processes} processes a variant, pinned: {args.pin}"
    )
    print(
        f"{'variant':<30} {'requests/s':>10} {'mean ratio':>10} {'q1-q3':>12}"
        f" {'median/req':>10} {'ratio':>7} {'q1-q3':>12}"
        f" {'CPU/req':>9} {'ratio':>7} {'q1-q3':>12}"
    )
    for name, seconds in times.items():
        rate = statistics.median(1 / s for s in seconds)
        columns = [f"{rate:>10,.0f}"]
        for figures, per_request in (
            (times, None),
            (typicals, typicals[name]),
            (server_cpu, server_cpu[name]),
        ):
            q1, median, q3 = _spread(
                [f / p for f, p in zip(figures[name], figures["plain"], strict=True)]
            )
            if per_request is not None:
                width = 7 if figures is typicals else 6
                columns.append(f"{statistics.median(per_request) * 1e6:>{width}.1f} us")
            columns.append(f"{median:>6.3f}x {q1:>6.3f}-{q3:.3f}")
        label = name if len(name) <= 30 else "..." + name[-27:]
        print(f"{label:<30} " + " ".join(columns))


if __name__ == "__main__":
    main()
