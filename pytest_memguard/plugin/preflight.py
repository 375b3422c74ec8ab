"""Pre-flight (``--memguard-min-free``): a test does not start while too little memory is free.

A plugin of its own, registered only when the option is set, so that other runs pay
nothing per test.  Its plain setup hook runs inside memguard's setup wrapper (the test's
:class:`~.state.TestState` exists by then) and before pytest's, which sets up fixtures.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import pytest

from ..core.sizes import format_size
from ..probe.system import read_system_memory

if TYPE_CHECKING:
    from .context import Run
    from .state import TestState

__all__ = ["PLUGIN_NAME", "Preflight", "register", "unregister"]

PLUGIN_NAME: Final = "memguard-preflight"
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
        on_error: Callable[[str, BaseException], None] | None = None,
        state_of: Callable[[pytest.Item], TestState | None] = lambda item: None,
    ) -> None:
        self.min_free = min_free
        self.source = source
        self.relieve = relieve
        self.read = read
        self.sleep = sleep
        self.wait = wait
        self.polls = polls
        self.on_error = on_error
        #: The running test's measurements, where its refusal is recorded.
        self.state_of = state_of

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

    # Registered after pytest's runner, so called before it.
    @pytest.hookimpl
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        try:
            message = self.shortfall(item.nodeid)
        except Exception as error:  # never the cause of a lost run: the test goes on
            if self.on_error is not None:
                self.on_error(f"pre-flight check of {item.nodeid}", error)
            return
        if message is None:
            return
        state = self.state_of(item)
        if state is not None:
            state.status, state.message = "not_run", message
        pytest.fail(message, pytrace=False)


def register(config: pytest.Config, run: Run, relieve: Callable[[str, str | None], object]) -> None:
    """Register the pre-flight check when ``--memguard-min-free`` (or a twin) is set.

    :param relieve: frees what the run can, ``(trigger, nodeid)``
    """
    settings = run.settings
    if settings.min_free is None:
        return
    preflight = Preflight(
        settings.min_free,
        settings.source("min_free"),
        relieve,
        on_error=run.error,
        state_of=run.state_of,
    )
    config.pluginmanager.register(preflight, PLUGIN_NAME)


def unregister(config: pytest.Config) -> None:
    """Undo :func:`register`."""
    preflight = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if preflight is not None:
        config.pluginmanager.unregister(preflight, PLUGIN_NAME)
