"""The run's own memory: the peak RSS of a guarded pytest run against plain pytest's.

Generates the ``trivial`` suite of ``overhead.py`` (one-line tests, half of them
parametrized; ``--tests``, default 20,000) and runs, in alternating rounds, plain pytest
(``-p no:memguard``) and the guarded run (``--variant``, by default the guard with its
JSON and HTML reports), each a new process whose peak RSS is the kernel's (``ru_maxrss``
of that child, from ``os.wait4``); pytest's cache is off (``-p no:cacheprovider``)
unless ``--cache``.  Prints each run's peak RSS, then per variant the median of its
peaks and of their difference to the plain run of the same round, whole and a test.
``--against SRC`` runs the same variant with another source tree's package (e.g. main's:
``git archive main pytest_memguard | tar -x -C /tmp/main``) in the same rounds.
The package must be installed in the interpreter that runs pytest (``--python``, by
default this one), for its entry point; each tree's package is put first on
``PYTHONPATH``.  POSIX only.  Usage:

    python benchmarks/run_memory.py [--tests 20000] [--rounds 3] [--python PY]
        [--variant "--memguard --memguard-json r.json --memguard-html r.html"]
        [--against SRC] [--cache]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from overhead import generate

HERE = str(Path(__file__).resolve().parent.parent)
DEFAULT_VARIANT = "--memguard --memguard-json r.json --memguard-html r.html"


def peak_rss(command: list[str], cwd: Path, source: str) -> int:
    """The peak RSS of ``command`` (bytes), run in a new process with ``source`` first on
    ``PYTHONPATH``."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ["PYTHONPATH"] = source
    process = subprocess.Popen(
        command, cwd=cwd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{errors.decode()}")
    # Linux gives kibibytes; macOS gives bytes.
    return usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--variant", default=DEFAULT_VARIANT)
    parser.add_argument("--against", metavar="SRC", help="another tree's package, same rounds")
    parser.add_argument("--cache", action="store_true", help="keep pytest's cache on")
    args = parser.parse_args(argv)

    base = [args.python, "-m", "pytest", "-q"]
    base += [] if args.cache else ["-p", "no:cacheprovider"]
    runs: dict[str, tuple[list[str], str]] = {
        "plain": ([*base, "-p", "no:memguard"], HERE),
        "guarded": ([*base, *shlex.split(args.variant)], HERE),
    }
    if args.against:
        runs["against"] = ([*base, *shlex.split(args.variant)], str(Path(args.against).resolve()))
    peaks: dict[str, list[int]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root, "trivial", args.tests)
        (root / "pytest.ini").write_text("[pytest]\n")
        files = min(20, max(1, args.tests // 10))
        tests = files * (args.tests // files)  # as generate() writes them
        print(f"{tests} trivial tests; guarded: {args.variant}")
        for round_ in range(args.rounds):
            for name, (command, source) in runs.items():
                peak = peak_rss(command, root, source)
                peaks[name].append(peak)
                print(f"round {round_ + 1}: {name:8} {peak / 2**20:8.1f} MiB", flush=True)
    plain = peaks["plain"]
    print(f"plain    median {statistics.median(plain) / 2**20:8.1f} MiB")
    for name in runs:
        if name == "plain":
            continue
        above = [peak - base_peak for peak, base_peak in zip(peaks[name], plain, strict=True)]
        median = statistics.median(above)
        print(
            f"{name:8} median {statistics.median(peaks[name]) / 2**20:8.1f} MiB,"
            f" above plain {median / 2**20:6.1f} MiB = {median / tests:6.0f} B a test"
            f" (rounds: {', '.join(f'{a / tests:.0f}' for a in above)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
