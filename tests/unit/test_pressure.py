"""MemoryPressureCoordinator: levels, handlers, cooldown, weak and async handlers, threads."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_memguard.core.levels import Level
from pytest_memguard.errors import MemguardError
from pytest_memguard.library.pressure import (
    HandlerExistsError,
    MemoryPressureCoordinator,
    PressureError,
    PressureResponse,
    get_memory_pressure_coordinator,
    reset_memory_pressure_coordinator,
)
from pytest_memguard.probe import system
from pytest_memguard.probe.system import SystemMemory


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeMemory:
    """Reports ``fraction`` of 1000 bytes in use."""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = fraction
        self.reads = 0

    def __call__(self) -> tuple[int, int]:
        self.reads += 1
        return int(self.fraction * 1000), 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory()


@pytest.fixture
def coord(clock: FakeClock, memory: FakeMemory) -> Iterator[MemoryPressureCoordinator]:
    coordinator = MemoryPressureCoordinator(memory=memory, clock=clock)
    yield coordinator
    coordinator.stop()


class Service:
    """A service with its own cache, cleaned through a bound method."""

    def __init__(self) -> None:
        self.calls: list[Level] = []

    def cleanup(self, level: Level) -> int:
        self.calls.append(level)
        return 100


@pytest.mark.parametrize(
    ("fraction", "level"),
    [
        (0.0, Level.OK),
        (0.699, Level.OK),
        (0.70, Level.WARNING),
        (0.849, Level.WARNING),
        (0.85, Level.CRITICAL),
        (1.0, Level.CRITICAL),
    ],
)
def test_level_comes_from_the_fraction_in_use(
    coord: MemoryPressureCoordinator, memory: FakeMemory, fraction: float, level: Level
) -> None:
    memory.fraction = fraction
    assert coord.level() is level
    assert coord.fraction_used() == pytest.approx(fraction, abs=0.001)
    assert coord.level_of(fraction) is level  # the same rule, for a fraction given


def test_the_reader_may_return_an_object_with_used_and_total() -> None:
    reading = SystemMemory(total=1000, available=100, source="cgroup")
    coordinator = MemoryPressureCoordinator(memory=lambda: reading)
    assert coordinator.level() is Level.CRITICAL
    assert MemoryPressureCoordinator(memory=lambda: (5, 0)).level() is Level.OK


def test_the_default_reader_is_the_container_aware_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    reading = SystemMemory(total=2_000, available=500, source="cgroup", cgroup="v2:/x")
    monkeypatch.setattr(system, "read_system_memory", lambda: reading)
    coordinator = MemoryPressureCoordinator()
    assert coordinator.fraction_used() == 0.75
    assert coordinator.level() is Level.WARNING


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warning": 0.9, "critical": 0.8}, r"warning 0.9 is above critical 0.8"),
        ({"warning": 0}, r"warning must be a fraction in \(0, 1\], got 0"),
        ({"critical": 1.5}, r"critical must be a fraction in \(0, 1\], got 1.5"),
        ({"cooldown": -1}, r"cooldown must be >= 0 seconds, got -1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PressureError, match=message) as info:
        MemoryPressureCoordinator(**kwargs)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MemguardError)


def test_configure_changes_the_levels(coord: MemoryPressureCoordinator, memory: FakeMemory) -> None:
    memory.fraction = 0.6
    coord.configure(warning=0.5, critical=0.9, cooldown=1.0)
    assert (coord.warning, coord.critical, coord.cooldown) == (0.5, 0.9, 1.0)
    assert coord.level() is Level.WARNING
    with pytest.raises(PressureError):
        coord.configure(warning=0.95)
    assert coord.warning == 0.5


def test_register_unregister_and_duplicates(coord: MemoryPressureCoordinator) -> None:
    coord.register("a", lambda level: 1)
    coord.register("b", lambda level: 2)
    assert coord.handlers() == ["a", "b"]
    with pytest.raises(
        HandlerExistsError, match="a handler named 'a' is already registered"
    ) as info:
        coord.register("a", lambda level: 3)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, KeyError)
    with pytest.raises(PressureError, match="not callable"):
        coord.register("c", 42)  # type: ignore[arg-type]
    assert coord.unregister("a") is True
    assert coord.unregister("a") is False
    assert coord.handlers() == ["b"]


def test_nothing_runs_at_ok(coord: MemoryPressureCoordinator, memory: FakeMemory) -> None:
    calls: list[Level] = []
    coord.register("h", calls.append)
    memory.fraction = 0.1
    response = coord.handle_memory_pressure()
    assert response == PressureResponse(Level.OK, False, {}, {}, "ok", 500.0)
    assert coord.handle_memory_pressure(Level.OK, force=True).ran is False
    assert calls == []


def test_handlers_run_with_the_level_and_report_bytes(
    coord: MemoryPressureCoordinator, memory: FakeMemory
) -> None:
    service = Service()
    coord.register("service", service.cleanup)
    coord.register("silent", lambda level: None)
    memory.fraction = 0.9
    response = coord.handle_memory_pressure()
    assert response.ran is True
    assert response.level is Level.CRITICAL
    assert response.reason is None
    assert response.freed == {"service": 100, "silent": 0}
    assert response.total_freed == 100
    assert service.calls == [Level.CRITICAL]
    assert response.as_dict()["level"] == "critical"


def test_a_failing_handler_does_not_stop_the_others(
    coord: MemoryPressureCoordinator, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken(level: Level) -> int:
        raise RuntimeError("cache is gone")

    def first(level: Level) -> int:
        ran.append("first")
        return 1

    def last(level: Level) -> int:
        ran.append("last")
        return 2

    coord.register("first", first)
    coord.register("broken", broken)
    coord.register("bad-return", lambda level: "lots")  # type: ignore[arg-type,return-value]
    coord.register("last", last)
    with caplog.at_level(logging.WARNING, logger="pytest_memguard.library.pressure"):
        response = coord.handle_memory_pressure(Level.WARNING)
    assert ran == ["first", "last"]
    assert response.freed == {"first": 1, "last": 2}
    assert response.errors["broken"] == "RuntimeError: cache is gone"
    assert "returned 'lots'" in response.errors["bad-return"]
    assert "pressure handler 'broken' failed" in caplog.text
    assert "cache is gone" in caplog.text


def test_cooldown_blocks_a_second_run_unless_forced(
    coord: MemoryPressureCoordinator, clock: FakeClock
) -> None:
    calls: list[Level] = []

    def handler(level: Level) -> int:
        calls.append(level)
        return 10

    coord.register("h", handler)
    assert coord.handle_memory_pressure(Level.WARNING).ran
    clock.advance(59.0)
    blocked = coord.handle_memory_pressure(Level.CRITICAL)
    assert (blocked.ran, blocked.reason) == (False, "cooldown")
    assert blocked.retry_in == pytest.approx(1.0)
    forced = coord.handle_memory_pressure(Level.CRITICAL, force=True)
    assert forced.ran
    clock.advance(59.0)
    assert coord.handle_memory_pressure(Level.WARNING).reason == "cooldown"  # forced run counts
    clock.advance(1.0)
    assert coord.handle_memory_pressure(Level.WARNING).ran
    assert calls == [Level.WARNING, Level.CRITICAL, Level.WARNING]
    assert [r.reason for r in coord.history()] == [None, "cooldown", None, "cooldown", None]
    assert coord.last_run == clock.now


def test_a_weakly_registered_method_does_not_keep_its_object_alive(
    coord: MemoryPressureCoordinator,
) -> None:
    service = Service()
    alive = weakref.ref(service)
    coord.register("service", service.cleanup)
    assert coord.handlers() == ["service"]
    del service
    gc.collect()
    assert alive() is None
    assert coord.handlers() == []
    assert coord.handle_memory_pressure(Level.CRITICAL).freed == {}
    coord.register("service", Service().cleanup)  # the name is free again


def test_strong_registration_keeps_the_object(coord: MemoryPressureCoordinator) -> None:
    service = Service()
    alive = weakref.ref(service)
    coord.register("service", service.cleanup, weak=False)
    coord.register("func", lambda level: 5)  # functions are always held strongly
    del service
    gc.collect()
    survivor = alive()
    assert survivor is not None
    assert coord.handle_memory_pressure(Level.WARNING).freed == {"service": 100, "func": 5}
    assert survivor.calls == [Level.WARNING]


def test_async_handlers_are_awaited_from_sync_code(coord: MemoryPressureCoordinator) -> None:
    async def release(level: Level) -> int:
        await asyncio.sleep(0)
        return 1000

    async def broken(level: Level) -> int:
        await asyncio.sleep(0)
        raise ValueError("async boom")

    coord.register("sync", lambda level: 1)
    coord.register("async", release)
    coord.register("broken", broken)
    response = coord.handle_memory_pressure(Level.CRITICAL)
    assert response.freed == {"sync": 1, "async": 1000}
    assert response.errors == {"broken": "ValueError: async boom"}


def test_ahandle_awaits_async_handlers_on_the_running_loop(
    coord: MemoryPressureCoordinator, memory: FakeMemory
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    class AsyncService:
        async def cleanup(self, level: Level) -> int:
            loops.append(asyncio.get_running_loop())
            return 7

    service = AsyncService()
    coord.register("service", service.cleanup)
    coord.register("sync", lambda level: 3)
    memory.fraction = 0.75

    async def main() -> tuple[PressureResponse, asyncio.AbstractEventLoop]:
        return await coord.ahandle_memory_pressure(), asyncio.get_running_loop()

    response, loop = asyncio.run(main())
    assert response.level is Level.WARNING
    assert response.freed == {"service": 7, "sync": 3}
    assert loops == [loop]
    again = asyncio.run(coord.ahandle_memory_pressure(Level.CRITICAL))
    assert again.reason == "cooldown"


def test_the_sync_call_works_inside_a_running_loop(coord: MemoryPressureCoordinator) -> None:
    async def release(level: Level) -> int:
        return 9

    coord.register("async", release)

    async def main() -> PressureResponse:
        return coord.handle_memory_pressure(Level.WARNING)

    assert asyncio.run(main()).freed == {"async": 9}


def test_background_checking_runs_handlers_in_a_named_thread(
    coord: MemoryPressureCoordinator, memory: FakeMemory
) -> None:
    memory.fraction = 0.95
    ran = threading.Event()
    threads: list[str] = []

    def handler(level: Level) -> int:
        threads.append(threading.current_thread().name)
        ran.set()
        return 0

    coord.register("h", handler)
    coord.start(interval=0.01)
    coord.start(interval=0.01)  # already running: no second thread
    assert [t.name for t in threading.enumerate()].count("memguard-pressure") == 1
    assert coord.running
    assert ran.wait(10.0)
    coord.stop()
    assert not coord.running
    assert "memguard-pressure" not in [t.name for t in threading.enumerate()]
    assert threads == ["memguard-pressure"]  # the cooldown held later checks back
    with pytest.raises(PressureError, match="interval must be > 0"):
        coord.start(0)


def test_the_coordinator_is_a_context_manager(clock: FakeClock, memory: FakeMemory) -> None:
    with MemoryPressureCoordinator(memory=memory, clock=clock) as coordinator:
        assert coordinator.running
    assert not coordinator.running


def test_only_one_of_eight_racing_threads_runs_within_the_cooldown(
    coord: MemoryPressureCoordinator,
) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def handler(level: Level) -> int:
        with lock:
            calls.append(1)
        return 1

    coord.register("h", handler)
    responses: list[PressureResponse] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(50):
            response = coord.handle_memory_pressure(Level.CRITICAL)
            with lock:
                responses.append(response)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(responses) == 400
    assert sum(r.ran for r in responses) == 1
    assert len(calls) == 1


def test_counters_hold_when_eight_threads_run_register_and_unregister(clock: FakeClock) -> None:
    coord = MemoryPressureCoordinator(memory=FakeMemory(0.9), clock=clock, cooldown=0.0)
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def make(name: str) -> Any:
        def handler(level: Level) -> int:
            with lock:
                counts[name] = counts.get(name, 0) + 1
            return 1

        return handler

    coord.register("steady", make("steady"))
    ran: list[PressureResponse] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        barrier.wait()
        try:
            for n in range(100):
                name = f"t{index}-{n}"
                coord.register(name, make(name))
                response = coord.handle_memory_pressure()
                with lock:
                    ran.append(response)
                assert coord.unregister(name)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(ran) == 800
    assert all(r.ran for r in ran)
    assert counts["steady"] == 800
    assert all(r.freed["steady"] == 1 for r in ran)
    assert coord.handlers() == ["steady"]
    assert len(coord.history()) == 50  # bounded


def test_the_process_wide_coordinator_is_built_once_and_reset_stops_it() -> None:
    reset_memory_pressure_coordinator()
    try:
        first = get_memory_pressure_coordinator()
        assert get_memory_pressure_coordinator() is first
        assert (first.warning, first.critical, first.cooldown) == (0.70, 0.85, 60.0)
        first.start(interval=60.0)
        reset_memory_pressure_coordinator()
        assert not first.running
        assert get_memory_pressure_coordinator() is not first
    finally:
        reset_memory_pressure_coordinator()
