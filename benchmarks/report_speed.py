"""How long ``memguard show`` and ``memguard diff`` take on a large report, whole process.

Builds a report of ``--tests`` tests (default 20,000) with the real report builder
(``TestMemory`` results through ``build_report`` and ``write_report``): a mix of
statuses, parametrized node ids, budgets, allocation sites on the heavy and failing
tests, xdist workers and ``beside`` lists, about 400 bytes a test as a real run writes.
Then runs each command as a user would (a new ``python -m pytest_memguard.cli`` process,
its output to a pipe) in alternating rounds and prints the median wall time of each and
the middle half of its rounds (first to third quartile).  Usage:

    python benchmarks/report_speed.py [--tests 20000] [--rounds 11] [--keep big.json]
        [--against SRC]   # another version's source tree, timed in the same rounds

``--against`` runs the commands with ``PYTHONPATH=SRC`` (e.g. ``git archive main | tar -x
-C /tmp/main`` for main's code), in the same alternating rounds as this checkout's.

``--keep PATH`` writes the report there and keeps it (for ``time memguard show PATH``).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_memguard.core.sites import Site
from pytest_memguard.reporting.report import build_report, write_report
from pytest_memguard.reporting.results import Budget, TestMemory

MB = 1_000_000

#: What the commands run, each on the generated report (``{r}``).
COMMANDS = {
    "show": ["show", "{r}"],
    "show --top 0": ["show", "{r}", "--top", "0"],
    "show --format json": ["show", "{r}", "--format", "json"],
    "diff (itself)": ["diff", "{r}", "{r}"],
    "diff --all": ["diff", "{r}", "{r}", "--all"],
}


def _entry(index: int, rng: random.Random, workers: int) -> TestMemory:
    module = f"tests/pkg{index // 2000}/test_module_{index // 100}.py"
    if index % 3:
        nodeid = f"{module}::test_case_{index % 100}[param-{index}]"
    else:
        nodeid = f"{module}::TestGroup::test_method_{index % 100}"
    start = 60 * MB + rng.randrange(40 * MB)
    peak = rng.choice((0, 4096, rng.randrange(2 * MB), rng.randrange(80 * MB)))
    status = rng.choices(
        ("ok", "warning", "over_budget", "leak", "killed", "not_run"),
        weights=(960, 20, 8, 6, 1, 5),
    )[0]
    sites: tuple[Site, ...] = ()
    message = None
    if status not in ("ok", "not_run") or peak > 40 * MB:
        sites = tuple(
            Site(f"src/app/module_{rng.randrange(50)}.py", rng.randrange(1, 900), peak // 3, 12)
            for _ in range(3)
        )
    if status in ("over_budget", "leak", "killed", "warning"):
        message = f"{status}: peak growth {peak} bytes over the budget of 20 MB"
    budget = Budget(peak=20 * MB) if index % 10 == 0 else Budget()
    if status == "not_run":
        return TestMemory(nodeid, "skipped", "not_run", "", 0.0, message="not run")
    worker = f"gw{index % workers}"
    return TestMemory(
        nodeid,
        "failed" if status in ("over_budget", "leak", "killed") else "passed",
        status,  # type: ignore[arg-type]
        worker,
        rng.random() / 10,
        rss_start=start,
        rss_end=start + rng.randrange(MB),
        rss_peak=start + peak,
        peak_delta=peak,
        heap_peak=rng.randrange(10 * MB) if index % 4 == 0 else None,
        leaked=rng.randrange(MB) if index % 4 == 0 else None,
        budget=budget,
        children_peak=None,
        beside=tuple(f"{module}::test_case_{(index + k) % 100}[param-{index + k}]" for k in (1,))
        if index % 4 == 0
        else (),
        sites=sites,
        message=message,
        started=1_700_000_000 + index / 10,
    )


def make_report(path: Path, tests: int, seed: int = 30) -> Path:
    """Write a report of ``tests`` tests to ``path``."""
    rng = random.Random(seed)
    workers = 4
    entries = [_entry(index, rng, workers) for index in range(tests)]
    report = build_report(
        tests=entries,
        collected=[entry.nodeid for entry in entries],
        workers=[
            {"id": f"gw{n}", "peak_rss": 200 * MB, "tests": tests // workers}
            for n in range(workers)
        ],
        environment={"python": "3.11.9", "platform": "linux", "peak_method": "kernel"},
        config={"max": None, "budget": "20MB"},
        started=1_700_000_000.0,
        duration_s=tests / 10,
        interrupted=False,
    )
    return write_report(report, path)


HERE = str(Path(__file__).resolve().parent.parent)


def _run(source: str, argv: list[str], folder: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command in a new process."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ["PYTHONPATH"] = source  # bytecode caches on, as most users run commands
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(  # from a folder without the package: -m puts the cwd first
        [sys.executable, "-m", "pytest_memguard.cli", *argv],
        capture_output=True,
        check=False,
        env=environ,
        cwd=folder,
    )
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="Write the report here and keep it")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="SRC",
        help="Another version's source tree (holding pytest_memguard/) to time alongside",
    )
    parser.add_argument("--only", action="append", choices=COMMANDS, help="Time these only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder, "report.json")
        make_report(path, args.tests)
        size = path.stat().st_size
        print(f"report: {args.tests} tests, {size / 1e6:.1f} MB")
        sources = [HERE, *(str(Path(source).resolve()) for source in args.against)]
        names = args.only or list(COMMANDS)
        walls: dict[tuple[str, str], list[float]] = {(p, n): [] for p in sources for n in names}
        cpus: dict[tuple[str, str], list[float]] = {(p, n): [] for p in sources for n in names}
        for source in sources:  # warm the page cache and the bytecode caches
            _run(source, ["show", str(path)], folder)
        for _ in range(args.rounds):
            for name in names:
                argv = [part.format(r=path) for part in COMMANDS[name]]
                for source in sources:
                    wall, cpu = _run(source, argv, folder)
                    walls[source, name].append(wall)
                    cpus[source, name].append(cpu)
        print(f"{'command':<20} {'code':<28} {'wall median':>11} {'q1-q3':>13}"
              f" {'cpu median':>10} {'q1-q3':>13}")  # fmt: skip
        for name in names:
            for source in sources:
                label = source if len(source) <= 28 else "..." + source[-25:]
                print(f"{name:<20} {label:<28} {_spread(walls[source, name])}"
                      f" {_spread(cpus[source, name])}")  # fmt: skip


def _spread(times: list[float]) -> str:
    """The median and the middle half of ``times``."""
    q1, median, q3 = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    return f"{median:>10.3f}s {q1:>6.3f}-{q3:.3f}s"


if __name__ == "__main__":
    main()
