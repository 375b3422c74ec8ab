from __future__ import annotations

import pytest

from pytest_memguard import Level, MemoryThresholds, SizeError, ThresholdError
from pytest_memguard.core.sizes import PAGE_SIZE

MB = 1_000_000


def test_levels_are_ordered() -> None:
    assert Level.OK < Level.WARNING < Level.CRITICAL < Level.ABORT
    assert max(Level.WARNING, Level.CRITICAL) is Level.CRITICAL
    assert str(Level.CRITICAL) == "critical"


def test_level_of_an_rss() -> None:
    t = MemoryThresholds("1 GB", "2 GB", "4 GB")
    assert (t.warning, t.critical, t.max) == (10**9, 2 * 10**9, 4 * 10**9)
    assert t.level(0) is Level.OK
    assert t.level(10**9 - 1) is Level.OK
    assert t.level(10**9) is Level.WARNING
    assert t.level(3 * 10**9) is Level.CRITICAL
    assert t.level(4 * 10**9) is Level.ABORT
    assert t.limit_of(Level.CRITICAL) == 2 * 10**9
    assert t.limit_of(Level.OK) is None


def test_none_disables_a_threshold() -> None:
    t = MemoryThresholds(None, None, "1 GB")
    assert t.level(999_999_999) is Level.OK
    assert t.level(10**9) is Level.ABORT
    assert MemoryThresholds().level(2**60) is Level.OK


def test_thresholds_are_frozen() -> None:
    t = MemoryThresholds(max="1 GB")
    with pytest.raises(AttributeError):
        t.max = 5  # type: ignore[misc]


def test_out_of_order_thresholds_name_both_values() -> None:
    with pytest.raises(ThresholdError) as excinfo:
        MemoryThresholds("3GB", None, "1GB")
    assert str(excinfo.value) == (
        "warning '3GB' (2.8 GiB) is above max '1GB' (953.7 MiB)"
        " (expected warning <= critical <= max, e.g. 2GB, 3GB, 4GB)"
    )
    with pytest.raises(ThresholdError, match=r"critical '5GB'.*is above max '4GB'"):
        MemoryThresholds("1GB", "5GB", "4GB")
    assert isinstance(excinfo.value, ValueError)


def test_percentages_are_of_the_given_total() -> None:
    t = MemoryThresholds("50%", "75%", "100%", total=1000 * MB)
    assert (t.warning, t.critical, t.max) == (500 * MB, 750 * MB, 1000 * MB)
    calls: list[int] = []

    def total() -> int:
        calls.append(1)
        return 2000 * MB

    assert MemoryThresholds(max="10%", total=total).max == 200 * MB
    assert calls == [1]


def test_percentages_default_to_the_usable_memory() -> None:
    from pytest_memguard import read_system_memory

    t = MemoryThresholds(max="50%")
    assert t.max is not None
    assert abs(t.max - read_system_memory().total // 2) < 2**20


def test_bad_values_name_their_source() -> None:
    with pytest.raises(SizeError, match=r"^--memguard-max: invalid size '4 apples'"):
        MemoryThresholds(max="4 apples", sources={"max": "--memguard-max"})


def test_from_env_reads_the_plugin_variables() -> None:
    env = {"MEMGUARD_WARN": "1GB", "MEMGUARD_CRITICAL": "2 GB", "MEMGUARD_MAX": "3GiB"}
    t = MemoryThresholds.from_env(environ=env)
    assert (t.warning, t.critical, t.max) == (10**9, 2 * 10**9, 3 * 2**30)
    assert t.sources["max"] == "MEMGUARD_MAX"


def test_from_env_keeps_the_default_for_unset_variables() -> None:
    default = MemoryThresholds("1 GB", "2 GB", "4 GB")
    t = MemoryThresholds.from_env(
        environ={"MEMGUARD_MAX": "5GB", "MEMGUARD_WARN": " "}, default=default
    )
    assert (t.warning, t.critical, t.max) == (10**9, 2 * 10**9, 5 * 10**9)
    t = MemoryThresholds.from_env(prefix="APP_", environ={"APP_WARN": "100MB"})
    assert (t.warning, t.critical, t.max) == (10**8, None, None)


def test_from_env_errors_name_the_variable() -> None:
    with pytest.raises(SizeError) as excinfo:
        MemoryThresholds.from_env(environ={"MEMGUARD_MAX": "2G"})
    assert str(excinfo.value) == (
        "MEMGUARD_MAX: invalid size '2G': 'G' is ambiguous, MB or MiB? (expected e.g. 2MB or 2MiB)"
    )
    with pytest.raises(ThresholdError, match=r"MEMGUARD_WARN '5GB'.*above MEMGUARD_MAX '1GB'"):
        MemoryThresholds.from_env(environ={"MEMGUARD_MAX": "1GB", "MEMGUARD_WARN": "5GB"})


@pytest.mark.parametrize(
    "values",
    [
        {"max": 0},
        {"max": "0B"},
        {"warning": "1B"},
        {"critical": PAGE_SIZE - 1},
        {"max": "0.000000001%"},
    ],
)
def test_thresholds_below_one_page_are_refused(values: dict[str, int | str]) -> None:
    with pytest.raises(SizeError, match=r"a limit must be at least one memory page"):
        MemoryThresholds(**values, total=8 * 2**30)  # type: ignore[arg-type]


def test_one_page_is_the_smallest_threshold() -> None:
    assert MemoryThresholds(max=PAGE_SIZE).max == PAGE_SIZE


def test_from_env_refuses_what_the_plugin_refuses() -> None:
    with pytest.raises(SizeError, match=r"^MEMGUARD_MAX: invalid size '0B': a limit must be"):
        MemoryThresholds.from_env(environ={"MEMGUARD_MAX": "0B"})
    with pytest.raises(SizeError, match=r"^MEMGUARD_WARN: invalid size '\uff15GB': only ASCII"):
        MemoryThresholds.from_env(environ={"MEMGUARD_WARN": "\uff15GB"})
