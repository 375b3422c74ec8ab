"""The report's timeline: bounded samples that keep spikes, and the marks of a run."""

from __future__ import annotations

from pytest_memguard.reporting.results import Status, TestMemory
from pytest_memguard.reporting.timeline import SampleBuffer, build_timeline, thin

MiB = 2**20


def test_thinning_bounds_the_samples_and_keeps_a_spike() -> None:
    samples = [(float(i), 10 * MiB) for i in range(10_001)]
    samples[4321] = (4321.0, 900 * MiB)  # a few milliseconds of a spike
    thinned = thin(samples, 1000)
    assert len(thinned) <= 1000
    assert max(rss for _, rss in thinned) == 900 * MiB
    assert [t for t, _ in thinned] == sorted(t for t, _ in thinned)
    assert thinned[-1] == samples[-1]


def test_a_sample_buffer_stays_bounded_however_many_samples_come() -> None:
    buffer = SampleBuffer(limit=100)
    for i in range(5_000):
        buffer.add(float(i), MiB * (i % 7))
    buffer.add(5000.0, 1000 * MiB)
    kept = buffer.samples()
    assert len(kept) < 200
    assert kept[-1] == (5000.0, 1000 * MiB)


def _test(nodeid: str, worker: str, started: float, status: Status = "ok") -> TestMemory:
    return TestMemory(
        nodeid,
        "passed",
        status,
        worker,
        0.5,
        started=started,
        rss_start=50 * MiB,
        rss_end=60 * MiB,
    )


def test_each_process_has_a_lane_of_its_tests_starts_and_ends_and_watched_samples() -> None:
    tests = [_test("t.py::a", "gw0", 100.0), _test("t.py::b", "gw1", 100.2)]
    timeline = build_timeline(tests=tests, samples={"gw0": [(100.25, 300 * MiB)]})
    lanes = {lane["process"]: lane["samples"] for lane in timeline["processes"]}
    assert lanes == {
        "gw0": [[100.0, 50 * MiB], [100.25, 300 * MiB], [100.5, 60 * MiB]],
        "gw1": [[100.2, 50 * MiB], [100.7, 60 * MiB]],
    }


def test_stops_kills_and_recycles_are_marked_in_time_order() -> None:
    tests = [
        _test("t.py::runaway", "gw0", 10.0, status="aborted"),
        _test("t.py::heavy", "gw1", 11.0),
        TestMemory("t.py::killed", "failed", "killed", "gw2", 0.0),
    ]
    alerts = [
        {
            "timestamp": 12.0,
            "level": "abort",
            "process": "gw2 (seen by the controller)",
            "rss": 900 * MiB,
            "message": "gw2: killed by memguard",
        }
    ]
    workers = [{"id": "gw1", "pid": 7, "recycled": True, "reason": "recycled at RSS 1 GiB"}]
    timeline = build_timeline(tests=tests, alerts=alerts, workers=workers)
    assert [(e["kind"], e["process"], e["time"]) for e in timeline["events"]] == [
        ("stop", "gw0", 10.5),
        ("recycle", "gw1", 11.5),
        ("kill", "gw2", 12.0),
    ]
    assert timeline["events"][1]["nodeid"] == "t.py::heavy"
    lanes = {lane["process"]: lane for lane in timeline["processes"]}
    assert lanes["gw2"]["samples"] == [[12.0, 900 * MiB]], "the kill's RSS is a sample"
    assert lanes["gw1"]["pid"] == 7
