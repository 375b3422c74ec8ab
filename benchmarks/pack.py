"""``--memguard-pack`` against the schedules people use today, under one aggregate limit.

The mixed suite is the one of the issue that asked for packing: 6 tests that each hold
1 GiB for 1.5 s among 24 light ones (50 ms each), under ``--memguard-aggregate 3GB``.
Three schedules, in alternating rounds: ``-n 4`` as xdist's ``load`` sends the tests
(several heavy tests meet and workers are killed), ``-n 1`` (safe and slow), and ``-n 4
--memguard-pack`` with the peaks of the first round's ``-n 1`` run in pytest's cache.
Each heavy test writes when it starts and stops holding, so the script counts how many
held at once.

The best schedule that fits, for the ratio: the fixed cost of a ``-n 4`` session (timed
on the same suite with empty test bodies) plus the longer of two bounds, the heavy tests
in rounds of ``k`` (``k`` heavy tests fit the limit together beside the four workers'
own RSS, measured in the report) and all the tests' time spread over four workers.  No
schedule that fits can be faster: the ratio packed / that bound is an upper bound on
how far packing is from the best.

The light suite (400 tests of 5 ms) checks that packing keeps xdist's throughput: ``-n
4`` against ``-n 4 --memguard-pack``, both guarded.

    python benchmarks/pack.py [--rounds 3] [--heavy-size 1GiB] [--json out.json]

It allocates up to four times the heavy size at once (the unpacked run), 4 GiB by
default: run it on a machine that has that to spare.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_memguard import format_size, parse_size

MIXED = """
import time
import pytest

def mark(what):
    with open("times.log", "a") as log:
        log.write(f"{{what}} {{time.time()}}\\n")

@pytest.mark.parametrize("i", range(24))
def test_light(i):
    if {work}:
        time.sleep(0.05)

@pytest.mark.parametrize("i", range(6))
def test_heavy(i):
    if not {work}:
        return
    block = bytearray({size})
    mark("start")
    time.sleep(1.5)
    mark("end")
    del block
"""

LIGHT = """
import time
import pytest

@pytest.mark.parametrize("i", range(400))
def test_light(i):
    time.sleep(0.005)
"""

WORKERS = 4
HEAVY = 6


def run(folder: Path, *args: str) -> dict[str, Any]:
    """One pytest session in ``folder``: its wall time, report and heavy tests at once."""
    log = folder / "times.log"
    log.unlink(missing_ok=True)
    report_path = folder / "report.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--memguard"]
    command += ["-p", "no:memray", "-p", "no:monitor"]  # the peers of the bench extra
    command += [f"--memguard-json={report_path}", *args]
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    report = json.loads(report_path.read_text())
    events = []
    if log.exists():
        for line in log.read_text().splitlines():
            what, when = line.split()
            events.append((float(when), 1 if what == "start" else -1))
    most = now = 0
    for _, step in sorted(events):
        now += step
        most = max(most, now)
    killed = sum(1 for test in report["tests"] if test["status"] == "killed")
    return {"seconds": elapsed, "killed": killed, "at_once": most, "report": report}


def suite(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / f"test_{name}.py").write_text(text)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heavy-size", default="1GiB", help="what each heavy test holds")
    parser.add_argument("--aggregate", default="3GB", help="--memguard-aggregate of every run")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    size = parse_size(args.heavy_size)
    limit = f"--memguard-aggregate={args.aggregate}"
    root = Path(tempfile.mkdtemp(prefix="memguard-pack-bench-"))
    try:
        mixed = suite(root, "mixed", MIXED.format(size=size, work=True))
        empty = suite(root, "empty", MIXED.format(size=size, work=False))
        light = suite(root, "light", LIGHT)
        schedules = {
            "-n 4": ["-n", "4", limit],
            "-n 1": ["-n", "1", limit],
            "-n 4 --memguard-pack": ["-n", "4", limit, "--memguard-pack"],
        }
        light_schedules = {
            "-n 4": ["-n", "4"],
            "-n 4 --memguard-pack": ["-n", "4", "--memguard-pack"],
        }
        first = run(mixed, "-n", "1", limit)  # the history of every packed run
        run(light, "-n", "1")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in schedules}
        light_runs: dict[str, list[float]] = {name: [] for name in light_schedules}
        fixed: list[float] = []
        for round_number in range(args.rounds):
            for name, extra in schedules.items():
                runs[name].append(run(mixed, *extra))
            fixed.append(run(empty, "-n", "4", limit)["seconds"])
            for name, extra in light_schedules.items():
                light_runs[name].append(run(light, *extra)["seconds"])
            print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)

        base = max(test["rss_start"] or 0 for test in first["report"]["tests"])
        aggregate = first["report"]["config"]["aggregate"]
        heavy_peak = max(test["peak_delta"] or 0 for test in first["report"]["tests"])
        fit = max(1, (aggregate - WORKERS * base) // max(1, heavy_peak))
        # The tests' own durations, as the -n 1 run measured them (allocating takes time too).
        heavy_s = statistics.median(
            test["duration_s"] for test in first["report"]["tests"] if "heavy" in test["nodeid"]
        )
        work = sum(test["duration_s"] for test in first["report"]["tests"])
        spread = max(math.ceil(HEAVY / fit) * heavy_s, work / WORKERS)
        best = statistics.median(fixed) + spread

        print(
            f"mixed suite: {HEAVY} tests holding {format_size(size)} for 1.5 s, 24 light ones;"
            f" aggregate limit {format_size(aggregate)};"
            f" a worker's own RSS {format_size(base)}: {fit} heavy test(s) fit at once"
        )
        print(
            f"best schedule that fits: {best:.2f} s (session cost {statistics.median(fixed):.2f} s"
            f" + the longer of {math.ceil(HEAVY / fit)} round(s) of heavy tests of {heavy_s:.2f} s"
            f" and the work over {WORKERS} workers, {spread:.2f} s)"
        )
        print(f"{'schedule':<24}{'median s':>10}{'x best':>8}{'killed':>8}{'most at once':>14}")
        figures: dict[str, Any] = {"best_s": best, "fit": fit, "mixed": {}, "light": {}}
        for name, results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            killed = max(r["killed"] for r in results)
            most = max(r["at_once"] for r in results)
            print(f"{name:<24}{seconds:>10.2f}{seconds / best:>8.2f}{killed:>8}{most:>14}")
            figures["mixed"][name] = {"seconds": seconds, "killed": killed, "at_once": most}
        plain = statistics.median(light_runs["-n 4"])
        packed = statistics.median(light_runs["-n 4 --memguard-pack"])
        pairs = zip(light_runs["-n 4 --memguard-pack"], light_runs["-n 4"], strict=True)
        ratio = statistics.median(one / other for one, other in pairs)
        print(
            f"light suite (400 tests of 5 ms): -n 4 {plain:.2f} s, packed {packed:.2f} s"
            f" (median of the rounds' ratios {ratio:.2f}x)"
        )
        figures["light"] = {"-n 4": plain, "-n 4 --memguard-pack": packed, "ratio": ratio}
        if args.json is not None:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
