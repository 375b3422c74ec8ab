"""A test's child processes count by the memory that is theirs: a forked pool's workers
by their private pages, not the parent's pages they share; a program it runs in full."""

from __future__ import annotations

import sys

import pytest

from .conftest import InnerSession, entry

MB = 1000 * 1000
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork pools and /proc: Linux"
)

#: A process that holds ~150 MB, then a fork pool of 2 workers that hold 20 MB each of
#: their own when the body ends (torn down after it, so the guard samples them).
FORK_POOL = """
import multiprocessing
import os

import pytest

HELD = bytearray(150 * 1000 * 1000)
HELD[::4096] = b"x" * len(HELD[::4096])
_barrier = None
_own = None


def _keep(barrier):
    global _barrier
    _barrier = barrier


def _grow(_):
    global _own
    _own = bytearray(20 * 1000 * 1000)
    _own[::4096] = b"y" * len(_own[::4096])
    _barrier.wait()  # both workers hold theirs: each took one task
    return os.getpid()


@pytest.fixture
def pool():
    context = multiprocessing.get_context("fork")
    workers = context.Pool(2, initializer=_keep, initargs=(context.Barrier(2),))
    yield workers
    workers.terminate()
    workers.join()


@pytest.mark.memory_budget("100MB")
def test_pool(pool):
    assert len(set(pool.map(_grow, range(2), chunksize=1))) == 2
"""

RUN_PROGRAM = """
import subprocess
import sys

import pytest

GROW = "b = bytearray(200_000_000); b[::4096] = b'z' * len(b[::4096])"


@pytest.mark.memory_budget("100MB")
def test_program():
    subprocess.run([sys.executable, "-c", GROW], check=True)


def test_tiny_program():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_a_fork_pools_workers_count_their_own_memory_not_the_parents(
    pytester: pytest.Pytester, run: InnerSession, xdist: tuple[str, ...]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_pool=FORK_POOL)
    result, report = run(*xdist)
    result.assert_outcomes(passed=1)
    test = entry(report, "test_pool")
    assert test["status"] == "ok", "within its 100MB budget: the shared pages are the parent's"
    assert 25 * MB < test["children_peak"] < 80 * MB, "2 x 20 MB, not 2 x ~170 MB of RSS"
    assert test["peak_delta"] < 20 * MB


def test_a_program_a_test_runs_counts_in_full(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(test_program=RUN_PROGRAM)
    result, report = run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    program = entry(report, "test_program")
    assert program["status"] == "over_budget"
    assert 190 * MB < program["children_peak"] < 260 * MB, "its memory is its own"
    assert "with its child processes'" in program["message"]
    tiny = entry(report, "test_tiny_program")
    assert (tiny["children_peak"] or 0) < 30 * MB, "not the floor a program inherits at exec"


def test_the_heaviest_tests_table_shows_child_processes(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(test_program=RUN_PROGRAM)
    result, report = run("-p", "no:randomly")
    program = entry(report, "test_program")
    result.stdout.fnmatch_lines(
        [
            "test * status * peak growth * children * peak RSS * end RSS * budget",
            f"test_program.py::test_program * OVER BUDGET * {_size(program['children_peak'])} *",
        ]
    )


def _size(value: int) -> str:
    from pytest_memguard.core.sizes import format_size

    return format_size(value)
