"""What a guarded run knows, as the plugin's helpers see it.

:class:`Run` is the one object the plugin (:mod:`.hooks`) shares with its helpers: the
report and summary (:mod:`.summary`), the xdist sides (:mod:`.distributed`), the CI
plugins (:mod:`.ci`) and the pre-flight check (:mod:`.preflight`).  They read and
append to it; they never reach into the plugin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..reporting.timeline import SampleBuffer

if TYPE_CHECKING:
    from ..probe.system import SystemMemory
    from .distributed.controller import Controller
    from .settings import Settings
    from .state import TestState

__all__ = ["Run"]


class Run:
    """The run's settings, its tests' results and what happened to it (main thread).

    :param max_rss: the highest RSS of this process seen so far (the guard's reading)
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        *,
        worker: str,
        work_dir: Path,
        owns_work_dir: bool,
        memory: SystemMemory,
        peak_method: str,
        max_rss: Callable[[], int],
    ) -> None:
        self.config = config
        self.settings = settings
        #: ``"main"``, or the xdist worker's id (``gw0``).
        self.worker = worker
        #: Where the crash-proof logs of this run's processes are written.
        self.work_dir = work_dir
        #: False in an xdist worker: the controller owns the folder and writes the report.
        self.owns_work_dir = owns_work_dir
        self.memory = memory
        self.peak_method = peak_method
        self.max_rss = max_rss
        self.started = time.time()
        self.collected: list[str] = []
        #: Finished tests, in the order they ended.
        self.results: list[TestState] = []
        #: The test in progress (from the start of its protocol to its end), or None.
        self.running: TestState | None = None
        self.alerts: list[dict[str, Any]] = []
        #: This process's RSS as the watchdog saw a test grow, for the report's timeline.
        self.samples = SampleBuffer()
        #: Failures inside memguard, reported at the end; the run went on.
        self.errors: list[str] = []
        #: What a conftest's or plugin's memguard hook did wrong (named, with the hook).
        self.hook_errors: list[str] = []
        #: Lines for the terminal summary (e.g. what was freed under pressure).
        self.notices: list[str] = []
        #: What the run's coordinator freed when memory was tight, for the report.
        self.pressure: list[dict[str, Any]] = []
        #: True once the guard ended this process (a test would not stop).
        self.escalated = False
        #: The xdist controller's side, when this process is one.
        self.controller: Controller | None = None
        #: Appends a line to this process's crash-proof records (event, then fields).
        self.record: Callable[..., None] = lambda event, **fields: None

    def environment(self) -> dict[str, Any]:
        """The report's ``environment`` section for this run."""
        from ..core.guard import describe_platform
        from ..reporting.report import environment

        return environment(
            self.memory,
            peak_method=self.peak_method,
            interrupt=describe_platform(),
            pytest_version=pytest.__version__,
        )

    def error(self, where: str, error: BaseException) -> None:
        """A failure inside memguard: remembered and reported, never fatal to the run."""
        self.errors.append(f"{where}: {type(error).__name__}: {error}")

    def state_of(self, item: pytest.Item) -> TestState | None:
        """The measurements of ``item`` while it runs (its protocol), else None."""
        state = self.running
        return state if state is not None and state.nodeid == item.nodeid else None
