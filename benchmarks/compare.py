"""memguard against its peers, head to head: what each costs and what each catches.

Costs: plain pytest, ``--memguard``, ``--memguard --memguard-leaks``, pytest-memray
(``--memray``, and ``--memray`` with ``limit_memory("1 GB")`` and ``limit_leaks("1 MB")``
on every test, added by a generated plugin) and pytest-monitor, on the generated
``trivial`` and ``alloc`` suites and on the test suites of the cachetools and
more-itertools sdists (``leak_suites.py`` downloads them), each without and with
``-n 2``.  The runs of one suite are paired and alternated (plain, each tool, plain...)
and each tool's figure is the median of its per-round ratios to the plain run of the same
round.  Each run loads only its own tool (``-p no:`` for the others).

Catches: a generated suite of short spikes (40, 100 and 300 MB held for 5 ms), a 10 MB
leak (a test that adds to a module's list) and a quiet test, under each tool: with a
verdict (memguard with a 20 MB peak budget on the spikes and leak mode; pytest-memray
with ``limit_memory("20 MB")`` on the spikes and ``limit_leaks("1 MB")`` on the others),
or only with figures (``--memguard``'s JSON report, ``--memray``'s allocation table,
pytest-monitor's database), where a figure of at least 80% of the spike counts as seen.

Prints the tables, writes JSON (``--json``) and draws a chart (``--chart``, matplotlib).
Needs the ``bench`` extra and pytest-xdist; ``make compare`` sets up its own virtual
environment and runs it.  Usage:

    python benchmarks/compare.py [--quick] [--rounds 5] [--suite trivial ...]
        [--json compare.json] [--chart compare.png]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leak_suites import LIBRARIES, SUITES, run
from leak_suites import prepare as prepare_library
from overhead import generate

#: Every test gets one of pytest-memray's limits (it refuses two on one test):
#: ``-p memray_limit_memory`` or ``-p memray_limit_leaks``.
MEMRAY_LIMIT = """
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.{mark})
"""
MEMRAY_LIMITS = {
    "memray_limit_memory": 'limit_memory("1 GB")',
    "memray_limit_leaks": 'limit_leaks("1 MB")',
}

#: The detection suite.
DETECTION = """
import time

KEPT = []


def _spike(size):
    data = bytearray(size)  # zeroed: every page is touched
    time.sleep(0.005)
    del data


def test_quiet():
    assert sum(range(1000)) > 0


def test_spike_40mb():
    _spike(40_000_000)


def test_spike_100mb():
    _spike(100_000_000)


def test_spike_300mb():
    _spike(300_000_000)


def test_leak_10mb():
    KEPT.append(bytearray(10_000_000))
"""
CASES = {"spike_40mb": 40_000_000, "spike_100mb": 100_000_000, "spike_300mb": 300_000_000}
LEAK = ("leak_10mb", 10_000_000)

#: The verdicts' limits on the detection suite: memguard's and pytest-memray's.
DETECTION_MARKS = """
import pytest


def pytest_collection_modifyitems(config, items):
    memray = config.pluginmanager.hasplugin("memray") and config.getoption("memray", False)
    for item in items:
        spike = "spike" in item.name
        if memray:
            mark = pytest.mark.limit_memory("20 MB") if spike else pytest.mark.limit_leaks("1 MB")
            item.add_marker(mark)
        elif spike:
            item.add_marker(pytest.mark.memory_budget(peak="20 MB"))
"""

#: A tool's pytest arguments; each run blocks the other tools' plugins.
TOOLS: dict[str, list[str]] = {
    "plain": [],
    "memguard": ["--memguard"],
    "memguard leaks": ["--memguard", "--memguard-leaks"],
    "memray": ["--memray"],
    "memray limit_memory": ["--memray", "-p", "memray_limit_memory"],
    "memray limit_leaks": ["--memray", "-p", "memray_limit_leaks"],
    "monitor": [],
}
_PLUGIN_OF = {"memguard": "memguard", "memray": "memray", "monitor": "monitor"}
QUICK_TESTS = {"trivial": 500, "alloc": 60}
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
_MEMRAY_ROW = re.compile(
    r"Allocation results for (\S+) at the high watermark\s+\S+ Total memory allocated:"
    r" ([0-9.]+)(B|KiB|MiB|GiB)"
)


def _blocked(tool: str) -> list[str]:
    own = tool.split(" ", 1)[0]
    return [
        arg
        for name in ("memguard", "memray", "monitor")
        if name != own
        for arg in ("-p", f"no:{_PLUGIN_OF[name]}")
    ]


def command(tool: str, selection: Sequence[str], workers: int, folder: Path) -> list[str]:
    """The pytest command of ``tool`` (a key of :data:`TOOLS`)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection]
    args += _blocked(tool) + TOOLS[tool]
    if tool == "monitor":
        args += ["--db", str(folder / "monitor.db")]
    if workers:
        args += ["-n", str(workers)]
    return args


def prepare(suite: str, folder: Path, quick: bool) -> tuple[Path, list[str]]:
    """The suite's directory and test selection (smaller generated suites when quick)."""
    if suite in LIBRARIES or not quick:
        return prepare_library(suite, folder)
    folder.mkdir()
    generate(folder, suite, QUICK_TESTS[suite])
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder, []


def environment(plugins: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return env


def time_suite(
    suite: str, worker_counts: Sequence[int], rounds: int, quick: bool, plugins: Path
) -> list[dict[str, Any]]:
    """Alternating rounds of every tool on ``suite`` (prepared once), for each ``-n``:
    median ratios and outcomes."""
    env = environment(plugins)
    results = []
    with tempfile.TemporaryDirectory(prefix="memguard-compare-") as name:
        folder = Path(name)
        cwd, selection = prepare(suite, folder / "suite", quick)
        for workers in worker_counts:
            print(f"timing {suite} (-n {workers}), {rounds} round(s)...", flush=True)
            commands = {tool: command(tool, selection, workers, folder) for tool in TOOLS}
            run(commands["plain"], cwd, env)  # warms the suite's bytecode and file caches
            times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
            outcomes: dict[str, str] = {}
            for _ in range(rounds):
                for tool, args in commands.items():
                    elapsed, outcomes[tool] = run(args, cwd, env)
                    times[tool].append(elapsed)
            results.append(_timing(suite, workers, rounds, times, outcomes))
    return results


def _timing(
    suite: str, workers: int, rounds: int, times: dict[str, list[float]], outcomes: dict[str, str]
) -> dict[str, Any]:
    result: dict[str, Any] = {"suite": suite, "workers": workers, "rounds": rounds, "tools": {}}
    for tool in TOOLS:
        ratios = [t / p for t, p in zip(times[tool], times["plain"], strict=True)]
        result["tools"][tool] = {
            "median_s": round(statistics.median(times[tool]), 3),
            "ratio": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
            "outcome": outcomes[tool],
            "same_outcome": outcomes[tool] == outcomes["plain"],
        }
    return result


def _memray_figures(output: str) -> dict[str, int]:
    return {
        nodeid.split("::")[-1]: int(float(size) * _UNITS[unit])
        for nodeid, size, unit in _MEMRAY_ROW.findall(output)
    }


def _monitor_figures(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT ITEM, MEM_USAGE FROM TEST_METRICS WHERE KIND = 'function'")
        return {str(item): int(float(mib) * 2**20) for item, mib in rows if mib is not None}


def _memguard_results(report: Path) -> dict[str, dict[str, Any]]:
    if not report.exists():
        return {}
    tests = json.loads(report.read_text())["tests"]
    return {test["nodeid"].split("::")[-1]: test for test in tests}


def _failed(output: str) -> set[str]:
    return set(re.findall(r"^(?:FAILED|ERROR|MEMORY(?: PROBLEMS)?) \S+::(\w+)", output, re.M))


def detect(workers: int, plugins: Path) -> dict[str, dict[str, str]]:
    """Which tool saw each spike and the leak: tool -> case -> what it said."""
    import subprocess

    env = environment(plugins)
    found: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="memguard-detect-") as name:
        folder = Path(name)
        (folder / "test_detect.py").write_text(DETECTION)
        (folder / "pytest.ini").write_text("[pytest]\n")
        report = folder / "memguard.json"
        setups = {
            "memguard (figures)": ("memguard", [f"--memguard-json={report}"]),
            "memguard (20 MB budget, leak mode)": (
                "memguard leaks",
                [f"--memguard-json={report}", "-p", "detection_marks"],
            ),
            "memray (figures)": ("memray", ["--most-allocations=0"]),
            "memray (limit_memory 20 MB on spikes, limit_leaks 1 MB)": (
                "memray",
                ["-p", "detection_marks", "--most-allocations=0"],
            ),
            "pytest-monitor (figures)": ("monitor", []),
        }
        for label, (tool, extra) in setups.items():
            report.unlink(missing_ok=True)
            (folder / "monitor.db").unlink(missing_ok=True)
            args = [*command(tool, [], workers, folder), "-rfE", *extra]
            done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
            output = done.stdout + done.stderr
            failed = _failed(output)
            verdicts = "budget" in label or "limit" in label
            figures: dict[str, int] = {}
            mine = _memguard_results(report)
            if tool.startswith("memguard"):
                figures = {k: v["peak_delta"] or 0 for k, v in mine.items()}
            elif tool == "memray":
                figures = _memray_figures(output)
            else:
                figures = _monitor_figures(folder / "monitor.db")
            seen: dict[str, str] = {}
            for case, size in [*CASES.items(), LEAK]:
                test = f"test_{case}"
                figure = figures.get(test)
                words = f"{figure / 2**20:.0f} MiB" if figure is not None else "no figure"
                if verdicts and test in failed:
                    status = mine.get(test, {}).get("status")
                    seen[case] = "failed" + (f" ({status})" if status else "")
                elif case == LEAK[0] and not verdicts:
                    seen[case] = f"no leak check ({words})"
                elif case == LEAK[0]:
                    seen[case] = f"missed ({words})"
                elif figure is not None and figure >= 0.8 * size:
                    seen[case] = f"seen: {words}" if not verdicts else f"passed ({words})"
                else:
                    seen[case] = f"missed ({words})"
            seen["quiet"] = ("false alarm" if "test_quiet" in failed else "ok") if verdicts else "-"
            seen["outcome"] = (output.strip().splitlines() or [""])[-1].strip("= ")
            found[label] = seen
    return found


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1).strip() if found else ""
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.M)
        memory = int(found.group(1)) * 1024 if found else None
    from importlib import metadata

    versions = {}
    for name in ("pytest", "pytest-memguard", "pytest-memray", "pytest-monitor", "pytest-xdist"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "versions": versions,
    }


def print_tables(results: dict[str, Any]) -> None:
    tools = [tool for tool in TOOLS if tool != "plain"]
    print("\nTime, median ratio to plain pytest (* : outcomes differ from plain pytest's)")
    print("| suite | -n | plain (s) | " + " | ".join(tools) + " |")
    print("|---|---|---|" + "---|" * len(tools))
    for timing in results["timings"]:
        cells = []
        for tool in tools:
            figure = timing["tools"][tool]
            cells.append(f"{figure['ratio']:.2f}x" + ("" if figure["same_outcome"] else " *"))
        plain = timing["tools"]["plain"]["median_s"]
        print(
            f"| {timing['suite']} | {timing['workers'] or '-'} | {plain:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    for timing in results["timings"]:
        for tool, figure in timing["tools"].items():
            if not figure["same_outcome"]:
                print(
                    f"* {timing['suite']} -n {timing['workers']}: {tool}: {figure['outcome']}"
                    f" (plain: {timing['tools']['plain']['outcome']})"
                )
    for workers, found in results["detection"].items():
        cases = [*CASES, LEAK[0], "quiet"]
        print(f"\nWhat each tool caught ({'-n ' + workers if workers != '0' else 'one process'})")
        print("| tool | " + " | ".join(cases) + " |")
        print("|---|" + "---|" * len(cases))
        for label, seen in found.items():
            print(f"| {label} | " + " | ".join(seen[case] for case in cases) + " |")


def draw(results: dict[str, Any], path: Path) -> None:
    """Bars of each tool's median ratio per suite, one panel without and one with -n 2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tools = [tool for tool in TOOLS if tool != "plain"]
    panels = sorted({timing["workers"] for timing in results["timings"]})
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for axis, workers in zip(axes[0], panels, strict=True):
        timings = [t for t in results["timings"] if t["workers"] == workers]
        width = 0.8 / len(tools)
        for index, tool in enumerate(tools):
            xs = [i + index * width for i in range(len(timings))]
            ratios = [t["tools"][tool]["ratio"] for t in timings]
            bars = axis.bar(xs, ratios, width, label=tool)
            axis.bar_label(bars, labels=[f"{r:.1f}" for r in ratios], fontsize=6)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(timings))])
        axis.set_xticklabels([t["suite"] for t in timings])
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_yscale("log")
        axis.set_ylabel("time / plain pytest (log)")
        axis.set_title("one process" if not workers else f"-n {workers}")
    axes[0][0].legend(fontsize=7)
    info = results["machine"]
    figure.suptitle(
        f"pytest-memguard and its peers, {info['date']}: {info['cpus']} CPUs, Python"
        f" {info['python']}, median of {results['rounds']} paired round(s)",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suite", action="append", choices=SUITES, help="repeatable; all four")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5; quick 1)")
    parser.add_argument("--quick", action="store_true", help="1 round, smaller generated suites")
    parser.add_argument("--workers", type=int, action="append", help="-n values (default 0, 2)")
    parser.add_argument("--json", type=Path, default=Path("compare.json"), help="results")
    parser.add_argument("--chart", type=Path, default=Path("compare.png"), help="chart (PNG)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    worker_counts = args.workers or [0, 2]
    results: dict[str, Any] = {"machine": machine(), "rounds": rounds, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="memguard-compare-plugins-") as plugins:
        folder = Path(plugins)
        for module, mark in MEMRAY_LIMITS.items():
            (folder / f"{module}.py").write_text(MEMRAY_LIMIT.format(mark=mark))
        (folder / "detection_marks.py").write_text(DETECTION_MARKS)
        results["detection"] = {str(n): detect(n, folder) for n in worker_counts}
        results["timings"] = []
        for suite in args.suite or SUITES:
            results["timings"] += time_suite(suite, worker_counts, rounds, args.quick, folder)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print_tables(results)
    draw(results, args.chart)
    print(f"\nJSON: {args.json}; chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
