"""Small hand-written reports, schema-valid, for the CLI, compare and render tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_memguard.reporting.results import FAILING_STATUSES, STATUSES

from ..sessions import validate

MB = 1_000_000


def make_test(
    nodeid: str,
    peak: int | None = 10 * MB,
    *,
    status: str = "ok",
    heap: int | None = None,
    leak: int | None = None,
    duration: float = 0.01,
    budget: int | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """One test entry; ``peak`` is its ``peak_delta`` over an RSS of 50 MB at its start."""
    start = None if peak is None else 50 * MB
    return {
        "nodeid": nodeid,
        "outcome": "failed" if status in FAILING_STATUSES else "passed",
        "status": status,
        "worker": "main",
        "duration_s": duration,
        "rss_start": start,
        "rss_end": start,
        "rss_peak": None if peak is None else 50 * MB + peak,
        "peak_delta": peak,
        "heap_peak": heap,
        "leaked": leak,
        "budget": {"peak": budget, "leak": None, "heap": None, "rss": None},
        "sites": [],
        "message": message,
    }


def make_report(*tests: dict[str, Any]) -> dict[str, Any]:
    """A whole report around ``tests``, checked against the shipped JSON Schema."""
    statuses = dict.fromkeys(STATUSES, 0)
    for test in tests:
        statuses[test["status"]] += 1
    measured = [t for t in tests if t["peak_delta"] is not None]
    worst = max(measured, key=lambda t: t["peak_delta"], default=None)
    report = {
        "schema": "pytest-memguard/1",
        "created": "2026-01-02T03:04:05+0000",
        "duration_s": 1.0,
        "interrupted": False,
        "environment": {
            "python": "3.11.7",
            "platform": "linux",
            "pytest": "8.0.0",
            "cpu_count": 2,
            "memory_total": 8_000 * MB,
            "memory_source": "host",
            "peak_method": "exact (kernel VmHWM)",
        },
        "config": {
            "mode": "enforce",
            "warning": None,
            "critical": None,
            "max": None,
            "budget": None,
        },
        "summary": {
            "tests": len(tests),
            "statuses": statuses,
            "failed": sum(1 for t in tests if t["outcome"] == "failed"),
            "peak_rss": max((t["rss_peak"] or 0 for t in tests), default=0),
            "worst": None
            if worst is None
            else {"nodeid": worst["nodeid"], "peak_delta": worst["peak_delta"]},
        },
        "tests": list(tests),
        "alerts": [],
        "workers": [],
    }
    validate(report)
    return report


def write_report(path: Path, *tests: dict[str, Any]) -> str:
    """Write a report of ``tests`` to ``path``; returns the path as a string for ``main``."""
    path.write_text(json.dumps(make_report(*tests)), encoding="utf-8")
    return str(path)
