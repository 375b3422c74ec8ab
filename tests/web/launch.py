"""``python -m tests.web.launch module:attribute``: serve an ASGI app on a free local port.

Binds 127.0.0.1 port 0, imports the app, prints ``port N`` on stdout once the socket
listens, then serves with uvicorn until terminated (SIGTERM runs the lifespan shutdown).
"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn


def main(argv: list[str]) -> int:
    # proto IPPROTO_TCP, as getaddrinfo gives it: asyncio then turns Nagle off per connection
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(argv[0], lifespan="on", log_level="warning", access_log=False)
    config.load()  # an import error ends the process before the port is announced
    print(f"port {sock.getsockname()[1]}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads stdout from here on
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
