"""What leak detection costs: counters per test, tracing per frame depth, snapshot + diff.

Prints three tables:

1. the per-call cost of the counts that screen every checked test, and of the tracing
   calls around a test with a heap budget;
2. how much slower an allocation-heavy body runs under tracing, per traceback depth,
   called 40 frames deep as a test is under pytest;
3. what a suspect pays: two snapshots and the diff, on a heap like a pytest session's
   (tracing started before numpy and 3,000 collected items), with tracing scoped to the
   test, and with the user's tracing from interpreter start (``-X tracemalloc``).

Each heap scenario runs in a fresh interpreter.  Usage:

    python benchmarks/leak_costs.py [--compare]   # --compare also times compare_to()
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_memguard.core.leaks import HeapCount, Tracer, diff, take_snapshot  # noqa: E402
from pytest_memguard.core.sites import site_rules  # noqa: E402
from pytest_memguard.probe.process import RssReader, c_heap_in_use  # noqa: E402

KEPT: list[object] = []


def per_call_us(action: Callable[[], object], repeat: int = 20_000) -> float:
    """Median over 5 rounds of the cost of one ``action()`` call, in microseconds."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        rounds.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(rounds)


def counters() -> None:
    print("1. per-test counters (microseconds a call)")
    reader = RssReader()
    rows = [
        ("screening: HeapCount.now (all three below)", lambda: HeapCount.now(reader)),
        ("  sys.getallocatedblocks()", sys.getallocatedblocks),
        ("  c_heap_in_use() (glibc mallinfo2)", c_heap_in_use),
        ("  RSS", reader),
    ]
    for label, action in rows:
        print(f"   {label:<44} {per_call_us(action):6.2f}")
    reader.close()
    tracer = Tracer()
    tracer.ensure()

    def start() -> None:
        tracer.reset_peak()
        tracer.traced()

    print(f"   heap budget, start of call (reset_peak + traced): {per_call_us(start):6.2f}")
    print(f"   heap budget, end of call (peak):                  {per_call_us(tracer.peak):6.2f}")
    tracer.release()
    off = Tracer()

    def scoped() -> None:
        off.ensure()
        KEPT.append(bytearray(100))
        KEPT.clear()
        off.release()

    print(f"   heap budget, tracing started and stopped:         {per_call_us(scoped, 2_000):6.2f}")


def deep(depth: int, action: Callable[[], object]) -> object:
    return deep(depth - 1, action) if depth else action()


def allocating_body() -> object:
    rows: list[dict[str, Any]] = [
        {"id": i, "name": f"row-{i}", "tags": [i, i + 1]} for i in range(20_000)
    ]
    return sum(len(row["name"]) for row in rows)


def slowdown() -> None:
    print("2. tracing slowdown of an allocation-heavy body, 40 frames deep")

    def timed() -> float:
        return min(_elapsed(lambda: deep(40, allocating_body)) for _ in range(5))

    base = timed()
    print(f"   untraced: {base * 1e3:6.1f} ms")
    for nframes in (1, 4, 8, 12, 16):
        tracemalloc.start(nframes)
        traced = timed()
        tracemalloc.stop()
        print(f"   nframes={nframes:2}: {traced * 1e3:6.1f} ms  ({traced / base:4.1f}x)")


def _elapsed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class Item:
    """Stands for a collected test item: a few small objects each."""

    def __init__(self, index: int) -> None:
        self.nodeid = f"tests/test_mod_{index // 100}.py::test_{index}"
        self.keywords = {"test": 1, f"test_{index}": 1}
        self.params = [index, str(index), (index, index)]


def leaky_test() -> None:
    KEPT.append(bytearray(4 * 1024**2))
    KEPT.extend(str(i) * 10 for i in range(2_000))


def heap(scenario: str, nframes: int, compare: bool) -> None:
    """One suspect on a realistic heap (run in its own interpreter)."""
    if scenario == "session":
        tracemalloc.start(nframes)
    import asyncio  # noqa: F401
    import decimal  # noqa: F401
    import email.parser  # noqa: F401
    import json  # noqa: F401
    import unittest.mock  # noqa: F401

    import numpy  # noqa: F401

    items = deep(40, lambda: [Item(i) for i in range(3_000)])
    if scenario == "test":
        tracemalloc.start(nframes)
    deep(40, leaky_test)
    gc.collect()
    started = time.perf_counter()
    site_rules()  # built once per process, on the first diff
    rules_ms = (time.perf_counter() - started) * 1e3
    t0 = time.perf_counter()
    before = take_snapshot()
    t1 = time.perf_counter()
    deep(40, leaky_test)
    gc.collect()
    t2 = time.perf_counter()
    after = take_snapshot()
    t3 = time.perf_counter()
    found = diff(before, after)
    t4 = time.perf_counter()
    extra = ""
    if compare:
        after.compare_to(before, "traceback")
        extra = f"  compare_to {(time.perf_counter() - t4) * 1e3:6.0f} ms"
    traced = tracemalloc.get_traced_memory()[0] / 1024**2
    print(
        f"   {scenario:8} nframes={tracemalloc.get_traceback_limit():2} "
        f"traces={len(after.traces):7,} traced={traced:5.1f} MiB  "
        f"snapshot {(t1 - t0 + t3 - t2) / 2 * 1e3:5.0f} ms  diff {(t4 - t3) * 1e3:5.0f} ms"
        f"{extra}  (first diff +{rules_ms:.0f} ms; growth {found.growth / 1024**2:.1f} MiB "
        f"at line {found.sites[0].line})"
    )
    del items


def suspects(compare: bool) -> None:
    print("3. a suspect: snapshot (mean of two) and diff")
    runs: list[tuple[str, int, list[str]]] = [("session", n, []) for n in (8, 16)]
    runs += [("test", n, []) for n in (8, 16)]
    runs.append(("user", 1, ["-X", "tracemalloc"]))
    runs.append(("user", 8, ["-X", "tracemalloc=8"]))
    for scenario, nframes, flags in runs:
        command = [sys.executable, *flags, __file__, "--heap", scenario, str(nframes)]
        if compare:
            command.append("--compare")
        subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also time Snapshot.compare_to")
    parser.add_argument("--heap", nargs=2, metavar=("SCENARIO", "NFRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.heap:
        heap(args.heap[0], int(args.heap[1]), args.compare)
        return
    counters()
    slowdown()
    suspects(args.compare)


if __name__ == "__main__":
    main()
