"""MemoryDiagnostics: profile, allocation sites, leak candidates, emergency cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

from pytest_memguard import BoundedCache
from pytest_memguard.core.levels import Level, MemoryThresholds
from pytest_memguard.library.cache import CacheManager, get_cache_manager, reset_cache_manager
from pytest_memguard.library.diagnostics import TRACING_OFF, LeakCandidate, MemoryDiagnostics
from pytest_memguard.library.monitor import ProcessMonitor
from pytest_memguard.library.pressure import (
    MemoryPressureCoordinator,
    get_memory_pressure_coordinator,
    reset_memory_pressure_coordinator,
)
from pytest_memguard.probe.system import SystemMemory

MB = 1_000_000


class FakeClock:
    def __init__(self, now: float = 10.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_memory() -> SystemMemory:
    return SystemMemory(total=1_000 * MB, available=100 * MB, source="cgroup", cgroup="v2:/ci")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def coordinator(clock: FakeClock) -> MemoryPressureCoordinator:
    return MemoryPressureCoordinator(memory=lambda: (500, 1000), clock=clock)


@pytest.fixture
def diag(clock: FakeClock, coordinator: MemoryPressureCoordinator) -> Iterator[MemoryDiagnostics]:
    manager = CacheManager(sizeof=len, clock=clock)
    diagnostics = MemoryDiagnostics(
        coordinator=coordinator,
        cache_manager=manager,
        thresholds=MemoryThresholds("100 MB", "200 MB", "300 MB"),
        clock=clock,
        memory=fake_memory,
        rss=lambda: 150 * MB,
    )
    yield diagnostics
    diagnostics.stop_tracing()


@pytest.fixture
def not_tracing() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:  # e.g. the suite runs under --memguard-leaks
        pytest.skip("tracemalloc is already tracing")
    yield
    assert not tracemalloc.is_tracing()


def _allocate(size: int) -> bytes:
    return b"\x01" * size


ALLOCATION_LINE = _allocate.__code__.co_firstlineno + 1


def test_profile_reports_rss_system_memory_caches_and_pressure(
    diag: MemoryDiagnostics, clock: FakeClock
) -> None:
    cache = diag.cache_manager.create_cache("prompts")
    cache.set("p", "x" * 1000)
    profile = diag.profile()
    assert profile["rss"] == 150 * MB
    assert profile["rss_level"] == "warning"
    assert profile["thresholds"] == {"warning": 100 * MB, "critical": 200 * MB, "max": 300 * MB}
    assert profile["system"]["source"] == "cgroup"
    assert profile["system"]["available"] == 100 * MB
    assert profile["system"]["fraction_used"] == 0.9
    assert profile["pressure"] == {"level": "critical", "fraction_used": 0.9}
    assert profile["caches"]["prompts"]["memory_bytes"] == 1000
    assert profile["cache_bytes"] == 1000
    json.dumps(profile)  # JSON-ready
    clock.advance(5.0)
    diag.profile()
    history = diag.history()
    assert [(h["kind"], h["time"]) for h in history] == [("profile", 10.0), ("profile", 15.0)]
    assert history[0]["pressure"] == "critical"


@pytest.mark.usefixtures("not_tracing")
def test_tracing_is_never_started_implicitly(diag: MemoryDiagnostics) -> None:
    assert diag.top_allocations() == []
    assert diag.take_snapshot() is None
    assert diag.leak_candidates() == []
    report = diag.diagnostics()
    assert report["tracemalloc"] == {"tracing": False, "note": TRACING_OFF}
    assert report["top_allocations"] == []
    assert not tracemalloc.is_tracing()


@pytest.mark.usefixtures("not_tracing")
def test_top_allocations_name_file_line_and_size(diag: MemoryDiagnostics) -> None:
    diag.start_tracing()
    held = _allocate(3 * MB)
    top = diag.top_allocations(5)
    assert len(top) <= 5
    assert top[0].file == __file__
    assert top[0].line == ALLOCATION_LINE
    assert top[0].size >= 3 * MB
    assert top[0].where == f"{__file__}:{ALLOCATION_LINE}"
    assert top[0].as_dict()["where"] == top[0].where
    assert [site.size for site in top] == sorted((site.size for site in top), reverse=True)
    del held
    diag.stop_tracing()
    assert not tracemalloc.is_tracing()


@pytest.mark.usefixtures("not_tracing")
def test_trace_true_starts_tracing_on_first_need(
    clock: FakeClock, coordinator: MemoryPressureCoordinator
) -> None:
    diag = MemoryDiagnostics(coordinator, CacheManager(), trace=True, memory=fake_memory)
    try:
        assert not tracemalloc.is_tracing()
        assert diag.take_snapshot() is not None
        assert tracemalloc.is_tracing()
    finally:
        diag.stop_tracing()


@pytest.mark.usefixtures("not_tracing")
def test_leak_candidates_are_sites_that_grew_across_snapshots(diag: MemoryDiagnostics) -> None:
    diag.start_tracing()
    once = [b"y" * 200_000]  # allocated before the first snapshot, never grows
    held: list[bytes] = []
    infos = []
    for _ in range(3):
        held.append(_allocate(200_000))
        infos.append(diag.take_snapshot())
    assert [info["snapshots"] for info in infos if info is not None] == [1, 2, 3]
    candidates = diag.leak_candidates()
    (leak,) = [c for c in candidates if c.file == __file__]
    assert leak.line == ALLOCATION_LINE
    assert 400_000 <= leak.growth < 500_000
    assert leak.count_growth == 2
    assert leak.snapshots == 3
    assert leak.size >= 600_000
    assert diag.leak_candidates(min_growth=10 * MB) == []
    assert [h["kind"] for h in diag.history()] == ["snapshot"] * 3
    del once, held


def test_emergency_cleanup_empties_the_caches(
    diag: MemoryDiagnostics, coordinator: MemoryPressureCoordinator
) -> None:
    cache: BoundedCache[int, bytes] = BoundedCache(max_size=1000)
    for key in range(100):
        cache.set(key, bytes(100))
    coordinator.register("cache", cache.handle_memory_pressure)
    assert diag.emergency_cleanup()["ran"] is True
    assert len(cache) == 0, "an emergency cleanup leaves nothing of a cache"


def test_emergency_cleanup_runs_handlers_gc_and_respects_the_cooldown(
    diag: MemoryDiagnostics, coordinator: MemoryPressureCoordinator, clock: FakeClock
) -> None:
    levels: list[Level] = []

    def broken(level: Level) -> int:
        raise RuntimeError("nope")

    def cache(level: Level) -> int:
        levels.append(level)
        return 4096

    coordinator.register("cache", cache)
    coordinator.register("broken", broken)
    result = diag.emergency_cleanup()
    assert result["ran"] is True
    assert levels == [Level.ABORT]
    assert result["freed"] == 4096
    assert result["handlers"] == {"cache": 4096}
    assert result["errors"] == {"broken": "RuntimeError: nope"}
    assert result["gc_collected"] >= 0
    assert result["rss_before"] == result["rss_after"] == 150 * MB
    assert result["rss_freed"] == 0
    assert result["actions"][0] == "ran 2 pressure handler(s) at abort, 4.0 KiB reported freed"
    assert any(action.startswith("gc.collect() found") for action in result["actions"])
    json.dumps(result)
    clock.advance(10.0)
    blocked = diag.emergency_cleanup()
    assert blocked == {
        "ran": False,
        "reason": "cooldown",
        "retry_in": 50.0,
        "freed": 0,
        "actions": [],
    }
    assert levels == [Level.ABORT]
    forced = diag.emergency_cleanup(force=True)
    assert forced["ran"] is True
    assert forced["forced"] is True
    assert levels == [Level.ABORT, Level.ABORT]
    kinds = [(h["kind"], h.get("ran")) for h in diag.history()]
    assert kinds == [("cleanup", True), ("cleanup", False), ("cleanup", True)]


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid to wait without reaping")
def test_emergency_cleanup_reaps_zombie_children(diag: MemoryDiagnostics) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    result = diag.emergency_cleanup(force=True)
    assert result["zombies_reaped"] == [child.pid]
    assert f"reaped 1 zombie child process(es): [{child.pid}]" in result["actions"]
    assert child.wait(timeout=30) == 0


def test_diagnostics_gather_configuration_processes_and_history(
    diag: MemoryDiagnostics, coordinator: MemoryPressureCoordinator, clock: FakeClock
) -> None:
    monitor = ProcessMonitor(clock=clock, memory=fake_memory)
    diag.monitor = monitor
    coordinator.register("h", lambda level: 1)
    coordinator.handle_memory_pressure(Level.WARNING)
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as child:
        monitor.track(child, name="worker")
        report = diag.diagnostics()
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    config = report["configuration"]
    assert config["pressure"] == {
        "warning": 0.70,
        "critical": 0.85,
        "cooldown": 60.0,
        "handlers": ["h"],
    }
    assert config["thresholds"]["max"] == 300 * MB
    assert config["monitor"]["interval"] == 2.0
    assert report["processes"]["worker"]["pid"] == child.pid
    assert report["profile"]["rss"] == 150 * MB
    assert report["pressure_history"][0]["freed"] == {"h": 1}
    assert [h["kind"] for h in report["history"]] == ["profile"]
    assert isinstance(report["top_allocations"], list)
    assert isinstance(report["leak_candidates"], list)
    json.dumps(report)


def test_defaults_are_the_process_wide_coordinator_and_manager() -> None:
    reset_cache_manager()
    reset_memory_pressure_coordinator()
    try:
        diag = MemoryDiagnostics(memory=fake_memory)
        assert diag.coordinator is get_memory_pressure_coordinator()
        assert diag.cache_manager is get_cache_manager()
        assert "cache_manager" in diag.diagnostics()["configuration"]["pressure"]["handlers"]
    finally:
        reset_cache_manager()
        reset_memory_pressure_coordinator()


def test_history_is_bounded(coordinator: MemoryPressureCoordinator) -> None:
    diag = MemoryDiagnostics(coordinator, CacheManager(), history=3, memory=fake_memory)
    for _ in range(5):
        diag.profile()
    assert len(diag.history()) == 3


def test_a_leak_candidate_says_where_and_is_json_ready() -> None:
    candidate = LeakCandidate("app/cache.py", 42, 3 * MB, 2 * MB, 1000, 3)
    assert candidate.where == "app/cache.py:42"
    assert json.loads(json.dumps(candidate.as_dict())) == {
        "where": "app/cache.py:42",
        "file": "app/cache.py",
        "line": 42,
        "size": 3 * MB,
        "growth": 2 * MB,
        "count_growth": 1000,
        "snapshots": 3,
    }


@pytest.mark.usefixtures("not_tracing")
def test_as_a_context_manager_it_stops_what_it_started(
    coordinator: MemoryPressureCoordinator,
) -> None:
    with MemoryDiagnostics(coordinator, CacheManager(), trace=True, memory=fake_memory) as diag:
        diag.top_allocations(1)  # tracing starts on first need
        kept = _allocate(100_000)
        assert diag.top_allocations(1)[0].size >= len(kept)
        diag.start(interval=3600)
        assert diag.running
        assert diag.system_memory() == fake_memory()
    assert not tracemalloc.is_tracing()
    assert not diag.running
