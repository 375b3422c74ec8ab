"""Budgets kept and broken: what `pytest --memguard` measures and fails."""

import pytest


def test_small_allocation():
    """No budget: measured and listed, never failed."""
    data = bytearray(20_000_000)
    assert len(data) == 20_000_000


@pytest.mark.memory_budget("300 MB")
def test_within_budget():
    """Peaks at about 200 MB, under its 300 MB budget."""
    frames = [bytearray(50_000_000) for _ in range(4)]
    assert sum(map(len, frames)) == 200_000_000


@pytest.mark.memory_budget("100 MB")
def test_over_budget():
    """Peaks at about 250 MB for a few milliseconds: over its 100 MB budget, so it fails."""
    spike = bytearray(250_000_000)
    del spike


@pytest.mark.memory_budget(peak="50 MB", rss="2 GB")
def test_peak_and_cap():
    """A peak budget and an absolute cap on the process's RSS together."""
    rows = [bytes(1000) for _ in range(10_000)]
    assert len(rows) == 10_000
