"""What an xdist worker sends of a test's result is what the controller gets back."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_memguard.core.sites import Site
from pytest_memguard.plugin.distributed.wire import decode_result, encode_result
from pytest_memguard.reporting.results import Budget, TestMemory

FULL = TestMemory(
    "tests/test_a.py::test_b[x-1]",
    "failed",
    "leak",
    "gw1",
    0.123456,
    rss_start=50_000_000,
    rss_end=61_000_000,
    rss_peak=90_000_000,
    peak_delta=40_000_000,
    heap_peak=12_000_000,
    leaked=11_000_000,
    budget=Budget(peak=30_000_000, leak=1_000_000, heap=None, rss=2_000_000_000),
    children_peak=7_000_000,
    prediction=64_000_000,
    beside=("tests/test_c.py::test_d", "tests/test_e.py::test_f"),
    sites=(Site("tests/test_a.py", 12, 10_000_000, 3), Site("x.py", 4, 1_000_000, 1)),
    message='memguard: kept 10.5 MiB "on a rerun"; é',
    reruns=2,
    leak_check={"rerun": "kept", "blocks": 12},
    started=1_760_000_000.125,
)


@pytest.mark.parametrize(
    "result",
    [
        FULL,
        TestMemory("t.py::test_bare", "passed", "ok", "gw0", 0.0),
        TestMemory.not_run("t.py::test_cut", "not run (interrupted)", "gw0"),
    ],
    ids=["every-field", "bare", "not-run"],
)
def test_a_result_comes_back_as_it_was_sent(result: TestMemory) -> None:
    assert decode_result(encode_result(result)) == result


def test_figures_travel_rounded_as_the_report_writes_them() -> None:
    sent = TestMemory("t.py::test_a", "passed", "ok", "gw0", 0.1234567, started=12.34567)
    received = decode_result(encode_result(sent))
    assert (received.duration_s, received.started) == (0.123457, 12.346)
    assert received.to_json() == sent.to_json()


def test_every_field_of_a_result_travels() -> None:
    """The wire is positional: a field added to TestMemory is set in FULL above, so that
    the round trip shows whether the wire carries it."""
    unset = [f.name for f in dataclasses.fields(TestMemory) if getattr(FULL, f.name) == f.default]
    assert not unset
