"""``memguard diff``: per-test changes, exit 1 on a regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from tests.cli.reports import MB, make_test, write_report


def _pair(tmp_path: Path, old_peak: int, new_peak: int) -> tuple[str, str]:
    base = write_report(
        tmp_path / "base.json", make_test("t.py::big", old_peak), make_test("t.py::gone", MB)
    )
    new = write_report(
        tmp_path / "new.json", make_test("t.py::big", new_peak), make_test("t.py::fresh", 2 * MB)
    )
    return base, new


def test_a_test_past_the_allowed_increase_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _pair(tmp_path, 120 * MB, 300 * MB)
    assert main(["diff", base, new, "--max-increase", "20%"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "memguard diff: 1 regression, 0 improvements, 0 within the allowance, 1 new, 1 removed "
        "(allowed increase +20%)"
    )
    assert lines[3].split()[:2] == ["t.py::big", "REGRESSION"]
    assert "114.4 MiB -> 286.1 MiB (+150%)" in lines[3]
    assert lines[4].split()[:2] == ["t.py::fresh", "new"]
    assert lines[5].split()[:2] == ["t.py::gone", "removed"]


def test_identical_reports_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = _pair(tmp_path, 120 * MB, 300 * MB)
    assert main(["diff", base, base, "--max-increase", "20%"]) == 0
    assert capsys.readouterr().out.startswith(
        "memguard diff: 0 regressions, 0 improvements, 2 within"
    )


def test_growth_within_the_allowance_exits_0(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, 120 * MB, 140 * MB)
    assert main(["diff", base, new, "--max-increase", "20%"]) == 0
    assert main(["diff", base, new, "--max-increase", "10%"]) == 1
    assert main(["diff", base, new, "--max-increase", "25MB"]) == 0
    assert main(["diff", base, new, "--max-increase", "10%+25MB"]) == 0  # both must be passed
    assert main(["diff", base, new]) == 1  # default: 10% and 1 MB


def test_tiny_tests_do_not_flap_under_the_combined_form(tmp_path: Path) -> None:
    base, new = _pair(tmp_path, 1 * MB, 3 * MB)  # +200%, but only 2 MB
    assert main(["diff", base, new, "--max-increase", "10%"]) == 1
    assert main(["diff", base, new, "--max-increase", "10%+8MB"]) == 0


def test_unmeasured_figures_are_never_regressions(tmp_path: Path) -> None:
    base = write_report(tmp_path / "b.json", make_test("t::a", MB, heap=None, leak=None))
    new = write_report(tmp_path / "n.json", make_test("t::a", MB, heap=900 * MB, leak=900 * MB))
    assert main(["diff", base, new, "--max-increase", "1%"]) == 0


def test_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = _pair(tmp_path, 120 * MB, 300 * MB)
    assert main(["diff", base, new, "--max-increase", "20%", "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("**memguard diff**: 1 regression")
    assert "| `t.py::big` | :x: REGRESSION | **114.4 MiB → 286.1 MiB (+150%)** |" in out
    assert main(["diff", base, new, "--max-increase", "20%", "--format", "json", "--all"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert {t["nodeid"]: t["kind"] for t in data["tests"]} == {
        "t.py::big": "regression",
        "t.py::fresh": "new",
        "t.py::gone": "removed",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20", "invalid increase '20': invalid size '20': a size needs a unit"),
        ("lots", "invalid increase 'lots'"),
        ("10%+8M", "'M' is ambiguous, MB or MiB?"),
        ("5%+6%", "invalid increase '5%+6%' (expected a percentage, a size or both"),
    ],
)
def test_a_bad_allowance_is_a_usage_error_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    base, new = _pair(tmp_path, MB, MB)
    assert main(["diff", base, new, "--max-increase", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: memguard diff")
    assert "memguard diff: error: argument --max-increase: " in err
    assert message in err
    assert "10%, 50MB or 10%+8MB" in err


def test_a_missing_report_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = _pair(tmp_path, MB, MB)
    missing = str(tmp_path / "nope.json")
    assert main(["diff", base, missing]) == 2
    assert capsys.readouterr().err == f"memguard diff: error: {missing}: no such file\n"
