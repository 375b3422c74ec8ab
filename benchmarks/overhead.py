"""Overhead of the guard: plain pytest against pytest --memguard on a generated suite.

Runs are paired and alternated (plain, guarded, plain, guarded, ...) on the same
machine, and the median of the per-pair ratios is printed, so that a busy machine
slows both sides of a pair alike.  Usage:

    python benchmarks/overhead.py [--tests 2000] [--rounds 7] [--extra "--memguard-max=4GB"]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_FILE = '''
import pytest

@pytest.mark.parametrize("n", range({per_param}))
def test_param(n):
    assert n >= 0

{functions}
'''


def generate(root: Path, tests: int, files: int = 20) -> None:
    """Write ``tests`` trivial tests spread over ``files`` modules (half parametrized)."""
    per_file = tests // files
    per_param = per_file // 2
    for index in range(files):
        functions = "\n".join(
            f"def test_plain_{i}():\n    assert {i} + 1 > {i}\n" for i in range(per_file - per_param)
        )
        (root / f"test_generated_{index:02d}.py").write_text(
            TEST_FILE.format(per_param=per_param, functions=functions)
        )


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{completed.stderr.decode()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="number of generated tests")
    parser.add_argument("--rounds", type=int, default=7, help="paired runs")
    parser.add_argument("--extra", default="", help="more arguments for the guarded side")
    parser.add_argument("--base", default="", help="more arguments for both sides (e.g. '-n 2')")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memguard-bench-") as folder:
        root = Path(folder)
        generate(root, args.tests)
        (root / "pytest.ini").write_text("[pytest]\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *shlex.split(args.base)]
        plain = base
        guarded = [*base, "--memguard", *shlex.split(args.extra)]
        timed(plain, root)  # warm the file system and bytecode caches
        timed(guarded, root)
        ratios, plain_times, guarded_times = [], [], []
        for _ in range(args.rounds):
            a = timed(plain, root)
            b = timed(guarded, root)
            plain_times.append(a)
            guarded_times.append(b)
            ratios.append(b / a)
    print(f"suite: {args.tests} trivial tests in 20 files; {args.rounds} paired, alternating runs")
    print(f"plain pytest {shlex.join(plain[1:])}: median {statistics.median(plain_times):.3f} s")
    print(f"with --memguard {args.extra}: median {statistics.median(guarded_times):.3f} s")
    print(f"ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"median ratio guarded/plain: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
