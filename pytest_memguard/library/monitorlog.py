"""The process monitor's three logs, in the documented format that ``jq`` queries rely on.

- ``memory-alerts.log``: one JSON object a line, ``timestamp`` (ISO 8601), ``level``
  (``"WARNING"``, ``"CRITICAL"``, ``"ABORT"``), ``subprocess_id``, ``message``
  (``"WARNING: Memory exceeded 1024MB at 1156.3MB"``) and ``system_memory``:
  ``{total_mb, available_mb, used_mb, percent}``.
- ``subprocess-stats.jsonl``: ``subprocess_id``, ``memory_stats``: ``{start_mb, peak_mb,
  end_mb, duration_seconds, warnings, aborted}`` and ``timestamp``.
- ``memory-monitor.log``: one system-wide sample a poll (``timestamp``,
  ``system_memory``, ``processes``: id -> RSS in MB, ``total_mb``); when it would pass
  its size bound it is renamed ``memory-monitor.log.1`` (replacing the older one), so the
  two files together never hold much more than twice the bound.

MB here is 10**6 bytes, as in :meth:`ProcessMonitor.check`.  A log that cannot be
written is logged as a warning and the monitor goes on.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Final

from ..core.files import append_text, reason_of
from ..core.levels import Level
from ..probe.system import SystemMemory

__all__ = [
    "ALERTS_FILE",
    "MONITOR_FILE",
    "STATS_FILE",
    "aggregate_message",
    "alert_message",
    "append_record",
    "append_sample",
    "megabytes",
    "stats_record",
    "system_record",
]

logger = logging.getLogger(__name__)

ALERTS_FILE: Final = "memory-alerts.log"
STATS_FILE: Final = "subprocess-stats.jsonl"
MONITOR_FILE: Final = "memory-monitor.log"
_MB: Final = 1_000_000


def megabytes(size: int | None) -> float | None:
    """``size`` bytes in MB (10**6 bytes), one decimal; None stays None."""
    return None if size is None else round(size / _MB, 1)


def _limit_text(limit: int) -> str:
    """A limit in MB as written in alerts: ``1024`` when whole, else one decimal."""
    mb = limit / _MB
    return f"{mb:.0f}" if mb == int(mb) else f"{mb:.1f}"


def alert_message(level: Level, limit: int, rss: int) -> str:
    """``"WARNING: Memory exceeded 1024MB at 1156.3MB"``."""
    return f"{level.name}: Memory exceeded {_limit_text(limit)}MB at {rss / _MB:.1f}MB"


def aggregate_message(limit: int, total: int, largest: str, rss: int) -> str:
    """``"ABORT: Aggregate memory exceeded 3000MB at 3120.5MB; the largest is w1 at 1500.2MB"``."""
    return (
        f"ABORT: Aggregate memory exceeded {_limit_text(limit)}MB at {total / _MB:.1f}MB; "
        f"the largest is {largest} at {rss / _MB:.1f}MB"
    )


def system_record(reading: SystemMemory | None) -> dict[str, Any] | None:
    """``{total_mb, available_mb, used_mb, percent}`` of a reading (None: unknown)."""
    if reading is None:
        return None
    return {
        "total_mb": megabytes(reading.total),
        "available_mb": megabytes(reading.available),
        "used_mb": megabytes(reading.used),
        "percent": round(100 * reading.fraction_used, 1),
    }


def stats_record(ident: str, stats: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """One line of ``subprocess-stats.jsonl`` from :meth:`ProcessMonitor.stats`."""
    return {
        "subprocess_id": ident,
        "memory_stats": {
            "start_mb": megabytes(stats["start"]),
            "peak_mb": megabytes(stats["peak"]),
            "end_mb": megabytes(stats["end"]),
            "duration_seconds": round(float(stats["duration"]), 3),
            "warnings": list(stats["warnings"]),
            "aborted": bool(stats["aborted"]),
        },
        "timestamp": timestamp,
    }


def append_record(folder: Path | None, filename: str, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``folder/filename`` (nothing without a folder)."""
    if folder is None:
        return
    _write(folder / filename, json.dumps(record) + "\n")


def _write(path: Path, line: str) -> None:
    try:
        append_text(path, line)
    except OSError as error:  # OutputPathError too: a FIFO or a device is left alone
        logger.warning("memguard: cannot write %s: %s", path, reason_of(error))


def append_sample(folder: Path | None, record: dict[str, Any], max_bytes: int) -> None:
    """Append one sample to ``memory-monitor.log``, first rotating it when it is full."""
    if folder is None:
        return
    path = folder / MONITOR_FILE
    line = json.dumps(record) + "\n"
    try:
        if path.is_file() and path.stat().st_size + len(line) > max_bytes:
            os.replace(path, path.with_name(MONITOR_FILE + ".1"))
    except OSError as error:
        logger.warning("memguard: cannot rotate %s: %s", path, reason_of(error))
    _write(path, line)
