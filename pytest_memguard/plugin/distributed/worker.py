"""An xdist worker's side: its summary for the controller, and recycling.

Each test's entry travels on its teardown report (set by the plugin's report hook), so
that a worker that dies loses nothing it finished; the worker's own summary (its peak,
its internal errors) goes on ``workeroutput`` when it finishes.

Recycling (``--memguard-recycle``): a worker whose RSS after a test is above the limit
says so on that test's teardown report and ends itself (``os._exit``) as the next test
is about to start, after every result it has is sent.  xdist's crash handling replaces
it; the controller, told beforehand, puts the test the worker had not started back in
the queue (:mod:`.controller`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

import pytest

from ...core.sizes import format_size
from ..context import RunContext, RunLog
from .wire import OUTPUT_KEY, RECYCLE_KEY

__all__ = ["Recycler", "WorkerSide"]


class WorkerSide:
    """In a worker: the summary on ``workeroutput``."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if isinstance(output, dict):
            output[OUTPUT_KEY] = {
                "peak_rss": self.context.source.peak_rss(),
                "errors": list(self.context.log.errors),
            }


class Recycler:
    """In a worker (``--memguard-recycle``): end the worker between two tests when its RSS
    after a test is above the limit."""

    def __init__(self, log: RunLog, rss: Callable[[], int], limit: int, source: str) -> None:
        self.log = log
        self.rss = rss
        self.limit = limit
        self.source = source
        self.reason: str | None = None
        #: Whether the test that runs has a next one in this worker.
        self.more = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown" or not self.more:
            return
        try:
            rss = self.rss()  # after the teardown
            if rss > self.limit:
                self.reason = (
                    f"recycled at RSS {format_size(rss)} > {self.source} {format_size(self.limit)}"
                )
                setattr(report, RECYCLE_KEY, self.reason)
        except Exception as error:
            self.log.error(f"checking RSS after {report.nodeid}", error)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        self.more = nextitem is not None
        if self.reason is None:
            return
        # Every result of the last test is in the pipe (execnet writes and flushes each
        # message); the controller knows why this worker goes and runs this test elsewhere.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)
