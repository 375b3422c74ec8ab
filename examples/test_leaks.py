"""Leak detection: one real leak among tests that only look like leaks."""

import functools

import pytest

KEPT = []


@functools.cache
def vocabulary():
    """Filled on first use and reused: a warm-up, not a leak."""
    return [f"word{i}" for i in range(100_000)]


@pytest.fixture
def buffer():
    data = bytearray(30_000_000)
    yield data
    del data


def test_warms_a_cache():
    assert len(vocabulary()) == 100_000


def test_uses_the_cache():
    assert vocabulary()[7] == "word7"


def test_fixture_memory_is_released(buffer):
    buffer[0] = 1


def test_keeps_growing_a_global():
    KEPT.append([bytes(1000) for _ in range(10_000)])  # 10 MB more on every run


@pytest.mark.memory_budget(leak="20 MB")
def test_keeps_a_little_by_design():
    KEPT.append(bytes(5_000_000))
