"""Leak detection engine: real tracemalloc, known allocations, sites, verdicts."""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pluggy
import pytest

import pytest_memguard
from pytest_memguard.core.leaks import (
    DEFAULT_EXCLUDES,
    DEFAULT_NFRAMES,
    SMALL_BLOCK_MAX,
    HeapCount,
    LeakDiff,
    Tracer,
    Verdict,
    diff,
    format_sites,
    judge,
    leak_message,
    native_leak_message,
    relative_sites,
    take_snapshot,
)
from pytest_memguard.core.sites import Site, SiteRules, display_path, site_rules
from pytest_memguard.probe.process import c_heap_in_use, current_rss

KiB = 1024
MiB = 1024**2
HERE = os.path.abspath(__file__)
KEPT: list[object] = []  # what the "leaking" code below keeps, emptied after each test


def _next_line() -> int:
    """The line after the caller's: where the allocation under test is."""
    return sys._getframe(1).f_lineno + 1


@pytest.fixture(autouse=True)
def _restore_tracemalloc() -> Iterator[None]:
    """Leave tracemalloc as it was found (on or off, same frames), and KEPT empty."""
    was_tracing, frames = tracemalloc.is_tracing(), tracemalloc.get_traceback_limit()
    yield
    KEPT.clear()
    if tracemalloc.is_tracing() and not was_tracing:
        tracemalloc.stop()
    elif was_tracing and (
        not tracemalloc.is_tracing() or tracemalloc.get_traceback_limit() != frames
    ):
        tracemalloc.stop()
        tracemalloc.start(frames)


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    """A tracer that owns tracing with the default frames (any tracing found is stopped)."""
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracer = Tracer()
    tracer.ensure()
    yield tracer
    tracer.release()


def settled() -> tracemalloc.Snapshot:
    gc.collect()
    return take_snapshot()


# Tracer


def test_tracer_starts_tracing_and_stops_what_it_started() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracer = Tracer()
    tracer.ensure()
    assert tracer.tracing
    assert tracer.nframes == DEFAULT_NFRAMES
    tracer.release()
    assert not tracemalloc.is_tracing()


def test_tracer_is_reference_counted() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracer = Tracer()
    tracer.ensure()  # the session
    tracer.ensure(16)  # one test: tracing is on, its frames stay
    assert tracer.nframes == DEFAULT_NFRAMES
    tracer.release()
    assert tracemalloc.is_tracing()
    tracer.release()
    assert not tracemalloc.is_tracing()
    tracer.release()  # unmatched: nothing happens
    assert not tracemalloc.is_tracing()


def test_tracer_leaves_tracing_it_did_not_start() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(3)  # as PYTHONTRACEMALLOC=3 would
    tracer = Tracer()
    tracer.ensure()
    assert tracer.nframes == 3
    tracer.release()
    assert tracemalloc.is_tracing()
    assert tracemalloc.get_traceback_limit() == 3


def test_tracer_restarts_tracing_stopped_by_the_code_under_test() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracer = Tracer()
    tracer.ensure()
    tracemalloc.stop()
    assert not tracer.tracing
    tracer.ensure()
    assert tracer.tracing
    tracer.release()
    tracer.release()
    assert not tracemalloc.is_tracing()


def test_counters_follow_a_known_allocation(tracer: Tracer) -> None:
    gc.collect()
    tracer.reset_peak()
    start = tracer.traced()
    block = bytearray(4 * MiB)
    assert tracer.traced() - start >= 4 * MiB
    del block
    bytearray(8 * MiB)  # temporary: raises the peak only
    assert tracer.peak() - start >= 8 * MiB
    assert tracer.traced() - start < 1 * MiB
    tracer.reset_peak()
    assert tracer.peak() - start < 1 * MiB
    assert tracer.overhead() > 0


def test_counters_read_zero_when_not_tracing() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracer = Tracer()
    tracer.reset_peak()
    assert (tracer.traced(), tracer.peak()) == (0, 0)


# diff and sites


def test_diff_points_at_the_line_that_keeps_memory(tracer: Tracer) -> None:
    before = settled()
    line = _next_line()
    KEPT.append(bytearray(2 * MiB))
    found = diff(before, settled())
    assert 2 * MiB <= found.growth < 3 * MiB
    assert found.nframes == DEFAULT_NFRAMES
    top = found.sites[0]
    assert (top.file, top.line) == (HERE, line)
    assert 2 * MiB <= top.size < 3 * MiB
    assert top.count >= 1


def test_numpy_array_belongs_to_the_test_line_not_numpy(tracer: Tracer) -> None:
    before = settled()
    line = _next_line()
    KEPT.append(np.ones(500_000))  # 4 MB of data, traced by numpy
    found = diff(before, settled())
    assert found.growth >= 4_000_000
    assert (found.sites[0].file, found.sites[0].line) == (HERE, line)
    assert found.sites[0].size >= 4_000_000
    assert not any("numpy" in site.file for site in found.sites)


def test_repeated_identical_blocks_count_each_time(tracer: Tracer) -> None:
    def keep_blocks() -> int:
        line = _next_line()
        KEPT.extend(bytearray(10_000) for _ in range(100))
        return line

    line = keep_blocks()  # the first run: the same traces will appear again
    before = settled()
    keep_blocks()
    found = diff(before, settled())
    assert 1_000_000 <= found.growth < 1_200_000
    top = found.sites[0]
    assert (top.file, top.line) == (HERE, line)
    assert top.count >= 100  # each bytearray is an object and its buffer


def test_garbage_and_reference_cycles_do_not_grow(tracer: Tracer) -> None:
    before = settled()
    for _ in range(200):
        node: dict[str, object] = {"payload": bytearray(20_000)}
        node["self"] = node  # a cycle: only the collector frees it
    del node
    bytearray(5 * MiB)
    found = diff(before, settled())
    assert abs(found.growth) < 64 * KiB
    assert all(site.size < 64 * KiB for site in found.sites)


def test_released_memory_is_negative_growth_and_no_site(tracer: Tracer) -> None:
    KEPT.append(bytearray(3 * MiB))
    before = settled()
    KEPT.clear()
    found = diff(before, settled())
    assert found.growth <= -3 * MiB + 64 * KiB
    assert all(site.size < 64 * KiB for site in found.sites)


def _framework(tmp_path: Path) -> tuple[str, Callable[[int, int], None]]:
    """A module standing for pytest: it keeps what it is given, ``depth`` calls down."""
    name = f"fake_framework_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(
        textwrap.dedent(
            """
            STORE = []

            def keep(size, depth):
                if depth:
                    return keep(size, depth - 1)
                STORE.append(bytearray(size))
            """
        )
    )
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    keep: Callable[[int, int], None] = module.keep
    return name, keep


def test_framework_bookkeeping_is_left_out(tracer: Tracer, tmp_path: Path) -> None:
    name, keep = _framework(tmp_path)
    try:
        before = settled()
        keep(2 * MiB, 20)  # deeper than the traceback: no user frame is recorded
        after = settled()
        found = diff(before, after, exclude=(*DEFAULT_EXCLUDES, name))
        # Within 64 KiB: other code frees and allocates meanwhile (the collection that
        # settles each snapshot, the guard's watchdog thread).
        assert abs(found.growth) < 64 * KiB
        assert found.excluded >= 2 * MiB - 64 * KiB
        as_user_code = diff(before, after)  # not excluded: the module is user code
        assert as_user_code.growth >= 2 * MiB - 64 * KiB
        assert as_user_code.sites[0].file == str(tmp_path / f"{name}.py")
    finally:
        del sys.modules[name]


def test_what_the_framework_keeps_when_a_test_calls_it_is_the_frameworks(
    tracer: Tracer, tmp_path: Path
) -> None:
    """pytest keeps a report for each subtest a test's ``subTest`` block makes, and the
    records of the logging it captures: its bookkeeping, not the test's leak."""
    name, keep = _framework(tmp_path)
    try:
        before = settled()
        keep(2 * MiB, 0)
        found = diff(before, settled(), exclude=(*DEFAULT_EXCLUDES, name))
        # Other threads of the process (xdist's, the guard's) allocate and free meanwhile:
        # the excluded growth was once 47 bytes short of the 2 MiB kept.
        assert found.excluded >= 2 * MiB - 64 * KiB
        assert found.growth < 256 * KiB
        assert not [site for site in found.sites if site.size >= MiB]
    finally:
        del sys.modules[name]


def test_top_limits_the_sites(tracer: Tracer) -> None:
    before = settled()
    KEPT.append(bytearray(1 * MiB))
    KEPT.append(bytearray(2 * MiB))
    after = settled()
    assert len(diff(before, after, top=1).sites) == 1
    assert diff(before, after, top=0).sites == ()
    sizes = [site.size for site in diff(before, after).sites]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        (HERE, "user"),
        (pytest.__file__, "excluded"),
        (sys.modules[pytest.Item.__module__].__file__ or "", "excluded"),  # _pytest
        (pluggy.__file__, "excluded"),
        (pytest_memguard.__file__, "excluded"),
        (tracemalloc.__file__, "excluded"),
        ("<frozen importlib._bootstrap>", "excluded"),
        ("<frozen importlib._bootstrap_external>", "excluded"),
        (np.__file__, "library"),
        (json.__file__, "library"),
        ("<frozen os>", "library"),
        ("<string>", "library"),
        ("<unknown>", "library"),
        ("<doctest mymod.f[0]>", "user"),
    ],
)
def test_frame_kinds(filename: str, kind: str) -> None:
    assert site_rules().kind(filename) == kind


def test_the_site_is_the_innermost_user_frame() -> None:
    rules = site_rules()
    test = (HERE, 10)
    numpy = (str(np.__file__), 5)
    stdlib = (str(json.__file__), 7)
    framework = (str(pytest.__file__), 9)
    assert rules.site([numpy, test, framework]) == test
    assert rules.site([framework, test]) is None  # pytest's own, whoever called it
    assert rules.site([stdlib, framework, test]) is None  # through the stdlib as well
    assert rules.site([numpy, stdlib]) == numpy  # no user frame: the innermost library one
    assert rules.site([stdlib, framework]) is None  # pytest's own, through the stdlib
    assert rules.site([framework]) is None
    assert rules.site([("<unknown>", 0)]) == ("<unknown>", 0)


def test_unknown_excluded_names_are_ignored() -> None:
    rules = SiteRules(("no_such_module_anywhere", "pytest"))
    assert rules.kind(str(pytest.__file__)) == "excluded"
    assert rules.kind(HERE) == "user"


# The user started tracing: run in a fresh interpreter, this one stays as it is.

USER_TRACING = """
import gc, os, tracemalloc
import numpy as np
from pytest_memguard.core.leaks import Tracer, diff, take_snapshot

assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 1
tracer = Tracer()
tracer.ensure()
assert tracer.nframes == 1
start = tracer.traced()
KEPT = []
gc.collect()
before = take_snapshot()
KEPT.append(bytearray(2 * 1024**2))  # the site
KEPT.append(np.ones(250_000))
gc.collect()
found = diff(before, take_snapshot())
assert tracer.traced() - start >= 4_000_000
tracer.release()
assert tracemalloc.is_tracing()
sites = [(os.path.basename(s.file), s.line, s.size) for s in found.sites]
print(found.nframes, found.growth, sites)
"""


@pytest.mark.parametrize("how", ["-X tracemalloc", "PYTHONTRACEMALLOC=1"])
def test_user_started_tracing_is_used_and_left_on(how: str, tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(USER_TRACING)
    env = {**os.environ, "PYTHONPATH": str(Path(pytest_memguard.__file__).parents[1])}
    env.pop("PYTHONTRACEMALLOC", None)
    command = [sys.executable, str(script)]
    if how.startswith("-X"):
        command[1:1] = ["-X", "tracemalloc"]
    else:
        env["PYTHONTRACEMALLOC"] = "1"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    nframes, growth, sites = done.stdout.strip().split(" ", 2)
    assert nframes == "1"
    assert int(growth) >= 4_000_000
    # One frame: the bytearray's line is the script's; numpy's array belongs to numpy.
    lines = USER_TRACING.splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if text.endswith("# the site"))
    assert f"('user_script.py', {line}, " in sites
    assert "numeric.py" in sites


# The counts


def test_the_counts_bound_what_was_kept_from_above() -> None:
    def keep() -> int:
        gc.collect()
        start = HeapCount.now(current_rss)
        KEPT.append([str(i) for i in range(50_000)])  # small objects: pymalloc's blocks
        KEPT.append(bytes(3 * MiB))  # one malloc'd block
        gc.collect()
        return HeapCount.now(current_rss).kept_since(start)

    keep()  # the first time, the interpreter's own tables grow too
    KEPT.clear()
    kept = keep()
    assert kept >= 50_000 * 40 + 3 * MiB
    assert kept <= 50_100 * SMALL_BLOCK_MAX + 4 * MiB


def test_without_the_c_heap_rss_growth_stands_in_for_it() -> None:
    start = HeapCount(blocks=1000, c_heap=None, rss=100 * MiB)
    later = HeapCount(blocks=1010, c_heap=None, rss=108 * MiB)
    assert later.kept_since(start) == 10 * SMALL_BLOCK_MAX + 8 * MiB
    freed = HeapCount(blocks=900, c_heap=None, rss=90 * MiB)
    assert freed.kept_since(start) == 0


@pytest.mark.skipif(c_heap_in_use() is None, reason="needs glibc 2.33 or later (mallinfo2)")
def test_the_c_heap_sees_native_memory() -> None:
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = c_heap_in_use()
    buffer = libc.malloc(8 * MiB)
    try:
        after = c_heap_in_use()
        assert before is not None
        assert after is not None
        assert after - before >= 8 * MiB
    finally:
        libc.free(buffer)


# Verdicts and messages

LEAKY = LeakDiff(growth=4 * MiB, sites=(Site("t.py", 3, 4 * MiB, 1),))


@pytest.mark.parametrize(
    ("first", "kept_again", "traced", "error", "kind"),
    [
        (0, None, None, None, "clean"),
        (1 * MiB, None, None, None, "clean"),  # at the budget is still clean
        (1 * MiB, 5 * MiB, LEAKY, None, "clean"),  # a clean first run is never rerun
        (-5 * KiB, None, None, None, "clean"),
        (1 * MiB + 1, 5 * MiB, LEAKY, None, "leak"),
        (8 * MiB, 1 * MiB, LeakDiff(growth=1 * MiB), None, "leak"),  # the budget confirms
        (8 * MiB, 5 * MiB, LeakDiff(growth=1 * MiB - 1), None, "warm_up"),
        (8 * MiB, 5 * MiB, LeakDiff(growth=-2 * MiB), None, "warm_up"),
        (8 * MiB, 1 * MiB - 1, None, None, "warm_up"),  # kept less again: no tracing
        (8 * MiB, 5 * MiB, None, None, "unconfirmed"),  # kept again, but not traced
        (8 * MiB, 5 * MiB, LEAKY, "RuntimeError: boom", "unconfirmed"),  # the error wins
        (8 * MiB, None, None, "RuntimeError: boom", "unconfirmed"),
        (8 * MiB, None, None, None, "unconfirmed"),  # not rerun
    ],
)
def test_judge(
    first: int, kept_again: int | None, traced: LeakDiff | None, error: str | None, kind: str
) -> None:
    verdict = judge(first, 1 * MiB, kept_again=kept_again, traced=traced, error=error)
    assert verdict.kind == kind
    assert verdict.retained == first
    assert verdict.leaked is (kind == "leak")


@pytest.mark.parametrize(
    ("traced", "kept_again", "kind", "growth"),
    [
        (4 * MiB, 5 * MiB, "leak", 4 * MiB),  # both agree: the traced figure is the growth
        (4 * MiB, 3 * MiB, "leak", 3 * MiB),
        (4 * MiB, 10 * KiB, "warm_up", 10 * KiB),  # what it allocated replaced what it freed
        (10 * KiB, 9 * MiB, "warm_up", 10 * KiB),  # the counts saw pytest's bookkeeping
    ],
)
def test_judge_takes_the_smaller_of_the_rerun_figures(
    traced: int, kept_again: int, kind: str, growth: int
) -> None:
    verdict = judge(8 * MiB, 1 * MiB, kept_again=kept_again, traced=LeakDiff(growth=traced))
    assert (verdict.kind, verdict.growth) == (kind, growth)


def test_a_warm_up_names_pytests_bookkeeping_when_that_is_what_grew() -> None:
    verdict = judge(
        8 * MiB, 1 * MiB, kept_again=4 * MiB, traced=LeakDiff(growth=2 * KiB, excluded=3 * MiB)
    )
    assert leak_message(verdict) == (
        "kept 2.0 KiB when run again (leak budget 1.0 MiB; pytest's own bookkeeping grew"
        " 3.0 MiB; at most 8.0 MiB by the allocators' counts on its first run): a warm-up,"
        " not a leak"
    )


def test_judge_with_a_zero_budget_needs_real_growth() -> None:
    assert judge(100, 0, kept_again=0, traced=LeakDiff(growth=0)).kind == "warm_up"
    assert judge(100, 0, kept_again=1, traced=LeakDiff(growth=1)).kind == "leak"


def test_messages_name_sizes_budget_and_sites(tmp_path: Path) -> None:
    sites = (
        Site(str(tmp_path / "tests" / "test_a.py"), 12, 20 * MiB, 1),
        Site("/elsewhere/lib.py", 7, 1536 * KiB, 3),
        Site(str(tmp_path / "b.py"), 1, 10, 1),
    )
    leak = Verdict("leak", 21 * MiB, 1 * MiB, 20 * MiB, sites)
    assert leak_message(leak, root=tmp_path, top=2) == (
        "kept 20.0 MiB on every rerun (leak budget 1.0 MiB): leak at "
        f"{os.path.join('tests', 'test_a.py')}:12 (20.0 MiB, 1 block), "
        "/elsewhere/lib.py:7 (1.5 MiB, 3 blocks); its first run: at most 21.0 MiB by the"
        " allocators' counts"
    )
    assert "leak at no allocation site found;" in leak_message(
        Verdict("leak", 2 * MiB, 1 * MiB, 2 * MiB)
    )
    assert leak_message(Verdict("warm_up", 5 * MiB, 1 * MiB, 12 * KiB)) == (
        "kept 12.0 KiB when run again (leak budget 1.0 MiB; at most 5.0 MiB by the"
        " allocators' counts on its first run): a warm-up, not a leak"
    )
    assert leak_message(Verdict("unconfirmed", 5 * MiB, 1 * MiB, error="OSError: x")) == (
        "kept at most 5.0 MiB by the allocators' counts on its first run (leak budget"
        " 1.0 MiB); not judged: the rerun failed: OSError: x"
    )
    assert leak_message(Verdict("unconfirmed", 5 * MiB, 1 * MiB)).endswith("no rerun")
    assert leak_message(Verdict("clean", 3 * KiB, 1 * MiB)) == (
        "kept at most 3.0 KiB by the allocators' counts (leak budget 1.0 MiB)"
    )
    assert format_sites(sites[2:], root=tmp_path) == "b.py:1 (10 B, 1 block)"


def test_the_message_leaves_out_sites_too_small_to_matter() -> None:
    sites = (Site("a.py", 1, 8 * MiB, 1), Site("b.py", 2, 1 * MiB, 9), Site("c.py", 3, 600, 5))
    message = leak_message(Verdict("leak", 9 * MiB, 1 * MiB, 9 * MiB, sites))
    assert "leak at a.py:1 (8.0 MiB, 1 block), b.py:2 (1.0 MiB, 9 blocks);" in message
    tiny = (Site("c.py", 3, 600, 5),)
    assert "leak at c.py:3 (600 B, 5 blocks);" in leak_message(
        Verdict("leak", 9 * MiB, 1 * MiB, 9 * MiB, tiny)
    )


def test_relative_sites_for_a_portable_report(tmp_path: Path) -> None:
    inside = Site(str(tmp_path / "t.py"), 3, 100, 2)
    outside = Site("<unknown>", 0, 5, 1)
    assert relative_sites((inside, outside), tmp_path) == (Site("t.py", 3, 100, 2), outside)
    assert display_path("/not/under/root.py", tmp_path) == "/not/under/root.py"


@pytest.mark.parametrize(
    ("rss", "traced", "overhead", "warns"),
    [
        (40 * MiB, 0, 0, True),  # ctypes malloc: invisible to tracemalloc
        (31 * MiB, 0, 0, False),  # under the threshold
        (110 * MiB, 55 * MiB, 30 * MiB, False),  # small objects: pools and tracing tables
        (100 * MiB, 10 * MiB, 5 * MiB, True),
        (-50 * MiB, 0, 0, False),  # RSS went down
        (40 * MiB, -10 * MiB, 0, True),  # traced memory went down
    ],
)
def test_native_leak_message(rss: int, traced: int, overhead: int, warns: bool) -> None:
    message = native_leak_message(rss, traced, overhead_growth=overhead)
    assert (message is not None) is warns
    if message is not None:
        assert message.startswith(f"possible native leak: RSS grew by {rss / MiB:.1f} MiB")


# The whole decision, driven as the plugin drives it (without pytest in between).


def check(unit: Callable[[], object], budget: int = 1 * MiB) -> Verdict:
    """Counts around ``unit``; for a suspect, counts around a second run and, when it
    kept too much again, snapshots around a third, traced."""

    def counted() -> int:
        gc.collect()
        start = HeapCount.now(current_rss)
        unit()
        gc.collect()
        return HeapCount.now(current_rss).kept_since(start)

    first = counted()
    if first <= budget:
        return judge(first, budget)
    try:
        kept_again = counted()
        if kept_again <= budget:
            return judge(first, budget, kept_again=kept_again)
        tracer = Tracer()
        tracer.ensure()
        try:
            before = take_snapshot()
            unit()
            traced = diff(before, settled())
        finally:
            tracer.release()
    except Exception as error:
        return judge(first, budget, error=f"{type(error).__name__}: {error}")
    return judge(first, budget, kept_again=kept_again, traced=traced)


def test_a_cache_filled_on_the_first_call_is_a_warm_up() -> None:
    @functools.cache
    def table(n: int) -> bytes:
        return bytes(n)

    assert check(lambda: table(4 * MiB)).kind == "warm_up"
    assert check(lambda: table(4 * MiB)).kind == "clean"


def test_memory_released_at_the_end_is_clean() -> None:
    def unit() -> None:
        fixture_value = [bytearray(1 * MiB) for _ in range(10)]
        del fixture_value

    assert check(unit).kind == "clean"


def test_a_global_replaced_on_each_run_is_a_warm_up() -> None:
    def unit() -> None:
        KEPT[:] = [[str(i) * 3 for i in range(100_000)]]  # frees what the last run kept

    verdict = check(unit)
    assert verdict.kind == "warm_up", verdict


def test_appending_to_a_global_is_a_leak_at_that_line() -> None:
    line = _next_line() + 2

    def unit() -> None:
        KEPT.append(bytearray(8 * MiB))

    verdict = check(unit)
    assert verdict.kind == "leak"
    assert verdict.growth is not None
    assert verdict.growth >= 8 * MiB
    assert (verdict.sites[0].file, verdict.sites[0].line) == (HERE, line)


def test_numpy_arrays_kept_in_a_global_are_a_leak() -> None:
    line = _next_line() + 2

    def unit() -> None:
        KEPT.append(np.zeros(300_000) + 1.0)

    verdict = check(unit)
    assert verdict.leaked
    assert (verdict.sites[0].file, verdict.sites[0].line) == (HERE, line)
    assert "test_leaks.py" in leak_message(verdict, root=Path(HERE).parent)


def test_a_failing_rerun_is_unconfirmed() -> None:
    calls: list[int] = []

    def unit() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("only once")
        KEPT.append(bytearray(4 * MiB))

    verdict = check(unit)
    assert verdict.kind == "unconfirmed"
    assert verdict.error == "RuntimeError: only once"


def test_an_exact_count_is_net_and_a_plain_one_a_bound() -> None:
    start = HeapCount(blocks=100, c_heap=1000, rss=0, small=5000)
    freed_and_allocated = HeapCount(blocks=110, c_heap=1000, rss=0, small=4000)
    assert freed_and_allocated.kept_since(start) == 0  # net: it freed more than it kept
    grew = HeapCount(blocks=101, c_heap=3000, rss=0, small=5100)
    assert grew.kept_since(start) == 2100
    bound = HeapCount(blocks=101, c_heap=3000, rss=0)
    assert bound.kept_since(start) == SMALL_BLOCK_MAX + 2000
