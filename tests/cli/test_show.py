"""``memguard show``: the heaviest tests of a report."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard.cli import main
from tests.cli.reports import MB, make_report, make_test, write_report


@pytest.fixture(autouse=True)
def no_colour_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' output is not a terminal; a CI's FORCE_COLOR must not colour it."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def report(tmp_path: Path) -> str:
    return write_report(
        tmp_path / "memguard.json",
        make_test("t.py::light", 5 * MB, duration=2.0, leak=3 * MB),
        make_test(
            "t.py::heavy", 300 * MB, status="over_budget", budget=100 * MB, message="too big"
        ),
        make_test("t.py::middle", 120 * MB, leak=0),
    )


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_the_heavier_test_is_listed_above_the_lighter(
    report: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", report]) == 0
    lines = _lines(capsys)
    assert lines[0].startswith("memguard: 3 tests, 1 memory failure (1 over budget)")
    names = [line.split()[1] if line.startswith("M ") else line.split()[0] for line in lines[4:7]]
    assert names == ["t.py::heavy", "t.py::middle", "t.py::light"]
    assert lines[4].startswith("M ")  # the violation is marked
    assert "OVER BUDGET" in lines[4]
    assert "286.1 MiB" in lines[4]
    assert lines[-1] == "  OVER BUDGET t.py::heavy: too big"


def test_top_and_sort(report: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", report, "--top", "1", "--sort", "leak"]) == 0
    lines = _lines(capsys)
    assert lines[1] == "heaviest tests by leaked memory (top 1 of 3):"
    assert lines[4].split()[0] == "t.py::light"
    assert main(["show", report, "--sort", "duration", "--top", "0"]) == 0
    assert _lines(capsys)[4].split()[0] == "t.py::light"


def test_markdown_and_json(report: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", report, "--format", "markdown"]) == 0
    lines = _lines(capsys)
    assert lines[0].startswith("**memguard**: 3 tests, :x: 1 memory failure")
    assert "| `t.py::heavy` | :x: **OVER BUDGET** | 286.1 MiB |" in "\n".join(lines)
    assert main(["show", report, "--format", "json", "--top", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["nodeid"] for row in data["rows"]] == ["t.py::heavy", "t.py::middle"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        (
            '{"schema": "other/1"}',
            'not a pytest-memguard report (expected "schema": "pytest-memguard/1")',
        ),
        (
            '{"schema": "pytest-memguard/1", "tests": [{"nodeid": 3}]}',
            "tests[0] is not a test entry",
        ),
    ],
)
def test_a_missing_or_corrupt_report_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["show", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"memguard show: error: {path}: {problem}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "many"], "argument --top: invalid count 'many' (expected a whole number >= 0"),
        (["--top", "-1"], "argument --top: invalid count '-1'"),
        (["--sort", "size"], "argument --sort: invalid choice: 'size'"),
        (["--format", "pdf"], "argument --format: invalid choice: 'pdf'"),
    ],
)
def test_bad_arguments_are_usage_errors(
    report: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["show", report, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: memguard show")
    assert f"memguard show: error: {message}" in err


def test_html_is_the_page_of_every_test(
    report: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", report, "--format", "html", "--top", "1"]) == 0
    page, err = capsys.readouterr()
    assert err == ""
    assert page.startswith("<!DOCTYPE html>")
    for name in ("t.py::light", "t.py::heavy", "t.py::middle"):
        assert name in page, "--top cuts the table, not the page"
    assert "vs baseline" not in page
    assert main(["show", report, "--format", "html", "--baseline", report]) == 0
    assert "vs baseline" in capsys.readouterr().out


def test_html_with_a_missing_baseline_is_one_line_and_exit_2(
    report: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert main(["show", report, "--format", "html", "--baseline", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == f"memguard show: error: {missing}: no such file"


def _timeline_report(path: Path) -> dict[str, Any]:
    """A report with a timeline, a worker, an alert and a leak's sites, to be broken."""
    test = make_test("t.py::leaky", 30 * MB, status="leak", leak=5 * MB, message="kept 5 MB")
    test["started"] = 1000.5
    test["sites"] = [{"file": "t.py", "line": 3, "size": 5 * MB, "count": 2}]
    report = make_report(make_test("t.py::light", 5 * MB), test)
    report["timeline"] = {
        "processes": [{"process": "main", "pid": 1, "samples": [[1000.0, 50 * MB]]}],
        "events": [{"time": 1000.6, "kind": "stop", "process": "main", "nodeid": "t.py::leaky"}],
    }
    report["alerts"] = [{"level": "warning", "process": "main", "rss": 60 * MB, "message": "m"}]
    report["workers"] = [{"id": "gw0", "pid": 2}]
    return report


HUGE = 10**400
#: Edits another version or a hand could make: (where, value); None as the value deletes.
BROKEN: list[tuple[tuple[str | int, ...], Any]] = [
    (("config",), "enforce"),
    (("config",), [1, 2]),
    (("config",), None),
    (("config", "max"), "4GB"),
    (("config", "warning"), HUGE),
    (("config", "sources"), ["--memguard-max"]),
    (("config", "mode"), 3),
    (("summary",), "3 tests"),
    (("summary", "statuses"), {"ok": "two"}),
    (("summary", "worst"), {"peak_delta": 1}),
    (("summary", "peak_rss"), HUGE),
    (("environment",), 7),
    (("environment", "memory_total"), "8GB"),
    (("timeline",), []),
    (("timeline", "processes"), "main"),
    (("timeline", "processes", 0, "samples"), [[None, None]]),
    (("timeline", "processes", 0, "samples"), [[1000.1], ["x", 1], [1000.2, HUGE], 5]),
    (("timeline", "processes", 0), {"samples": [[1, 2]]}),
    (("timeline", "events", 0, "time"), None),
    (("timeline", "events", 0, "time"), HUGE),
    (("timeline", "events"), [None, "stop"]),
    (("alerts",), [None, {"rss": "big", "level": 3}]),
    (("workers",), [None, 3, {"id": 4}]),
    (("created",), 20260102),
    (("duration_s",), "long"),
    (("duration_s",), None),
    (("tests", 1, "duration_s"), None),
    (("tests", 1, "started"), HUGE),
    (("tests", 1, "started"), "noon"),
    (("tests", 1, "duration_s"), HUGE),
    (("tests", 1, "leak_check"), [1]),
    (("tests", 1, "budget"), {"rss": "1GB", "peak": HUGE}),
    (("tests", 1, "sites"), [None, {"file": None, "line": "x", "size": "y", "count": None}]),
    (("tests", 1, "message"), 42),
    (("tests", 1, "worker"), None),
    (("tests", 1, "status"), "exploded"),  # the table refuses it: the page says the same
    (("tests", 1, "outcome"), None),
    (("tests", 0), "t.py::light"),
    (("tests",), "all of them"),
]


def _edit(report: dict[str, Any], where: tuple[str | int, ...], value: Any) -> None:
    *path, last = where
    target: Any = report
    for key in path:
        target = target[key]
    if value is None and isinstance(target, dict):
        target.pop(last, None)
    else:
        target[last] = value


@pytest.mark.parametrize(
    ("where", "value"), BROKEN, ids=[".".join(map(str, where)) for where, _ in BROKEN]
)
@pytest.mark.parametrize("fmt", ["html", "json"])
def test_other_formats_accept_every_report_the_table_accepts(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: tuple[str | int, ...],
    value: Any,
    fmt: str,
) -> None:
    report = _timeline_report(tmp_path)
    _edit(report, where, value)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(report))
    table = main(["show", str(path)])
    table_out, table_err = capsys.readouterr()
    assert main(["show", str(path), "--format", fmt]) == table
    page, err = capsys.readouterr()
    assert err == table_err
    if table == 0 and fmt == "json":
        json.loads(page)
    elif table == 0:
        assert page.startswith("<!DOCTYPE html>")
        assert page.endswith("</html>\n")
        assert 'data-key="peak"' in page, "the table of every test"
    else:
        assert page == table_out == ""
        assert err.count("\n") == 1


RED, YELLOW, RESET = "\x1b[1;31m", "\x1b[33m", "\x1b[0m"


@pytest.fixture
def escapes(tmp_path: Path) -> str:
    """A report whose texts carry terminal escapes (a coloured message, a title sequence)."""
    return write_report(
        tmp_path / "escapes.json",
        make_test(
            "t.py::heavy\x1b]0;owned\x07",
            300 * MB,
            status="over_budget",
            budget=100 * MB,
            message="\x1b[31mtoo big\x1b[0m",
        ),
        make_test("t.py::warm", 20 * MB, status="warning"),
    )


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_a_reports_escapes_are_shown_escaped_never_sent_raw(
    escapes: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # even when colour is on
    assert main(["show", escapes, "--format", fmt]) == 0
    out = capsys.readouterr().out
    text = out.replace(RED, "").replace(YELLOW, "").replace(RESET, "")
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "t.py::heavy\\x1b]0;owned\\x07" in text
    assert "\\x1b[31mtoo big\\x1b[0m" in text


@pytest.mark.parametrize(
    ("tty", "environment", "coloured"),
    [
        (False, {}, False),
        (True, {}, True),
        (True, {"TERM": "dumb"}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # set but empty: not a request (no-color.org)
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    ],
)
def test_the_table_is_coloured_only_on_a_terminal_or_when_forced(
    escapes: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
    environment: dict[str, str],
    coloured: bool,
) -> None:
    assert main(["show", escapes]) == 0
    plain = capsys.readouterr().out
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert main(["show", escapes]) == 0
    out = capsys.readouterr().out
    assert (f"{RED}OVER BUDGET{RESET}" in out) is coloured
    assert (f"{YELLOW}warning{RESET}" in out) is coloured
    assert f"  {RED if coloured else ''}OVER BUDGET{RESET if coloured else ''} t.py::heavy" in out
    assert out.replace(RED, "").replace(YELLOW, "").replace(RESET, "") == plain, "same columns"
    assert main(["show", escapes, "--format", "markdown"]) == 0
    assert "\x1b" not in capsys.readouterr().out, "colour is the table's only"


@pytest.mark.parametrize("enabled", [True, False])
def test_show_and_diff_leave_the_garbage_collector_as_they_found_it(
    report: str, capsys: pytest.CaptureFixture[str], enabled: bool
) -> None:
    """They pause it while they read reports (main() runs inside other programs too)."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert main(["show", report]) == 0
        assert gc.isenabled() is enabled
        assert main(["diff", report, "missing.json"]) == 2
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert "memguard diff: error: missing.json" in capsys.readouterr().err
