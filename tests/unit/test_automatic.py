"""The automatic mode of MemoryDiagnostics: background profiling, cleanup past a threshold."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from pytest_memguard.core.levels import Level, MemoryThresholds
from pytest_memguard.library.automatic import AutomaticError
from pytest_memguard.library.cache import CacheManager
from pytest_memguard.library.diagnostics import MemoryDiagnostics
from pytest_memguard.library.lifespan import start_memory_cleanup, stop_memory_cleanup
from pytest_memguard.library.pressure import MemoryPressureCoordinator
from pytest_memguard.probe.system import SystemMemory

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Process:
    """The RSS the diagnostics read, set by the test."""

    def __init__(self) -> None:
        self.rss = 100 * MB

    def __call__(self) -> int:
        return self.rss


def memory() -> SystemMemory:
    return SystemMemory(total=1_000 * MB, available=800 * MB, source="host")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def process() -> Process:
    return Process()


@pytest.fixture
def levels() -> list[Level]:
    return []


@pytest.fixture
def diag(clock: FakeClock, process: Process, levels: list[Level]) -> Iterator[MemoryDiagnostics]:
    coordinator = MemoryPressureCoordinator(memory=lambda: (100, 1000), clock=clock, cooldown=0)

    def handler(level: Level) -> int:
        levels.append(level)
        return 7 * MB

    coordinator.register("drop", handler)
    diagnostics = MemoryDiagnostics(
        coordinator,
        CacheManager(sizeof=len, clock=clock),
        thresholds=MemoryThresholds("300 MB", "400 MB", "500 MB"),
        clock=clock,
        memory=memory,
        rss=process,
        history=5,
    )
    yield diagnostics
    diagnostics.close()


def test_it_is_off_by_default(diag: MemoryDiagnostics) -> None:
    diag.profile()
    assert not diag.running
    assert "memguard-diagnostics" not in {t.name for t in threading.enumerate()}
    assert diag.diagnostics()["configuration"]["automatic"] is None
    entry = diag.record("deploy", version="1.2")
    assert entry == {"time": 1000.0, "kind": "deploy", "version": "1.2"}
    assert diag.history()[-1] == entry


def test_past_the_threshold_it_cleans_up_once_per_cooldown(
    diag: MemoryDiagnostics, clock: FakeClock, process: Process, levels: list[Level]
) -> None:
    automatic = diag.automatic
    automatic.configure(interval=60, threshold="200 MB", cooldown=300)
    assert automatic.step()["cleanup"] is None  # 100 MB: under the threshold
    process.rss = 250 * MB
    clock.now += 60
    done = automatic.step()
    assert done["profiled"] is True
    assert done["cleanup"]["kind"] == "auto_cleanup"
    assert done["cleanup"]["freed"] == 7 * MB
    assert done["cleanup"]["message"] == "RSS 238.4 MiB passed 190.7 MiB"
    assert levels == [Level.CRITICAL]
    clock.now += 60  # within the cooldown: profiled, not cleaned
    assert automatic.step() == {"profiled": True, "collected": None, "cleanup": None}
    clock.now += 240
    assert automatic.step()["cleanup"] is not None
    assert levels == [Level.CRITICAL] * 2
    assert automatic.settings()["cleanups"] == 2
    kinds = [entry["kind"] for entry in diag.history()]
    assert len(kinds) == 5  # the history is bounded
    assert kinds.count("auto_cleanup") == 2


def test_the_default_threshold_is_the_critical_one_and_cleanup_can_be_off(
    diag: MemoryDiagnostics, clock: FakeClock, process: Process, levels: list[Level]
) -> None:
    automatic = diag.automatic
    assert automatic.threshold_in_use() == 400 * MB
    process.rss = 450 * MB
    automatic.configure(auto_cleanup=False)
    assert automatic.step()["cleanup"] is None
    automatic.configure(auto_cleanup=True)
    clock.now += 60
    assert automatic.step()["cleanup"] is not None
    assert levels == [Level.CRITICAL]


def test_a_coordinator_cooling_down_postpones_the_cleanup(
    diag: MemoryDiagnostics, clock: FakeClock, process: Process, levels: list[Level]
) -> None:
    diag.coordinator.configure(cooldown=100)
    diag.coordinator.handle_memory_pressure(Level.WARNING)  # a run of its own just now
    process.rss = 450 * MB
    assert diag.automatic.step()["cleanup"] is None
    clock.now += 100
    assert diag.automatic.step()["cleanup"] is not None
    assert levels == [Level.WARNING, Level.CRITICAL]


def test_periodic_garbage_collection(diag: MemoryDiagnostics, clock: FakeClock) -> None:
    automatic = diag.automatic
    automatic.configure(interval=60, gc_interval=10)
    assert automatic.step()["collected"] is None  # not due yet
    clock.now += 10
    done = automatic.step()
    assert isinstance(done["collected"], int)
    assert done["profiled"] is False  # the next profile is due at 60 s
    automatic.clear(gc_interval=True)
    clock.now += 100
    assert automatic.step()["collected"] is None


def test_start_runs_a_named_thread_that_cleans_up_and_stop_joins_it(
    diag: MemoryDiagnostics, process: Process
) -> None:
    cleaned = threading.Event()
    diag.coordinator.register("signal", lambda level: cleaned.set())
    process.rss = 450 * MB
    diag.start(interval=0.01, threshold="400 MB", cooldown=0)
    try:
        assert diag.running
        assert "memguard-diagnostics" in {t.name for t in threading.enumerate()}
        assert cleaned.wait(30)
    finally:
        diag.stop()
    assert not diag.running
    assert "memguard-diagnostics" not in {t.name for t in threading.enumerate()}
    settings = diag.diagnostics()["configuration"]["automatic"]
    assert settings["running"] is False
    assert settings["threshold"] == 400 * MB


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"interval": 0}, "interval: expected seconds > 0, got 0"),
        ({"cooldown": -1}, "cooldown: expected seconds >= 0, got -1"),
        ({"gc_interval": float("nan")}, "gc_interval: expected seconds > 0, got nan"),
        ({"threshold": "12 apples"}, "threshold: invalid size '12 apples'"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    diag: MemoryDiagnostics, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(AutomaticError, match=message):
        diag.start(**settings)  # type: ignore[arg-type]
    assert not diag.running
    assert diag.automatic.settings()["interval"] == 60.0


def test_a_percentage_threshold_is_of_the_usable_memory(diag: MemoryDiagnostics) -> None:
    diag.automatic.configure(threshold="50%")
    assert diag.automatic.threshold_in_use() == 500 * MB


def test_the_async_helpers_start_and_stop_it_for_a_lifespan(diag: MemoryDiagnostics) -> None:
    async def lifespan() -> tuple[bool, bool, bool, bool]:
        used = await start_memory_cleanup(diag, interval=3600, gc_interval=3600)
        again = await start_memory_cleanup(interval=1)  # already on: the same one
        running = used.running and again is diag
        stopped = await stop_memory_cleanup()
        return running, stopped, diag.running, await stop_memory_cleanup()

    assert asyncio.run(lifespan()) == (True, True, False, False)
