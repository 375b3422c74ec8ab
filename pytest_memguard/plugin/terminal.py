"""What people see: the header line, the status letter, the summary table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.sizes import format_size
from ..probe.system import SystemMemory
from ..results import STATUS_WORDS
from .settings import Settings

if TYPE_CHECKING:
    from .reporting import RunSummary

__all__ = ["header_lines", "write_summary"]


def header_lines(settings: Settings, peak_method: str, memory: SystemMemory) -> list[str]:
    """The report header: the effective settings and where they came from."""
    thresholds = settings.thresholds
    parts = [f"memguard: {settings.mode}"]
    for name in ("max", "critical", "warning"):
        value = getattr(thresholds, name)
        if value is not None:
            parts.append(f"{name} {format_size(value)} ({thresholds.sources.get(name, name)})")
    budget = format_size(settings.budget) if settings.budget is not None else "none"
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
        rows = [
            [
                _name(t["nodeid"]),
                STATUS_WORDS[t["status"]],
                format_size(t["peak_delta"]),
                format_size(t["rss_peak"]),
                format_size(t["rss_end"]),
                format_size(t["budget"]["peak"]),
            ]
            for t in summary.heaviest
        ]
        tr.write_line(f"heaviest tests by peak growth (top {len(rows)} of {summary.measured}):")
        table = columns(
            rows,
            ["test", "status", "peak growth", "peak RSS", "end RSS", "budget"],
            right=2,
        )
        for line in table:
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
            tr.write_line(f"  {STATUS_WORDS[t['status']]} {t['nodeid']} - {t['message']}")
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
        f"; largest growth {format_size(worst['peak_delta'])} in {worst['nodeid']}" if worst else ""
    )
    tr.write_line(f"peak RSS of the run {format_size(summary.peak_rss)}{worst_text}")
    if path is not None:
        tr.write_line(f"JSON report: {path}")


def columns(rows: list[list[str]], headers: list[str], *, right: int) -> list[str]:
    """Lines of a plain text table (the layout of tabulate's "simple" format).

    Columns from index ``right`` on are aligned right.  Written here rather than with
    tabulate, whose import alone costs every guarded run about 8 ms; the ``memguard``
    command keeps tabulate for its tables.
    """
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index >= right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * width for width in widths), *map(line, rows)]
