"""Throughput of BoundedCache get/set against functools.lru_cache and a locked cachetools TTLCache.

Each contender runs the same shuffled key sequence, single-threaded and split over
``--threads`` threads started together; the best of ``--rounds`` is printed (the least
disturbed by the rest of the machine), with the median beside it.  The issue's bar: a
BoundedCache ``get`` costs at most about 2x a ``get`` on a cachetools TTLCache wrapped in
a ``threading.Lock``.  cachetools is needed only here.  Usage:

    python benchmarks/cache_bench.py [--ops 100000] [--keys 1000] [--threads 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

from pytest_memguard.library.cache import BoundedCache

Op = Callable[[int], object]

# The bar: BoundedCache get at most ~2x the locked TTLCache get.
GET_RATIO_LIMIT = 2.0


def _run(op: Op, keys: Sequence[int], threads: int) -> float:
    """Seconds to apply ``op`` to every key, split over ``threads`` threads."""
    if threads == 1:
        start = time.perf_counter()
        for key in keys:
            op(key)
        return time.perf_counter() - start
    chunks = [keys[i::threads] for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(chunk: Sequence[int]) -> None:
        barrier.wait()
        for key in chunk:
            op(key)

    pool = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def _measure(op: Op, keys: Sequence[int], threads: int, rounds: int) -> tuple[float, float]:
    """Best and median nanoseconds per operation over ``rounds``."""
    times = [_run(op, keys, threads) / len(keys) * 1e9 for _ in range(rounds)]
    return min(times), statistics.median(times)


def contenders(n_keys: int) -> dict[str, tuple[Op, Op]]:
    """name -> (get, set) callables over int keys, each prefilled with ``n_keys`` entries."""
    import cachetools

    value = "v" * 100
    deep: BoundedCache[int, str] = BoundedCache(max_size=n_keys, ttl=300.0)
    sized: BoundedCache[int, str] = BoundedCache(max_size=n_keys, ttl=300.0, sizeof=len)
    ttl: cachetools.TTLCache[int, str] = cachetools.TTLCache(maxsize=n_keys, ttl=300.0)
    lock = threading.Lock()

    def ttl_get(key: int) -> object:
        with lock:
            return ttl.get(key)

    def ttl_set(key: int) -> object:
        with lock:
            ttl[key] = value
        return None

    @functools.lru_cache(maxsize=n_keys)
    def cached(key: int) -> str:
        return value

    # lru_cache has no set: a miss stores; keys past maxsize keep it missing and evicting.
    offset = [n_keys]

    def lru_set(key: int) -> object:
        offset[0] += 1
        return cached(offset[0])

    table: dict[str, tuple[Op, Op]] = {
        "BoundedCache (deep sizeof)": (deep.get, lambda k: deep.set(k, value)),
        "BoundedCache (sizeof=len)": (sized.get, lambda k: sized.set(k, value)),
        "cachetools.TTLCache + Lock": (ttl_get, ttl_set),
        "functools.lru_cache": (cached, lru_set),
    }
    for _, set_op in table.values():
        for key in range(n_keys):
            set_op(key)
    for key in range(n_keys):
        cached(key)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations per measurement")
    parser.add_argument("--keys", type=int, default=1_000, help="distinct keys (all cached)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the threaded runs")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is kept")
    args = parser.parse_args(argv)
    try:
        import cachetools  # noqa: F401
    except ImportError:
        print(
            "cachetools is needed for this benchmark only: pip install cachetools "
            "(or pip install 'pytest-memguard[bench]')",
            file=sys.stderr,
        )
        return 2
    rng = random.Random(1)
    keys = [rng.randrange(args.keys) for _ in range(args.ops)]
    table = contenders(args.keys)
    results: dict[tuple[str, str, int], tuple[float, float]] = {}
    header = (
        f"{'contender':<28} {'op':<4} {'threads':>7} {'best ns/op':>11} {'median':>8} "
        f"{'best ops/s':>12}"
    )
    print(f"python {sys.version.split()[0]}, {args.ops} ops over {args.keys} keys, ", end="")
    print(f"best and median of {args.rounds} rounds")
    print(header)
    print("-" * len(header))
    for name, (get_op, set_op) in table.items():
        for op_name, op in (("get", get_op), ("set", set_op)):
            for threads in (1, args.threads):
                best, median = _measure(op, keys, threads, args.rounds)
                results[(name, op_name, threads)] = (best, median)
                print(
                    f"{name:<28} {op_name:<4} {threads:>7} {best:>11.0f} {median:>8.0f} "
                    f"{1e9 / best:>12,.0f}"
                )
    verdict = 0
    print()
    for threads in (1, args.threads):
        ours = results[("BoundedCache (sizeof=len)", "get", threads)]
        theirs = results[("cachetools.TTLCache + Lock", "get", threads)]
        best, median = ours[0] / theirs[0], ours[1] / theirs[1]
        ok = best <= GET_RATIO_LIMIT
        verdict |= 0 if ok else 1
        print(
            f"BoundedCache get / locked TTLCache get, {threads} thread(s): {best:.2f}x best, "
            f"{median:.2f}x median ({'ok' if ok else 'over'}: limit {GET_RATIO_LIMIT:.1f}x)"
        )
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
