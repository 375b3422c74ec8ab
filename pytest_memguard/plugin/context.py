"""What a guarded run knows, as the plugin's helpers see it.

:class:`RunContext` is what the plugin (:mod:`.hooks`) shares with its helpers (the
report and summary, the xdist sides, the CI plugins, pytest-html's columns): the run's
settings and identity, which do not change; a :class:`RunLog` that they append to; and
the :class:`ResultSource` of the tests' results, which the single process
(:class:`LocalResults`) and the xdist controller (:class:`~.distributed.controller.Controller`)
both implement, so that nothing downstream asks which one it is.  No pytest object is
in it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..reporting.timeline import SampleBuffer

if TYPE_CHECKING:
    from ..probe.system import SystemMemory
    from ..reporting.results import TestMemory
    from .settings import Settings
    from .state import TestState

__all__ = ["LocalResults", "ResultSource", "RunContext", "RunLog"]


class ResultSource(Protocol):
    """Where a run's results come from: this process's tests, or its xdist workers'."""

    def results(self) -> list[TestMemory]:
        """Every test with a result, in the order they ended."""

    def result_of(self, nodeid: str) -> TestMemory | None:
        """The result of a test that just ended (its teardown report is being logged)."""

    def collected(self) -> Sequence[str]:
        """The node ids of the collected tests, in collection order."""

    def alerts(self) -> list[dict[str, Any]]:
        """The threshold alerts of the run's processes, oldest first."""

    def workers(self, reason: str) -> list[dict[str, Any]]:
        """The report's ``workers`` list (``reason``: why the run ended early, or "")."""

    def samples(self) -> dict[str, list[tuple[float, int]]]:
        """Each process's RSS over time, for the report's timeline."""

    def not_run_reason(self) -> str | None:
        """Why tests without a result did not run, when the source knows (else None)."""

    def peak_rss(self) -> int:
        """The highest RSS of the run's test processes."""


class RunLog:
    """What happened to the run besides its tests: appended to by every helper."""

    def __init__(self) -> None:
        #: Failures inside memguard, reported at the end; the run went on.
        self.errors: list[str] = []
        #: What a conftest's or plugin's memguard hook did wrong (named, with the hook).
        self.hook_errors: list[str] = []
        #: Lines for the terminal summary (e.g. what was freed under pressure).
        self.notices: list[str] = []
        #: The process's threshold alerts (the watchdog's thread appends).
        self.alerts: list[dict[str, Any]] = []
        #: What the run's coordinator freed when memory was tight, for the report.
        self.pressure: list[dict[str, Any]] = []

    def error(self, where: str, error: BaseException) -> None:
        """A failure inside memguard: remembered and reported, never fatal to the run."""
        self.errors.append(f"{where}: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class RunContext:
    """The run's settings and identity, its log, and where its results come from."""

    settings: Settings
    #: ``"main"``, or the xdist worker's id (``gw0``).
    worker: str
    #: Where the crash-proof records of this run's processes are written.
    work_dir: Path
    #: False in an xdist worker: the controller owns the folder and writes the report.
    owns_work_dir: bool
    memory: SystemMemory
    peak_method: str
    #: The report's ``environment`` section (computed once, when the run starts).
    environment: dict[str, Any]
    source: ResultSource
    log: RunLog = field(default_factory=RunLog)
    started: float = field(default_factory=time.time)


class LocalResults:
    """The results of the tests this process runs (one process, or an xdist worker).

    :param max_rss: the highest RSS of this process seen so far (the guard's reading)
    """

    def __init__(self, worker: str, log: RunLog, max_rss: Callable[[], int]) -> None:
        self.worker = worker
        self.log = log
        self.max_rss = max_rss
        self._collected: list[str] = []
        #: Finished tests, in the order they ended.
        self.finished: list[TestMemory] = []
        #: The test in progress (from the start of its protocol to its end), or None.
        self.running: TestState | None = None
        #: This process's RSS as the watchdog saw a test grow, for the report's timeline.
        self.buffer = SampleBuffer()
        #: True once the guard ended this process (a test would not stop).
        self.escalated = False

    def state_of(self, nodeid: str) -> TestState | None:
        """The measurements of test ``nodeid`` while it runs (its protocol), else None."""
        state = self.running
        return state if state is not None and state.nodeid == nodeid else None

    def collect(self, nodeids: Sequence[str]) -> None:
        self._collected.extend(nodeids)

    # -- ResultSource ------------------------------------------------------------------

    def results(self) -> list[TestMemory]:
        return list(self.finished)

    def result_of(self, nodeid: str) -> TestMemory | None:
        state = self.state_of(nodeid)
        return state.built if state is not None else None

    def collected(self) -> Sequence[str]:
        return self._collected

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.log.alerts)

    def workers(self, reason: str) -> list[dict[str, Any]]:
        return [
            {
                "id": self.worker,
                "pid": os.getpid(),
                "peak_rss": self.peak_rss(),
                "killed": self.escalated,
                "reason": (reason or None) if self.escalated else None,
            }
        ]

    def samples(self) -> dict[str, list[tuple[float, int]]]:
        return {self.worker: self.buffer.samples()}

    def not_run_reason(self) -> str | None:
        return None

    def peak_rss(self) -> int:
        peaks = [result.rss_peak for result in self.finished if result.rss_peak is not None]
        return max([self.max_rss(), *peaks])
