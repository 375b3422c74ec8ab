"""One pass that gives a loaded JSON report the shape the HTML page draws from.

A report may come from another version or a hand edit: ``memguard show`` accepts it when
its tests are well formed, and the page must render whatever the table renders.  So every
field the page reads is checked here, once: a size is an ``int`` within :data:`MAX_SIZE`
(else unknown, None), a time or duration a finite number of seconds (else unknown), a text
a ``str``; a section of the wrong type is empty, an entry of the wrong type is dropped (a
timeline sample ``[null, null]``, a worker ``3``).  Missing summary figures are counted
from the tests.  The page's code then reads fields without guarding each one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...core.sites import Site
from ...core.sizes import MAX_SIZE
from ..report import TestEntries
from ..results import (
    FAILING_STATUSES,
    STATUSES,
    Budget,
    TestMemory,
    to_microsecond,
    to_millisecond,
)

__all__ = ["began", "normalised", "took"]

#: The config keys holding sizes (bytes), as the page shows them.
_SIZES: Final = (
    "warning",
    "critical",
    "max",
    "aggregate",
    "budget",
    "leak_budget",
    "min_free",
    "recycle",
)
#: Past this many seconds a time (epoch) or a duration is not one a run had (year 2286).
_MAX_SECONDS: Final = 1e10


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _size(value: object) -> int | None:
    """Bytes: an int (not a bool) a signed 64-bit integer holds; else None."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_SIZE:
        return None
    return value


def _seconds(value: object) -> float | None:
    """A time or duration in seconds: a finite number within :data:`_MAX_SECONDS`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > _MAX_SECONDS:
        return None  # before float(): a huge int overflows it
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= _MAX_SECONDS else None


def _text(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _site(value: object) -> Site | None:
    if not isinstance(value, Mapping):
        return None
    return Site(
        file=_text(value.get("file"), "?"),
        line=_count(value.get("line")) or 0,
        size=_size(value.get("size")) or 0,
        count=_count(value.get("count")) or 0,
    )


def _test(value: object) -> TestMemory | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("nodeid"), str):
        return None
    budget = _mapping(value.get("budget"))
    status: Any = _text(value.get("status"), "ok") or "ok"  # one of another version too
    return TestMemory(
        nodeid=value["nodeid"],
        status=status,
        outcome=_text(value.get("outcome"), "unknown") or "unknown",
        worker=_text(value.get("worker"), "main") or "main",
        duration_s=max(0.0, _seconds(value.get("duration_s")) or 0.0),
        started=_seconds(value.get("started")),
        message=_optional_text(value.get("message")),
        budget=Budget(
            peak=_size(budget.get("peak")),
            leak=_size(budget.get("leak")),
            heap=_size(budget.get("heap")),
            rss=_size(budget.get("rss")),
        ),
        sites=tuple(site for site in map(_site, _list(value.get("sites"))) if site is not None),
        rss_start=_size(value.get("rss_start")),
        rss_end=_size(value.get("rss_end")),
        rss_peak=_size(value.get("rss_peak")),
        peak_delta=_size(value.get("peak_delta")),
        children_peak=_size(value.get("children_peak")),
        heap_peak=_size(value.get("heap_peak")),
        leaked=_size(value.get("leaked")),
    )


def began(test: TestMemory) -> float | None:
    """When ``test`` began (epoch seconds), as its entry writes it; None when unknown."""
    return None if test.started is None else to_millisecond(test.started)


def took(test: TestMemory) -> float:
    """How long ``test`` took (seconds), as its entry writes it."""
    return to_microsecond(test.duration_s)


def _summary(value: object, tests: Sequence[TestMemory]) -> dict[str, Any]:
    given = _mapping(value)
    counted = {status: 0 for status in STATUSES}
    for test in tests:
        if test.status in counted:
            counted[test.status] += 1
    statuses = _mapping(given.get("statuses"))
    written = {status: _count(statuses.get(status)) for status in STATUSES}
    measured = [t for t in tests if t.peak_delta is not None]
    heaviest = max(measured, key=lambda t: int(t.peak_delta or 0), default=None)
    worst = _mapping(given.get("worst"))
    if isinstance(worst.get("nodeid"), str):
        worst_entry = {"nodeid": worst["nodeid"], "peak_delta": _size(worst.get("peak_delta"))}
    elif heaviest is not None:
        worst_entry = {"nodeid": heaviest.nodeid, "peak_delta": heaviest.peak_delta}
    else:
        worst_entry = None
    peaks = [t.rss_peak for t in tests if t.rss_peak is not None]
    tests_count, failed = _count(given.get("tests")), _count(given.get("failed"))
    peak_rss = _size(given.get("peak_rss"))
    return {
        "tests": len(tests) if tests_count is None else tests_count,
        "failed": (
            sum(1 for t in tests if t.status in FAILING_STATUSES) if failed is None else failed
        ),
        "statuses": {s: counted[s] if written[s] is None else written[s] for s in STATUSES},
        "peak_rss": max(peaks, default=None) if peak_rss is None else peak_rss,
        "worst": worst_entry,
    }


def _config(value: object) -> dict[str, Any]:
    given = _mapping(value)
    config: dict[str, Any] = {key: _size(given.get(key)) for key in _SIZES}
    sources = _mapping(given.get("sources"))
    config["sources"] = {str(k): v for k, v in sources.items() if isinstance(v, str)}
    config["mode"] = _text(given.get("mode"), "enforce") or "enforce"
    config["leaks"] = given.get("leaks") is True
    return config


def _environment(value: object) -> dict[str, Any]:
    given = _mapping(value)
    env: dict[str, Any] = {
        key: None if given.get(key) is None else str(given.get(key))
        for key in ("python", "implementation", "pytest", "platform", "machine", "peak_method")
    }
    env["cpu_count"] = _count(given.get("cpu_count"))
    env["memory_total"] = _size(given.get("memory_total"))
    env["memory_source"] = _text(given.get("memory_source"), "host") or "host"
    return env


def _sample(value: object) -> tuple[float, int] | None:
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        return None
    time, rss = _seconds(value[0]), _size(value[1])
    return None if time is None or rss is None else (time, rss)


def _timeline(value: object) -> dict[str, Any]:
    given = _mapping(value)
    processes = []
    for process in _list(given.get("processes")):
        if isinstance(process, Mapping) and isinstance(process.get("process"), str):
            samples = [s for s in map(_sample, _list(process.get("samples"))) if s is not None]
            processes.append({"process": process["process"], "samples": samples})
    events = []
    for event in _list(given.get("events")):
        time = _seconds(event.get("time")) if isinstance(event, Mapping) else None
        if time is not None:
            events.append(
                {
                    "time": time,
                    "kind": _text(event.get("kind"), "event") or "event",
                    "process": _text(event.get("process"), "main"),
                    "nodeid": _optional_text(event.get("nodeid")),
                    "message": _optional_text(event.get("message")),
                }
            )
    return {"processes": processes, "events": events}


def _alert(value: object) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    return {
        "level": _text(value.get("level"), "?"),
        "process": _text(value.get("process"), "?"),
        "rss": _size(value.get("rss")),
        "message": _text(value.get("message")),
    }


def _shard(value: object) -> dict[str, Any] | None:
    """A shard of a merged report (``memguard merge``): its name, figures, limits and
    environment (with its CI job)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    ci = _mapping(_mapping(value.get("environment")).get("ci"))
    return {
        "name": value["name"],
        "created": _text(value.get("created")),
        "interrupted": value.get("interrupted") is True,
        "duration_s": max(0.0, _seconds(value.get("duration_s")) or 0.0),
        "summary": _summary(value.get("summary"), []),
        "config": _config(value.get("config")),
        "environment": {
            **_environment(value.get("environment")),
            "job": _optional_text(ci.get("job")),
        },
    }


def normalised(report: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``report`` the page reads, each of its type (see the module docstring);
    its ``tests`` are :class:`~..results.TestMemory`.

    The report this version of memguard just built has its results already
    (:class:`~..report.TestEntries`): they are used as they are, not copied (a run has
    thousands of tests).
    """
    given = report.get("tests")
    if isinstance(given, TestEntries):
        tests = list(given.results)
    else:
        tests = [test for test in map(_test, _list(given)) if test is not None]
    workers = [
        {"id": worker["id"]}
        for worker in _list(report.get("workers"))
        if isinstance(worker, Mapping) and isinstance(worker.get("id"), str)
    ]
    return {
        "created": _text(report.get("created")),
        "interrupted": report.get("interrupted") is True,
        "duration_s": max(0.0, _seconds(report.get("duration_s")) or 0.0),
        "summary": _summary(report.get("summary"), tests),
        "config": _config(report.get("config")),
        "environment": _environment(report.get("environment")),
        "workers": workers,
        "tests": tests,
        "timeline": _timeline(report.get("timeline")),
        "alerts": [
            alert for alert in map(_alert, _list(report.get("alerts"))) if alert is not None
        ],
        "shards": [shard for shard in map(_shard, _list(report.get("shards"))) if shard],
    }
