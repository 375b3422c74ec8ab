"""Allowances, per-test changes and report diffs (pytest_memguard.reporting.compare)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from pytest_memguard.core.sites import Site
from pytest_memguard.errors import MemguardError, SizeError
from pytest_memguard.reporting import compare
from pytest_memguard.reporting.compare import (
    DEFAULT_ALLOWANCE,
    Allowance,
    AllowanceError,
    Figures,
    baseline_figures,
    checked_entries,
    compare_figures,
    diff_figures,
    diff_reports,
    entry_figures,
    parse_allowance,
    report_tests,
)
from pytest_memguard.reporting.report import ReportError
from pytest_memguard.reporting.results import TestMemory
from tests.cli.reports import MB, make_report, make_test

MiB = 2**20


@pytest.mark.parametrize(
    ("text", "percent", "size"),
    [
        ("10%", 10.0, None),
        ("50MB", None, 50 * MB),
        ("10%+8MB", 10.0, 8 * MB),
        ("8MB+10%", 10.0, 8 * MB),
        (" 12.5 % + 1 MiB ", 12.5, MiB),
        ("+20%", 20.0, None),
        ("0%", 0.0, None),
        ("150%", 150.0, None),
        ("1.5GiB", None, int(1.5 * 2**30)),
    ],
)
def test_valid_allowances(text: str, percent: float | None, size: int | None) -> None:
    allowance = parse_allowance(text)
    assert (allowance.percent, allowance.size) == (percent, size)


def test_an_int_is_bytes_and_an_allowance_passes_through() -> None:
    assert parse_allowance(1024) == Allowance(size=1024)
    allowance = Allowance(percent=5)
    assert parse_allowance(allowance) is allowance


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "expected a percentage, a size or both"),
        ("abc", "invalid size 'abc'"),
        ("10%+10%", "expected a percentage, a size or both"),
        ("8MB+9MB", "expected a percentage, a size or both"),
        ("-10%", "expected a percentage, a size or both"),
        ("10", "a size needs a unit"),
        ("10%+8M", "'M' is ambiguous, MB or MiB?"),
        ("12 apples", "unknown unit 'apples'"),
        ("-5MB", "a size cannot be negative"),
    ],
)
def test_invalid_allowances_quote_the_input_and_show_the_forms(text: str, detail: str) -> None:
    with pytest.raises(AllowanceError) as info:
        parse_allowance(text)
    message = str(info.value)
    assert message.startswith(f"invalid increase {text!r}")
    assert detail in message
    assert "10%, 50MB or 10%+8MB" in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, SizeError)
    assert isinstance(info.value, MemguardError)


def test_an_allowance_needs_a_part_and_is_frozen() -> None:
    with pytest.raises(AllowanceError, match="needs a percentage or a size"):
        Allowance()
    with pytest.raises(AllowanceError, match="cannot be negative"):
        Allowance(size=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Allowance(percent=1).percent = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("allowance", "old", "new", "exceeded"),
    [
        ("20%", 120 * MB, 300 * MB, True),
        ("20%", 120 * MB, 144 * MB, False),  # exactly the allowance is allowed
        ("20%", 120 * MB, 144 * MB + 1, True),
        ("20%", 120 * MB, 100 * MB, False),
        ("20%", 0, 4096, True),  # any growth from nothing passes a percentage
        ("50MB", 10 * MB, 60 * MB, False),
        ("50MB", 10 * MB, 61 * MB, True),
        ("10%+8MB", MB, 5 * MB, False),  # +400% but only 4 MB: a tiny test does not flap
        ("10%+8MB", 200 * MB, 215 * MB, False),  # +15 MB but only 7.5%
        ("10%+8MB", 100 * MB, 120 * MB, True),
        ("10%", None, 300 * MB, False),  # not measured: never a regression
        ("10%", 300 * MB, None, False),
    ],
)
def test_exceeded(allowance: str, old: int | None, new: int | None, exceeded: bool) -> None:
    assert parse_allowance(allowance).exceeded(old, new) is exceeded


def test_improved_is_the_same_allowance_downwards() -> None:
    allowance = parse_allowance("10%+8MB")
    assert allowance.improved(100 * MB, 80 * MB)
    assert not allowance.improved(100 * MB, 95 * MB)
    assert not allowance.improved(100 * MB, 120 * MB)
    assert not allowance.improved(None, 1)


def test_describe() -> None:
    assert parse_allowance("20%").describe() == "+20%"
    assert parse_allowance("50MB").describe() == "+50MB"
    assert parse_allowance("10% + 8MB").describe() == "+10% and +8MB"
    assert str(parse_allowance("8MB+10%")) == "+10% and +8MB"
    assert Allowance(size=MiB).describe() == "+1.0 MiB"
    assert parse_allowance(DEFAULT_ALLOWANCE).describe() == "+10% and +1MB"


def _reports() -> tuple[dict[str, Any], dict[str, Any]]:
    base = make_report(
        make_test("t.py::grows", 120 * MB),
        make_test("t.py::shrinks", 200 * MB),
        make_test("t.py::same", 50 * MB, heap=10 * MB, leak=0),
        make_test("t.py::heap_now_measured", 50 * MB, heap=None),
        make_test("t.py::gone", 10 * MB),
        make_test("t.py::not_run", None, status="not_run"),
    )
    new = make_report(
        make_test("t.py::fresh", 30 * MB),
        make_test("t.py::same", 51 * MB, heap=10 * MB, leak=0),
        make_test("t.py::grows", 300 * MB),
        make_test("t.py::shrinks", 100 * MB),
        make_test("t.py::heap_now_measured", 50 * MB, heap=500 * MB),
        make_test("t.py::not_run", 900 * MB),
    )
    return base, new


def test_diff_reports_sorts_tests_into_kinds() -> None:
    base, new = _reports()
    diff = diff_reports(base, new, "20%")
    assert [c.nodeid for c in diff.regressions] == ["t.py::grows"]
    assert [c.nodeid for c in diff.improvements] == ["t.py::shrinks"]
    assert [c.nodeid for c in diff.new] == ["t.py::fresh"]
    assert [c.nodeid for c in diff.removed] == ["t.py::gone"]
    # unmeasured on one side: never a regression, whatever the other side says
    assert {c.nodeid for c in diff.unchanged} == {
        "t.py::same",
        "t.py::heap_now_measured",
        "t.py::not_run",
    }
    assert not diff.ok
    assert diff.counts() == {
        "regression": 1,
        "improvement": 1,
        "unchanged": 3,
        "new": 1,
        "removed": 1,
    }
    # the new report's order, then the removed tests
    assert [c.nodeid for c in diff.changes][-1] == "t.py::gone"
    assert diff.changes[0].nodeid == "t.py::fresh"


def test_growth_from_zero_passes_a_percentage_but_not_a_combined_allowance() -> None:
    base = make_report(make_test("t::a", 0, leak=0))
    new = make_report(make_test("t::a", 0, leak=1000))
    assert not diff_reports(base, new, "20%").ok
    assert diff_reports(base, new, "20%+1MB").ok


def test_identical_reports_are_ok() -> None:
    base, _ = _reports()
    diff = diff_reports(base, base, "0%")
    assert diff.ok
    assert {c.kind for c in diff.changes} == {"unchanged"}


def test_each_figure_is_compared() -> None:
    base = make_report(make_test("t::a", 10 * MB, heap=10 * MB, leak=MB))
    new = make_report(make_test("t::a", 10 * MB, heap=10 * MB, leak=30 * MB))
    (change,) = diff_reports(base, new, "10%+1MB").changes
    assert change.kind == "regression"
    assert [m.metric for m in change.metrics if m.exceeded] == ["leak"]
    leak = change.metric("leak")
    assert (leak.old, leak.new, leak.delta, leak.percent) == (MB, 30 * MB, 29 * MB, 2900.0)
    assert change.metric("heap").delta == 0
    with pytest.raises(KeyError):
        change.metric("rss")


def test_baseline_lookup_and_one_test_compared_for_the_plugin() -> None:
    base, _ = _reports()
    figures = baseline_figures(base)
    assert figures["t.py::same"] == Figures(peak=50 * MB, heap=10 * MB, leak=0)
    assert figures["t.py::not_run"] == Figures(None, None, None)
    assert "t.py::fresh" not in figures
    measured = TestMemory("t.py::grows", "passed", "ok", "main", 0.1, peak_delta=300 * MB)
    change = compare_figures("t.py::grows", figures.get("t.py::grows"), Figures.of(measured), "20%")
    assert change.regressed
    assert change.describe() == (
        "t.py::grows: peak 114.4 MiB -> 286.1 MiB (+171.7 MiB, +150%) "
        "grew past the allowed increase +20%"
    )
    assert compare_figures("t::x", None, Figures.of(measured)).kind == "new"
    assert compare_figures("t::x", Figures.of(measured), None).kind == "removed"


def test_figures_of_an_entry_and_of_a_result_agree() -> None:
    entry = make_test("t::a", 5 * MB, heap=2 * MB, leak=-100)
    assert Figures.of(entry) == Figures.of(TestMemory.from_json(entry)) == (5 * MB, 2 * MB, -100)


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ("nope", 'the report has no "tests" list'),
        (["x"], 'tests[0] is not a test entry with a "nodeid"'),
        ([{"status": "ok"}], 'tests[0] is not a test entry with a "nodeid"'),
        ([{**make_test("t::a"), "status": "fine"}], "tests[0] (t::a): unknown status 'fine'"),
        (
            [make_test("t::a"), {**make_test("t::b"), "peak_delta": "12MB"}],
            "tests[1] (t::b): peak_delta is '12MB', expected bytes or null",
        ),
        ([{**make_test("t::a"), "budget": 5}], "tests[0] (t::a): malformed entry"),
    ],
)
def test_malformed_reports_say_what_is_wrong(tests: object, message: str) -> None:
    with pytest.raises(ReportError) as info:
        report_tests({"schema": "pytest-memguard/1", "tests": tests})
    assert str(info.value).startswith(message)


def _outcome(check: Any, tests: list[Any]) -> str:
    """``"ok"``, or the error ``check`` raises for a report of ``tests``."""
    try:
        check({"schema": "pytest-memguard/1", "tests": tests})
    except ReportError as error:
        return str(error)
    return "ok"


_ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 12, 10**12, 10**13, 10**400, 0.5, -0.5, 1e13, 1e300,
    math.inf, -math.inf, math.nan, "", "12MB", "ok", [], ["t::b"], [1], {}, {"peak": 5},
    {"file": "f.py", "line": 1, "size": 2, "count": 3},
]  # fmt: skip
_SITE = {"file": "f.py", "line": 1, "size": 2, "count": 3}
_FIELDS = [
    *make_test("t::a"),
    "reruns",
    "started",
    "leak_check",
    "beside",
    "prediction",
    "children_peak",
]


@pytest.mark.parametrize("field", _FIELDS)
def test_the_commands_check_each_field_as_the_full_check_does(field: str) -> None:
    """``checked_entries`` (show, diff) accepts and refuses what ``report_tests`` does,
    with the same message: for every field, an odd value, a missing one, in a site."""
    variants: list[dict[str, Any]] = []
    for value in _ODD_VALUES:
        variants.append({**make_test("t::a"), field: value})
        variants.append({**make_test("t::a"), "sites": [_SITE, {**_SITE, field: value}]})
        variants.append(
            {**make_test("t::a"), "sites": [{k: v for k, v in _SITE.items() if k != field}]}
        )
    variants.append({k: v for k, v in make_test("t::a").items() if k != field})
    for entry in variants:
        tests = [make_test("t::first"), entry]
        assert _outcome(checked_entries, tests) == _outcome(report_tests, tests), entry


@pytest.mark.parametrize("entry", [["x"], "t::a", 3, None, {"status": "ok"}])
def test_an_entry_that_is_no_test_entry_is_named_by_both_checks(entry: Any) -> None:
    tests = [make_test("t::a"), entry]
    assert _outcome(checked_entries, tests) == 'tests[1] is not a test entry with a "nodeid"'
    assert _outcome(report_tests, tests) == 'tests[1] is not a test entry with a "nodeid"'


def test_entries_as_this_version_writes_them_take_the_fast_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exact check runs only for entries the fast one does not accept."""
    written = TestMemory(
        "t::a", "failed", "leak", "gw0", 0.25, 1, 2, 3, 2, 4, 5, children_peak=6, prediction=7,
        beside=("t::b",), message="x", reruns=1, leak_check={"rerun": True}, started=1.5,
        sites=(Site("f.py", 1, 2, 3),),
    ).to_json()  # fmt: skip
    tests = [written] * 1200 + [make_test("t::c"), {**make_test("t::d"), "reruns": 2.5}]
    checked: list[int] = []
    exact = compare._checked

    def counted(index: int, entry: object) -> TestMemory:
        checked.append(index)
        return exact(index, entry)

    monkeypatch.setattr(compare, "_checked", counted)
    with pytest.raises(ReportError, match=r"tests\[1201\] \(t::d\): reruns is 2.5"):
        checked_entries({"tests": tests})
    assert checked == list(range(1000, 1202))  # the chunk of the odd entry only


def test_diff_figures_of_checked_entries_is_the_diff_of_the_reports() -> None:
    base, new = _reports()
    result = diff_figures(
        entry_figures(checked_entries(base)), entry_figures(checked_entries(new)), "20%"
    )
    assert result == diff_reports(base, new, "20%")
    assert result.counts() == {
        "regression": 1, "improvement": 1, "unchanged": 3, "new": 1, "removed": 1
    }  # fmt: skip
