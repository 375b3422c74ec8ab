"""Pre-flight (``--memguard-min-free``): a test does not start while too little memory is free.

The plugin asks :meth:`Preflight.shortfall` in its setup wrapper, before pytest sets up
the test's fixtures, when the option is set; a shortfall is the test's ``not_run``
verdict.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Final

from ..core.sizes import format_size
from ..probe.system import read_system_memory

__all__ = ["Preflight"]

#: Seconds to wait, after a cleanup, for memory to come back.
WAIT: Final = 2.0
#: Readings taken over that wait.
POLLS: Final = 4


def available_memory() -> int:
    """Bytes this process can still get (container-aware)."""
    return read_system_memory().available


class Preflight:
    """Checks available memory before each test; frees, waits, then refuses to start it.

    ``read`` (bytes available), ``sleep`` and ``relieve`` are injectable, and ``wait``
    (seconds) and ``polls`` can be changed, so that tests need not sleep.
    """

    def __init__(
        self,
        min_free: int,
        source: str,
        relieve: Callable[[str, str | None], object],
        *,
        read: Callable[[], int] = available_memory,
        sleep: Callable[[float], object] = time.sleep,
        wait: float = WAIT,
        polls: int = POLLS,
    ) -> None:
        self.min_free = min_free
        self.source = source
        self.relieve = relieve
        self.read = read
        self.sleep = sleep
        self.wait = wait
        self.polls = polls

    def shortfall(self, nodeid: str) -> str | None:
        """Why ``nodeid`` must not start (memory stays short after a cleanup), or None."""
        available = self.read()
        if available >= self.min_free:
            return None
        wanted = format_size(self.min_free)
        gc.collect()
        self.relieve(f"{format_size(available)} available before {nodeid}", nodeid)
        polls = max(1, self.polls)
        for attempt in range(polls + 1):
            available = self.read()
            if available >= self.min_free:
                return None
            if attempt < polls:
                self.sleep(max(0.0, self.wait) / polls)
        return (
            f"memguard: not started: {format_size(available)} available,"
            f" {self.source} asks for {wanted}"
        )
