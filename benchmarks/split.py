"""What the guard's own code costs a test, measured inside one run.

Run to run, the wall time of a suite on a shared VM moves by several percent, more than
the few microseconds a change to the per-test path saves.  This script measures inside
a single ``pytest --memguard`` run instead: memguard guards the phases of two tests,
stands aside for the next two (its phase wrappers still run, and return at once), and
so on; the time from each test's ``logstart`` to its ``logfinish`` is kept for both
kinds, and the difference of their trimmed means (the slowest tenth dropped) is what
memguard's phase code costs a test, with the CPU's caches as cold as a real run leaves
them.  Machine drift hits both kinds alike, because they alternate.  Not counted: the
hooks' dispatch, which both kinds pay, the start and end of each test's protocol (its
record lines and result, outside the window), and the cost per run (imports, the report).

Standing aside clears the running test of the run (``MemguardPlugin.local.running``) at
``logstart``: this is a developer's tool, not a public interface.  The caller's
``PYTHONPATH`` comes after the suite's folder, so another checkout's package can be
measured (``PYTHONPATH=old-checkout python benchmarks/split.py``).

    python benchmarks/split.py [--tests 2000] [--runs 3] [-- extra pytest arguments]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from overhead import generate  # the same generated suite

SPLITTER = """
import json, os, statistics, time
import pytest

_times = {True: [], False: []}
_state = {"index": 0, "start": 0.0, "guarded": True}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid, location):
    guarded = _state["guarded"] = (_state["index"] // 2) % 2 == 0
    _state["index"] += 1
    plugin = _CONFIG.pluginmanager.get_plugin("memguard-plugin")
    if not guarded:
        local = getattr(plugin, "local", None) or plugin.run  # .run: before the context
        local.running = None
    _state["start"] = time.perf_counter()


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid, location):
    _times[_state["guarded"]].append(time.perf_counter() - _state["start"])


def pytest_configure(config):
    global _CONFIG
    _CONFIG = config


def pytest_unconfigure(config):
    def trimmed(values):
        kept = sorted(values)[: max(1, len(values) * 9 // 10)]
        return statistics.fmean(kept) * 1e6

    with open(os.environ["MEMGUARD_SPLIT_OUT"], "w") as out:
        json.dump({"guarded": trimmed(_times[True]), "aside": trimmed(_times[False])}, out)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="memguard-split-") as folder:
        root = Path(folder)
        generate(root, "trivial", args.tests)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "memguard_split.py").write_text(SPLITTER)
        out = root / "split.json"
        path = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        env |= {"PYTHONPATH": path, "MEMGUARD_SPLIT_OUT": str(out)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-p", "memguard_split", "--memguard", *args.pytest_args]
        print(f"{args.tests} trivial tests, guarded and not in alternating pairs:")
        for run in range(args.runs + 1):  # the first run warms the caches
            completed = subprocess.run(
                command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if completed.returncode != 0:
                raise SystemExit(f"pytest failed:\n{completed.stderr.decode()}")
            if run:
                figures = json.loads(out.read_text())
                guarded, aside = figures["guarded"], figures["aside"]
                print(
                    f"  run {run}: guarded {guarded:.1f} us, aside {aside:.1f} us:"
                    f" memguard's code {guarded - aside:.1f} us a test"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
