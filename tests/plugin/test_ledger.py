"""``--memguard-ledger``: guarded runs on one machine count each other's memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_memguard.library.ledger import Entry, Ledger, process_key
from pytest_memguard.plugin.gate import memory_domain
from pytest_memguard.probe.system import read_system_memory

from ..sessions import check_session
from .cgroups import inside, memory_cgroup
from .conftest import settings

GiB = 1 << 30
MiB = 1 << 20

#: A heavy test (by the history below) that says when it starts, among light ones.
SUITE = """
from pathlib import Path

def test_light():
    pass

def test_heavy():
    Path("heavy.started").write_text("")
"""


def write_history(path: Path, peaks: dict[str, int], rss_start: int = 50 * MiB) -> Path:
    tests = [
        {"nodeid": nodeid, "status": "ok", "peak_delta": peak, "rss_start": rss_start}
        for nodeid, peak in peaks.items()
    ]
    path.write_text(json.dumps({"schema": "pytest-memguard/1", "tests": tests}))
    return path


def other_run(reserved: int, base: int = 100 * MiB) -> Entry:
    """An entry of another guarded run: this (live) process stands for its worker."""
    pid, started = process_key()
    return Entry(
        pid,
        started,
        "4242:1.0",
        memory_domain(read_system_memory()),
        base,
        reserved,
        "other/test_big.py::test_big",
        "/src/other",
    )


def ledger() -> Ledger:
    return Ledger(Path(os.environ["MEMGUARD_LEDGER_FILE"]))


def wait_for(what: str, found: object, deadline: float) -> None:
    """Fail when ``found()`` is still false at ``deadline`` (a file's change, not a time)."""
    while not found():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def test_a_heavy_test_waits_while_another_run_holds_the_room(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    history = write_history(
        pytester.path / "history.json",
        {"test_suite.py::test_light": 0, "test_suite.py::test_heavy": GiB},
    )
    book = ledger()
    book.put(other_run(reserved=GiB + GiB // 2))
    seen: dict[str, object] = {}

    def release() -> None:
        """Once the inner test waits (its entry, reserving nothing, names it), the other
        run's test ends."""

        def waiting() -> bool:
            return any(
                e.test == "test_suite.py::test_heavy" and e.reserved == 0 for e in book.entries()
            )

        try:
            wait_for("the heavy test waiting", waiting, time.monotonic() + 60)
            seen["started while waiting"] = (pytester.path / "heavy.started").exists()
        finally:
            book.put(other_run(reserved=0))

    thread = threading.Thread(target=release)
    thread.start()
    try:
        result = pytester.runpytest_subprocess(
            "--memguard",
            "-p",
            "no:cacheprovider",
            "--memguard-ledger=on",
            f"--memguard-history={history}",
            "--memguard-aggregate=2GiB",
            timeout=120,
        )
    finally:
        thread.join()
    result.assert_outcomes(passed=2)
    assert seen == {"started while waiting": False}
    result.stdout.fnmatch_lines(
        [
            "memguard: ledger: 1 other guarded run on this machine holds 1.6 GiB;"
            " heavy tests wait for room",
            "*memguard: ledger: 1 test(s) waited * s for memory other runs held"
            " (pid 4242 in /src/other)",
        ]
    )
    # The run's own entry went with it; the other run's stays.
    assert [e.run for e in book.entries()] == ["4242:1.0"]


def test_a_heavy_test_runs_at_once_when_it_fits_and_light_tests_never_read_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    history = write_history(
        pytester.path / "history.json",
        {"test_suite.py::test_light": 0, "test_suite.py::test_heavy": 300 * MiB},
    )
    ledger().put(other_run(reserved=GiB))
    result = pytester.runpytest_subprocess(
        "--memguard",
        "-p",
        "no:cacheprovider",
        f"--memguard-history={history}",
        "--memguard-ledger=on",
        "--memguard-aggregate=2GiB",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*waited*")


def test_packing_counts_the_other_runs_and_says_so(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    history = write_history(
        pytester.path / "history.json",
        {"test_suite.py::test_light": 0, "test_suite.py::test_heavy": 300 * MiB},
    )
    ledger().put(other_run(reserved=GiB))
    result = pytester.runpytest_subprocess(
        "--memguard",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--memguard-pack",
        f"--memguard-history={history}",
        "--memguard-aggregate=3GiB",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["memguard: ledger: 1 other guarded run on this machine holds 1.1 GiB; packing counts it"]
    )


def test_no_ledger_line_when_it_is_off(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    ledger().put(other_run(reserved=GiB))
    result = pytester.runpytest_subprocess(
        "--memguard",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--memguard-pack",
        "--memguard-ledger",
        "off",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*memguard: ledger*")


def test_the_ledger_is_on_with_packing_and_set_by_option_env_and_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    assert not settings(pytester, "--memguard").ledger
    assert settings(pytester, "--memguard", "-n", "2", "--memguard-pack").ledger
    assert not settings(pytester, "--memguard", "--memguard-ledger=off", "--memguard-pack").ledger
    pytester.makeini("[pytest]\nmemguard_ledger = on\n")
    on = settings(pytester, "--memguard")
    assert on.ledger
    assert on.source("ledger") == "memguard_ledger (ini)"
    monkeypatch.setenv("MEMGUARD_LEDGER", "off")
    off = settings(pytester, "--memguard")
    assert not off.ledger
    assert off.source("ledger") == "MEMGUARD_LEDGER"
    assert settings(pytester, "--memguard", "--memguard-ledger", "on").source("ledger") == (
        "--memguard-ledger"
    )
    with pytest.raises(pytest.UsageError, match=r"--memguard-ledger: invalid value 'maybe'"):
        settings(pytester, "--memguard", "--memguard-ledger=maybe")


def test_help_lists_the_ledger_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--memguard-ledger=on|off*", "*Count the other guarded runs*"])


#: Four tests measured at 1 GiB each, at a worker base of 50 MiB.
FOUR_HEAVY = {f"test_suite.py::test_{i}": GiB for i in range(4)}


def run_auto(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """``-n auto`` with xdist offering 3 CPUs (its own environment variable)."""
    pytester.makepyfile(test_suite="def test_0(): pass\ndef test_1(): pass\n")
    history = write_history(pytester.path / "history.json", FOUR_HEAVY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
        return pytester.runpytest_subprocess(
            "--memguard",
            "-p",
            "no:cacheprovider",
            "-n",
            "auto",
            f"--memguard-history={history}",
            *args,
            timeout=120,
        )


@pytest.mark.parametrize(
    ("args", "workers", "why"),
    [
        # Any two of the heavy tests may meet: 2 x 50 MiB + 2 GiB fit, three do not.
        (
            ["--memguard-aggregate=2.5GiB"],
            2,
            "3 CPU(s), 2.5 GiB usable (--memguard-aggregate); *history.json: worker base"
            " 50.0 MiB, the 2 largest peak(s) 1.0 GiB, 1.0 GiB",
        ),
        # Packed, one heavy test at a time: three workers fit.
        (
            ["--memguard-aggregate=2.5GiB", "--memguard-pack"],
            3,
            "3 CPU(s), 2.5 GiB usable (--memguard-aggregate); *: worker base 50.0 MiB,"
            " the largest peak (packed) 1.0 GiB",
        ),
        # The smaller of the two cuts wins.
        (
            ["--memguard-aggregate=2.5GiB", "--memguard-pack", "--memguard-worker-memory=10TB"],
            1,
            "3 CPU(s), * available / 9.1 TiB per worker, 2.5 GiB usable*",
        ),
    ],
)
def test_auto_starts_the_workers_the_measured_peaks_fit(
    pytester: pytest.Pytester, args: list[str], workers: int, why: str
) -> None:
    pytest.importorskip("xdist")
    result = run_auto(pytester, *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"memguard: -n auto: {workers} worker(s): {why}", f"created: {workers}/{workers} worker*"]
    )


def test_auto_leaves_out_what_other_runs_hold(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    ledger().put(other_run(reserved=GiB - 100 * MiB))  # 1 GiB with its base
    result = run_auto(pytester, "--memguard-aggregate=2.1GiB", "--memguard-pack")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "memguard: -n auto: 2 worker(s): 3 CPU(s), 2.1 GiB usable (--memguard-aggregate)"
            " less 1.0 GiB other runs hold; *",
            "created: 2/2 workers",
        ]
    )


def test_auto_without_a_history_keeps_the_cpu_count(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite="def test_0(): pass\n")
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")
    result = pytester.runpytest_subprocess(
        "--memguard", "-n", "auto", "--memguard-aggregate=500MiB", timeout=120
    )  # a history of the 1 GiB tests above would cut it to one worker
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*-n auto*")
    result.stdout.fnmatch_lines(["created: 2/2 workers"])


#: Three tests that each hold 1 GiB for 1.5 s among light ones; each writes when it starts
#: and ends holding, into one log both runs share.
HOLDING = """
import time

import pytest

def mark(what):
    with open({log!r}, "a") as log:
        log.write(f"{{what}} {{time.time()}}\\n")

@pytest.mark.parametrize("i", range(4))
def test_light(i):
    pass

@pytest.mark.parametrize("i", range(3))
def test_heavy(i):
    block = bytearray(1 << 30)
    mark("start")
    time.sleep(1.5)
    mark("end")
    del block
"""


def most_at_once(log: Path) -> int:
    events = sorted(
        (float(when), 1 if what == "start" else -1)
        for what, when in (line.split() for line in log.read_text().splitlines())
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.slow
def test_two_packed_runs_in_one_3gib_container_never_hold_more_than_two_heavy_tests(
    pytester: pytest.Pytester,
) -> None:
    """The issue's check: two concurrent ``pytest -n 2 --memguard --memguard-pack`` runs in
    one 3 GiB memory cgroup, each with three tests holding 1 GiB, each with a measured
    history: no worker killed, no kernel OOM kill, both complete, at most two heavy tests
    at once across both (each alone would run two: 2.7 GiB holds two beside its workers)."""
    pytest.importorskip("xdist")
    log = pytester.path / "times.log"
    folders = [pytester.mkdir(name) for name in ("one", "two")]
    for folder in folders:
        (folder / "test_holding.py").write_text(HOLDING.format(log=str(log)))
    command = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--memguard")
    bounded = ("--memguard-max=1.5GiB",)  # each worker: a wrong run stops, not the machine
    with memory_cgroup(3 * GiB) as group:
        for folder in folders:  # the measuring runs, one after the other
            measuring = inside(group, *command, *bounded, f"--memguard-json={folder}/first.json")
            done = subprocess.run(
                measuring, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120
            )
            assert done.returncode == 0, done.stdout.decode()
            check_session(done.stdout.decode(), measuring)
        log.unlink()
        packed = (*command, *bounded, "--memguard-pack", "--memguard-history=first.json")
        commands = [
            inside(group, *packed, f"--memguard-json={folder}/second.json") for folder in folders
        ]
        runs = [
            subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for cmd, folder in zip(commands, folders, strict=True)
        ]
        outputs = [run.communicate(timeout=180)[0].decode() for run in runs]
        oom_kills = group.oom_kills()
    for output, cmd in zip(outputs, commands, strict=True):
        check_session(output, cmd)
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert oom_kills == 0, "the kernel's OOM killer ended a process"
    for folder in folders:
        report = json.loads((folder / "second.json").read_text())
        assert report["summary"]["outcomes"] == {"passed": 7}
        assert report["summary"]["statuses"]["ok"] == 7
        assert not any(worker["killed"] for worker in report["workers"])
        assert report["config"]["ledger"] is True
    assert log.read_text().count("start") == 6
    assert most_at_once(log) <= 2, outputs


def test_a_corrupt_ledger_is_started_afresh_and_said(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    history = write_history(pytester.path / "history.json", {"test_suite.py::test_heavy": GiB})
    path = Path(os.environ["MEMGUARD_LEDGER_FILE"])
    path.write_text("{not json")
    result = pytester.runpytest_subprocess(
        "--memguard",
        "-p",
        "no:cacheprovider",
        "--memguard-ledger=on",
        f"--memguard-history={history}",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"memguard: ledger: {path}: *; started afresh"])
    assert json.loads(path.read_text()) == {"version": 1, "entries": []}


@pytest.mark.memguard_errors
def test_a_fault_of_the_gate_itself_is_an_internal_error_and_the_run_goes_on(
    pytester: pytest.Pytester,
) -> None:
    """The ledger file's problems are notices; a fault of memguard's own code is said as
    the internal error it is (the suite's session check would see it), and the tests run
    as without the ledger."""
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(
        """
from pytest_memguard.library.ledger import Ledger

def broken(*args, **kwargs):
    raise RuntimeError("a fault of the gate")

Ledger.wait = broken
"""
    )
    history = write_history(pytester.path / "history.json", {"test_suite.py::test_heavy": GiB})
    result = pytester.runpytest_subprocess(
        "--memguard",
        "-p",
        "no:cacheprovider",
        "--memguard-ledger=on",
        "--memguard-aggregate=4GB",  # 1 GiB of it is heavy
        f"--memguard-history={history}",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("a fault of the gate") == 1, "said once: then it is off"
    result.stdout.fnmatch_lines(
        [
            "memguard: internal error, the guard went on: the ledger of guarded runs,"
            " before test_suite.py::test_*: RuntimeError: a fault of the gate"
        ]
    )
    assert "not counting other runs" not in result.stdout.str()
