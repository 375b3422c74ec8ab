"""The plugin's pieces without a pytest session: one test's verdict, its result, and the
report and summary of a run built from a fake result source."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_memguard import load_schema
from pytest_memguard.core.levels import Level
from pytest_memguard.plugin.context import RunContext
from pytest_memguard.plugin.settings import Settings
from pytest_memguard.plugin.state import VERDICTS, TestState, Verdict
from pytest_memguard.plugin.summary import run_report, run_summary
from pytest_memguard.probe.system import SystemMemory
from pytest_memguard.reporting.report import encode_report, environment
from pytest_memguard.reporting.results import TestMemory, merge_outcome, report_outcome

MiB = 1024**2


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [
        ("over_budget", "leak", "leak"),
        ("leak", "over_budget", "leak"),
        ("aborted", "leak", "aborted"),
        ("leak", "aborted", "aborted"),
        ("baseline", "over_budget", "over_budget"),
        ("over_budget", "baseline", "over_budget"),
        ("not_run", "baseline", "not_run"),
        ("leak", "leak", "leak"),
    ],
)
def test_the_strongest_verdict_stays(first: str, second: str, kept: str) -> None:
    state = TestState("t.py::test")
    state.judge(Verdict(first, f"{first}!"))
    state.phase = "teardown"
    given = state.judge(Verdict(second, f"{second}!!"))
    assert state.verdict is not None
    assert state.verdict.kind == kept
    assert given == (kept == second)
    # The later of two of one kind: its message, its phase.
    assert state.verdict_phase == ("teardown" if given else "setup")


def test_every_kind_of_verdict_has_its_status() -> None:
    statuses = {Verdict(kind, "").status for kind in VERDICTS}
    assert statuses == {"aborted", "killed", "not_run", "leak", "over_budget"}


def _status(state: TestState) -> str:
    return state.status


def test_a_crossed_threshold_or_a_warning_makes_an_ok_test_a_warning() -> None:
    state = TestState("t.py::test")
    assert _status(state) == "ok"
    state.level = Level.WARNING
    assert _status(state) == "warning"
    state.judge(Verdict("leak", "memguard: kept 3 MiB"))
    assert _status(state) == "leak"


def _last_run(state: TestState) -> tuple[object, ...]:
    return (state.rss_end, state.verdict, state.warnings, state.outcome)


def test_a_rerun_forgets_its_last_runs_figures_and_verdict_but_not_its_peaks() -> None:
    state = TestState("t.py::test")
    state.new_run()
    state.rss_peak, state.peak_delta, state.rss_end = 300 * MiB, 200 * MiB, 100 * MiB
    state.warnings = ("memguard: a warning",)
    state.judge(Verdict("over_budget", "memguard: over"))
    state.outcome = "failed"
    state.new_run()
    assert (state.rss_peak, state.peak_delta) == (300 * MiB, 200 * MiB)
    assert _last_run(state) == (None, None, (), "passed")
    result = state.result("main")
    assert result.reruns == 1
    assert result.status == "ok"
    assert result.message is None


def test_the_result_says_the_verdict_then_the_warnings() -> None:
    state = TestState("t.py::test")
    state.new_run()
    state.judge(Verdict("leak", "memguard: kept 3 MiB"))
    state.warnings = ("memguard: native leak?",)
    state.notes = ("memguard: a warm-up",)
    result = state.result("gw1")
    assert (result.status, result.worker) == ("leak", "gw1")
    assert result.message == "memguard: kept 3 MiB; memguard: native leak?; memguard: a warm-up"


@pytest.mark.parametrize(
    ("reports", "outcome"),
    [
        ([("passed", "setup", False), ("passed", "call", False)], "passed"),
        ([("passed", "setup", False), ("skipped", "call", True)], "xfailed"),
        ([("passed", "setup", False), ("passed", "call", True)], "xpassed"),
        ([("skipped", "setup", False)], "skipped"),
        ([("failed", "setup", False)], "error"),
        ([("passed", "call", False), ("failed", "teardown", False)], "error"),
        ([("failed", "call", False), ("failed", "teardown", False)], "failed"),
        ([("skipped", "call", True), ("failed", "teardown", False)], "error"),
    ],
)
def test_outcomes_are_counted_as_pytest_counts_them(
    reports: list[tuple[str, str, bool]], outcome: str
) -> None:
    merged = "passed"
    for report in reports:
        merged = merge_outcome(merged, report_outcome(*report))
    assert merged == outcome


def test_a_rerun_report_starts_the_outcome_again() -> None:
    assert merge_outcome("failed", "rerun") == "passed"


class FakeSource:
    """A result source of given results (the single process and the controller are two)."""

    def __init__(self, results: list[TestMemory], collected: Sequence[str]) -> None:
        self._results = results
        self._collected = collected

    def results(self) -> list[TestMemory]:
        return list(self._results)

    def result_of(self, nodeid: str) -> TestMemory | None:
        return next((r for r in self._results if r.nodeid == nodeid), None)

    def collected(self) -> Sequence[str]:
        return self._collected

    def alerts(self) -> list[dict[str, Any]]:
        return []

    def workers(self, reason: str) -> list[dict[str, Any]]:
        peak = 400 * MiB
        return [{"id": "gw0", "pid": 1, "peak_rss": peak, "killed": False, "reason": None}]

    def samples(self) -> dict[str, list[tuple[float, int]]]:
        return {"gw0": [(1.0, 100 * MiB)]}

    def not_run_reason(self) -> str | None:
        return None

    def peak_rss(self) -> int:
        return 400 * MiB


def _context(results: list[TestMemory], collected: Sequence[str]) -> RunContext:
    memory = SystemMemory(total=8 << 30, available=6 << 30, source="host")
    return RunContext(
        Settings(),
        "main",
        Path("records"),
        owns_work_dir=True,
        memory=memory,
        peak_method="test",
        environment=environment(memory, peak_method="test", interrupt="test", pytest_version="9"),
        source=FakeSource(results, collected),
        started=1_700_000_000.0,
    )


RESULTS = [
    TestMemory("t.py::a", "passed", "ok", "gw0", 0.1, rss_peak=200 * MiB, peak_delta=10 * MiB),
    TestMemory(
        "t.py::b",
        "failed",
        "over_budget",
        "gw0",
        0.2,
        rss_peak=300 * MiB,
        peak_delta=90 * MiB,
        message="memguard: over",
    ),
    TestMemory("t.py::c", "xfailed", "warning", "gw0", 0.1, message="memguard: suspect"),
]


def test_the_report_of_a_source_is_schema_valid_and_counts_outcomes() -> None:
    context = _context(RESULTS, ["t.py::a", "t.py::b", "t.py::c", "t.py::d"])
    report = run_report(context, interrupted=False, reason="", ended=1_700_000_010.0)
    jsonschema.validate(json.loads(encode_report(report)), load_schema())
    summary = report["summary"]
    assert summary["outcomes"] == {"passed": 1, "failed": 1, "xfailed": 1, "not_run": 1}
    assert summary["failed"] == 1
    assert summary["statuses"]["not_run"] == 1
    assert summary["peak_rss"] == 400 * MiB
    assert [test["nodeid"] for test in report["tests"]][-1] == "t.py::d"
    assert "errors" not in report


def test_the_report_says_the_runs_internal_errors() -> None:
    context = _context(RESULTS, [])
    context.log.error("somewhere", ValueError("bad"))
    report = run_report(context, interrupted=False, reason="")
    assert report["errors"] == ["somewhere: ValueError: bad"]


def test_the_summary_of_a_source_counts_what_the_report_counts() -> None:
    context = _context(RESULTS, ["t.py::a", "t.py::b", "t.py::c", "t.py::d"])
    report = run_report(context, interrupted=False, reason="")
    summary = run_summary(context, top=5)
    assert [t.nodeid for t in summary.heaviest] == ["t.py::b", "t.py::a"]
    assert (summary.tests, summary.measured) == (3, 2)
    assert [t.nodeid for t in summary.violations] == ["t.py::b"]
    assert [t.nodeid for t in summary.warned] == ["t.py::c"]
    assert summary.not_run == report["summary"]["statuses"]["not_run"] == 1
    assert summary.peak_rss == report["summary"]["peak_rss"]
    assert summary.worst is not None
    assert summary.worst.nodeid == report["summary"]["worst"]["nodeid"]
