"""Rows, tables, markdown and JSON of reports and diffs (pytest_memguard.reporting.render)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pytest_memguard.reporting.compare import diff_reports
from pytest_memguard.reporting.render import render_diff, render_report, report_rows, summary_line
from tests.cli.reports import MB, make_report, make_test


def _report() -> dict[str, Any]:
    return make_report(
        make_test("t.py::light", 5 * MB, duration=3.0),
        make_test(
            "t.py::over",
            250 * MB,
            status="over_budget",
            budget=100 * MB,
            message="peak growth 238.4 MiB is over the budget of 95.4 MiB",
        ),
        make_test("t.py::medium", 60 * MB, duration=0.5),
        make_test("t.py::skipped", None, status="not_run"),
    )


def _index(lines: list[str], text: str) -> int:
    """The first table line (after the summary line) that names ``text``."""
    return next(i for i, line in enumerate(lines) if i > 0 and text in line)


def test_rows_are_heaviest_first_with_unmeasured_last() -> None:
    rows = report_rows(_report())
    assert [r.nodeid for r in rows] == [
        "t.py::over",
        "t.py::medium",
        "t.py::light",
        "t.py::skipped",
    ]
    assert [r.status for r in rows] == ["over_budget", "ok", "ok", "not_run"]
    assert [r.nodeid for r in report_rows(_report(), top=2)] == ["t.py::over", "t.py::medium"]
    assert len(report_rows(_report(), top=0)) == 4
    by_time = report_rows(_report(), sort="duration")
    assert by_time[0].nodeid == "t.py::light"


def test_rows_by_leak_keep_unmeasured_leaks_last() -> None:
    report = make_report(
        make_test("t::a", MB, leak=None),
        make_test("t::b", MB, leak=2 * MB),
        make_test("t::c", MB, leak=-5),
    )
    assert [r.nodeid for r in report_rows(report, sort="leak")] == ["t::b", "t::c", "t::a"]
    with pytest.raises(ValueError, match="invalid sort 'size'"):
        report_rows(report, sort="size")  # type: ignore[arg-type]


def test_summary_line() -> None:
    assert summary_line(_report()) == (
        "memguard: 4 tests, 1 memory failure (1 over budget), 1 not run; peak RSS 286.1 MiB; "
        "largest growth 238.4 MiB in t.py::over"
    )
    assert summary_line(_report(), markdown=True).startswith(
        "**memguard**: 4 tests, :x: 1 memory failure (1 over budget)"
    )
    assert summary_line(make_report()) == "memguard: 0 tests, 0 memory failures; peak RSS 0 B"
    interrupted = {**make_report(make_test("t::a", 0)), "interrupted": True}
    assert summary_line(interrupted).endswith("in t::a; the run was interrupted")


def test_table_lists_the_heavier_test_above_the_lighter_and_marks_failures() -> None:
    text = render_report(_report(), "table")
    lines = text.splitlines()
    assert lines[0].startswith("memguard: 4 tests")
    assert lines[1] == "heaviest tests by peak growth (top 4 of 4):"
    assert (
        _index(lines, "t.py::over") < _index(lines, "t.py::medium") < _index(lines, "t.py::light")
    )
    over = lines[_index(lines, "t.py::over")]
    assert over.startswith("M ")
    assert "OVER BUDGET" in over
    assert "238.4 MiB" in over
    assert "95.4 MiB" in over
    assert not lines[_index(lines, "t.py::medium")].startswith("M")
    assert "heap" not in lines[2]
    assert "leaked" not in lines[2]
    assert lines[-2:] == [
        "memory failures (1):",
        "  OVER BUDGET t.py::over: peak growth 238.4 MiB is over the budget of 95.4 MiB",
    ]


def test_table_top_and_columns_for_measured_heap_and_leak() -> None:
    report = make_report(make_test("t::a", MB, heap=3 * MB), make_test("t::b", 2 * MB, leak=MB))
    lines = render_report(report, top=1).splitlines()
    assert lines[1] == "heaviest tests by peak growth (top 1 of 2):"
    assert re.search(r"peak growth\s+peak RSS\s+heap\s+leaked\s+duration\s+budget", lines[2])
    assert "t::a" not in "\n".join(lines)


def test_table_shortens_long_names_and_handles_empty_reports() -> None:
    long_id = "tests/" + "x" * 100 + "::test_it"
    row = render_report(make_report(make_test(long_id))).splitlines()[4]
    assert row.startswith("    ..." + long_id[-67:] + "  ok")
    assert render_report(make_report()).splitlines()[1] == "no tests in the report"
    leak_note = render_report(_report(), sort="leak").splitlines()[-1]
    assert leak_note == "no test has a leak measurement (pytest --memguard-leaks records them)"


def test_markdown_is_a_summary_line_above_a_pipe_table() -> None:
    report = make_report(
        make_test("t.py::test_x[a|b]", 20 * MB),
        make_test("t.py::over", 90 * MB, status="leak", message="kept 3 MiB\nafter the test"),
        make_test("t.py::warned", MB, status="warning"),
    )
    lines = render_report(report, "markdown").splitlines()
    assert lines[0].startswith("**memguard**: 3 tests, :x: 1 memory failure (1 leak), 1 warning;")
    assert lines[1] == ""
    header = lines.index("| test | status | peak growth | peak RSS | duration | budget |")
    assert lines[header + 1] == "|---|---|---:|---:|---:|---:|"
    rows = lines[header + 2 : header + 5]
    assert rows[0].startswith("| `t.py::over` | :x: **LEAK** | 85.8 MiB |")
    assert rows[1].startswith("| `t.py::test_x[a\\|b]` | ok | 19.1 MiB |")
    assert rows[2].startswith("| `t.py::warned` | :warning: warning |")
    for row in rows:  # an escaped pipe does not split a cell
        assert len(re.split(r"(?<!\\)\|", row)) == 8
    assert lines[-1] == "- `t.py::over`: kept 3 MiB after the test"


def test_json_keeps_bytes() -> None:
    data = json.loads(render_report(_report(), "json", top=2))
    assert data["tests"] == 4
    assert data["failures"] == 1
    assert data["top"] == 2
    assert [r["nodeid"] for r in data["rows"]] == ["t.py::over", "t.py::medium"]
    assert data["rows"][0]["peak_delta"] == 250 * MB
    assert data["rows"][0]["violation"] is True
    assert data["rows"][0]["heap_peak"] is None
    with pytest.raises(ValueError, match="invalid format 'html'"):
        render_report(_report(), "html")  # type: ignore[arg-type]


def _diff_reports() -> tuple[dict[str, Any], dict[str, Any]]:
    base = make_report(
        make_test("t::grows", 120 * MB, heap=10 * MB),
        make_test("t::shrinks", 200 * MB),
        make_test("t::same", 50 * MB),
        make_test("t::gone", 10 * MB),
    )
    new = make_report(
        make_test("t::same", 50 * MB),
        make_test("t::shrinks", 100 * MB),
        make_test("t::grows", 300 * MB, heap=10 * MB),
        make_test("t::fresh", 30 * MB),
    )
    return base, new


def test_diff_table_lists_regressions_first_and_counts_the_rest() -> None:
    lines = render_diff(diff_reports(*_diff_reports(), "20%")).splitlines()
    assert lines[0] == (
        "memguard diff: 1 regression, 1 improvement, 1 within the allowance, 1 new, 1 removed "
        "(allowed increase +20%)"
    )
    assert re.match(r"test\s+change\s+peak\s+heap$", lines[1])
    body = lines[3:]
    assert [line.split()[:2] for line in body] == [
        ["t::grows", "REGRESSION"],
        ["t::shrinks", "improvement"],
        ["t::fresh", "new"],
        ["t::gone", "removed"],
    ]
    assert "114.4 MiB -> 286.1 MiB (+150%)" in body[0]
    assert "9.5 MiB (=)" in body[0]
    assert "190.7 MiB -> 95.4 MiB (-50%)" in body[1]
    assert re.search(r"new\s+28.6 MiB\s+-$", body[2])
    assert "t::same" not in "\n".join(lines)
    everything = render_diff(diff_reports(*_diff_reports(), "20%"), everything=True)
    assert "t::same" in everything


def test_diff_markdown_and_json() -> None:
    diff = diff_reports(*_diff_reports(), "20%")
    lines = render_diff(diff, "markdown").splitlines()
    assert lines[0].startswith("**memguard diff**: 1 regression")
    assert lines[2:4] == ["| test | change | peak | heap |", "|---|---|---:|---:|"]
    assert lines[4].startswith(
        "| `t::grows` | :x: REGRESSION | **114.4 MiB → 286.1 MiB (+150%)** |"
    )
    data = json.loads(render_diff(diff, "json"))
    assert data["ok"] is False
    assert data["allowance"] == "+20%"
    assert data["counts"]["regression"] == 1
    grows = data["tests"][0]
    assert grows["nodeid"] == "t::grows"
    assert grows["kind"] == "regression"
    assert grows["metrics"]["peak"] == {
        "old": 120 * MB,
        "new": 300 * MB,
        "delta": 180 * MB,
        "percent": 150.0,
        "exceeded": True,
        "improved": False,
    }
    assert grows["metrics"]["leak"]["delta"] is None
