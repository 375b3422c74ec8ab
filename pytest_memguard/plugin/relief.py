"""Freeing memory when the run gets tight: the run's own pressure coordinator.

Between two tests, :class:`Pressure` checks whether memory is tight (the process passed
its critical threshold, or the machine is at critical pressure); only then is the
coordinator built (:class:`Relief`).  It has three handlers, called in this order, in
the main thread:

- ``pytest_memguard_pressure``: the hook, so that conftests and plugins drop their caches;
- ``services``: the process-wide coordinator, when the code under test created one
  (the library's caches and every cleanup handler registered with it);
- ``gc``: ``gc.collect()`` and a heap trim, last, so that it frees what the others dropped.

Its cooldown (60 s) keeps a run that stays tight from cleaning up after every test.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from ..core.levels import Level
from ..core.sizes import format_size
from ..probe.process import trim_heap
from ..probe.system import read_system_memory

__all__ = ["MACHINE_CRITICAL", "Pressure", "Relief"]

#: Share of the machine's usable memory in use at which the run frees what it can.
MACHINE_CRITICAL = 0.85


class Pressure:
    """The check between two tests: frees memory when the process or the machine is at
    critical.  The machine is read at most once a second; the process's critical
    threshold is heard from the watchdog (:meth:`tight`)."""

    def __init__(
        self,
        config: pytest.Config,
        rss: Callable[[], int],
        events: list[dict[str, Any]],
        notices: list[str],
    ) -> None:
        self.config = config
        self.rss = rss
        self.events = events
        self.notices = notices
        self._relief: Relief | None = None
        #: Why memory must be freed after the running test (None: no reason yet).
        self._trigger: str | None = None
        self._next_machine_check = time.monotonic() + 1.0

    def tight(self, why: str) -> None:
        """Free memory after the running test."""
        self._trigger = why

    def after(self, nodeid: str) -> None:
        """A test ended: free memory if it is tight (cheap when it is not)."""
        now = time.monotonic()
        if self._trigger is None and now < self._next_machine_check:
            return
        trigger, self._trigger = self._trigger, None
        if trigger is None:
            self._next_machine_check = now + 1.0
            memory = read_system_memory()
            if memory.total and memory.available < memory.total * (1 - MACHINE_CRITICAL):
                trigger = f"the machine has {format_size(memory.available)} available"
        if trigger is not None:
            self.relieve(trigger, nodeid)

    def relieve(self, trigger: str, nodeid: str | None) -> None:
        """Free what the run can now (the coordinator keeps its cooldown); what was
        freed goes to the terminal summary and the report."""
        if self._relief is None:
            self._relief = Relief(self.config, self.rss, self.events)
        line = self._relief.relieve(Level.CRITICAL, trigger, nodeid)
        if line is not None:
            self.notices.append(line)


class Relief:
    """The run's coordinator and the record of what it freed."""

    def __init__(
        self, config: pytest.Config, rss: Callable[[], int], events: list[dict[str, Any]]
    ) -> None:
        from ..library.pressure import MemoryPressureCoordinator

        self.config = config
        self.rss = rss
        self.coordinator = MemoryPressureCoordinator()
        self.coordinator.register("pytest_memguard_pressure", self._hooks, weak=False)
        self.coordinator.register("services", _services, weak=False)
        self.coordinator.register("gc", self._collect, weak=False)
        #: One entry per run of the handlers, for the JSON report (appended to).
        self.events = events

    def relieve(self, level: Level, trigger: str, nodeid: str | None) -> str | None:
        """Run the handlers at ``level`` (unless cooling down); a line for people, or None."""
        response = self.coordinator.handle_memory_pressure(level)
        if not response.ran:
            return None
        entry = response.as_dict()
        entry.update(time=time.time(), trigger=trigger, after=nodeid)
        self.events.append(entry)
        parts = ", ".join(f"{name} {format_size(freed)}" for name, freed in response.freed.items())
        errors = "".join(f"; {name} failed: {error}" for name, error in response.errors.items())
        return (
            f"memguard: memory is tight ({trigger}); freed {format_size(response.total_freed)}"
            f" after {nodeid or 'the session start'} ({parts}){errors}"
        )

    def _hooks(self, level: Level) -> int:
        freed = self.config.hook.pytest_memguard_pressure(config=self.config, level=level)
        return sum(value for value in freed if isinstance(value, int) and value > 0)

    def _collect(self, level: Level) -> int:
        before = self.rss()
        gc.collect()
        trim_heap()
        return max(0, before - self.rss())


def _services(level: Level) -> int | None:
    """The process-wide coordinator's handlers, if the code under test made one."""
    module = sys.modules.get("pytest_memguard.library.pressure")
    current = getattr(module, "current_memory_pressure_coordinator", None)
    coordinator = current() if current is not None else None
    if coordinator is None:
        return None
    return int(coordinator.handle_memory_pressure(level, force=True).total_freed)
