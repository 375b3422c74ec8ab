"""``--memguard-history-save FILE``: the history a fresh CI runner has, written by one
run and read by the next (``--memguard-history FILE``), merged across shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from pytest_memguard.reporting.history import Peak
from pytest_memguard.reporting.historyfile import HISTORY_SCHEMA, HistoryFile, Record

from ..sessions import check_session, guarded_run
from .conftest import settings
from .test_history_cache import BARRIER

MB = 1024 * 1024

#: Three tests, one of them holding 40 MiB at its peak.
SUITE = """
def test_light():
    pass

def test_heavy():
    block = bytearray(40 * 1024 * 1024)
    del block

def test_other():
    pass
"""

#: Each process that writes the history file says so in saves.log (a worker's own output
#: is not shown).
SAVES_SPY = """
from pathlib import Path

from pytest_memguard.plugin import peakcache

save_history = peakcache.save_history

def _spy(config, *args, **kwargs):
    role = "worker" if hasattr(config, "workerinput") else "controller"
    with open(Path(__file__).parent / "saves.log", "a") as log:
        log.write(role + "\\n")
    return save_history(config, *args, **kwargs)

peakcache.save_history = _spy
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result, _ = guarded_run(pytester, "-p", "no:randomly", *args, timeout=120)
    return result


def _tests(path: Path) -> dict[str, list[object]]:
    data = json.loads(path.read_text())
    assert data["schema"] == HISTORY_SCHEMA
    tests: dict[str, list[object]] = data["tests"]
    return tests


def test_a_run_writes_the_file_and_the_next_packs_by_it(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    saved = pytester.path / "history" / "memguard-history.json"
    result = _run(pytester, f"--memguard-history-save={saved}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"memguard: --memguard-history-save: 3 test(s) new or changed in {saved} (3 in all)"]
    )
    tests = _tests(saved)
    assert sorted(tests) == [f"test_suite.py::test_{name}" for name in ("heavy", "light", "other")]
    growth = tests["test_suite.py::test_heavy"][0]
    assert isinstance(growth, int)
    assert 35 * MB <= growth <= 80 * MB
    assert not list(saved.parent.glob("*.lock")), "no lock beside a file a project commits"

    # A fresh runner: no cache (the helper turns it off), the file only.
    result = _run(pytester, "-n", "2", "--memguard-pack", f"--memguard-history={saved}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"memguard: pack: 3 of 3 test(s) have a measured peak ({saved})*"])


def test_a_second_run_leaves_unchanged_figures_and_their_bytes_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    saved = pytester.path / "memguard-history.json"
    _run(pytester, f"--memguard-history-save={saved}")
    data = json.loads(saved.read_text())
    first = dict(data["tests"])
    data["tests"]["test_suite.py::test_gone"] = [5 * MB, 0, None, "2026-01-01T00:00:00Z"]
    data["tests"]["test_suite.py::test_heavy"] = [400 * MB, 0, None, "2026-01-01T00:00:00Z"]
    saved.write_text(json.dumps(data))
    result = _run(pytester, f"--memguard-history-save={saved}", "-k", "heavy or light")
    result.stdout.fnmatch_lines(["*: 1 test(s) new or changed in * (4 in all)"])
    after = _tests(saved)
    assert after["test_suite.py::test_gone"] == [5 * MB, 0, None, "2026-01-01T00:00:00Z"]
    growth, _, _, measured = after["test_suite.py::test_heavy"]
    assert isinstance(growth, int)
    assert 35 * MB <= growth <= 80 * MB  # measured again
    assert measured != "2026-01-01T00:00:00Z"
    # Within 10% and 1 MiB of what the file had: kept as it was, date included.
    assert after["test_suite.py::test_light"] == first["test_suite.py::test_light"]
    assert after["test_suite.py::test_other"] == first["test_suite.py::test_other"]


def test_two_shards_files_merged_give_both_shards_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    one, two = pytester.path / "shard1.json", pytester.path / "shard2.json"
    _run(pytester, f"--memguard-history-save={one}", "-k", "light")
    _run(pytester, f"--memguard-history-save={two}", "-k", "not light")
    assert len(_tests(one)) == 1
    assert len(_tests(two)) == 2

    # Read together (a comma list) ...
    result = _run(pytester, "-n", "2", "--memguard-pack", f"--memguard-history={one},{two}")
    result.stdout.fnmatch_lines(
        [f"memguard: pack: 3 of 3 test(s) have a measured peak ({one}, {two})*"]
    )
    # ... or merged into one file first.
    merged = pytester.path / "merged.json"
    assert main(["history", "merge", str(merged), str(one), str(two)]) == 0
    assert len(_tests(merged)) == 3


def test_under_xdist_the_controller_writes_the_one_file(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(SAVES_SPY)
    saved = pytester.path / "memguard-history.json"
    result = _run(pytester, "-n", "2", f"--memguard-history-save={saved}")
    assert (pytester.path / "saves.log").read_text() == "controller\n"
    result.assert_outcomes(passed=3)
    lines = [line for line in result.stdout.lines if "--memguard-history-save:" in line]
    assert lines == [
        f"memguard: --memguard-history-save: 3 test(s) new or changed in {saved} (3 in all)"
    ]
    assert len(_tests(saved)) == 3


def test_an_interrupted_run_still_saves_what_it_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stop="""
        def test_first():
            pass

        def test_stop():
            raise KeyboardInterrupt

        def test_never():
            pass
        """
    )
    saved = pytester.path / "memguard-history.json"
    result = _run(pytester, f"--memguard-history-save={saved}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "test_stop.py::test_first" in _tests(saved)
    assert "test_stop.py::test_never" not in _tests(saved)


def test_a_file_that_is_not_a_history_is_not_overwritten(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    other = pytester.path / "notes.json"
    other.write_text('{"mine": true}')
    result = _run(pytester, f"--memguard-history-save={other}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            f"memguard: --memguard-history-save: {other}: not a memguard history (expected"
            f' "schema": "{HISTORY_SCHEMA}"): not overwritten'
        ]
    )
    assert other.read_text() == '{"mine": true}'


def test_a_path_that_cannot_be_written_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    folder = pytester.path / "a-folder"
    folder.mkdir()
    result = pytester.runpytest_subprocess("--memguard", f"--memguard-history-save={folder}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --memguard-history-save: cannot write the history to '{folder}' (*directory*)"]
    )


def test_history_is_a_report_or_a_file_else_a_usage_error(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    other = pytester.path / "other.json"
    other.write_text('{"schema": "something/1"}')
    result = pytester.runpytest_subprocess(
        "--memguard", "-n", "2", "--memguard-pack", f"--memguard-history={other}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --memguard-history: {other}: neither a memguard history nor a report"
            f' (expected "schema": "{HISTORY_SCHEMA}" or "pytest-memguard/1")'
        ]
    )


@pytest.mark.parametrize(
    ("ini", "env", "cli", "expected", "source"),
    [
        ("from-ini.json", None, None, "from-ini.json", "memguard_history_save (ini)"),
        ("from-ini.json", "from-env.json", None, "from-env.json", "MEMGUARD_HISTORY_SAVE"),
        ("from-ini.json", "from-env.json", "cli.json", "cli.json", "--memguard-history-save"),
    ],
)
def test_history_save_has_ini_and_env_twins(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str,
    env: str | None,
    cli: str | None,
    expected: str,
    source: str,
) -> None:
    pytester.makeini(f"[pytest]\nmemguard_history_save = {ini}\n")
    if env is not None:
        monkeypatch.setenv("MEMGUARD_HISTORY_SAVE", env)
    args = ["--memguard", *([f"--memguard-history-save={cli}"] if cli else [])]
    resolved = settings(pytester, *args)
    assert resolved.history_save == (pytester.path / expected).absolute()
    assert resolved.source("history_save") == source


def test_history_takes_a_comma_list_with_twins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nmemguard_history = one.json, two.json\n")
    resolved = settings(pytester, "--memguard")
    assert resolved.history == (pytester.path / "one.json", pytester.path / "two.json")
    assert resolved.source("history") == "memguard_history (ini)"
    monkeypatch.setenv("MEMGUARD_HISTORY", "env.json")
    assert settings(pytester, "--memguard").history == (Path("env.json"),)
    with pytest.raises(pytest.UsageError, match=r"--memguard-history: empty path in 'a.json,'"):
        settings(pytester, "--memguard", "--memguard-history=a.json,")


def test_runs_that_save_one_file_together_each_keep_their_peaks(
    pytester: pytest.Pytester,
) -> None:
    pairs = 3
    pytester.makeconftest(BARRIER)
    # 20,000 other tests: each run's merge takes long enough that two of them without
    # turns would overlap, and one of the two would be lost.
    saved = pytester.path / "memguard-history.json"
    others = {
        f"other.py::test_{i}": Record(Peak(1000), "2026-01-01T00:00:00Z") for i in range(20_000)
    }
    saved.write_text(HistoryFile(others).encode())
    for pair in range(pairs):
        for side in "ab":
            pytester.makepyfile(**{f"test_{side}{pair}": "def test_it(): pass"})
    for pair in range(pairs):
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "--memguard",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--memguard-history-save={saved}",
                    f"test_{side}{pair}.py",
                ],
                cwd=pytester.path,
                env={**os.environ, "PAIR": str(pair)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for side in "ab"
        ]
        for process in processes:
            output, _ = process.communicate(timeout=120)
            assert process.returncode == 0, output.decode()
            check_session(output.decode(), process.args)
    kept = _tests(saved)
    expected = {f"test_{side}{pair}.py::test_it" for pair in range(pairs) for side in "ab"}
    assert set(kept) == expected | set(others)
