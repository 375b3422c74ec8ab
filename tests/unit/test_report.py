from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard import Budget, ReportError, TestMemory, load_report
from pytest_memguard.probe.system import SystemMemory
from pytest_memguard.reporting.html_report import render_html
from pytest_memguard.reporting.report import (
    build_report,
    encode_report,
    environment,
    write_report,
)
from pytest_memguard.reporting.timeline import build_timeline

from ..sessions import validate

MiB = 2**20


def _result(nodeid: str, delta: int, status: str = "ok") -> TestMemory:
    return TestMemory(
        nodeid=nodeid,
        outcome="failed" if status != "ok" else "passed",
        status=status,  # type: ignore[arg-type]
        worker="main",
        duration_s=0.01,
        rss_start=50 * MiB,
        rss_end=50 * MiB,
        rss_peak=50 * MiB + delta,
        peak_delta=delta,
        budget=Budget(peak=10 * MiB, sources={"peak": "--memguard-budget"}),
        message=None if status == "ok" else "over",
    )


def _report(results: list[TestMemory], collected: list[str]) -> dict[str, Any]:
    return build_report(
        tests=results,
        collected=collected,
        environment=environment(
            SystemMemory(8 * 2**30, 4 * 2**30, "host"), peak_method="exact", interrupt="signal"
        ),
        config={"mode": "enforce", "warning": None, "critical": None, "max": 2**30, "budget": None},
        started=0.0,
        duration_s=1.5,
        interrupted=False,
    )


def test_report_validates_and_lists_every_collected_test() -> None:
    report = _report(
        [_result("t::b", 30 * MiB, "over_budget"), _result("t::a", MiB)], ["t::a", "t::b", "t::c"]
    )
    validate(json.loads(encode_report(report)))
    assert [t["nodeid"] for t in report["tests"]] == ["t::a", "t::b", "t::c"]
    summary = report["summary"]
    assert summary["statuses"]["not_run"] == 1
    assert summary["statuses"]["over_budget"] == 1
    assert summary["worst"] == {"nodeid": "t::b", "peak_delta": 30 * MiB}
    assert summary["peak_rss"] == 80 * MiB
    assert report["tests"][2]["status"] == "not_run"


def test_write_is_atomic_and_load_reads_it_back(tmp_path: Path) -> None:
    report = _report([_result("t::a", MiB)], ["t::a"])
    path = write_report(report, tmp_path / "deep" / "r.json")
    assert load_report(path) == report
    assert [p.name for p in path.parent.iterdir()] == ["r.json"], "no temporary file left"


def test_load_report_names_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"missing\.json: no such file"):
        load_report(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match=r"bad\.json: not valid JSON"):
        load_report(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/2"}))
    with pytest.raises(ReportError, match="not a pytest-memguard report"):
        load_report(other)


def test_test_memory_round_trips_through_json() -> None:
    result = _result("t::a", 3 * MiB, "over_budget")
    assert TestMemory.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_the_written_report_reads_back_the_same_with_a_line_per_test(tmp_path: Path) -> None:
    tests = [_result("t::a", MiB), _result("t::b", 2 * MiB, "over_budget")]
    report = build_report(
        tests=tests,
        collected=["t::a", "t::b"],
        environment={"python": "3"},
        config={"mode": "enforce"},
        started=0.0,
        duration_s=1.0,
        interrupted=False,
    )
    path = write_report(report, tmp_path / "out" / "report.json")
    assert json.loads(path.read_text()) == {**report, "tests": [t.to_json() for t in tests]}
    lines = path.read_text().splitlines()
    assert len([line for line in lines if line.startswith('  {"nodeid"')]) == 2


class _Entry(dict[str, Any]):
    """A test entry that can be watched (a plain dict cannot be weakly referenced)."""


class _Entries:
    """Counts the test entries made, and the most alive at once."""

    def __init__(self) -> None:
        self.made = self.alive = self.most = 0

    def make(self, result: TestMemory, to_json: Any) -> dict[str, Any]:
        entry = _Entry(to_json(result))
        self.made += 1
        self.alive += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(entry, self._gone)
        return entry

    def _gone(self) -> None:
        self.alive -= 1


def test_a_report_is_written_and_drawn_an_entry_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's report keeps its results, not their entries: the JSON file is written
    making each entry as it goes (never the list of them all), the timeline and the page
    are drawn from the results, and the file holds every entry in collection order."""
    results = [_result(f"t::{i:03}", i * MiB) for i in range(100)]
    expected = [result.to_json() for result in reversed(results)]
    entries = _Entries()
    to_json = TestMemory.to_json
    monkeypatch.setattr(TestMemory, "to_json", lambda self: entries.make(self, to_json))
    report = _report(results, [result.nodeid for result in reversed(results)])
    report["timeline"] = build_timeline(tests=results)
    assert entries.made == 0
    path = write_report(report, tmp_path / "r.json")
    assert entries.made == 100, "each entry made once"
    assert entries.most <= 2, "one at a time (the next is made as the last is written)"
    page = render_html(report)
    assert entries.made == 100, "the page made no entry"
    assert page.count("t::") > 100
    assert load_report(path)["tests"] == expected
