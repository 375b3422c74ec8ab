"""``--memguard-ledger``: several guarded runs on one machine count each other.

Each process that runs tests (the single process, or an xdist worker) has an entry in
the host-wide ledger (:mod:`pytest_memguard.library.ledger`) from its session's start to
its end: its RSS outside tests and, while a heavy test runs, that test's predicted peak
growth.  Before a heavy test (predicted above :data:`HEAVY_SHARE` of the limit: light
tests never touch the file, so a suite of small tests pays nothing) the process waits
until the test fits beside what the others hold, or until no other run reserves
anything.  How long tests waited, and for whom, is said at the end of the run (an xdist
worker sends it to its controller on ``workeroutput``).

The predictions are packing's: the history of measured peaks
(:func:`~.peakcache.load_history`), read once by each process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core.sizes import format_size
from ..library.ledger import Entry, Ledger, LedgerError, ledger_path, process_key

if TYPE_CHECKING:
    from ..probe.system import SystemMemory
    from ..reporting.history import PeakHistory
    from .context import RunContext, RunLog

__all__ = [
    "GATE_NAME",
    "HEAVY_SHARE",
    "RUN_KEY",
    "WAITS_KEY",
    "LedgerGate",
    "Waits",
    "gate_of",
    "memory_domain",
    "open_ledger",
    "others_line",
    "this_run",
]

GATE_NAME: Final = "memguard-ledger"
#: A test predicted to grow by more than this share of the limit is heavy (1/20).
HEAVY_SHARE: Final = 20
#: ``workerinput``: the run a worker belongs to (its controller's ``"pid:start"``).
RUN_KEY: Final = "memguard_run"
#: ``workeroutput``: how long a worker's tests waited for other runs' memory.
WAITS_KEY: Final = "memguard_ledger"
#: How the ledger's notices begin (a worker sends these to its controller).
NOTICE: Final = "memguard: ledger:"


def memory_domain(memory: SystemMemory) -> str:
    """The memory a run shares with others: its cgroup's (when it has a limit), or the
    host's."""
    return memory.cgroup if memory.source == "cgroup" and memory.cgroup else "host"


def this_run() -> str:
    """This process's run name, ``"pid:start"``."""
    pid, started = process_key()
    return f"{pid}:{started!r}"


def open_ledger(log: RunLog) -> Ledger | None:
    """The ledger, or None (with a notice) when its folder must not be used."""
    try:
        path = ledger_path()
    except (LedgerError, OSError) as error:
        log.notices.append(f"{NOTICE} not counting other runs: {error}")
        return None
    return Ledger(
        path,
        on_problem=lambda why: log.notices.append(f"{NOTICE} {why}; started afresh"),
    )


def others_line(others: Sequence[Entry], counts: str) -> str | None:
    """The header line that says other runs were counted (None: there are none)."""
    runs = {entry.run for entry in others}
    if not runs:
        return None
    held = sum(entry.held for entry in others)
    words = "other guarded run" if len(runs) == 1 else "other guarded runs"
    verb = "holds" if len(runs) == 1 else "hold"
    return (
        f"memguard: ledger: {len(runs)} {words} on this machine {verb}"
        f" {format_size(held)}; {counts}"
    )


class Waits:
    """How long this process's tests waited for other runs' memory, and for whom."""

    def __init__(self) -> None:
        self.tests = 0
        self.seconds = 0.0
        self.holders: dict[str, None] = {}

    def add(self, seconds: float, holders: Sequence[Entry] | Sequence[str]) -> None:
        self.tests += 1
        self.seconds += seconds
        for holder in holders:
            self.holders[holder if isinstance(holder, str) else holder.describe()] = None

    def merge(self, data: object) -> None:
        """Add a worker's waits (its ``workeroutput``)."""
        if isinstance(data, dict):
            self.tests += int(data.get("tests") or 0)
            self.seconds += float(data.get("seconds") or 0.0)
            for holder in data.get("holders") or ():
                self.holders[str(holder)] = None

    def to_json(self) -> dict[str, Any]:
        return {"tests": self.tests, "seconds": self.seconds, "holders": list(self.holders)}

    def line(self) -> str | None:
        """``memguard: ledger: 2 test(s) waited 41.3 s for memory other runs held (...)``."""
        if not self.tests:
            return None
        return (
            f"memguard: ledger: {self.tests} test(s) waited {self.seconds:.1f} s for memory"
            f" other runs held ({', '.join(self.holders)})"
        )


class LedgerGate:
    """In a process that runs tests, with the ledger on: its entry, and the wait before
    each heavy test (see the module)."""

    def __init__(
        self,
        config: pytest.Config,
        context: RunContext,
        ledger: Ledger,
        history: PeakHistory,
        rss: Callable[[], int],
        run: str,
    ) -> None:
        self.config = config
        self.context = context
        self.ledger = ledger
        self.history = history
        self.default_estimate = history.default_estimate()
        self.rss = rss
        self.worker = hasattr(config, "workerinput")
        pid, started = process_key()
        self.me = Entry(
            pid,
            started,
            run,
            memory_domain(context.memory),
            where=str(config.rootpath),
        )
        self.limit = context.settings.aggregate or context.memory.total
        self.heavy = self.limit // HEAVY_SHARE
        self.waits = Waits()
        self.on = True

    def prediction(self, nodeid: str) -> int:
        peak = self.history.get(nodeid)
        return peak.total if peak is not None else self.default_estimate

    def _failed(self, where: str, error: Exception) -> None:
        """The ledger cannot be used: said once, and the run goes on without it.  Its
        file's problems (``OSError``, :class:`LedgerError` among them) are a notice;
        anything else is memguard's own error, reported as one."""
        self.on = False
        if isinstance(error, OSError):
            self.context.log.notices.append(
                f"{NOTICE} not counting other runs from here on ({where}: {error})"
            )
        else:
            self.context.log.error(f"the ledger of guarded runs, {where}", error)

    def pytest_report_header(self) -> str | None:
        if self.worker:
            return None
        try:
            others = self.ledger.others(self.me.run, self.me.domain)
        except Exception as error:
            self._failed("reading it", error)
            return None
        return others_line(others, "heavy tests wait for room")

    def _now(self) -> Entry:
        """This process's entry as it stands between tests: its RSS now, no test."""
        return replace(self.me, base=self.rss(), reserved=0, test=None, waiting=0.0)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self) -> None:
        try:
            self.me = self._now()
            self.ledger.put(self.me)
        except Exception as error:
            self._failed("registering this run", error)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        prediction = self.prediction(item.nodeid) if self.on else 0
        if prediction <= self.heavy:
            return (yield)  # a light test: the ledger is not read
        entered = False
        try:
            self.me = self._now()
            began = time.monotonic()
            _, holders = self.ledger.wait(self.me, prediction, item.nodeid, self.limit)
            entered = True
            if holders:
                self.waits.add(time.monotonic() - began, holders)
        except Exception as error:
            self._failed(f"before {item.nodeid}", error)
        try:
            return (yield)
        finally:
            if entered and self.on:
                try:
                    self.ledger.put(self.me)  # its reservation ends with the test
                except Exception as error:
                    self._failed(f"after {item.nodeid}", error)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self.ledger.remove(self.me.key)
        except Exception as error:
            self._failed("leaving it", error)
        output = getattr(session.config, "workeroutput", None)
        if isinstance(output, dict):
            said = [line for line in self.context.log.notices if line.startswith(NOTICE)]
            output[WAITS_KEY] = {**self.waits.to_json(), "notices": said}
            return
        line = self.waits.line()
        if line is not None:
            self.context.log.notices.append(line)


def gate_of(
    config: pytest.Config, context: RunContext, rss: Callable[[], int]
) -> list[tuple[str, object]]:
    """The gate of a process that runs tests, when the ledger is on (with its name)."""
    if not context.settings.ledger:
        return []
    from .peakcache import load_history

    ledger = open_ledger(context.log)
    if ledger is None:
        return []
    workerinput = getattr(config, "workerinput", None)
    run = workerinput.get(RUN_KEY) if workerinput else None
    history = load_history(config, context.settings)
    return [(GATE_NAME, LedgerGate(config, context, ledger, history, rss, str(run or this_run())))]
