"""What people see: the header line, the status letter, the summary table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core.sizes import format_limit, format_size
from ..probe.system import SystemMemory
from ..reporting.results import STATUS_WORDS
from .compat import STATUS_MARKUP
from .distributed.wire import RECYCLE_KEY
from .settings import Settings

if TYPE_CHECKING:
    from .summary import RunSummary

__all__ = [
    "CAUSE_KEY",
    "LETTERS_NAME",
    "MemoryLetters",
    "header_lines",
    "memory_status",
    "write_summary",
]

#: Report attribute: memguard failed this report (sent with it by xdist).
CAUSE_KEY: Final = "memguard_cause"
#: The name :class:`MemoryLetters` is registered under.
LETTERS_NAME: Final = "memguard-letters"


class MemoryLetters:
    """The status of the reports memguard failed (the letter ``M``), and of a recycled
    xdist worker's stand-in reports.

    Registered only where a report can need it: on the xdist controller, and elsewhere
    once memguard failed a report.  pytest asks every report's status three times a
    test, and a run whose tests memguard never failed need not pay for the question.

    :param recycled: whether a recycled worker's stand-in reports come here (the
        controller): those are neither shown nor counted
    """

    def __init__(self, recycled: bool = False) -> None:
        self.recycled = recycled

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str | tuple[str, dict[str, bool]]] | None:
        if self.recycled and report.__dict__.get(RECYCLE_KEY):
            # The stand-in report of a recycled worker's unstarted test: neither shown nor
            # counted (the test runs again on another worker).
            return "", "", ""
        return memory_status(report)


def memory_status(
    report: Any,
) -> tuple[str, str, str | tuple[str, dict[str, bool]]] | None:
    """The status letter ``M`` and word ``MEMORY`` of a report memguard failed (a
    failure in the body, an error in setup or teardown), or None."""
    if report.outcome == "failed" and report.__dict__.get(CAUSE_KEY):
        category = "error" if report.when in ("setup", "teardown") else "failed"
        return category, "M", ("MEMORY", {"red": True}) if STATUS_MARKUP else "MEMORY"
    return None


def header_lines(settings: Settings, peak_method: str, memory: SystemMemory) -> list[str]:
    """The report header: the effective settings and where they came from."""
    thresholds = settings.thresholds
    parts = [f"memguard: {settings.mode}"]
    for name in ("max", "critical", "warning"):
        value = getattr(thresholds, name)
        if value is not None:
            parts.append(f"{name} {format_limit(value)} ({thresholds.sources.get(name, name)})")
    budget = format_limit(settings.budget) if settings.budget is not None else "none"
    parts.append(f"budget {budget}")
    line2 = (
        f"memguard: peak {peak_method}; memory {format_size(memory.total)}"
        f" ({memory.source}), {format_size(memory.available)} available"
    )
    return [", ".join(parts), line2]


def _name(nodeid: str, width: int = 60) -> str:
    return nodeid if len(nodeid) <= width else "..." + nodeid[-(width - 3) :]


def write_summary(tr: Any, summary: RunSummary, settings: Settings, path: Path | None) -> None:
    """The ``memguard`` section of the terminal summary."""
    tr.write_sep("=", "memguard")
    if summary.heaviest:
        # Child processes' memory counts against budgets: shown when a test had any.
        children = any(t.children_peak for t in summary.heaviest)
        rows = [
            [
                _name(t.nodeid),
                STATUS_WORDS[t.status],
                format_size(t.peak_delta),
                *([format_size(t.children_peak)] if children else []),
                format_size(t.rss_peak),
                format_size(t.rss_end),
                format_size(t.budget.peak),
            ]
            for t in summary.heaviest
        ]
        of = f"{summary.tests} tests"
        if summary.measured != summary.tests:
            of += f", {summary.measured} measured"
        tr.write_line(f"heaviest tests by peak growth (top {len(rows)} of {of}):")
        from tabulate import tabulate  # only when a table is drawn

        headers = ["test", "status", "peak growth", "peak RSS", "end RSS", "budget"]
        if children:
            headers.insert(3, "children")
        table = tabulate(
            rows,
            headers=headers,
            colalign=("left", "left", *["right"] * (len(headers) - 2)),
            disable_numparse=True,
        )
        for line in table.splitlines():
            tr.write_line(line)
    violations = summary.violations
    if violations:
        word = (
            "memory failures" if settings.enforce else "memory problems (report mode: not failed)"
        )
        tr.write_line(
            f"{len(violations)} {word}:", red=settings.enforce, yellow=not settings.enforce
        )
        for t in violations:
            tr.write_line(f"  {STATUS_WORDS[t.status]} {t.nodeid} - {t.message}")
    if summary.warned:
        tr.write_line(f"{len(summary.warned)} warning(s):", yellow=True)
        for t in summary.warned[:10]:
            tr.write_line(f"  warning {t.nodeid} - {t.message}")
        if len(summary.warned) > 10:
            tr.write_line(f"  ... and {len(summary.warned) - 10} more in the JSON report")
    for worker in summary.workers:
        if worker["killed"] and worker["id"] != "main":  # xdist workers that died
            tr.write_line(
                f"worker {worker['id']} (pid {worker['pid']}): {worker['reason']}", red=True
            )
    alerts = summary.alerts
    if alerts:
        tr.write_line(f"{len(alerts)} threshold alert(s):", yellow=True)
        for alert in alerts[:10]:
            tr.write_line(f"  {alert['level'].upper()} {alert['message']}")
        if len(alerts) > 10:
            tr.write_line(f"  ... and {len(alerts) - 10} more in the JSON report")
    if summary.not_run:
        tr.write_line(f"{summary.not_run} test(s) were not run", yellow=True)
    worst = summary.worst
    worst_text = (
        f"; largest growth {format_size(worst.peak_delta)} in {worst.nodeid}" if worst else ""
    )
    tr.write_line(f"peak RSS of the run {format_size(summary.peak_rss)}{worst_text}")
    if path is not None:
        tr.write_line(f"JSON report: {path}")
