"""RequestRecorder driven directly, as both middlewares drive it: begin, measure, finish, alert."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest

from pytest_memguard.web import RequestRecord, RequestRecorder

MB = 1_000_000


class Readings:
    """The RSS and the clock the recorder reads, set by the test."""

    def __init__(self) -> None:
        self.rss = 100 * MB
        self.now = 50.0

    def read_rss(self) -> int:
        return self.rss

    def clock(self) -> float:
        return self.now


def test_one_request_measured_by_hand(caplog: pytest.LogCaptureFixture) -> None:
    readings = Readings()
    alerts: list[RequestRecord] = []
    recorder = RequestRecorder(
        alert_threshold="10 MB",
        on_alert=alerts.append,
        sample_interval=None,
        rss=readings.read_rss,
        clock=readings.clock,
    )
    window = recorder.begin("POST", "/upload?big=1")
    readings.rss += 30 * MB
    assert recorder.measure(window) == (30 * MB, 130 * MB)  # for the response headers
    readings.rss -= 10 * MB
    readings.now += 0.25
    record = recorder.finish(window, 201)
    assert record.as_dict() | {"time": 0} == {
        "method": "POST",
        "path": "/upload",
        "status": 201,
        "delta": 20 * MB,
        "peak_growth": 30 * MB,  # the peak seen by measure()
        "duration_s": 0.25,
        "time": 0,
        "rss_start": 100 * MB,
        "rss_end": 120 * MB,
        "overlapped": 0,
    }
    with caplog.at_level(logging.WARNING):
        assert recorder.alert(record) is None
    assert alerts == [record]
    assert "POST /upload grew RSS by 28.6 MiB at peak" in caplog.text
    recorder.alert_threshold = None
    recorder.alert(record)
    assert alerts == [record]  # no threshold: no alert
    assert recorder.stats()["routes"]["/upload"]["count"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and os.fork")
def test_a_forked_child_measures_its_own_memory_not_its_parent_s() -> None:
    """A preloading server forks its workers after the app (and its recorder) was built."""
    recorder = RequestRecorder(sample_interval=None)
    recorder.finish(recorder.begin("GET", "/in-parent"), 200)  # the reader is open here
    reading, writing = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+: fork() with threads (xdist's) warns
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: 200 MB of its own, written to, then one request
        try:
            held = b"\x01" * (200 * MB)
            window = recorder.begin("GET", "/in-child")
            os.write(writing, str(window.rss).encode())
            del held
        finally:
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as answer:
        child_start = int(answer.read())
    os.waitpid(pid, 0)
    parent = RequestRecorder(sample_interval=None)
    parent_start = parent.finish(parent.begin("GET", "/after"), 200).rss_start
    recorder.stop()
    parent.stop()
    assert 150 * MB < child_start - parent_start < 400 * MB
