"""The history of measured peaks that packing predicts from."""

from __future__ import annotations

from typing import Any

from pytest_memguard.history import Peak, PeakHistory

MB = 1024 * 1024


def _entry(nodeid: str, status: str = "ok", **figures: Any) -> dict[str, Any]:
    return {"nodeid": nodeid, "status": status, **figures}


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


def test_its_json_round_trips_and_what_is_not_understood_is_skipped() -> None:
    history = PeakHistory({"a": Peak(1, 2, 3)})
    assert PeakHistory.from_json(history.to_json()) == history
    assert len(PeakHistory.from_json({"version": 99, "tests": {"a": [1, 0, None]}})) == 0
    broken = {"version": 1, "tests": {"a": [-1, 0, 0], "b": "x", "c": [True, 0, 0], "d": [1]}}
    assert len(PeakHistory.from_json(broken)) == 0
    assert len(PeakHistory.from_json(None)) == 0


def test_from_a_report() -> None:
    report = {"tests": [_entry("a", peak_delta=MB, rss_start=30 * MB)]}
    history = PeakHistory.from_report(report, source="r.json")
    assert history["a"].growth == MB
    assert history.source == "r.json"
    assert history.usual_start() == 30 * MB
    assert history.default_estimate() == MB
    assert PeakHistory().default_estimate() == 0
    assert PeakHistory().usual_start() is None
