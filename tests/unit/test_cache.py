"""BoundedCache, CacheManager, the process-wide manager and the shared sweeper."""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_memguard.core.levels import Level
from pytest_memguard.errors import MemguardError
from pytest_memguard.library import cache as cache_module
from pytest_memguard.library.cache import (
    BoundedCache,
    CacheError,
    CacheExistsError,
    CacheManager,
    CacheSweeper,
    deep_sizeof,
    get_cache_manager,
    get_cache_sweeper,
    reset_cache_manager,
)
from pytest_memguard.library.pressure import (
    get_memory_pressure_coordinator,
    reset_memory_pressure_coordinator,
)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def process_wide() -> Iterator[None]:
    reset_cache_manager()
    reset_memory_pressure_coordinator()
    yield
    reset_cache_manager()
    reset_memory_pressure_coordinator()


def _cache(clock: FakeClock, **kwargs: Any) -> BoundedCache[str, Any]:
    options: dict[str, Any] = {"max_memory": 10_000, "sizeof": len, "clock": clock}
    options.update(kwargs)
    return BoundedCache(**options)


def test_defaults_are_those_of_the_contract() -> None:
    cache: BoundedCache[str, str] = BoundedCache()
    assert cache.max_size == 500
    assert cache.max_memory == 50_000_000
    assert cache.cleanup_interval == 60.0
    metrics = cache.metrics()
    assert metrics.max_memory_bytes == 50_000_000
    assert metrics.max_size == 500


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_size": 0}, "max_size must be a positive int of entries, got 0"),
        ({"max_memory": "12 apples"}, "max_memory: invalid size '12 apples'"),
        ({"max_memory": 0}, "max_memory must be at least 1 byte, got 0"),
        ({"ttl": 0}, "ttl must be a number of seconds > 0, got 0"),
        ({"cleanup_interval": -1}, "cleanup_interval must be a number of seconds > 0, got -1"),
        (
            {"pressure_threshold": 1.5},
            r"pressure_threshold must be a fraction in \(0, 1\], got 1.5",
        ),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CacheError, match=message) as info:
        BoundedCache(**kwargs)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MemguardError)


def test_set_get_contains_len_delete_clear(clock: FakeClock) -> None:
    cache = _cache(clock)
    assert cache.set("a", "xx") is True
    cache["b"] = "yyy"
    assert cache.get("a") == "xx"
    assert cache["b"] == "yyy"
    assert cache.get("missing") is None
    assert cache.get("missing", "dflt") == "dflt"
    with pytest.raises(KeyError):
        cache["missing"]
    assert "a" in cache
    assert "missing" not in cache
    assert len(cache) == 2
    assert cache.memory_bytes == 5
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.memory_bytes == 3
    cache.clear()
    assert len(cache) == 0
    assert cache.memory_bytes == 0
    assert "0/500 entries" in repr(cache)


def test_replacing_a_value_accounts_its_size_once(clock: FakeClock) -> None:
    cache = _cache(clock)
    cache.set("a", "x" * 100)
    cache.set("a", "x" * 40)
    assert cache.memory_bytes == 40
    assert len(cache) == 1


def test_get_refreshes_the_lru_order(clock: FakeClock) -> None:
    cache = _cache(clock, max_size=3)
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"  # now b is the least recently used
    cache.set("d", "d")
    assert cache.keys() == ["c", "a", "d"]
    assert "b" not in cache
    assert cache.metrics().evictions == 1


def test_contains_does_not_refresh_the_lru_order(clock: FakeClock) -> None:
    cache = _cache(clock, max_size=2)
    cache.set("a", "a")
    cache.set("b", "b")
    assert "a" in cache
    cache.set("c", "c")
    assert cache.keys() == ["b", "c"]


def test_expired_entries_are_never_returned(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=10.0)
    cache.set("a", "1")
    cache.set("b", "2", ttl=100.0)
    clock.advance(9.9)
    assert cache.get("a") == "1"
    clock.advance(0.1)
    assert cache.get("a") is None
    assert "a" not in cache
    assert cache.get("b") == "2"
    assert len(cache) == 1
    metrics = cache.metrics()
    assert metrics.expirations == 1
    assert metrics.misses == 1
    assert metrics.hits == 2


def test_len_and_metrics_do_not_count_expired_entries(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=5.0)
    for key in "abcd":
        cache.set(key, key)
    clock.advance(5.0)
    assert len(cache) == 0
    assert cache.metrics().size == 0
    assert cache.metrics().expirations == 4
    assert cache.memory_bytes == 0


def test_no_ttl_means_no_expiry(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=None)
    cache.set("a", "1")
    clock.advance(10**9)
    assert cache.get("a") == "1"


def test_access_sweeps_expired_entries_every_cleanup_interval(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=10.0, cleanup_interval=60.0)
    for key in "abc":
        cache.set(key, "xxxx")
    cache.set("keep", "yy", ttl=1000.0)
    clock.advance(30.0)
    assert cache.get("keep") == "yy"
    assert cache.memory_bytes == 14  # expired, but not swept before the interval
    clock.advance(30.0)
    assert cache.get("keep") == "yy"  # this access is due to sweep
    assert cache.memory_bytes == 2
    assert cache.metrics().expirations == 3


def test_cleanup_reports_what_it_removed(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=10.0)
    cache.set("a", "1")
    cache.set("b", "2")
    cache.set("c", "3", ttl=50.0)
    assert cache.cleanup() == 0
    clock.advance(10.0)
    assert cache.cleanup() == 2
    assert cache.cleanup() == 0
    assert cache.keys() == ["c"]


def test_sweep_if_due_waits_for_the_interval(clock: FakeClock) -> None:
    cache = _cache(clock, ttl=1.0, cleanup_interval=10.0)
    cache.set("a", "1")
    clock.advance(5.0)
    assert cache.sweep_if_due() == 0
    clock.advance(5.0)
    assert cache.sweep_if_due() == 1


def test_bytes_past_the_pressure_fraction_evict_lru_until_under(clock: FakeClock) -> None:
    cache = _cache(clock, max_memory=1000, pressure_threshold=0.8)
    for key in "abcd":
        cache.set(key, "x" * 200)  # 800 bytes: at the threshold, not past it
    assert len(cache) == 4
    cache.get("a")
    cache.set("e", "x" * 150)  # 950 > 800: b, the least recently used, goes
    assert cache.keys() == ["c", "d", "a", "e"]
    assert cache.memory_bytes == 750
    cache.set("f", "x" * 500)  # 1250: c, d and a go
    assert cache.keys() == ["e", "f"]
    assert cache.memory_bytes == 650
    assert cache.metrics().evictions == 4


def test_a_value_larger_than_the_bound_is_rejected(clock: FakeClock) -> None:
    cache = _cache(clock, max_memory=1000)
    cache.set("small", "x")
    cache.set("big", "old")
    assert cache.set("big", "x" * 1001) is False
    assert "big" not in cache
    assert cache.get("small") == "x"
    metrics = cache.metrics()
    assert metrics.rejected == 1
    assert metrics.memory_bytes == 1


def test_a_value_under_the_bound_but_past_the_fraction_is_kept_alone(clock: FakeClock) -> None:
    cache = _cache(clock, max_memory=1000, pressure_threshold=0.5)
    cache.set("a", "x" * 100)
    assert cache.set("big", "x" * 900) is True
    assert cache.keys() == ["big"]
    assert cache.metrics().pressure == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("level", "left"),
    [(Level.OK, 8), (Level.WARNING, 4), (Level.CRITICAL, 2), (Level.ABORT, 0)],
)
def test_memory_pressure_drops_the_least_recently_used_share(
    clock: FakeClock, level: Level, left: int
) -> None:
    cache = _cache(clock)
    for index in range(8):
        cache.set(f"k{index}", "x" * 10)
    freed = cache.handle_memory_pressure(level)
    assert freed == (8 - left) * 10
    assert cache.keys() == [f"k{index}" for index in range(8 - left, 8)]
    assert cache.metrics().evictions == 8 - left


def test_metrics_report_counters_and_rates(clock: FakeClock) -> None:
    cache = _cache(clock, max_memory=1000)
    cache.set("a", "x" * 250)
    cache.get("a")
    cache.get("a")
    cache.get("a")
    cache.get("b")
    metrics = cache.metrics()
    assert (metrics.hits, metrics.misses) == (3, 1)
    assert metrics.hit_rate == 0.75
    assert metrics.pressure == 0.25
    assert metrics.size == 1
    assert metrics.memory_bytes == 250
    assert metrics.as_dict()["max_memory_bytes"] == 1000
    assert BoundedCache(clock=clock).metrics().hit_rate == 0.0


def test_default_size_is_a_deep_estimate_of_key_and_value(clock: FakeClock) -> None:
    cache: BoundedCache[str, Any] = BoundedCache(clock=clock)
    cache.set("flat", "x" * 10_000)
    assert cache.memory_bytes >= 10_000
    before = cache.memory_bytes
    cache.set("nested", {"list": ["y" * 5_000, ["z" * 5_000]]})
    assert cache.memory_bytes - before >= 10_000


def test_deep_sizeof_follows_containers_and_objects_once() -> None:
    payload = "p" * 10_000

    class Slotted:
        __slots__ = ("value",)

        def __init__(self, value: object) -> None:
            self.value = value

    class Plain:
        def __init__(self, value: object) -> None:
            self.value = value

    assert deep_sizeof(payload) == sys.getsizeof(payload)
    assert deep_sizeof([payload, payload]) < 2 * sys.getsizeof(payload)  # shared once
    assert deep_sizeof(Slotted(payload)) > 10_000
    assert deep_sizeof(Plain(payload)) > 10_000
    assert deep_sizeof({"k": (payload,)}) > 10_000
    cycle: list[Any] = []
    cycle.append(cycle)
    assert deep_sizeof(cycle) == sys.getsizeof(cycle)
    assert deep_sizeof(Plain) == 0  # classes are shared, not owned


def test_a_negative_sizeof_is_an_error(clock: FakeClock) -> None:
    cache: BoundedCache[str, str] = BoundedCache(sizeof=lambda value: -1, clock=clock)
    with pytest.raises(CacheError, match="sizeof returned -1"):
        cache.set("a", "b")


def test_bounds_and_counters_hold_under_eight_threads() -> None:
    cache: BoundedCache[int, bytes] = BoundedCache(
        max_size=50, max_memory=4_000, pressure_threshold=0.9, sizeof=len, ttl=None
    )
    gets_per_thread = 3_000
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        for _ in range(gets_per_thread):
            key = rng.randrange(200)
            cache.set(key, bytes(rng.randrange(1, 120)))
            value = cache.get(rng.randrange(200))
            if value is not None and not isinstance(value, bytes):
                errors.append(repr(value))
            if rng.random() < 0.05:
                cache.delete(key)
            if len(cache) > 50 or cache.memory_bytes > 4_000:
                errors.append(f"bound broken: {len(cache)} entries, {cache.memory_bytes} bytes")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    metrics = cache.metrics()
    assert metrics.hits + metrics.misses == 8 * gets_per_thread
    assert metrics.size <= 50
    assert metrics.memory_bytes <= 3_600
    assert metrics.memory_bytes == sum(len(cache.get(k) or b"") for k in cache)


def test_manager_creates_gets_and_removes_named_caches(clock: FakeClock) -> None:
    manager = CacheManager(clock=clock, sizeof=len)
    prompts = manager.create_cache("prompts", max_size=10)
    assert manager.get_cache("prompts") is prompts
    assert prompts.max_size == 10
    assert prompts.name == "prompts"
    assert manager.get_cache("nope") is None
    assert "prompts" in manager
    assert len(manager) == 1
    with pytest.raises(CacheExistsError, match="a cache named 'prompts' already exists") as info:
        manager.create_cache("prompts")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, KeyError)
    assert manager.remove_cache("prompts") is True
    assert manager.remove_cache("prompts") is False
    assert manager.names() == []


def test_manager_takes_the_names_of_the_design(clock: FakeClock) -> None:
    manager = CacheManager(clock=clock, sizeof=len)
    cache = manager.create_cache("c", max_size=100, ttl_seconds=3600)
    cache.set("k", "v")
    clock.advance(3599.0)
    assert cache.get("k") == "v"
    clock.advance(2.0)
    assert cache.get("k") is None, "ttl_seconds is the entries' ttl"
    assert manager.get_cache_stats() == manager.stats()
    with pytest.raises(TypeError, match="ttl or ttl_seconds, not both"):
        manager.create_cache("d", ttl=1.0, ttl_seconds=2.0)


def test_metrics_show_the_ttl_and_the_cleanup_interval(clock: FakeClock) -> None:
    manager = CacheManager(clock=clock, sizeof=len)
    manager.create_cache("c", ttl_seconds=3600, cleanup_interval=30)
    forever = manager.create_cache("forever", ttl=None)
    (c, f) = (manager.get_cache_stats()[name].as_dict() for name in ("c", "forever"))
    assert (c["ttl"], c["cleanup_interval"]) == (3600.0, 30.0)
    assert (f["ttl"], f["cleanup_interval"]) == (None, 60.0)
    assert (forever.ttl, forever.cleanup_interval) == (None, 60.0)


def test_manager_stats_clear_cleanup_and_pressure(clock: FakeClock) -> None:
    manager = CacheManager(clock=clock, sizeof=len, ttl=10.0)
    one = manager.create_cache("one")
    two = manager.create_cache("two")
    for index in range(4):
        one.set(f"k{index}", "x" * 10)
        two.set(f"k{index}", "y" * 20)
    stats = manager.stats()
    assert set(stats) == {"one", "two"}
    assert stats["one"].memory_bytes == 40
    assert manager.memory_bytes() == 120
    assert manager.handle_memory_pressure(Level.WARNING) == 20 + 40
    assert (len(one), len(two)) == (2, 2)
    clock.advance(10.0)
    assert manager.cleanup_all() == 4
    one.set("fresh", "z")
    manager.clear_all()
    assert manager.memory_bytes() == 0
    assert manager.names() == ["one", "two"]


@pytest.mark.usefixtures("process_wide")
def test_the_process_wide_manager_is_built_once_and_registers_for_pressure() -> None:
    manager = get_cache_manager()
    assert get_cache_manager() is manager
    assert cache_module.cache_manager is manager
    coordinator = get_memory_pressure_coordinator()
    assert "cache_manager" in coordinator.handlers()
    cache = manager.create_cache("shared", sizeof=len)
    for index in range(4):
        cache.set(f"k{index}", "x" * 100)
    response = coordinator.handle_memory_pressure(Level.CRITICAL)
    assert response.freed == {"cache_manager": 300}
    assert len(cache) == 1


@pytest.mark.usefixtures("process_wide")
def test_reset_builds_a_new_manager_and_reregisters_with_a_new_coordinator() -> None:
    first = get_cache_manager()
    old = get_memory_pressure_coordinator()
    reset_memory_pressure_coordinator()
    assert get_cache_manager() is first
    assert "cache_manager" in get_memory_pressure_coordinator().handlers()
    reset_cache_manager()
    assert "cache_manager" not in get_memory_pressure_coordinator().handlers()
    assert get_cache_manager() is not first
    assert "cache_manager" in old.handlers()  # the old one is not touched once replaced
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cache_module.nothing  # noqa: B018


def test_importing_builds_nothing_and_starts_no_thread() -> None:
    code = (
        "import threading;"
        "import pytest_memguard.library.cache as c, pytest_memguard.library.pressure as p;"
        "assert c._manager is None and c._sweeper is None and p._default is None;"
        "assert threading.active_count() == 1, threading.enumerate()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_sweeper_sweeps_due_caches_in_one_pass(clock: FakeClock) -> None:
    sweeper = CacheSweeper()
    due = _cache(clock, ttl=1.0, cleanup_interval=5.0)
    later = _cache(clock, ttl=1.0, cleanup_interval=50.0)
    for cache in (due, later):
        cache.set("a", "1")
        sweeper.add(cache, start=False)
    clock.advance(5.0)
    assert sweeper.sweep() == 1
    assert (due.memory_bytes, later.memory_bytes) == (0, 1)
    sweeper.discard(later)
    assert sweeper.caches() == [due]
    assert not sweeper.running


class _SignallingClock(FakeClock):
    """Sets ``swept`` once the sweeper thread has read it ``passes`` times."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.calls = 0
        self.passes = passes
        self.swept = threading.Event()

    def __call__(self) -> float:
        if threading.current_thread().name == "memguard-cache-sweeper":
            self.calls += 1
            if self.calls >= self.passes:
                self.swept.set()
        return self.now


@pytest.mark.usefixtures("process_wide")
def test_one_shared_named_thread_sweeps_idle_background_caches() -> None:
    clock = _SignallingClock(passes=4)
    caches = [
        BoundedCache[str, str](
            ttl=1.0, cleanup_interval=0.01, sizeof=len, clock=clock, background=True
        )
        for _ in range(2)
    ]
    for cache in caches:
        cache.set("a", "12345")
    sweepers = [t for t in threading.enumerate() if t.name == "memguard-cache-sweeper"]
    assert len(sweepers) == 1
    assert sweepers[0].daemon
    clock.advance(1.0)
    assert clock.swept.wait(10.0)
    sweeper = get_cache_sweeper()
    sweeper.stop()
    assert not sweeper.running
    assert not sweepers[0].is_alive()
    assert [cache.memory_bytes for cache in caches] == [0, 0]
    assert sweeper.passes >= 1


def test_the_sweeper_thread_ends_when_its_caches_are_gone(clock: FakeClock) -> None:
    sweeper = CacheSweeper(name="memguard-test-sweeper")
    cache = _cache(clock, cleanup_interval=0.01)
    sweeper.add(cache)
    (thread,) = [t for t in threading.enumerate() if t.name == "memguard-test-sweeper"]
    assert sweeper.running
    del cache
    gc.collect()
    thread.join(10.0)
    assert not thread.is_alive()  # it ended on its own: caches are held weakly
    assert not sweeper.running


def test_the_sweeper_stops_and_joins_on_leaving_with(clock: FakeClock) -> None:
    cache = _cache(clock)
    with CacheSweeper(name="memguard-test-sweeper") as sweeper:
        sweeper.add(cache)
        (thread,) = [t for t in threading.enumerate() if t.name == "memguard-test-sweeper"]
        assert sweeper.running
    assert not thread.is_alive()
    assert not sweeper.running
