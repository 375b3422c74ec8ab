"""A runaway test is stopped at its hard cap, and the run goes on."""

import pytest


@pytest.mark.memory_budget(rss="500 MB")
def test_runaway():
    """Grows without end; memguard stops it when the process passes 500 MB."""
    chunks = []
    while True:
        chunks.append(bytearray(20_000_000))


def test_runs_after_the_runaway():
    """The run went on, and the runaway's memory was given back."""
    assert True
