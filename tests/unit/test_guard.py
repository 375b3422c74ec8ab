"""The guard, driven step by step with a fake RSS reader, clock and interrupt."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_memguard import Guard, Level, MemoryLimitExceeded, MemoryThresholds
from pytest_memguard.core.guard import AbortInfo, LevelEvent
from pytest_memguard.probe.process import SampledPeakMeter

MB = 1_000_000


class Fake:
    """A process whose RSS and clock the test sets, and that counts interrupts and exits."""

    def __init__(self) -> None:
        self.rss = 100 * MB
        self.now = 0.0
        self.interrupts = 0
        self.exits: list[int] = []
        self.events: list[LevelEvent] = []
        self.growth: list[tuple[str, int]] = []
        self.escalations: list[AbortInfo] = []

    def guard(self, thresholds: MemoryThresholds, **kw: object) -> Guard:
        return Guard(
            thresholds,
            reader=lambda: self.rss,
            clock=lambda: self.now,
            interrupt=self.interrupt,
            exit=self.exits.append,
            on_event=self.events.append,
            on_growth=lambda unit, rss: self.growth.append((unit, rss)),
            on_escalate=self.escalations.append,
            escalate_fd=None,
            **kw,  # type: ignore[arg-type]
        )

    def interrupt(self) -> None:
        self.interrupts += 1


@pytest.fixture
def fake() -> Fake:
    return Fake()


def test_level_events_fire_once_per_rise(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds("200MB", "300MB", None))
    guard.poll()
    assert fake.events == []
    fake.rss = 250 * MB
    guard.begin("t::a")
    guard.poll()
    guard.poll()
    assert [e.level for e in fake.events] == [Level.WARNING]
    assert fake.events[0].unit == "t::a"
    assert fake.events[0].threshold == 200 * MB
    assert fake.events[0].message == (
        "RSS 238.4 MiB reached the warning threshold 190.7 MiB (warning) while running t::a"
    )
    fake.rss = 350 * MB
    guard.poll()
    assert [e.level for e in fake.events] == [Level.WARNING, Level.CRITICAL]
    fake.rss = 100 * MB
    guard.poll()
    fake.rss = 250 * MB
    guard.poll()
    assert [e.level for e in fake.events] == [Level.WARNING, Level.CRITICAL, Level.WARNING]
    assert [e.level for e in guard.drain_events()] == [Level.WARNING, Level.CRITICAL, Level.WARNING]
    assert guard.drain_events() == []
    assert guard.max_rss == 350 * MB


def test_nothing_is_interrupted_unless_armed(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="500MB"))
    fake.rss = 600 * MB
    guard.poll()
    guard.begin("t::a")
    guard.poll()
    assert fake.interrupts == 0
    assert guard.end() is None


def test_hard_limit_interrupts_then_resends(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="500MB"), resend=0.05, grace=2.0)
    guard.begin("t::a")
    guard.arm()
    guard.poll()
    assert fake.interrupts == 0
    fake.rss = 520 * MB
    guard.poll()
    assert fake.interrupts == 1
    fake.now = 0.02
    guard.poll()
    assert fake.interrupts == 1, "no re-send before the resend period"
    fake.now = 0.05
    guard.poll()
    assert fake.interrupts == 2
    fake.now = 0.1
    guard.poll()
    assert fake.interrupts == 3
    guard.disarm()
    info = guard.end()
    assert info == AbortInfo("t::a", 520 * MB, 500 * MB, "max", 3, False)
    assert (
        info.message == "RSS 495.9 MiB passed the hard limit 476.8 MiB (max); the test was stopped"
    )
    assert fake.exits == []


def test_unit_limit_below_the_process_max_wins(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="1GB", sources={"max": "--memguard-max"}))
    guard.begin("t::a", limit=300 * MB, source="memory_budget(rss='300 MB')")
    guard.arm()
    fake.rss = 310 * MB
    guard.poll()
    info = guard.aborted()
    assert info is not None
    assert (info.limit, info.source) == (300 * MB, "memory_budget(rss='300 MB')")
    guard.end()
    guard.begin("t::b", limit=2000 * MB, source="marker")
    guard.arm()
    guard.poll()
    assert guard.aborted() is None, "a unit limit above max does not raise the max"
    fake.rss = 1000 * MB
    guard.poll()
    info = guard.aborted()
    assert info is not None
    assert info.source == "--memguard-max"


@pytest.mark.parametrize(
    ("rss_mb", "grace_left"),
    [(400, 2.0), (450, 1.0)],
    ids=["at-the-limit-the-whole-grace", "half-way-to-the-ceiling-half-of-it"],
)
def test_escalates_after_the_grace_time_at_its_rss(
    fake: Fake, rss_mb: int, grace_left: float
) -> None:
    guard = fake.guard(MemoryThresholds(max="400MB"), grace=2.0, ceiling=1.25)
    guard.begin("t::swallow")
    guard.arm()
    fake.rss = rss_mb * MB
    guard.poll()
    fake.now = grace_left - 0.01
    guard.poll()
    assert fake.exits == []
    fake.now = grace_left
    guard.poll()
    assert fake.exits == [1]
    assert len(fake.escalations) == 1
    assert fake.escalations[0].escalated
    assert fake.escalations[0].unit == "t::swallow"


def test_escalates_at_once_past_the_ceiling(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="400MB"), ceiling=1.25)
    guard.begin("t::a")
    guard.arm()
    fake.rss = 410 * MB
    guard.poll()
    fake.now = 0.01
    fake.rss = 501 * MB
    guard.poll()
    assert fake.exits == [], "the first interrupt gets a moment to work"
    fake.now = 0.1
    guard.poll()
    assert fake.exits == [1]


def test_the_grace_time_shrinks_towards_the_ceiling(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="400MB"), grace=2.0, ceiling=1.25)
    assert guard.ceiling_of(400 * MB) == 500 * MB
    assert guard.grace_at(400 * MB, 400 * MB) == 2.0
    assert guard.grace_at(450 * MB, 400 * MB) == 1.0
    assert guard.grace_at(500 * MB, 400 * MB) == 0.0


def test_the_ceiling_stays_below_the_memory_the_process_can_use(fake: Fake) -> None:
    # A container of 1,000 MB, the hard limit at 90%: 1.25 x the limit would be past
    # the container's limit, where the kernel's OOM killer ends the process first.
    guard = fake.guard(MemoryThresholds(max="900MB"), memory=1000 * MB)
    assert guard.ceiling_of(900 * MB) == 925 * MB
    assert guard.ceiling_of(1200 * MB) == 1200 * MB, "a limit past the memory: no room"
    guard.begin("t::runaway")
    guard.arm()
    fake.rss = 910 * MB
    guard.poll()
    assert (fake.interrupts, fake.exits) == (1, [])
    fake.now = 0.005
    fake.rss = 926 * MB  # caught the interrupt and went on allocating
    guard.poll()
    assert fake.exits == [1], "still growing near the wall: no moment to unwind"


def test_one_large_allocation_near_the_wall_gets_its_moment(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="900MB"), memory=1000 * MB)
    guard.begin("t::one_array")
    guard.arm()
    fake.rss = 960 * MB  # one allocation took it past the ceiling at once
    guard.poll()
    fake.now = 0.05
    guard.poll()  # not growing: the interrupt is unwinding it
    assert fake.exits == []
    fake.rss = 300 * MB
    fake.now = 0.2
    guard.poll()
    assert fake.exits == []


def test_a_later_phase_of_a_stopped_unit_is_left_to_clean_up(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(max="500MB"), grace=1.0)
    guard.begin("t::a")
    guard.arm()  # setup
    guard.disarm()
    guard.arm()  # call
    fake.rss = 550 * MB
    guard.poll()
    assert fake.interrupts == 1
    guard.disarm()
    guard.arm()  # teardown: memory still over the limit until the fixture frees it
    fake.now = 5.0
    guard.poll()
    assert fake.interrupts == 1
    assert fake.exits == []
    fake.rss = 700 * MB
    guard.poll()
    assert fake.exits == [1], "the ceiling still applies"


def test_growth_is_reported_in_steps(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(), growth_step=50 * MB)
    guard.begin("t::a")
    for rss in (10, 40, 60, 80, 130):
        fake.rss = rss * MB
        guard.poll()
    assert fake.growth == [("t::a", 60 * MB), ("t::a", 130 * MB)]


def test_a_real_interrupt_stops_a_loop_and_a_sleep() -> None:
    """With the real signal: the main thread is interrupted, even inside time.sleep."""
    held = bytearray(0)
    rss = [50 * MB]
    with Guard(MemoryThresholds(max="100MB"), reader=lambda: rss[0], interval=0.005) as guard:
        guard.begin("t::sleep")
        guard.arm()
        threading.Timer(0.05, lambda: rss.__setitem__(0, 150 * MB)).start()
        started = time.monotonic()
        with pytest.raises(MemoryLimitExceeded) as excinfo:
            time.sleep(5)
        guard.disarm()
        assert time.monotonic() - started < 2
        assert excinfo.value.limit == 100 * MB
        assert "passed the hard limit" in str(excinfo.value)
        info = guard.end()
        assert info is not None
        assert info.signals >= 1
    del held


def test_the_interrupt_is_not_an_exception() -> None:
    rss = [50 * MB]
    caught_by_except_exception = False
    with Guard(MemoryThresholds(max="100MB"), reader=lambda: rss[0], interval=0.005) as guard:
        guard.begin("t::loop")
        guard.arm()
        rss[0] = 200 * MB

        def swallow_exceptions() -> None:
            nonlocal caught_by_except_exception
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.001)
                except Exception:
                    caught_by_except_exception = True

        with pytest.raises(MemoryLimitExceeded):
            swallow_exceptions()
        guard.disarm()
        guard.end()
    assert not caught_by_except_exception


def test_stop_restores_the_previous_signal_handler() -> None:
    import signal

    before = signal.getsignal(signal.SIGUSR1)
    guard = Guard(MemoryThresholds()).start()
    assert signal.getsignal(signal.SIGUSR1) != before
    guard.stop()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_the_watchdog_samples_less_often_far_below_every_limit(fake: Fake) -> None:
    guard = fake.guard(
        MemoryThresholds("1GB", "2GB", "4GB"), interval=0.02, max_interval=0.1, growth_rate=1e9
    )
    fake.rss = 100 * MB
    guard.poll()
    assert guard.wait == 0.1  # 900 MB of headroom at 1 GB/s: the longest wait
    fake.rss = 950 * MB
    guard.poll()
    assert guard.wait == pytest.approx(0.05)  # 50 MB to the warning threshold
    fake.rss = 3990 * MB
    guard.poll()
    assert guard.wait == 0.02  # never less than the interval
    fake.rss = 5000 * MB
    guard.poll()
    assert guard.wait == 0.02  # over the hard limit


def test_a_unit_limit_paces_the_watchdog_and_a_sampled_meter_keeps_it_fast(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds(), interval=0.02, max_interval=0.1, growth_rate=1e9)
    fake.rss = 100 * MB
    guard.poll()
    assert guard.wait == 0.1  # no limit at all
    guard.begin("t::capped", limit=130 * MB, armed=True)
    guard.poll()
    assert guard.wait == pytest.approx(0.03)
    sampled = fake.guard(MemoryThresholds(), peak_meter=SampledPeakMeter(lambda: fake.rss))
    sampled.poll()
    assert sampled.wait == sampled.interval


def test_a_cheap_upper_bound_below_every_limit_spares_the_exact_reading(fake: Fake) -> None:
    reads = []

    def reader() -> int:
        reads.append(fake.rss)
        return fake.rss

    bound = [150 * MB]
    guard = Guard(
        MemoryThresholds("200MB", "300MB", "400MB"),
        reader=reader,
        upper_bound=lambda: bound[0],
        upper_bound_slack=0,
        on_event=fake.events.append,
        interrupt=fake.interrupt,
    )
    fake.rss = 120 * MB
    assert guard.poll() == 150 * MB
    assert reads == []
    bound[0] = 250 * MB  # a past spike, or the RSS now: the exact reading decides
    assert guard.poll() == 120 * MB
    assert reads == [120 * MB]
    assert fake.events == []
    fake.rss = 250 * MB
    guard.poll()
    assert [e.level for e in fake.events] == [Level.WARNING]


def test_armed_within_a_function_the_guard_interrupts_only_that_function() -> None:
    """Armed within a function's code, the signal is refused in the code around it (and
    sent again), and raised once that function runs."""
    rss = [110 * MB]  # over the limit, under the ceiling (125 MB) that ends the process

    def work() -> None:
        time.sleep(5)

    with Guard(MemoryThresholds(max="100MB"), reader=lambda: rss[0], interval=0.005) as guard:
        guard.begin("t::within", armed=True, within=work.__code__)
        started = time.monotonic()
        time.sleep(0.3)  # over the limit, but outside work(): the signals are refused
        assert guard.aborted() is not None, "the watchdog did fire"
        with pytest.raises(MemoryLimitExceeded):
            work()
        assert time.monotonic() - started < 2
        info = guard.end()
        assert info is not None
        assert info.signals >= 2


def test_pause_disarms_and_says_whether_there_is_news(fake: Fake) -> None:
    guard = fake.guard(MemoryThresholds("200MB", None, "500MB"))
    guard.begin("t::a")
    guard.arm()
    guard.poll()
    assert guard.pause() is False  # nothing happened
    fake.rss = 250 * MB
    guard.poll()
    assert guard.pause() is True  # a level event waits
    assert [e.level for e in guard.drain_events()] == [Level.WARNING]
    assert guard.pause() is False
    fake.rss = 600 * MB
    guard.poll()
    assert fake.interrupts == 0  # paused: disarmed
    guard.arm()
    guard.poll()
    assert fake.interrupts == 1
    assert guard.pause() is True  # the unit was stopped
    assert guard.end() is not None
