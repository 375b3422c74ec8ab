"""What the guard costs a test, measured inside one run.

Run to run, the wall time of a suite on a shared VM moves by several percent, more than
the few microseconds a change to the per-test path saves.  This script measures inside
a single ``pytest --memguard`` run instead: in blocks of four tests, memguard's plugin
object is registered (guarded) or not registered at all (aside: none of its per-test
hooks is called), and each test's whole protocol is timed by the outermost wrapper of
``pytest_runtest_protocol``, in CPU time of the main thread (the time the machine's
other work takes the CPU from the run is not counted).  The first test of each block,
which follows the change of plugins, is not counted; the difference of the two kinds'
trimmed means (the slowest tenth dropped) is what memguard costs a test: its hooks'
dispatch and code, the record lines and the result, with the CPU's caches as cold as
a real run leaves them.  Machine drift hits both kinds alike, because they alternate.
Not counted: the cost per run (imports, the watchdog thread's start, the report).
Under ``-- -n 2`` the figures are one worker's (the last to end).

Unregistering the plugin object between tests is a developer's tool, not a public
interface.  The caller's ``PYTHONPATH`` comes after the suite's folder, so another
checkout's package can be measured (``PYTHONPATH=old-checkout python benchmarks/split.py``).

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
BLOCK = 4


class _Timer:
    # Registered after memguard's plugin: its tryfirst wrapper is the outermost of all.
    def __init__(self, config):
        self.pm = config.pluginmanager
        self.plugin = None
        self.index = 0

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        if self.plugin is None:  # registered by now
            self.plugin = self.pm.get_plugin("memguard-plugin")
        guarded = self.pm.is_registered(self.plugin)
        first = self.index % BLOCK == 0  # just after the plugins were registered again
        self.index += 1
        start = time.thread_time()
        try:
            return (yield)
        finally:
            if not first:
                _times[guarded].append(time.thread_time() - start)
            # The next test's hooks: with memguard's plugin object or without it at all.
            # Changed outside the window; the last test leaves it registered.
            following = (self.index // BLOCK) % 2 == 0 or nextitem is None
            if following and not guarded:
                self.pm.register(self.plugin, "memguard-plugin")
                self.pm.unregister(self, "memguard-split-timer")  # the outermost again
                self.pm.register(self, "memguard-split-timer")
            elif guarded and not following:
                self.pm.unregister(self.plugin, "memguard-plugin")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.pluginmanager.register(_Timer(config), "memguard-split-timer")


def pytest_unconfigure(config):
    def trimmed(values):
        kept = sorted(values)[: max(1, len(values) * 9 // 10)]
        return statistics.fmean(kept) * 1e6

    if not (_times[True] and _times[False]):  # an xdist controller: no test ran here
        return
    path = os.environ["MEMGUARD_SPLIT_OUT"]
    with open(f"{path}.{os.getpid()}", "w") as out:  # xdist workers: the last one's
        json.dump({"guarded": trimmed(_times[True]), "aside": trimmed(_times[False])}, out)
    os.replace(out.name, path)
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
        print(f"{args.tests} trivial tests, guarded and not in alternating blocks (CPU time):")
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
