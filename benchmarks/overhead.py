"""Overhead of the guard: plain pytest against pytest with memguard, on a generated suite.

Runs are paired and alternated on the same machine (plain, variant 1, variant 2, plain,
...), and for each variant the median of the per-round ratios to the plain run of the
same round is printed, so that a busy machine slows both sides of a round alike.  The
middle half of the per-round ratios (first to third quartile) says how much to trust it.

Two suites: ``trivial`` (about 2,000 one-line tests, half of them parametrized) and
``alloc`` (about 300 tests that build lists and dicts of 100k objects).  The child
processes run with Python's defaults (bytecode caches on), as most users run pytest,
even when this shell sets ``PYTHONDONTWRITEBYTECODE``.  Usage:

    python benchmarks/overhead.py [--suite trivial|alloc] [--tests N] [--rounds 11]
        [--variant "--memguard"] [--variant "--memguard --memguard-leaks"] [--base "-n 2"]

With pytest-memray installed (``pip install -e '.[bench]'``), ``--variant --memray`` runs
it with ``limit_leaks("1 MB")`` on every test, its leak check, for comparison.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL = """
import pytest

@pytest.mark.parametrize("n", range({per_param}))
def test_param(n):
    assert n >= 0

{functions}
"""

ALLOC = """
import pytest

@pytest.mark.parametrize("n", range({per_param}))
def test_build_list(n):
    items = [{{"id": i, "name": str(i)}} for i in range(100_000)]
    assert len(items) == 100_000

{functions}
"""


CONFTEST = """
import pytest


def pytest_collection_modifyitems(config, items):
    # Under pytest-memray (--memray), check every test for leaks, as --memguard-leaks does.
    if config.pluginmanager.hasplugin("memray") and config.getoption("memray", False):
        for item in items:
            item.add_marker(pytest.mark.limit_leaks("1 MB"))
"""


def generate(root: Path, suite: str, tests: int, files: int = 20) -> None:
    """Write ``tests`` tests of the ``suite`` kind spread over ``files`` modules."""
    files = min(files, max(1, tests // 10))
    per_file = tests // files
    per_param = per_file // 2
    for index in range(files):
        if suite == "trivial":
            body = "def test_plain_{i}():\n    assert {i} + 1 > {i}\n"
            template = TRIVIAL
        else:
            body = (
                "def test_dict_{i}():\n"
                "    d = {{k: [k] for k in range(100_000)}}\n"
                "    assert len(d) == 100_000\n"
            )
            template = ALLOC
        functions = "\n".join(body.format(i=i) for i in range(per_file - per_param))
        (root / f"test_generated_{index:02d}.py").write_text(
            template.format(per_param=per_param, functions=functions)
        )


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{completed.stderr.decode()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suite", choices=("trivial", "alloc"), default="trivial")
    parser.add_argument("--tests", type=int, help="number of tests (2000 trivial, 300 alloc)")
    parser.add_argument(
        "--rounds", type=int, default=11, help="alternating rounds (a median of 11 moves less)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        help="pytest arguments of one guarded variant (repeatable; default: --memguard)",
    )
    parser.add_argument("--base", default="", help="arguments for every run (e.g. '-n 2')")
    args = parser.parse_args(argv)
    tests = args.tests or (2000 if args.suite == "trivial" else 300)
    variants = args.variant or ["--memguard"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="memguard-bench-") as folder:
        root = Path(folder)
        generate(root, args.suite, tests)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(CONFTEST)
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        base += shlex.split(args.base)
        commands = {"plain": base} | {v: [*base, *shlex.split(v)] for v in variants}
        for command in commands.values():  # warm the file system and bytecode caches
            timed(command, root, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(timed(command, root, env))
    print(
        f"suite: {tests} {args.suite} tests; {args.rounds} alternating rounds; base {args.base!r}"
    )
    print(f"plain pytest: median {statistics.median(times['plain']):.3f} s")
    for variant in variants:
        ratios = [v / p for v, p in zip(times[variant], times["plain"], strict=True)]
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print(
            f"{variant}: median {statistics.median(times[variant]):.3f} s;"
            f" ratios {', '.join(f'{r:.3f}' for r in ratios)};"
            f" median ratio {statistics.median(ratios):.3f}"
            f" (middle half of the rounds {low:.3f}-{high:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
