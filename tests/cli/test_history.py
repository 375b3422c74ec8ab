"""``memguard history show|prune|merge``: the history file of --memguard-history-save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from pytest_memguard.core.files import locked
from pytest_memguard.reporting import historyfile
from pytest_memguard.reporting.history import Peak
from pytest_memguard.reporting.historyfile import HistoryFile, Record, load_history_file
from tests.cli.reports import make_test, write_report

MiB = 1024 * 1024
MONDAY, TUESDAY = "2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z"


def _save(path: Path, **peaks: tuple[int, str]) -> Path:
    """A history file of ``nodeid=(growth, measured)``."""
    records = {
        f"t.py::{name}": Record(Peak(growth), when) for name, (growth, when) in peaks.items()
    }
    path.write_text(HistoryFile(records).encode())
    return path


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return _save(
        tmp_path / "history.json",
        light=(1 * MiB, MONDAY),
        heavy=(300 * MiB, TUESDAY),
        middle=(20 * MiB, MONDAY),
        old_one=(5 * MiB, MONDAY),
    )


def _out(capsys: pytest.CaptureFixture[str]) -> list[str]:
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_show_lists_the_heaviest_and_the_median(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "show", str(history), "--top", "2"]) == 0
    lines = _out(capsys)
    size = history.stat().st_size
    assert lines[0].startswith(f"{history}: 4 test(s), {size} B, written ")
    assert lines[1:] == [
        f"measured: {MONDAY} to {TUESDAY}",
        "median peak: 12.5 MiB",
        "heaviest 2 (peak = growth + children):",
        "  300.0 MiB  t.py::heavy",
        "   20.0 MiB  t.py::middle",
    ]
    assert main(["history", "show", str(history), "--top", "0"]) == 0  # 0: all
    assert _out(capsys)[3:] == [
        "heaviest 4 (peak = growth + children):",
        "  300.0 MiB  t.py::heavy",
        "   20.0 MiB  t.py::middle",
        "    5.0 MiB  t.py::old_one",
        "    1.0 MiB  t.py::light",
    ]


def test_show_json_has_the_figures_in_bytes(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "show", str(history), "--json", "--top", "1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tests"] == 4
    assert shown["bytes"] == history.stat().st_size
    assert shown["median_peak"] == int(12.5 * MiB)
    assert shown["measured"] == [MONDAY, TUESDAY]
    assert shown["heaviest"] == [
        {
            "nodeid": "t.py::heavy",
            "peak": 300 * MiB,
            "growth": 300 * MiB,
            "children": 0,
            "rss_start": None,
            "measured": TUESDAY,
        }
    ]


def test_show_reads_a_report_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write_report(tmp_path / "memguard.json", make_test("t.py::a", 7 * MiB))
    assert main(["history", "show", str(report)]) == 0
    lines = _out(capsys)
    assert lines[0].startswith(f"{report}: 1 test(s), ")
    assert "  7.0 MiB  t.py::a" in lines


def test_prune_drops_tests_not_in_a_collection_and_says_which(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collected = tmp_path / "collected.txt"  # as `pytest --collect-only -q` prints it
    collected.write_text("t.py::light\nt.py::heavy\nt.py::middle\n\n3 tests collected in 0.01s\n")
    assert main(["history", "prune", str(history), "--keep-tests", str(collected)]) == 0
    assert _out(capsys) == [
        f"{history}: dropped 1 of 4 test(s), 3 kept",
        "  t.py::old_one  (not in --keep-tests)",
    ]
    assert sorted(load_history_file(history)) == ["t.py::heavy", "t.py::light", "t.py::middle"]


def test_prune_keeps_the_tests_of_several_reports(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = write_report(tmp_path / "one.json", make_test("t.py::light", None))  # not run
    two = write_report(tmp_path / "two.json", make_test("t.py::heavy"))
    args = ["history", "prune", str(history), "--keep-tests", str(one), "--keep-tests", str(two)]
    assert main(args) == 0
    assert _out(capsys)[0] == f"{history}: dropped 2 of 4 test(s), 2 kept"
    assert sorted(load_history_file(history)) == ["t.py::heavy", "t.py::light"]


def test_prune_by_pattern_and_count_with_a_dry_run(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = history.read_bytes()
    args = ["history", "prune", str(history), "--drop", "*old*", "--max", "2", "--dry-run"]
    assert main(args) == 0
    assert _out(capsys) == [
        f"{history}: would drop 2 of 4 test(s), 2 kept",
        "  t.py::old_one  (matches '*old*')",
        "  t.py::light  (beyond --max 2)",  # measured Monday, as middle: by node id
    ]
    assert history.read_bytes() == before
    assert main(args[:-1]) == 0
    assert sorted(load_history_file(history)) == ["t.py::heavy", "t.py::middle"]


@pytest.mark.parametrize("command", ["prune", "merge"])
def test_prune_and_merge_take_the_lock_a_saving_run_takes(
    history: Path,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a run saves the file (it holds the file's lock), prune and merge wait their
    turn; here the turn never comes, and the file is left as it was."""
    monkeypatch.setattr(historyfile, "LOCK_TIMEOUT", 0.05)
    before = history.read_bytes()
    args = {
        "prune": ["history", "prune", str(history), "--max", "1"],
        "merge": ["history", "merge", str(history), str(history)],
    }[command]
    with locked(historyfile.lock_path(history), 1.0):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{history}: cannot take its lock (another process held" in err
    assert history.read_bytes() == before
    assert main(args) == 0  # its turn, once the lock is let go


def test_merge_takes_the_figures_measured_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard1 = _save(tmp_path / "shard1.json", a=(1 * MiB, TUESDAY), b=(2 * MiB, MONDAY))
    shard2 = _save(tmp_path / "shard2.json", b=(9 * MiB, TUESDAY), c=(3 * MiB, MONDAY))
    out = tmp_path / "merged.json"
    assert main(["history", "merge", str(out), str(shard2), str(shard1)]) == 0
    assert _out(capsys) == [f"{out}: 3 test(s) from 2 file(s)"]
    merged = load_history_file(out)
    assert {nodeid: record.peak.growth for nodeid, record in merged.items()} == {
        "t.py::a": 1 * MiB,
        "t.py::b": 9 * MiB,  # shard2's, measured Tuesday, though named first
        "t.py::c": 3 * MiB,
    }


def test_merging_shards_into_the_committed_file_keeps_its_unchanged_lines(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = history.read_text().splitlines()
    shard = _save(
        tmp_path / "shard.json",
        light=(1 * MiB + 1000, "2026-12-02T09:00:00Z"),
        middle=(40 * MiB, "2026-12-02T09:00:00Z"),
    )
    assert main(["history", "merge", str(history), str(history), str(shard)]) == 0
    assert _out(capsys) == [f"{history}: 4 test(s) from 2 file(s)"]
    after = history.read_text().splitlines()
    changed = [line for line in after if line not in before]
    assert changed == ['"t.py::middle": [41943040, 0, null, "2026-12-02T09:00:00Z"],']
    assert len(after) == len(before)


def test_merge_reads_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write_report(tmp_path / "memguard.json", make_test("t.py::a", 7 * MiB))
    out = tmp_path / "merged.json"
    assert main(["history", "merge", str(out), str(report)]) == 0
    assert load_history_file(out)["t.py::a"].peak.growth == 7 * MiB


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "{missing}"], "{missing}: no such file"),
        (["show", "{report_like}"], "{report_like}: neither a memguard history nor a report"),
        (["prune", "{history}"], "nothing to prune by (give --keep-tests, --drop or --max)"),
        (["prune", "{report}", "--max", "1"], "{report}: a memguard report (expected"),
        (["prune", "{history}", "--keep-tests", "{missing}"], "--keep-tests: {missing}: no such"),
        (
            ["prune", "{history}", "--keep-tests", "{report_like}"],
            "--keep-tests: {report_like}: no node ids in it (expected a JSON report, a history",
        ),
        (["merge", "{out}", "{missing}"], "{missing}: no such file"),
        (["merge", "{report}", "{history}"], "{report}: a memguard report (expected"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    history: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    report = Path(write_report(tmp_path / "memguard.json", make_test("t.py::a")))
    report_like = tmp_path / "other.json"
    report_like.write_text(json.dumps({"tests": []}))
    names = {
        "missing": tmp_path / "missing.json",
        "report_like": report_like,
        "history": history,
        "report": report,
        "out": tmp_path / "out.json",
    }
    before = report.read_bytes()
    assert main(["history", *(arg.format(**names) for arg in args)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"memguard history: error: {message.format(**names)}")
    assert err.count("\n") == 1
    assert report.read_bytes() == before  # a report is never overwritten
    assert not (tmp_path / "out.json").exists()


def test_history_without_an_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history"]) == 2
    assert "ACTION" in capsys.readouterr().err
