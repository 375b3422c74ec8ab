"""The report's ``timeline``: each process's RSS over the run, and its stops, kills and recycles.

What the HTML report draws, kept small: at most :data:`MAX_POINTS` samples a process.
The samples are each test's RSS at the start and at the end of its body (from its result:
``started``, ``duration_s``, ``rss_start``, ``rss_end``), what the watchdogs sampled on
the way (:class:`SampleBuffer`: the guard's readings as a test grows, the xdist
controller's readings of each worker) and the alerts.  Thinning keeps the highest RSS
of each pair of neighbours, so a spike survives it.  No pytest import here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .results import TestMemory, to_microsecond, to_millisecond

__all__ = ["MAX_POINTS", "SampleBuffer", "build_timeline", "thin"]

#: Samples kept per process in the report.
MAX_POINTS: Final = 2000

Sample = tuple[float, int]


def thin(samples: Sequence[Sample], limit: int = MAX_POINTS) -> list[Sample]:
    """At most ``limit`` samples of ``samples`` (in time order): neighbours are merged by
    twos, keeping the one with the higher RSS, until they fit."""
    points = list(samples)
    while len(points) > limit:
        merged = [max(points[i], points[i + 1], key=_rss) for i in range(0, len(points) - 1, 2)]
        if len(points) % 2:
            merged.append(points[-1])
        points = merged
    return points


def _rss(sample: Sample) -> int:
    return sample[1]


class SampleBuffer:
    """A bounded record of ``(time, rss)`` samples (epoch seconds, bytes); thread-safe.

    When it holds ``2 * limit`` samples it is thinned to ``limit``: adding costs a tuple
    and an append, and the work of thinning is spread over the samples that filled it.
    """

    __slots__ = ("_lock", "_samples", "limit")

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.limit = limit
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def add(self, time: float, rss: int) -> None:
        """Record RSS ``rss`` at ``time``."""
        with self._lock:
            self._samples.append((time, rss))
            if len(self._samples) >= 2 * self.limit:
                self._samples = thin(self._samples, self.limit)

    def samples(self) -> list[Sample]:
        """The samples so far, in the order they were added."""
        with self._lock:
            return list(self._samples)


def _span(test: TestMemory) -> tuple[float, float] | None:
    """When ``test`` began and ended (epoch seconds, as its entry writes them); None when
    unknown."""
    if test.started is None:
        return None
    started = to_millisecond(test.started)
    return started, started + to_microsecond(test.duration_s)


def _event(time: float, process: str, kind: str, nodeid: Any, message: Any) -> dict[str, Any]:
    return {
        "time": round(time, 3),
        "process": process,
        "kind": kind,
        "nodeid": None if nodeid is None else str(nodeid),
        "message": None if message is None else str(message),
    }


def build_timeline(
    *,
    tests: Iterable[TestMemory],
    alerts: Sequence[Mapping[str, Any]] = (),
    workers: Sequence[Mapping[str, Any]] = (),
    samples: Mapping[str, Iterable[Sample]] | None = None,
    limit: int = MAX_POINTS,
) -> dict[str, Any]:
    """The report's ``timeline`` section: per process (``main`` or an xdist worker's id)
    its samples ``[time, rss]`` (epoch seconds rounded to the millisecond, bytes) in time
    order, at most ``limit``; and the ``events`` (stop, kill, recycle).

    ``tests`` are read once, in one pass: the samples of each test are the start and end
    of its body (``started``, ``duration_s``, ``rss_start``, ``rss_end``, as its entry
    writes them).
    """
    found: dict[str, list[Sample]] = {}
    for name, recorded in (samples or {}).items():
        found.setdefault(name, []).extend(recorded)
    events: list[dict[str, Any]] = []
    last_end: dict[str, tuple[float, str]] = {}
    for test in tests:
        span = _span(test)
        if span is None:
            continue
        started, ended = span
        worker = test.worker or "main"
        if test.rss_start is not None:
            found.setdefault(worker, []).append((started, test.rss_start))
        if test.rss_end is not None:
            found.setdefault(worker, []).append((ended, test.rss_end))
        if ended >= last_end.get(worker, (0.0, ""))[0]:
            last_end[worker] = (ended, test.nodeid)
        if test.status == "aborted":
            events.append(_event(ended, worker, "stop", test.nodeid, test.message))
    for alert in alerts:
        rss, time = alert.get("rss"), alert.get("timestamp")
        if isinstance(rss, int) and rss > 0 and isinstance(time, (int, float)):
            process = str(alert.get("process") or "main").split(" ", 1)[0]
            found.setdefault(process, []).append((float(time), rss))
        if alert.get("level") == "abort":
            process = str(alert.get("process") or "main").split(" ", 1)[0]
            time = float(alert.get("timestamp") or 0.0)
            events.append(_event(time, process, "kill", alert.get("nodeid"), alert.get("message")))
    for entry in workers:
        name = str(entry.get("id"))
        if entry.get("recycled") and name in last_end:
            time, nodeid = last_end[name]
            events.append(_event(time, name, "recycle", nodeid, entry.get("reason")))
    pids = {str(worker.get("id")): worker.get("pid") for worker in workers}
    processes = []
    for name in sorted(found):
        points = thin(sorted(found[name]), limit)
        processes.append(
            {
                "process": name,
                "pid": pids.get(name),
                "samples": [[round(time, 3), rss] for time, rss in points],
            }
        )
    events.sort(key=lambda event: float(event["time"]))
    return {"processes": processes, "events": events}
