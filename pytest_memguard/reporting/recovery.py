"""A report from the crash-proof records of a run that was killed before it wrote its own.

A run killed with SIGKILL (a CI runner's own OOM killer, a job's hard time limit) writes
nothing more; its records (:mod:`.crashlog`) stay in its records folder: the run's own
line (its settings and environment), the tests it collected, a line for every test
that ended, with its figures, and the test each process was running, with the highest
RSS it recorded.  :func:`recover_report` turns them into a report of the usual schema:
every finished test as it ended, each test that was running ``killed``, the rest
``not_run``, ``interrupted: true``.  ``memguard recover`` is its command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from ..errors import MemguardError
from .crashlog import ProcessRecords, read_records
from .results import STATUSES, TestMemory

__all__ = ["KILLED", "RecoveryError", "recover_report"]

#: Why the tests a killed run was running ended, as their entries say.
KILLED: Final = "the run was killed before it wrote its report (SIGKILL, or the OOM killer)"


#: The config section's required fields, for records that do not say them.
_UNKNOWN_CONFIG: Final = {
    "mode": "enforce",
    "warning": None,
    "critical": None,
    "max": None,
    "budget": None,
}


class RecoveryError(MemguardError, ValueError):
    """A records folder that holds no records to recover."""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _entry(end: dict[str, Any], worker: str) -> TestMemory:
    """A finished test's result from its end line."""
    status = end.get("status")
    duration = end.get("duration")
    return TestMemory(
        nodeid=str(end["nodeid"]),
        outcome=str(end.get("outcome") or "passed"),
        status=status if status in STATUSES else "ok",
        worker=worker,
        duration_s=float(duration) if isinstance(duration, (int, float)) else 0.0,
        rss_start=_int(end.get("start")),
        rss_end=_int(end.get("rss")),
        rss_peak=_int(end.get("peak")),
        peak_delta=_int(end.get("delta")),
        children_peak=_int(end.get("children")),
        message=str(end["message"]) if end.get("message") is not None else None,
    )


def _minimal_environment() -> dict[str, Any]:
    """The environment section when the records lack the run's own line: this machine's."""
    from ..core.guard import describe_platform
    from ..probe.system import read_system_memory
    from .report import environment

    return environment(read_system_memory(), peak_method="unknown", interrupt=describe_platform())


def recover_report(folder: Path) -> dict[str, Any]:
    """The report the records in ``folder`` hold (see the module); :class:`RecoveryError`
    when there are none."""
    from .report import build_report

    paths = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    processes = read_records(paths)
    if not processes:
        raise RecoveryError(
            f"{folder}: no memguard records here (a run that ended wrote its report and"
            " removed them; give the folder of --memguard-records, by default beside the"
            " JSON report: memguard.records for memguard.json)"
        )
    owner: ProcessRecords | None = next((p for p in processes if p.run is not None), None)
    run = owner.run if owner is not None and owner.run is not None else {}
    collected = next((p.collected for p in processes if p.collected), [])
    tests: dict[str, TestMemory] = {}
    workers = []
    alerts: list[dict[str, Any]] = []
    for process in processes:
        for end in process.ends:
            tests[str(end["nodeid"])] = _entry(end, process.worker)
        killed = process.unfinished(KILLED)
        if killed is not None:
            tests[killed.nodeid] = killed
        alerts.extend(process.alerts)
        if process.running is not None or process.ends or process is owner:
            workers.append(
                {
                    "id": process.worker,
                    "pid": process.pid,
                    "peak_rss": process.peak_rss,
                    "killed": process.running is not None,
                    "reason": KILLED if process.running is not None else None,
                }
            )
    started = run.get("started")
    if not isinstance(started, (int, float)):
        started = min((p.last_time or 0.0) for p in processes)
    ended = max((p.last_time or 0.0) for p in processes)
    config = run.get("config")
    environment = run.get("environment")
    report = build_report(
        tests=list(tests.values()),
        collected=collected,
        alerts=sorted(alerts, key=lambda alert: float(alert.get("timestamp") or 0)),
        workers=workers,
        environment=environment if isinstance(environment, dict) else _minimal_environment(),
        config={**_UNKNOWN_CONFIG, **(config if isinstance(config, dict) else {})},
        started=float(started),
        duration_s=max(0.0, ended - float(started)),
        interrupted=True,
        not_run_reason=f"not run ({KILLED})",
    )
    report["recovered"] = {"records": str(folder), "processes": len(processes)}
    return report
