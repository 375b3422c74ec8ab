"""The history file a project commits: its bytes, the churn rule, merging, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard.reporting import historyfile
from pytest_memguard.reporting.history import MAX_FIGURE, HistoryError, Peak
from pytest_memguard.reporting.historyfile import (
    HISTORY_SCHEMA,
    HistoryFile,
    Record,
    load_histories,
    load_history_file,
    utc_stamp,
)

MB = 1024 * 1024
MONDAY, TUESDAY = "2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z"


def _entry(nodeid: str, growth: int | None, **figures: Any) -> dict[str, Any]:
    """A report's test entry."""
    return {"nodeid": nodeid, "status": "ok", "peak_delta": growth, **figures}


def test_the_file_is_one_sorted_test_a_line_and_reads_back_the_same() -> None:
    history = HistoryFile()
    history.record_run(
        [_entry("t.py::b", 5 * MB, rss_start=40 * MB, children_peak=MB), _entry("t.py::a", 0)],
        MONDAY,
    )
    text = history.encode()
    assert text == (
        '{"schema": "pytest-memguard-history/1",\n'
        '"fields": ["growth", "children", "rss_start", "measured"],\n'
        '"tests": {\n'
        '"t.py::a": [0, 0, null, "2026-11-30T09:00:00Z"],\n'
        '"t.py::b": [5242880, 1048576, 41943040, "2026-11-30T09:00:00Z"]\n'
        "}}\n"
    )
    again = HistoryFile.from_json(json.loads(text))
    assert again == history
    assert again.encode() == text
    assert again["t.py::b"] == Record(Peak(5 * MB, MB, 40 * MB), MONDAY)


def test_an_unknown_date_is_null_and_reads_back() -> None:
    history = HistoryFile({"a": Record(Peak(1), "")})
    assert '"a": [1, 0, null, null]' in history.encode()
    assert HistoryFile.from_json(json.loads(history.encode())) == history


def test_an_empty_history_is_valid_json() -> None:
    assert json.loads(HistoryFile().encode()) == {
        "schema": HISTORY_SCHEMA,
        "fields": ["growth", "children", "rss_start", "measured"],
        "tests": {},
    }


def test_the_bytes_do_not_depend_on_the_order_tests_ran() -> None:
    entries = [_entry(f"t.py::test_{n}", n * MB) for n in range(50)]
    forward, backward = HistoryFile(), HistoryFile()
    forward.record_run(entries, MONDAY)
    backward.record_run(entries[::-1], MONDAY)
    assert forward.encode() == backward.encode()


@pytest.mark.parametrize(
    ("new", "rewritten"),
    [
        (100 * MB + 9 * MB, False),  # 9%: within 10%
        (100 * MB - 9 * MB, False),
        (100 * MB + 11 * MB, True),  # past 10% and 1 MiB
        (100 * MB - 11 * MB, True),
    ],
)
def test_a_peak_is_rewritten_only_past_ten_percent(new: int, rewritten: bool) -> None:
    history = HistoryFile({"t.py::a": Record(Peak(100 * MB, 0, 40 * MB), MONDAY)})
    changed = history.record_run([_entry("t.py::a", new, rss_start=60 * MB)], TUESDAY)
    if rewritten:
        assert history["t.py::a"] == Record(Peak(new, 0, 60 * MB), TUESDAY)
    else:  # the line stays as it was, date and start included
        assert history["t.py::a"] == Record(Peak(100 * MB, 0, 40 * MB), MONDAY)
    assert changed == (["t.py::a"] if rewritten else [])


def test_a_small_peak_is_rewritten_only_past_one_mebibyte() -> None:
    history = HistoryFile({"t.py::a": Record(Peak(100_000), MONDAY)})
    assert history.record_run([_entry("t.py::a", 900_000)], TUESDAY) == []  # 9x, < 1 MiB
    assert history.record_run([_entry("t.py::a", 100_000 + MB + 1)], TUESDAY) == ["t.py::a"]
    assert history["t.py::a"].peak.growth == 100_000 + MB + 1


def test_a_run_keeps_the_tests_it_did_not_measure_and_adds_new_ones() -> None:
    history = HistoryFile({"t.py::old": Record(Peak(7 * MB), MONDAY)})
    history.record_run([_entry("t.py::new", 2 * MB), _entry("t.py::old", None)], TUESDAY)
    assert dict(history) == {
        "t.py::old": Record(Peak(7 * MB), MONDAY),
        "t.py::new": Record(Peak(2 * MB), TUESDAY),
    }


def test_a_killed_test_keeps_the_larger_peak() -> None:
    history = HistoryFile({"t.py::big": Record(Peak(300 * MB), MONDAY)})
    killed = {**_entry("t.py::big", None, rss_peak=100 * MB, rss_start=40 * MB), "status": "killed"}
    assert history.record_run([killed], TUESDAY) == []
    assert history["t.py::big"].peak.growth == 300 * MB


def test_merging_takes_the_figures_measured_last_whatever_the_order() -> None:
    older = HistoryFile({"a": Record(Peak(10 * MB), MONDAY), "b": Record(Peak(20 * MB), TUESDAY)})
    newer = HistoryFile({"a": Record(Peak(90 * MB), TUESDAY), "b": Record(Peak(70 * MB), MONDAY)})
    for first, second in ((older, newer), (newer, older)):
        merged = HistoryFile(first)
        merged.merge(second)
        assert dict(merged) == {
            "a": Record(Peak(90 * MB), TUESDAY),
            "b": Record(Peak(20 * MB), TUESDAY),
        }


def test_merging_shards_into_the_committed_file_rewrites_only_what_moved() -> None:
    committed = HistoryFile(
        {
            "same": Record(Peak(100 * MB), MONDAY),
            "grew": Record(Peak(100 * MB), MONDAY),
            "not run": Record(Peak(5 * MB), MONDAY),
        }
    )
    shard = {"same": Record(Peak(105 * MB), TUESDAY), "grew": Record(Peak(200 * MB), TUESDAY)}
    merged = HistoryFile(committed)
    merged.merge(shard)
    assert dict(merged) == {
        "same": Record(Peak(100 * MB), MONDAY),  # within 10%: its line stays
        "grew": Record(Peak(200 * MB), TUESDAY),
        "not run": Record(Peak(5 * MB), MONDAY),
    }


def test_merging_a_tie_takes_the_later_input() -> None:
    merged = HistoryFile({"a": Record(Peak(10 * MB), MONDAY)})
    merged.merge({"a": Record(Peak(20 * MB), MONDAY)})
    assert merged["a"].peak.growth == 20 * MB


def test_keep_leaves_the_tests_measured_last() -> None:
    history = HistoryFile({"old": Record(Peak(1), MONDAY), "new": Record(Peak(2), TUESDAY)})
    assert history.keep(1) == ["old"]
    assert list(history) == ["new"]


def test_past_the_most_tests_a_run_keeps_those_it_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(historyfile, "MAX_TESTS", 2)
    history = HistoryFile({"stable": Record(Peak(MB), MONDAY), "gone": Record(Peak(MB), TUESDAY)})
    history.record_run([_entry("stable", MB), _entry("new", MB)], "2026-12-02T09:00:00Z")
    assert sorted(history) == ["new", "stable"]  # stable's date is older than gone's
    assert history["stable"] == Record(Peak(MB), MONDAY)


def test_utc_stamp_is_utc_to_the_second() -> None:
    assert utc_stamp(0.9) == "1970-01-01T00:00:00Z"
    assert utc_stamp(1_764_493_200) == "2025-11-30T09:00:00Z"


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_file_or_a_report_is_told_apart_by_its_schema(tmp_path: Path) -> None:
    saved = HistoryFile({"a": Record(Peak(3 * MB, 0, 40 * MB), MONDAY)})
    history = _write(tmp_path / "h.json", saved.encode())
    report = _write(
        tmp_path / "r.json",
        {
            "schema": "pytest-memguard/1",
            "created": "2026-12-01T10:00:00+0100",
            "tests": [_entry("a", 5 * MB), _entry("b", 1 * MB, rss_start=50 * MB)],
        },
    )
    assert load_history_file(history) == saved
    from_report = load_history_file(report)
    assert dict(from_report) == {
        "a": Record(Peak(5 * MB), TUESDAY),
        "b": Record(Peak(MB, 0, 50 * MB), TUESDAY),
    }
    merged = load_histories([report, history])  # the report is newer: its "a" wins
    assert merged["a"].peak.growth == 5 * MB
    assert merged.source == f"{report}, {history}"
    with pytest.raises(HistoryError, match=f"^{re.escape(str(report))}: a memguard report "):
        load_history_file(report, reports=False)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[1, 2]", 'neither a memguard history nor a report (expected "schema": '),
        ({"tests": {}}, "neither a memguard history nor a report"),
        (
            {"schema": "pytest-memguard-history/9", "tests": {}},
            "a history of schema 'pytest-memguard-history/9', not read here",
        ),
        ({"schema": HISTORY_SCHEMA, "tests": []}, '"tests" is [], not an object of tests'),
        (
            {"schema": HISTORY_SCHEMA, "fields": ["growth"], "tests": {}},
            "\"fields\" is ['growth'], not",
        ),
        ("{oops", "not valid JSON"),
    ],
)
def test_a_file_not_understood_is_one_error_naming_it(
    tmp_path: Path, content: object, reason: str
) -> None:
    path = _write(tmp_path / "bad.json", content)
    with pytest.raises(HistoryError) as raised:
        load_history_file(path)
    assert str(raised.value).startswith(f"{path}: {reason}")


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"missing\.json: no such file"):
        load_history_file(tmp_path / "missing.json")


def test_bad_test_lines_are_left_out_and_counted(tmp_path: Path) -> None:
    good = [1, 0, None, MONDAY]
    tests = {
        "good": good,
        "negative": [-1, 0, None, MONDAY],
        "huge": [MAX_FIGURE + 1, 0, None, MONDAY],
        "text": ["1 MB", 0, None, MONDAY],
        "short": [1, 0, None],
        "date": [1, 0, None, "yesterday"],
        "bool": [True, 0, None, MONDAY],
    }
    history = load_history_file(
        _write(tmp_path / "h.json", {"schema": HISTORY_SCHEMA, "tests": tests})
    )
    assert list(history) == ["good"]
    assert history.dropped == 6
    assert history.peaks().dropped == 6
