"""The end of a guarded run: the JSON report, built once when something reads it, and
the ``memguard`` section of the terminal summary.

The report's test entries are made as the JSON and the page are written, one at a
time (:class:`~pytest_memguard.reporting.report.TestEntries`): a run of thousands of
tests does not hold them all.  Only a reader of :attr:`RunEnd.report` (the report hook,
the CI helpers) is given the plain list.

A plugin of its own (``memguard-report``), registered with the run's plugin: it reads
the :class:`~.context.RunContext`, and pytest's config for the report hook and the cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from ..core.stopsignals import StopSignals, signal_name
from ..reporting.results import TestMemory
from . import terminal
from .context import RunContext
from .records import Records
from .summary import run_report, run_summary

__all__ = ["RunEnd"]


class RunEnd:
    """Writes the run's report and shows its summary."""

    def __init__(
        self,
        config: pytest.Config,
        context: RunContext,
        signals: StopSignals,
        records: Records | None,
    ) -> None:
        self.config = config
        self.context = context
        self.signals = signals
        #: The run's records folder, where this process owns it.
        self.records = records
        #: How the session ended: (interrupted, time); None until it did.
        self._ending: tuple[bool, float] | None = None
        #: The baseline report, read before a stale report at its path is removed.
        self._baseline: dict[str, Any] | None = None
        #: The report as built, its entries made as they are read.
        self._built: dict[str, Any] | None = None
        #: The report with a plain list of entries, for its readers.
        self._report: dict[str, Any] | None = None
        self.path: Path | None = None
        #: Where the HTML report was written, once it was.
        self.html_path: Path | None = None

    @property
    def ended(self) -> bool:
        """Whether the session ended and its report could be built (so the work folder,
        with the crash-proof logs, is no longer needed)."""
        return self._ending is not None

    def pytest_sessionstart(self) -> None:
        """A report left at the report paths by an earlier run is emptied now (the file
        keeps its mode and links): a run killed before it writes its own leaves no report
        that passes for this run's, only an empty file."""
        context = self.context
        if not context.owns_work_dir:
            return
        settings = context.settings
        if settings.html_path is not None and settings.baseline is not None:
            from ..reporting.report import ReportError, load_report

            try:  # the baseline may be the report this run replaces
                self._baseline = load_report(settings.baseline)
            except ReportError:  # said already by the baseline's own check
                self._baseline = None
        for path in (settings.json_path, settings.html_path):
            if path is None:
                continue
            if path.is_file() and path.stat().st_size:  # a link's target is the report
                try:
                    os.truncate(path, 0)
                except OSError as error:
                    context.log.notices.append(
                        f"memguard: cannot empty the earlier report {str(path)!r}"
                        f" ({error.strerror or error}): it is not this run's"
                    )

    @pytest.hookimpl(tryfirst=True)  # before xdist stops its workers: a Ctrl-C may cut that
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        context, config = self.context, self.config
        signals = self.signals
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(signals.received)
        self._ending = (interrupted, time.time())
        settings = context.settings
        # The full report (an entry per test) is built only when something reads it.
        wanted = (
            settings.json_path is not None
            or settings.html_path is not None
            or config.hook.pytest_memguard_report.get_hookimpls()
            or interrupted
        )
        signals.holding = True  # a second signal waits until the report is written
        try:
            if wanted and (built := self._build()) is not None:
                self._write(built)
            if context.owns_work_dir:  # pytest's cache (if on), --memguard-history-save
                from .peakcache import save_history

                try:  # an entry at a time, from the results
                    save_history(config, context)
                except Exception as error:
                    context.log.error("keeping the tests' peaks", error)
        finally:
            # An xdist worker keeps holding: it ends when its controller lets it go.
            signals.holding = not context.owns_work_dir
        if not context.owns_work_dir:
            return
        if self.ended:
            # The report has what the records say, and the job may now end at once: a
            # signal from here on ends the process as it would without memguard.
            if self.records is not None:
                self.records.remove()
            signals.restore()
        status = signals.exit_status()
        if status is not None:  # as a shell reports a process that signal ended
            session.exitstatus = status
        elif exitstatus == 0 and (missing := self._missing()):
            context.log.notices.append(
                f"memguard: the report asked for was not written ({missing}):"
                " the exit status says so (3)"
            )
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _missing(self) -> str:
        """The report paths asked for and not written, or ""."""
        settings = self.context.settings
        missing = []
        if settings.json_path is not None and self.path is None:
            missing.append(str(settings.json_path))
        if settings.html_path is not None and self.html_path is None:
            missing.append(str(settings.html_path))
        return ", ".join(missing)

    def _write(self, report: dict[str, Any]) -> None:
        """Save the report; a path that cannot be written is a notice."""
        context = self.context
        try:
            self.save(report)
        except OSError as error:  # the path's problem (it became a folder...), not ours
            from ..core.files import reason_of

            context.log.notices.append(
                f"memguard: cannot write the report to {str(context.settings.json_path)!r}"
                f" ({reason_of(error)})"
            )
        except Exception as error:
            context.log.error("writing the report", error)

    @property
    def report(self) -> dict[str, Any] | None:
        """The run's full report, its ``tests`` a plain list of entries; built when first
        asked for after the session ended (None before, and in an xdist worker, whose
        results went to the controller)."""
        if self._report is None and (built := self._build()) is not None:
            self._report = {**built, "tests": list(built["tests"])}
        return self._report

    def _build(self) -> dict[str, Any] | None:
        """The run's report, its entries made as they are read (see :attr:`report`)."""
        if self._built is None and self._ending is not None and self.context.owns_work_dir:
            interrupted, ended = self._ending
            first = self.signals.first
            signal = signal_name(first) if first is not None else None
            reason = ""
            if interrupted:
                reason = f"interrupted by {signal}" if signal else "interrupted"
            try:
                self._built = run_report(
                    self.context,
                    interrupted=interrupted,
                    reason=reason,
                    extras=self._extras,
                    ended=ended,
                    signal=signal,
                )
            except Exception as error:
                self.context.log.error("building the report", error)
                self._ending = None  # no report, no summary; the work folder stays for a look
        return self._built

    def _extras(self, report: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The report hook's extra fields; its implementations are given the report
        with a plain list of entries (built only when there is one to give it to)."""
        if not self.config.hook.pytest_memguard_report.get_hookimpls():
            return {}, []
        from .hookcalls import report_extras

        return report_extras(
            self.config, MappingProxyType({**report, "tests": list(report["tests"])})
        )

    def save(self, report: dict[str, Any]) -> None:
        """Write ``report`` to the JSON path and its page to the HTML path, where given."""
        settings = self.context.settings
        try:
            if settings.json_path is not None:
                from ..reporting.report import (
                    write_report,  # not needed by a run without a JSON report
                )

                self.path = write_report(report, settings.json_path)
        finally:
            if settings.html_path is not None:
                self._save_page(report, settings.html_path)

    def _save_page(self, report: dict[str, Any], path: Path) -> None:
        """Write the HTML report (with the baseline's figures when there is one)."""
        from ..core.files import reason_of, write_atomically
        from ..reporting.html_report import html_pieces

        try:
            self.html_path = write_atomically(path, html_pieces(report, self._baseline))
        except OSError as error:  # the path's problem, not ours
            self.context.log.notices.append(
                f"memguard: cannot write the HTML report to {str(path)!r} ({reason_of(error)})"
            )
        except Exception as error:
            self.context.log.error("writing the HTML report", error)

    def save_now(self, aborted: TestMemory | None) -> Path | None:
        """The guard is ending the process for a test (``aborted``: its result): the
        report now; where it went (watchdog thread)."""
        if not self.context.owns_work_dir:
            return None  # an xdist worker: the controller reads its log
        reason = "the process was ended by memguard"
        self.save(run_report(self.context, interrupted=True, reason=reason, aborted=aborted))
        return self.path

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        context = self.context
        log = context.log
        if self._ending is not None and context.owns_work_dir:
            try:
                summary = run_summary(context, context.settings.top)
            except Exception as failure:
                log.error("summing up the run", failure)
            else:
                terminal.write_summary(terminalreporter, summary, context.settings, self.path)
                if self.html_path is not None:
                    terminalreporter.write_line(f"HTML report: {self.html_path}")
        for line in log.notices:
            terminalreporter.write_line(line, yellow=True)
        for text in log.hook_errors:
            terminalreporter.write_line(f"memguard: error: {text}", red=True)
        for error in log.errors:
            terminalreporter.write_line(
                f"memguard: internal error, the guard went on: {error}", yellow=True
            )

    def close(self) -> None:
        """The report is let go: pytest's last garbage collections need not walk it."""
        self._built = self._report = None
