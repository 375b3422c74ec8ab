"""One report from the reports of a suite's shards (``memguard merge``): a suite split
across machines (pytest-split's ``--splits N --group K``, a CI matrix) writes a report a
shard.

The merged report is a ``pytest-memguard/1`` report of every test once.  Each test entry
names its ``shard``; the processes of a shard are named ``<shard>/<process>`` (its
workers, its timeline's lanes, its alerts' processes, each test's ``worker``), so two
shards' ``main`` or ``gw0`` stay apart.  The summary is counted again over the tests.
The top-level ``environment`` and ``config`` are the first shard's; each shard's own, with
its summary as it wrote it, are in the ``shards`` list.  The timeline keeps each sample's
own time (epoch seconds): the shards' lanes line up by the clock, as the jobs of a CI
matrix ran.  A test in more than one shard keeps one entry: a run over a ``not_run`` entry,
else the entry of the shard given last (a :class:`Merged` notice names them).  No pytest
import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .report import ReportError, build_report, summarise

__all__ = ["MergeError", "Merged", "Shard", "merge_reports", "shard_name"]

#: Tests a notice names before it says how many more there are.
_NAMED: Final = 3
#: The shard fields of the ``shards`` list taken from each shard's report as they are.
_SHARD_FIELDS: Final = ("created", "duration_s", "interrupted", "environment", "config", "summary")
#: The config keys that set how tests were held (a shard's paths differ, of course).
_LIMITS: Final = (
    "mode",
    "warning",
    "critical",
    "max",
    "aggregate",
    "budget",
    "leaks",
    "leak_budget",
    "min_free",
    "recycle",
    "worker_memory",
)
#: The format of a report's ``created``.
_CREATED: Final = "%Y-%m-%dT%H:%M:%S%z"


class MergeError(ReportError):
    """Shard reports that cannot be merged: none, two of one name, a merged report."""


@dataclass(frozen=True)
class Shard:
    """A shard's report (loaded), its ``name`` and the file it came from (``source``)."""

    name: str
    report: Mapping[str, Any]
    source: str = ""


@dataclass(frozen=True)
class Merged:
    """The merged report and what the merge had to decide (one line each)."""

    report: dict[str, Any]
    notices: list[str] = field(default_factory=list)


def shard_name(path: str) -> str:
    """The default name of the shard whose report is at ``path``: the file's stem
    (``memguard-2.json``: ``memguard-2``).

    Not the CI job the report's environment names: the jobs of a GitHub Actions matrix
    all have one name, and the report's file name is what a shard's command line sets.
    """
    return Path(path).stem or path


def _process(shard: str, process: object) -> str:
    """A process of ``shard`` as the merged report names it (``shard-2/gw0``)."""
    return f"{shard}/{process}" if process else shard


def _check(shards: Sequence[Shard]) -> None:
    if not shards:
        raise MergeError("no shard reports to merge")
    seen: dict[str, Shard] = {}
    for shard in shards:
        if not shard.name:
            raise MergeError(f"{shard.source}: a shard's name cannot be empty")
        if shard.report.get("shards") is not None:
            raise MergeError(
                f"{shard.source}: already a merged report (merge the shards' own reports)"
            )
        other = seen.get(shard.name)
        if other is not None:
            raise MergeError(
                f"two shards are named {shard.name!r} ({other.source} and {shard.source}):"
                " name them NAME=PATH"
            )
        seen[shard.name] = shard


def _kept(shards: Sequence[Shard], notices: list[str]) -> dict[str, Mapping[str, Any]]:
    """The entry kept of each test, by nodeid (see the module docstring)."""
    kept: dict[str, tuple[int, Mapping[str, Any]]] = {}
    twice: dict[str, list[str]] = {}
    dropped = 0
    for index, shard in enumerate(shards):
        for test in shard.report["tests"]:
            before = kept.get(test["nodeid"])
            if before is not None and before[0] != index:
                if test["status"] == "not_run":
                    dropped += 1
                    continue
                if before[1]["status"] == "not_run":
                    dropped += 1
                else:
                    names = twice.setdefault(test["nodeid"], [shards[before[0]].name])
                    names.append(shard.name)
            kept[test["nodeid"]] = (index, test)
    if twice:
        named = "; ".join(f"{n} ({', '.join(s)})" for n, s in list(twice.items())[:_NAMED])
        more = f"; and {len(twice) - _NAMED} more" if len(twice) > _NAMED else ""
        notices.append(
            f"{len(twice)} test(s) ran in more than one shard, each kept from the shard"
            f" given last: {named}{more}"
        )
    if dropped:
        notices.append(
            f"{dropped} not-run entr{'y' if dropped == 1 else 'ies'} left out: another"
            " shard ran the test"
        )
    return {nodeid: test for nodeid, (_, test) in kept.items()}


def _tests(shards: Sequence[Shard], kept: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The kept entries, shard by shard in the order given, each in its shard's order."""
    tests = []
    for shard in shards:
        name = shard.name
        for test in shard.report["tests"]:
            if kept[test["nodeid"]] is test:
                tests.append({**test, "worker": _process(name, test["worker"]), "shard": name})
    return tests


def _epoch(created: object) -> float | None:
    """A report's ``created`` as epoch seconds (None: not in the format reports write)."""
    try:
        return datetime.strptime(str(created), _CREATED).timestamp()
    except ValueError:
        return None


def _span(shards: Sequence[Shard]) -> tuple[int, float]:
    """The shard that started first (its index) and the seconds from its start to the end
    of the shard that ended last; the longest shard's duration when a ``created`` cannot
    be read."""
    starts = [_epoch(shard.report.get("created")) for shard in shards]
    durations = [float(shard.report.get("duration_s") or 0.0) for shard in shards]
    known = [start for start in starts if start is not None]
    if len(known) < len(starts):
        return 0, max(durations)
    first = min(known)
    end = max(start + duration for start, duration in zip(known, durations, strict=True))
    return known.index(first), end - first


def _renamed(shard: Shard, items: object, key: str) -> list[dict[str, Any]]:
    """``items`` (a list of objects) with their ``key`` named per shard, and the shard."""
    if not isinstance(items, list):
        return []
    return [
        {**item, key: _process(shard.name, item.get(key)), "shard": shard.name}
        for item in items
        if isinstance(item, Mapping)
    ]


def _timeline(shards: Sequence[Shard]) -> dict[str, Any] | None:
    processes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    found = False
    for shard in shards:
        timeline = shard.report.get("timeline")
        if not isinstance(timeline, Mapping):
            continue
        found = True
        processes += [
            {**p, "process": _process(shard.name, p.get("process"))}
            for p in timeline.get("processes") or ()
            if isinstance(p, Mapping)
        ]
        events += [
            {**e, "process": _process(shard.name, e.get("process"))}
            for e in timeline.get("events") or ()
            if isinstance(e, Mapping)
        ]
    return {"processes": processes, "events": events} if found else None


def _shard_entry(shard: Shard, workers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    report = shard.report
    entry: dict[str, Any] = {"name": shard.name, "report": shard.source}
    entry.update({key: report.get(key) for key in _SHARD_FIELDS})
    entry["workers"] = [worker["id"] for worker in workers]
    for key in ("signal", "recovered", "extra"):
        if key in report:
            entry[key] = report[key]
    return entry


def _differing_limits(shards: Sequence[Shard]) -> list[str]:
    configs = [shard.report.get("config") or {} for shard in shards]
    return [key for key in _LIMITS if len({repr(config.get(key)) for config in configs}) > 1]


def merge_reports(shards: Sequence[Shard]) -> Merged:
    """One report of the tests of ``shards`` (loaded reports, each checked as ``memguard
    show`` checks it), in the order given.

    :raises MergeError: no shard, two of one name, or a report that is already merged
    """
    _check(shards)
    notices: list[str] = []
    tests = _tests(shards, _kept(shards, notices))
    workers = [w for shard in shards for w in _renamed(shard, shard.report.get("workers"), "id")]
    first, duration = _span(shards)
    earliest = shards[first].report
    report = build_report(  # the shards' entries (with their shard) are its tests
        tests=(),
        alerts=[
            a for shard in shards for a in _renamed(shard, shard.report.get("alerts"), "process")
        ],
        workers=workers,
        environment=shards[0].report.get("environment") or {},
        config=shards[0].report.get("config") or {},
        started=_epoch(earliest.get("created")) or 0.0,
        duration_s=duration,
        interrupted=any(shard.report.get("interrupted") is True for shard in shards),
    )
    report["created"] = earliest.get("created")
    report["summary"] = summarise(
        ((t["nodeid"], t["status"], t["outcome"], t["peak_delta"], t["rss_peak"]) for t in tests),
        workers,
    )
    report["tests"] = tests
    errors = [
        f"{shard.name}: {error}" for shard in shards for error in shard.report.get("errors") or ()
    ]
    if errors:
        report["errors"] = errors
    timeline = _timeline(shards)
    if timeline is not None:
        report["timeline"] = timeline
    pressure = [
        {**event, "shard": shard.name}
        for shard in shards
        for event in shard.report.get("pressure") or ()
        if isinstance(event, Mapping)
    ]
    if pressure:
        report["pressure"] = pressure
    report["shards"] = [
        _shard_entry(shard, [w for w in workers if w["shard"] == shard.name]) for shard in shards
    ]
    differing = _differing_limits(shards)
    if differing:
        notices.append(
            f"the shards ran with different limits ({', '.join(differing)}): the merged"
            f" report's config is {shards[0].name}'s, each shard's own is under shards"
        )
    return Merged(report, notices)
