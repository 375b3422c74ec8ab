"""The JSON report (schema ``pytest-memguard/1``): build it, write it atomically, load it.

Integers are bytes, times are seconds.  New fields may be added within a schema version;
existing fields are not removed or changed in meaning.  The JSON Schema ships in the
package as ``report.schema.json`` (:func:`load_schema`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final, final, overload

from ..core.files import InputFileError, read_json, write_atomically
from ..errors import MemguardError
from ..probe.system import SystemMemory
from .ci_env import detect_ci
from .results import STATUSES, TestMemory

__all__ = [
    "SCHEMA",
    "ReportError",
    "TestEntries",
    "build_report",
    "environment",
    "load_report",
    "load_schema",
    "summarise",
    "write_report",
]

SCHEMA: Final = "pytest-memguard/1"


class ReportError(MemguardError, ValueError):
    """A report file that is missing, unreadable or not a pytest-memguard report."""


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the report, as shipped in the package."""
    text = (
        resources.files(__package__ or "pytest_memguard.reporting")
        .joinpath("report.schema.json")
        .read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def environment(
    memory: SystemMemory,
    *,
    peak_method: str,
    interrupt: str,
    pytest_version: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``environment`` section: interpreter, platform, usable memory, CI system.

    ``ci`` is what :func:`~pytest_memguard.reporting.ci_env.detect_ci` finds in ``environ`` (default
    ``os.environ``): the CI system, commit, branch, job, build and URL; null outside CI.
    """
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": sys.platform,
        "machine": platform.machine(),
        "pytest": pytest_version,
        "cpu_count": os.cpu_count(),
        "memory_total": memory.total,
        "memory_available": memory.available,
        "memory_source": memory.source,
        "cgroup": memory.cgroup,
        "peak_method": peak_method,
        "interrupt_method": interrupt,
        "ci": detect_ci(os.environ if environ is None else environ),
    }


@final
class TestEntries(Sequence[dict[str, Any]]):
    """The report's ``tests``: a test entry (``TestMemory.to_json()``) for each result, made
    when it is read and not kept.

    A run of thousands of tests holds its results already; their entries, alive all at
    once, would cost the run as much again (see benchmarks/run_memory.py).  So the JSON
    writer, the page and the summary read one entry at a time; ``list(entries)`` gives
    the plain list where one is needed (the report hook).  An entry read twice is two
    equal dicts: changing one changes nothing.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name
    __slots__ = ("results",)

    def __init__(self, results: Sequence[TestMemory]) -> None:
        #: The results, in the report's order.
        self.results = results

    def __len__(self) -> int:
        return len(self.results)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [result.to_json() for result in self.results[index]]
        return self.results[index].to_json()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (result.to_json() for result in self.results)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # a sequence, compared by its entries

    def __repr__(self) -> str:
        return f"<TestEntries of {len(self.results)} tests>"


def build_report(
    *,
    tests: Iterable[TestMemory],
    collected: Sequence[str] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
    workers: Sequence[Mapping[str, Any]] = (),
    environment: Mapping[str, Any],
    config: Mapping[str, Any],
    started: float,
    duration_s: float,
    interrupted: bool,
    not_run_reason: str = "not run",
) -> dict[str, Any]:
    """Assemble the report from the tests' results (in run order).

    Every collected test gets an entry: ``not_run`` when it has none.  The report's
    ``tests`` are :class:`TestEntries`, made from the results as they are read.
    """
    ordered = list(tests)
    if [test.nodeid for test in ordered] != list(collected):  # not the usual run order
        by_id = {test.nodeid: test for test in ordered}
        known = set(by_id)
        ordered = [by_id.pop(nodeid) for nodeid in collected if nodeid in by_id]
        ordered.extend(by_id.values())
        for nodeid in dict.fromkeys(nodeid for nodeid in collected if nodeid not in known):
            ordered.append(TestMemory.not_run(nodeid, not_run_reason))
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(duration_s, 3),
        "interrupted": interrupted,
        "environment": dict(environment),
        "config": dict(config),
        "summary": summarise(
            ((t.nodeid, t.status, t.outcome, t.peak_delta, t.rss_peak) for t in ordered), workers
        ),
        "tests": TestEntries(ordered),
        "alerts": [dict(alert) for alert in alerts],
        "workers": [dict(worker) for worker in workers],
    }


def summarise(
    tests: Iterable[tuple[str, str, str, int | None, int | None]],
    workers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``summary`` of a report's tests, each given as ``(nodeid, status, outcome,
    peak_delta, rss_peak)``, in one pass (a run has thousands of tests); the peak RSS
    is the largest of the tests' and the ``workers``' own."""
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    outcomes: dict[str, int] = {}
    worst: tuple[str, int] | None = None
    peak = max((int(w.get("peak_rss") or 0) for w in workers), default=0)
    total = 0
    for nodeid, status, outcome, delta, rss in tests:
        total += 1
        counts[status] += 1
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if delta is not None and (worst is None or delta > worst[1]):
            worst = (nodeid, delta)
        if rss is not None and rss > peak:
            peak = rss
    return {
        "tests": total,
        "statuses": counts,
        "failed": outcomes.get("failed", 0) + outcomes.get("error", 0),
        "outcomes": outcomes,
        "peak_rss": peak,
        "worst": {"nodeid": worst[0], "peak_delta": worst[1]} if worst is not None else None,
    }


def encode_report(report: Mapping[str, Any]) -> str:
    """``report`` as JSON text: a key per line, and a line per test, alert or worker.

    Readable in a diff, and written by the C encoder: ``json.dump(..., indent=...)``
    falls back to the pure Python one, and every guarded run writes its report as it
    ends, in a time that grows with its tests (see benchmarks/).
    """
    return "".join(encoded_report(report))


def encoded_report(report: Mapping[str, Any]) -> Iterator[str]:
    """:func:`encode_report`'s text in pieces, a line at a time: a report of thousands of
    tests is written without being one string (nor a list of its lines) in memory."""
    separator = "{\n "
    for key, value in report.items():
        yield f"{separator}{json.dumps(key)}: "
        separator = ",\n "
        if isinstance(value, (list, TestEntries)) and value:
            between = "[\n  "
            for item in value:
                yield between + json.dumps(item)
                between = ",\n  "
            yield "\n ]"
        else:
            yield json.dumps(value)
    yield "{}\n" if separator == "{\n " else "\n}\n"


def write_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` atomically (a temporary file, then a rename).

    The rules of :mod:`~pytest_memguard.core.files`: a symlink's target is replaced, a path
    that is not a regular file is refused (:class:`~.output.OutputPathError`), and an
    existing file keeps its mode.
    """
    return write_atomically(path, encoded_report(report))


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a report; :class:`ReportError` names the file and what is wrong with it.

    The rules of :func:`~.output.read_json`: a regular file only (a FIFO is never waited
    on), at most :data:`~.output.MAX_READ` bytes, UTF-8 JSON; anything else is a
    :class:`ReportError` of one line.
    """
    try:
        data = read_json(path)
    except InputFileError as error:
        raise ReportError(str(error)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportError(f'{path}: not a pytest-memguard report (expected "schema": "{SCHEMA}")')
    return data
