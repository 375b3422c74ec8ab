"""The history of measured peaks that packing predicts from."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_memguard.reporting import history as history_module
from pytest_memguard.reporting.history import (
    KEEP_RUNS,
    MAX_FIGURE,
    HistoryError,
    Peak,
    PeakHistory,
)

MB = 1024 * 1024


def _entry(nodeid: str, status: str = "ok", **figures: Any) -> dict[str, Any]:
    """A report's test entry (``peak_delta`` null unless given, as when not measured)."""
    return {"nodeid": nodeid, "status": status, "peak_delta": None, **figures}


def test_a_run_replaces_what_it_measured_and_keeps_the_rest() -> None:
    history = PeakHistory({"a": Peak(5 * MB), "b": Peak(7 * MB)})
    history.learn(
        [
            _entry("a", peak_delta=2 * MB, rss_start=40 * MB, children_peak=3 * MB),
            _entry("b", "not_run", peak_delta=None),  # not run: nothing measured
        ]
    )
    assert history["a"] == Peak(2 * MB, 3 * MB, 40 * MB)
    assert history["a"].total == 5 * MB
    assert history["b"] == Peak(7 * MB)


def test_a_killed_test_keeps_the_most_it_is_known_to_need() -> None:
    history = PeakHistory({"big": Peak(100 * MB)})
    history.learn(
        [
            _entry("light", peak_delta=0, rss_start=40 * MB),
            _entry("big", "killed", rss_peak=340 * MB, rss_start=None),
        ]
    )
    assert history["big"].growth == 300 * MB  # over the run's usual start
    history.learn([_entry("big", "killed", rss_peak=60 * MB, rss_start=None)])
    assert history["big"].growth == 300 * MB  # cut short earlier: the larger stays


def test_its_json_round_trips_with_the_runs_that_saw_each_test() -> None:
    history = PeakHistory({"a": Peak(1, 2, 3), "b": Peak(4)}, runs=7, seen={"a": 6})
    data = history.to_json()
    assert data == {"version": 2, "runs": 7, "tests": {"a": [1, 2, 3, 6], "b": [4, 0, None, 0]}}
    again = PeakHistory.from_json(data)
    assert again == history
    assert (again.runs, again.last_seen("a"), again.dropped) == (7, 6, 0)


def test_its_json_is_written_in_pieces_with_the_bytes_of_one_dump() -> None:
    history = PeakHistory({"a::x": Peak(1, 2, 3), 'b\u00e9"::y': Peak(4)}, runs=7, seen={"a::x": 6})
    for each in (history, PeakHistory()):
        text = "".join(each.json_pieces())
        assert text == json.dumps(each.to_json(), separators=(",", ":"))
        assert PeakHistory.from_json(json.loads(text)) == each


def test_version_1_is_read_and_its_tests_the_next_run_does_not_collect_are_forgotten() -> None:
    old = PeakHistory.from_json({"version": 1, "tests": {"a": [1, 2, None], "b": [3, 0, 5]}})
    assert (old["a"], old["b"]) == (Peak(1, 2, None), Peak(3, 0, 5))
    old.add_run([_entry("c", peak_delta=4)], collected=["a"])
    assert set(old) == {"a", "c"}
    assert old.to_json()["tests"] == {"a": [1, 2, None, KEEP_RUNS], "c": [4, 0, None, KEEP_RUNS]}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"tests": {}},
        {"version": 99, "tests": {}},
        {"version": 2, "tests": "oops"},
        {"version": 2, "runs": -1, "tests": {}},
        {"version": 2, "runs": "3", "tests": {}},
    ],
)
def test_a_shape_not_understood_is_an_error(data: object) -> None:
    with pytest.raises(HistoryError, match="memguard history"):
        PeakHistory.from_json(data)


def test_every_figure_is_range_checked_and_a_bad_entry_counted() -> None:
    tests = {
        "ok": [MAX_FIGURE, 0, None, 3],
        "negative": [-1, 0, 0, 3],
        "past-1-PiB": [MAX_FIGURE + 1, 0, 0, 3],
        "8-EiB-start": [1, 0, 2**63, 3],
        "bool": [True, 0, 0, 3],
        "float": [1.0, 0, 0, 3],
        "string": ["1", 0, 0, 3],
        "no-children": [1, None, 0, 3],
        "short": [1, 0, 0],
        "not-a-list": "x",
        "seen-after-the-last-run": [1, 0, 0, 4],
    }
    history = PeakHistory.from_json({"version": 2, "runs": 3, "tests": tests})
    assert list(history) == ["ok"]
    assert history.dropped == len(tests) - 1


def test_a_test_no_run_collected_for_keep_runs_runs_is_forgotten() -> None:
    history = PeakHistory()
    history.add_run([_entry("gone", peak_delta=MB), _entry("kept", peak_delta=2 * MB)])
    for _ in range(KEEP_RUNS - 1):
        history.add_run([_entry("kept", "not_run")])  # collected, not run: still there
    assert set(history) == {"gone", "kept"}
    assert history["kept"] == Peak(2 * MB)
    history.add_run([], collected=["kept"])
    assert set(history) == {"kept"}
    assert (history.runs, history.last_seen("kept")) == (KEEP_RUNS + 1, KEEP_RUNS + 1)
    # A file a run wrote long ago: what is stale by its own count is not even read.
    stale = {"version": 2, "runs": 500, "tests": {"old": [1, 0, 0, 400], "new": [1, 0, 0, 499]}}
    assert list(PeakHistory.from_json(stale)) == ["new"]


def test_past_the_cap_the_tests_seen_longest_ago_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(history_module, "MAX_TESTS", 3)
    history = PeakHistory({f"old{i}": Peak(i) for i in range(5)})
    history.add_run([_entry("new", peak_delta=MB)], collected=["old4"])
    assert set(history) == {"new", "old4", "old0"}
    history.keep(1)
    (kept,) = history
    assert kept in {"new", "old4"}


def test_from_a_report() -> None:
    report = {"tests": [_entry("a", peak_delta=MB, rss_start=30 * MB)]}
    history = PeakHistory.from_report(report, source="r.json")
    assert history["a"].growth == MB
    assert history.source == "r.json"
    assert history.usual_start() == 30 * MB
    assert history.default_estimate() == MB
    assert PeakHistory().default_estimate() == 0
    assert PeakHistory().usual_start() is None


def test_a_reports_bad_entries_are_left_out_and_counted() -> None:
    tests = [
        _entry("good", peak_delta=MB),
        _entry("string", peak_delta="1 MB"),
        _entry("8-EiB", peak_delta=2**63),
        _entry("bad-start", peak_delta=MB, rss_start=-5),
        {"nodeid": "no-peak", "status": "ok"},
        {"peak_delta": MB},
        "not an entry",
        _entry("not-run", "not_run"),  # nothing measured: nothing to learn, nothing wrong
    ]
    history = PeakHistory.from_report({"tests": tests})
    assert list(history) == ["good"]
    assert history.dropped == 6
    with pytest.raises(HistoryError, match=r"^\"tests\" is 'oops', not a list of test entries$"):
        PeakHistory.from_report({"tests": "oops"})
