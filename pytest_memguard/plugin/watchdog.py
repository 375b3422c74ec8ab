"""What the guard's watchdog thread calls back into the plugin: a growth step and an
alert go to the crash-proof records and the run's log; an escalation (a test that would
not stop) ends the process's children and writes the report before the guard ends it."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from ..probe.process import end_processes, tree_of
from ..reporting.results import TestMemory

if TYPE_CHECKING:
    from ..core.guard import AbortInfo, LevelEvent
    from ..reporting.crashlog import RecordWriter
    from .context import LocalResults, RunLog
    from .ending import RunEnd
    from .records import Records

__all__ = ["WatchdogCalls"]


class WatchdogCalls:
    """The guard's callbacks (watchdog thread).

    :param escalate_fd: a duplicate of the real stderr, for the line that says where the
        report of a process the guard ends went
    """

    def __init__(
        self,
        crashlog: RecordWriter,
        local: LocalResults,
        log: RunLog,
        end: RunEnd,
        records: Records | None,
        escalate_fd: int,
    ) -> None:
        self.crashlog = crashlog
        self.local = local
        self.log = log
        self.end = end
        self.records = records
        self.escalate_fd = escalate_fd

    def grew(self, nodeid: str, rss: int) -> None:
        """The running test grew by a step: a record line, and a sample of the timeline."""
        self.crashlog.grew(nodeid, rss)
        self.local.buffer.add(time.time(), rss)

    def event(self, event: LevelEvent) -> None:
        """A threshold was crossed: an alert in the report and in the records."""
        alert = {
            "timestamp": event.time,
            "level": str(event.level),
            "process": self.local.worker,
            "pid": os.getpid(),
            "rss": event.rss,
            "threshold": event.threshold,
            "nodeid": event.unit,
            "message": event.message,
        }
        self.log.alerts.append(alert)
        self.crashlog.write("alert", **alert)

    def escalate(self, info: AbortInfo) -> None:
        """The guard is ending the process (a test caught its interrupts and kept on)."""
        import psutil

        self.local.escalated = True
        # They would outlive the process, holding their memory.
        end_processes(tree_of(psutil.Process(), root=False))
        message = (
            f"memguard: {info.message}, but it caught the interrupt and kept running;"
            " memguard ended the process"
        )
        self.crashlog.write(
            "abort", nodeid=info.unit, rss=info.rss, limit=info.limit, message=message
        )
        running = self.local.running
        aborted = None
        if running is not None:
            aborted = TestMemory(
                running.nodeid,
                "failed",
                "aborted",
                self.local.worker,
                0.0,
                rss_peak=max(info.rss, self.local.max_rss()),
                message=message,
            )
        path = self.end.save_now(aborted)
        if path is not None:
            os.write(self.escalate_fd, f"memguard: JSON report written to {path}\n".encode())
            if self.records is not None:  # the report says what the records say
                self.records.remove()
