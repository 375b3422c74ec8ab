"""Leak mode against plain pytest: generated suites and the test suites of real libraries.

For each suite, plain pytest, ``--memguard --memguard-leaks`` and, where pytest-memray
is installed, ``--memray`` with ``limit_leaks("1 MB")`` on every test (its leak check)
run in alternating rounds; for each variant the median of the per-round ratios to the
plain run of the same round is printed, with the middle half of the ratios, and whether
its outcomes (pytest's summary line, timing cut off) are plain pytest's.

Suites: ``trivial`` and ``alloc`` are generated (as ``overhead.py`` does); ``cachetools``,
``more-itertools`` and ``attrs`` (hypothesis-heavy) are the tests that the sdist of the
installed version of each library ships, downloaded with ``pip download`` (the ``bench``
extra installs the libraries, hypothesis and pytest-memray).  Usage:

    python benchmarks/leak_suites.py [--suite cachetools] [--suite ...] [--rounds 5]
        [--no-memray]

For leak mode, the tests that the screening suspected and that failed as leaks are
counted from its JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

from overhead import generate

#: The downloaded suites: distribution name, and the folder of its tests in the sdist.
LIBRARIES = {"cachetools": "tests", "more-itertools": "tests", "attrs": "tests"}
SUITES = ("trivial", "alloc", *LIBRARIES)

#: Marks every test with pytest-memray's leak check (``-p memray_every_test``).
MEMRAY_PLUGIN = """
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.limit_leaks("1 MB"))
"""

_TIMING = re.compile(r" in [0-9.]+s( \([0-9:]+\))?")


def download(library: str, folder: Path) -> Path:
    """The root of the extracted sdist of the installed version of ``library``."""
    version = metadata.version(library)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--no-binary", ":all:", "--dest", str(folder), f"{library}=={version}"]
    subprocess.run(command, check=True)
    prefix = re.sub(r"[-_.]+", "[-_.]", library)
    (archive,) = [p for p in folder.glob("*.tar.gz") if re.match(prefix, p.name, re.I)]
    with tarfile.open(archive) as sdist:
        sdist.extractall(folder, filter="data")
    (root,) = [p for p in folder.iterdir() if p.is_dir() and re.match(prefix, p.name, re.I)]
    return root


def prepare(suite: str, folder: Path) -> tuple[Path, list[str]]:
    """The directory to run ``suite`` in and the arguments that select its tests."""
    folder.mkdir()
    if suite in LIBRARIES:
        return download(suite, folder), [LIBRARIES[suite]]
    generate(folder, suite, 2000 if suite == "trivial" else 300)
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder, []


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds the command took, and pytest's summary line without its timing."""
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = completed.stdout.strip().splitlines()
    summary = _TIMING.sub("", lines[-1].strip("= ")) if lines else ""
    return elapsed, f"{summary} (exit {completed.returncode})"


def leak_findings(path: Path) -> str:
    """How many tests leak mode suspected (ran again) and failed as leaks."""
    tests = json.loads(path.read_text())["tests"]
    suspects = sum(1 for test in tests if test.get("leak_check"))
    leaks = sum(1 for test in tests if test["status"] == "leak")
    return f"{suspects} suspected, {leaks} failed as leaks"


def measure(suite: str, rounds: int, memray: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="memguard-leak-bench-") as name:
        folder = Path(name)
        cwd, selection = prepare(suite, folder / "suite")
        report = folder / "memguard.json"
        (folder / "memray_every_test.py").write_text(MEMRAY_PLUGIN)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [name, env.get("PYTHONPATH")]))
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection]
        commands = {
            "plain": base,
            "--memguard --memguard-leaks": [
                *base,
                "--memguard",
                "--memguard-leaks",
                f"--memguard-json={report}",
            ],
        }
        if memray:
            commands["--memray limit_leaks"] = [*base, "--memray", "-p", "memray_every_test"]
        outcomes = {label: run(command, cwd, env)[1] for label, command in commands.items()}
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(rounds):
            for label, command in commands.items():
                times[label].append(run(command, cwd, env)[0])
        findings = leak_findings(report)
    print(f"suite {suite}: {rounds} alternating rounds")
    print(f"  plain pytest: median {statistics.median(times['plain']):.2f} s; {outcomes['plain']}")
    for label in list(commands)[1:]:
        ratios = [v / p for v, p in zip(times[label], times["plain"], strict=True)]
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        same = "same outcomes" if outcomes[label] == outcomes["plain"] else outcomes[label]
        extra = f"; {findings}" if label.startswith("--memguard") else ""
        print(
            f"  {label}: median {statistics.median(times[label]):.2f} s;"
            f" median ratio {statistics.median(ratios):.2f}"
            f" (middle half {low:.2f}-{high:.2f}); {same}{extra}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--suite", action="append", choices=SUITES, help="repeatable; default: all of them"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--no-memray", action="store_true", help="leave pytest-memray out")
    args = parser.parse_args(argv)
    memray = not args.no_memray
    if memray:
        try:
            metadata.version("pytest-memray")
        except metadata.PackageNotFoundError:
            print("pytest-memray is not installed: leak mode against plain pytest only")
            memray = False
    for suite in args.suite or SUITES:
        measure(suite, args.rounds, memray)
    return 0


if __name__ == "__main__":
    sys.exit(main())
