"""``memguard recover``: the report of a killed run from the records it left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from pytest_memguard.probe.system import read_system_memory
from pytest_memguard.reporting.crashlog import RecordWriter
from pytest_memguard.reporting.report import environment as report_environment

from ..sessions import validate

MiB = 1024 * 1024


def _killed_run(folder: Path, json_path: Path | None) -> None:
    """The records of a run killed during its second test (its writer never closed)."""
    folder.mkdir()
    writer = RecordWriter(folder / "main-7.jsonl", "main")
    config = {"json": str(json_path) if json_path else None, "html": None, "mode": "enforce"}
    memory = read_system_memory()
    environment = report_environment(memory, peak_method="exact", interrupt="signal")
    writer.write("run", started=1_700_000_000.0, config=config, environment=environment)
    writer.write("collected", nodeids=["t.py::a", "t.py::b", "t.py::c"])
    writer.start("t.py::a", 40 * MiB)
    writer.end(
        "over_budget",
        41 * MiB,
        outcome="failed",
        start=40 * MiB,
        peak=90 * MiB,
        delta=50 * MiB,
        duration=0.5,
        message="memguard: peak growth 50.0 MiB is over the budget of 10.0 MiB",
    )
    writer.start("t.py::b", 41 * MiB)
    writer.grew("t.py::b", 300 * MiB)


def test_recover_writes_the_report_where_the_run_would_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "memguard.json"
    _killed_run(tmp_path / "memguard.records", report_path)
    assert main(["recover", str(tmp_path / "memguard.records")]) == 0
    err = capsys.readouterr().err
    assert "recovered 3 test(s)" in err
    assert "(1 not run); killed while running: t.py::b" in err
    report = json.loads(report_path.read_text())
    validate(report)
    assert report["interrupted"] is True
    a, b, c = report["tests"]
    assert (a["status"], a["outcome"], a["peak_delta"], a["rss_peak"]) == (
        "over_budget",
        "failed",
        50 * MiB,
        90 * MiB,
    )
    assert a["message"].startswith("memguard: peak growth 50.0 MiB")
    assert (b["status"], b["rss_peak"]) == ("killed", 300 * MiB)
    assert "killed before it wrote its report" in b["message"]
    assert c["status"] == "not_run"
    assert report["summary"]["statuses"]["killed"] == 1


def test_recover_to_a_path_given(tmp_path: Path) -> None:
    _killed_run(tmp_path / "records", None)
    out = tmp_path / "out" / "r.json"
    assert main(["recover", str(tmp_path / "records"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["tests"] == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no memguard records here"),
        ("empty", "no memguard records here"),
        ("no-path", "the run wrote no report to a file: say where with --json PATH"),
    ],
)
def test_recover_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    folder = tmp_path / "records"
    if setup == "empty":
        folder.mkdir()
    elif setup == "no-path":
        _killed_run(folder, None)
    assert main(["recover", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
    assert err.startswith("memguard recover: error: ")
