"""ProcessMonitor against real child processes (modest sizes) with a fake clock."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from pytest_memguard.core.levels import Level, MemoryThresholds
from pytest_memguard.errors import MemguardError, SizeError
from pytest_memguard.library.monitor import (
    ALERTS_FILE,
    MONITOR_FILE,
    STATS_FILE,
    MonitorError,
    ProcessGoneError,
    ProcessMonitor,
    UnknownProcessError,
)
from pytest_memguard.probe.system import SystemMemory

MB = 1_000_000

# Waits for "go", then holds ``MB`` megabytes of touched memory until stdin closes.
GROWER = """
import sys
print("started", flush=True)
sys.stdin.readline()
data = b"\\x01" * ({mb} * 1000 * 1000)
print("ready", flush=True)
sys.stdin.read()
"""
# Ignores SIGTERM, so only SIGKILL ends it.
STUBBORN = """
import signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
sys.stdin.read()
"""
# A small parent whose child holds 60 MB.
PARENT = """
import subprocess, sys
code = "import sys; d = b'\\\\x01' * 60_000_000; print('ready', flush=True); sys.stdin.read()"
child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
sys.stdout.write(child.stdout.readline().decode())
sys.stdout.flush()
sys.stdin.read()
child.kill()
child.wait()
"""


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_memory(available: int = 8_000 * MB) -> SystemMemory:
    return SystemMemory(total=16_000 * MB, available=available, source="cgroup", cgroup="v2:/t")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


def _expect(child: subprocess.Popen[bytes], line: bytes) -> None:
    stream: IO[bytes] | None = child.stdout
    assert stream is not None
    assert stream.readline() == line


def _say(child: subprocess.Popen[bytes], text: bytes) -> None:
    assert child.stdin is not None
    child.stdin.write(text)
    child.stdin.flush()


@pytest.fixture
def monitor(clock: FakeClock, tmp_path: Path) -> Iterator[ProcessMonitor]:
    mon = ProcessMonitor(
        thresholds=MemoryThresholds("40 MB", "80 MB", "120 MB"),
        log_dir=tmp_path,
        clock=clock,
        wall=lambda: 1_700_000_000.0,
        memory=fake_memory,
        grace=5.0,
    )
    yield mon
    mon.stop()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_child_past_its_hard_limit_is_terminated_with_stats_and_logs(
    monitor: ProcessMonitor, clock: FakeClock, tmp_path: Path
) -> None:
    with _spawn(GROWER.format(mb=150)) as child:
        _expect(child, b"started\n")
        ident = monitor.track(child, name="grower")
        assert ident == "grower"
        assert monitor.poll() == []  # a fresh interpreter is far under 40 MB
        _say(child, b"go\n")
        _expect(child, b"ready\n")
        clock.advance(3.0)
        events = monitor.poll()
        assert [e.kind for e in events] == ["abort", "terminate"]
        assert events[0].level is Level.ABORT
        assert (events[0].rss or 0) >= 150 * MB
        assert "reached the hard limit 114.4 MiB; terminating it" in events[0].message
        assert monitor.should_abort(ident)
        returncode = child.wait(timeout=30)
        assert returncode == (-signal.SIGTERM if sys.platform != "win32" else returncode)
        assert returncode != 0
        clock.advance(1.0)
        assert [e.kind for e in monitor.poll()] == ["exit"]
        assert monitor.poll() == []
        stats = monitor.untrack(ident)
    assert stats["aborted"] is True
    assert stats["killed"] is False
    assert stats["start"] < 40 * MB
    assert stats["peak"] >= 150 * MB
    assert stats["end"] == stats["peak"]
    assert stats["duration"] == 4.0
    assert stats["reason"] == "hard limit 114.4 MiB"
    assert len(stats["warnings"]) == 1
    assert ident not in monitor
    (line,) = _lines(tmp_path / STATS_FILE)
    assert line["subprocess_id"] == "grower"
    assert line["memory_stats"]["peak_mb"] == round(stats["peak"] / MB, 1)
    assert line["memory_stats"]["aborted"] is True
    assert line["timestamp"] == "2023-11-14T22:13:20+00:00"
    (alert,) = _lines(tmp_path / ALERTS_FILE)
    assert alert["level"] == "ABORT"
    assert alert["subprocess_id"] == "grower"
    assert alert["message"] == stats["warnings"][0]
    assert alert["message"].startswith("ABORT: Memory exceeded 120MB at ")
    assert alert["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert alert["system_memory"] == {
        "total_mb": 16_000.0,
        "available_mb": 8_000.0,
        "used_mb": 8_000.0,
        "percent": 50.0,
    }


def test_levels_below_the_limit_alert_once_each_without_terminating(
    clock: FakeClock, tmp_path: Path
) -> None:
    mon = ProcessMonitor(
        thresholds=MemoryThresholds("20 MB", "50 MB", "500 MB"),
        log_dir=tmp_path,
        clock=clock,
        memory=fake_memory,
    )
    with _spawn(GROWER.format(mb=30)) as child:
        _expect(child, b"started\n")
        ident = mon.track(child)
        assert ident == f"pid-{child.pid}"
        _say(child, b"go\n")
        _expect(child, b"ready\n")
        events = mon.poll()
        assert [e.kind for e in events] == ["warning"]
        assert mon.poll() == []  # the same level is not reported again
        rss_mb, level = mon.check(ident)
        assert 30 < rss_mb < 50
        assert level is Level.WARNING
        assert not mon.should_abort(ident)
        stats = mon.stats(ident)
        assert stats["running"] is True
        assert stats["end"] >= 30 * MB  # the last reading while it runs
        child.stdin.close()  # type: ignore[union-attr]
        assert child.wait(timeout=30) == 0
    assert [e.kind for e in mon.poll()] == ["exit"]
    stats = mon.untrack(ident)
    assert stats["aborted"] is False
    assert stats["returncode"] == 0
    assert [a["level"] for a in _lines(tmp_path / ALERTS_FILE)] == ["WARNING"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be ignored on Windows")
def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    clock: FakeClock, tmp_path: Path
) -> None:
    mon = ProcessMonitor(
        thresholds=MemoryThresholds(None, None, "1 MB"),
        log_dir=tmp_path,
        clock=clock,
        memory=fake_memory,
        grace=5.0,
    )
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        ident = mon.track(child, name="stubborn")
        assert [e.kind for e in mon.poll()] == ["abort", "terminate"]
        clock.advance(4.9)
        assert mon.poll() == []
        assert child.poll() is None  # SIGTERM was ignored
        clock.advance(0.1)
        events = mon.poll()
        assert events[0].kind == "kill"
        assert "still running 5 s after SIGTERM" in events[0].message
        assert child.wait(timeout=30) == -signal.SIGKILL
    assert [e.kind for e in mon.poll()] == ["exit"]
    assert mon.stats(ident)["killed"] is True
    alerts = _lines(tmp_path / ALERTS_FILE)
    assert [a["level"] for a in alerts] == ["ABORT", "ABORT"]
    assert alerts[1]["message"].startswith("ABORT: Killed at ")
    assert alerts[1]["message"].endswith("MB, still running 5 s after SIGTERM")


def test_past_the_aggregate_limit_the_largest_is_terminated(
    clock: FakeClock, tmp_path: Path
) -> None:
    mon = ProcessMonitor(
        thresholds=MemoryThresholds("1 GB", "2 GB", "4 GB"),
        aggregate_limit="60 MB",
        log_dir=tmp_path,
        clock=clock,
        memory=fake_memory,
    )
    with _spawn(GROWER.format(mb=5)) as small, _spawn(GROWER.format(mb=60)) as big:
        for child in (small, big):
            _expect(child, b"started\n")
            _say(child, b"go\n")
            _expect(child, b"ready\n")
        mon.track(small, name="small")
        mon.track(big, name="big")
        events = mon.poll()
        assert [(e.kind, e.id) for e in events] == [("aggregate", "big"), ("terminate", "big")]
        assert "past the aggregate limit 57.2 MiB; the largest is big" in events[0].message
        assert big.wait(timeout=30) != 0
        assert small.poll() is None
        small.stdin.close()  # type: ignore[union-attr]
        small.wait(timeout=30)
    assert mon.stats("big")["aborted"] is True
    assert mon.stats("small")["aborted"] is False
    (alert,) = _lines(tmp_path / ALERTS_FILE)
    assert alert["subprocess_id"] == "big"
    assert alert["message"].startswith("ABORT: Aggregate memory exceeded 60MB at ")
    assert "MB; the largest is big at " in alert["message"]


def test_children_count_unless_told_otherwise(clock: FakeClock) -> None:
    with _spawn(PARENT) as parent:
        _expect(parent, b"ready\n")
        with_children = ProcessMonitor(clock=clock, memory=fake_memory)
        alone = ProcessMonitor(clock=clock, memory=fake_memory, include_children=False)
        with_children.track(parent, name="p")
        alone.track(parent, name="p")
        assert with_children.check("p")[0] > 60
        assert alone.check("p")[0] < 40
        parent.stdin.close()  # type: ignore[union-attr]
        assert parent.wait(timeout=30) == 0


def test_a_process_that_vanished_is_normal(clock: FakeClock) -> None:
    mon = ProcessMonitor(clock=clock, memory=fake_memory)
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        ident = mon.track(child.pid)  # by pid: no Popen to ask
        rss_mb, _ = mon.check(ident)
        child.kill()
        child.wait(timeout=30)
    assert [e.kind for e in mon.poll()] == ["exit"]
    assert mon.check(ident) == (rss_mb, Level.OK)  # the last known reading
    with pytest.raises(ProcessGoneError, match=f"process {child.pid} does not exist") as info:
        mon.track(child.pid)
    assert isinstance(info.value, ProcessLookupError)
    assert isinstance(info.value, MemguardError)


def test_access_denied_reads_as_unknown(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    mon = ProcessMonitor(thresholds=MemoryThresholds(None, None, "1 MB"), clock=clock)
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        ident = mon.track(child)
        before = mon.stats(ident)["peak"]

        def denied(self: psutil.Process) -> Any:
            raise psutil.AccessDenied(self.pid)

        monkeypatch.setattr(psutil.Process, "status", denied)
        assert mon.poll() == []  # unknown: neither a level nor an exit
        assert mon.stats(ident)["running"] is True
        assert mon.stats(ident)["peak"] == before
        monkeypatch.undo()
        child.kill()
        child.wait(timeout=30)


def test_tracking_errors_name_the_problem(monitor: ProcessMonitor) -> None:
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        monitor.track(child, name="one")
        with pytest.raises(MonitorError, match="a process is already tracked as 'one'"):
            monitor.track(child, name="one")
        with pytest.raises(MonitorError, match=f"process {child.pid} is already tracked as 'one'"):
            monitor.track(child.pid)
        child.kill()
        child.wait(timeout=30)
    for call in (monitor.check, monitor.stats, monitor.untrack, monitor.should_abort):
        with pytest.raises(UnknownProcessError, match="no tracked process has the id 'nope'"):
            call("nope")
    assert issubclass(UnknownProcessError, KeyError)


def test_preflight_check_reports_available_memory() -> None:
    low = ProcessMonitor(memory=lambda: fake_memory(available=512_300_000))
    assert low.can_create_subprocess() == (
        False,
        "only 488.6 MiB available, need at least 1 GB",
    )
    ok = ProcessMonitor(min_free=100 * MB, memory=lambda: fake_memory(available=2_000 * MB))
    assert ok.can_create_subprocess() == (
        True,
        "1.9 GiB available (cgroup), need at least 95.4 MiB",
    )
    assert ProcessMonitor(min_free=None, memory=fake_memory).can_create_subprocess()[0] is True


def test_defaults_and_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    mon = ProcessMonitor()
    assert (mon.thresholds.warning, mon.thresholds.critical, mon.thresholds.max) == (
        1_000 * MB,
        2_000 * MB,
        4_000 * MB,
    )
    assert mon.interval == 2.0
    assert mon.include_children is True
    assert mon.abort is True
    assert mon.min_free == 1_000 * MB
    monkeypatch.setenv("MEMGUARD_MAX", "8 GB")
    assert ProcessMonitor().thresholds.max == 8_000 * MB
    monkeypatch.setenv("MEMGUARD_MAX", "8 apples")
    with pytest.raises(SizeError, match="MEMGUARD_MAX: invalid size '8 apples'"):
        ProcessMonitor()
    with pytest.raises(MonitorError, match="interval must be > 0 seconds"):
        ProcessMonitor(interval=0, thresholds=MemoryThresholds())


def test_without_abort_nothing_is_terminated_and_without_log_dir_nothing_is_written(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mon = ProcessMonitor(
        thresholds=MemoryThresholds(None, None, "1 MB"),
        abort=False,
        clock=clock,
        memory=fake_memory,
    )
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        ident = mon.track(child)
        events = mon.poll()
        assert [e.kind for e in events] == ["abort"]
        assert "terminating" not in events[0].message
        assert child.poll() is None
        assert mon.should_abort(ident)
        child.kill()
        child.wait(timeout=30)
    assert [a["level"] for a in mon.alerts()] == ["ABORT"]
    mon.untrack(ident)
    assert list(tmp_path.iterdir()) == []


class _SignallingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.polled = threading.Event()

    def __call__(self) -> float:
        if threading.current_thread().name == "memguard-process-monitor":
            self.polled.set()
        return self.now


def test_background_polling_runs_in_a_named_thread_and_stops() -> None:
    clock = _SignallingClock()
    mon = ProcessMonitor(interval=0.01, clock=clock, memory=fake_memory)
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        mon.track(child)
        with mon:
            mon.start()  # already running: no second thread
            names = [t.name for t in threading.enumerate()]
            assert names.count("memguard-process-monitor") == 1
            assert clock.polled.wait(10.0)
        assert not mon.running
        assert "memguard-process-monitor" not in [t.name for t in threading.enumerate()]
        child.kill()
        child.wait(timeout=30)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs")
def test_a_log_file_that_is_a_fifo_is_left_alone(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = tmp_path / STATS_FILE
    os.mkfifo(fifo)
    # A reader held open: a writer opening the FIFO by mistake would not hang the test.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mon = ProcessMonitor(thresholds=MemoryThresholds(), log_dir=tmp_path, clock=clock)
        ident = mon.track(os.getpid())
        with caplog.at_level(logging.WARNING, logger="pytest_memguard.library.monitor"):
            stats = mon.untrack(ident)
        assert stats["pid"] == os.getpid()
        assert os.read(reader, 1) == b"", "something was written into the FIFO"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [record.getMessage() for record in caplog.records] == [
        f"memguard: cannot write {fifo}: it is a FIFO (named pipe), not a regular file"
    ]


def test_one_limit_alone_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A default above a higher threshold set, or below a lower one, is dropped, not
    # refused (the defaults are 1, 2 and 4 GB).
    monkeypatch.setenv("MEMGUARD_MAX", "1GB")
    limits = ProcessMonitor().thresholds
    assert (limits.warning, limits.critical, limits.max) == (1_000 * MB, None, 1_000 * MB)
    monkeypatch.delenv("MEMGUARD_MAX")
    monkeypatch.setenv("MEMGUARD_WARN", "3GB")
    limits = ProcessMonitor().thresholds
    assert (limits.warning, limits.critical, limits.max) == (3_000 * MB, None, 4_000 * MB)


def test_untracking_a_process_that_ended_since_the_last_poll(clock: FakeClock) -> None:
    mon = ProcessMonitor(clock=clock, memory=fake_memory)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    ident = mon.track(child, name="quick")
    child.communicate(timeout=30)
    stats = mon.untrack(ident)
    assert (stats["running"], stats["returncode"]) == (False, 0)


# Grows by the megabytes given on each line of stdin, answering "ready" each time.
STEPS = """
import sys
held = []
print("started", flush=True)
for line in sys.stdin:
    held.append(b"\\x01" * (int(line) * 1000 * 1000))
    print("ready", flush=True)
"""


def test_over_warning_then_the_hard_limit_leaves_the_documented_log_lines(
    monitor: ProcessMonitor, clock: FakeClock, tmp_path: Path
) -> None:
    with _spawn(STEPS) as child:
        _expect(child, b"started\n")
        ident = monitor.track(child, name="worker-1")
        _say(child, b"50\n")  # past the warning (40 MB), under the critical (80 MB)
        _expect(child, b"ready\n")
        assert [e.kind for e in monitor.poll()] == ["warning"]
        _say(child, b"100\n")  # past the hard limit (120 MB)
        _expect(child, b"ready\n")
        clock.advance(2.5)
        assert [e.kind for e in monitor.poll()] == ["abort", "terminate"]
        child.wait(timeout=30)
        monitor.untrack(ident)
    alerts = _lines(tmp_path / ALERTS_FILE)
    assert [set(a) for a in alerts] == [
        {"timestamp", "level", "subprocess_id", "message", "system_memory"}
    ] * 2
    assert [a["level"] for a in alerts] == ["WARNING", "ABORT"]
    assert {a["subprocess_id"] for a in alerts} == {"worker-1"}
    assert re.fullmatch(r"WARNING: Memory exceeded 40MB at \d+\.\dMB", alerts[0]["message"])
    assert re.fullmatch(r"ABORT: Memory exceeded 120MB at \d+\.\dMB", alerts[1]["message"])
    assert float(alerts[0]["message"].split(" at ")[1][:-2]) > 40
    for alert in alerts:
        assert datetime.fromisoformat(alert["timestamp"]).year == 2023
        assert alert["system_memory"] == {
            "total_mb": 16_000.0,
            "available_mb": 8_000.0,
            "used_mb": 8_000.0,
            "percent": 50.0,
        }
    (line,) = _lines(tmp_path / STATS_FILE)
    assert set(line) == {"subprocess_id", "memory_stats", "timestamp"}
    assert line["subprocess_id"] == "worker-1"
    stats = line["memory_stats"]
    assert set(stats) == {
        "start_mb",
        "peak_mb",
        "end_mb",
        "duration_seconds",
        "warnings",
        "aborted",
    }
    assert stats["start_mb"] < 40 < 150 < stats["peak_mb"] == stats["end_mb"]
    assert stats["duration_seconds"] == 2.5
    assert stats["warnings"] == [a["message"] for a in alerts]
    assert stats["aborted"] is True
    assert datetime.fromisoformat(line["timestamp"]).year == 2023


def test_the_system_samples_log_is_bounded_in_size(clock: FakeClock, tmp_path: Path) -> None:
    mon = ProcessMonitor(log_dir=tmp_path, clock=clock, memory=fake_memory, max_log_bytes=1000)
    ident = mon.track(os.getpid(), name="self")
    for _ in range(30):
        mon.poll()
    mon.untrack(ident)
    log, older = tmp_path / MONITOR_FILE, tmp_path / f"{MONITOR_FILE}.1"
    assert 0 < log.stat().st_size <= 1000
    assert 0 < older.stat().st_size <= 1000
    sample = _lines(log)[-1]
    assert set(sample) == {"timestamp", "system_memory", "processes", "total_mb"}
    assert sample["system_memory"]["percent"] == 50.0
    assert sample["processes"]["self"] == sample["total_mb"] > 0
    with pytest.raises(MonitorError, match="max_log_bytes must be an int >= 1, got 0"):
        ProcessMonitor(max_log_bytes=0)


def test_the_tracked_ids_length_and_membership(clock: FakeClock) -> None:
    mon = ProcessMonitor(clock=clock, memory=fake_memory)
    assert (len(mon), mon.tracked()) == (0, [])
    mon.track(os.getpid(), name="self")
    mon.track(os.getppid())
    assert len(mon) == 2
    assert mon.tracked() == ["self", f"pid-{os.getppid()}"]
    assert "self" in mon
    mon.untrack("self")
    assert (len(mon), "self" in mon) == (1, False)


# Starts a child that holds 60 MB (at most 30 s), says its pid, and exits on "go".
LEAVER = """
import subprocess, sys
code = "import time; d = b'\\\\x01' * 60_000_000; print('ready', flush=True); time.sleep(30)"
child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
sys.stdin.readline()
"""


def test_with_leftovers_a_process_tree_is_guarded_until_its_last_process_ended(
    clock: FakeClock,
) -> None:
    mon = ProcessMonitor(clock=clock, memory=fake_memory)
    with _spawn(LEAVER) as parent:
        assert parent.stdout is not None
        left = psutil.Process(int(parent.stdout.readline()))
        try:
            ident = mon.track(parent, name="tree", leftovers=True)
            assert mon.leftovers(ident) == [left]
            _say(parent, b"go\n")
            assert parent.wait(timeout=30) == 0
            assert mon.poll() == [], "its leftover runs on: the entry is not over"
            assert mon.leftovers(ident) == [left]
            assert 60 < mon.check(ident)[0] < 100, "the orphan's RSS is counted"
            assert mon.stats(ident)["running"] is True
        finally:
            left.kill()
            left.wait(timeout=30)
    assert [event.kind for event in mon.poll()] == ["exit"]
    assert mon.leftovers(ident) == []
    assert mon.stats(ident)["returncode"] == 0


def test_only_a_tree_tracked_with_leftovers_adopts(clock: FakeClock) -> None:
    mon = ProcessMonitor(clock=clock, memory=fake_memory)
    with _spawn(STUBBORN) as child:
        _expect(child, b"ready\n")
        mon.track(child, name="plain")
        with pytest.raises(MonitorError, match=r"^'plain' was not tracked with leftovers=True$"):
            mon.adopt("plain", [os.getpid()])
        child.kill()
        child.wait(timeout=30)
