"""The JSON report and the terminal summary, as CI and people see them."""

from __future__ import annotations

import json
import os
import stat
import sys
import weakref
from typing import Any

import pytest

from .conftest import InnerSession, entry

MB = 1_000_000

SUITE = """
import pytest

def test_light():
    data = bytearray(5_000_000)

def test_heavy():
    data = bytearray(120_000_000)

def test_middle():
    data = bytearray(40_000_000)

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

def test_fails():
    assert 1 == 2
"""


def test_every_test_is_in_the_report_with_its_figures(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(SUITE)
    result, report = run()
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    assert report["schema"] == "pytest-memguard/1"
    assert report["interrupted"] is False
    assert [t["nodeid"].split("::")[1] for t in report["tests"]] == [
        "test_light",
        "test_heavy",
        "test_middle",
        "test_skipped",
        "test_fails",
    ]
    heavy = entry(report, "test_heavy")
    assert heavy["peak_delta"] >= 119 * MB
    assert heavy["worker"] == "main"
    assert heavy["duration_s"] > 0
    assert entry(report, "test_skipped")["outcome"] == "skipped"
    assert entry(report, "test_fails")["outcome"] == "failed"
    assert entry(report, "test_fails")["status"] == "ok", (
        "an assertion failure is not a memory failure"
    )
    assert report["summary"]["worst"]["nodeid"].endswith("test_heavy")
    assert report["summary"]["statuses"]["ok"] == 5
    assert report["summary"]["peak_rss"] >= heavy["rss_peak"]
    assert report["workers"][0]["id"] == "main"
    assert report["environment"]["memory_source"] in ("host", "cgroup")


def test_the_table_lists_the_heaviest_first(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(SUITE)
    result, _ = run("--memguard-top=2")
    result.stdout.fnmatch_lines(
        [
            "*= memguard =*",
            "heaviest tests by peak growth (top 2 of 5 tests, 4 measured):",
            "test * status * peak growth * peak RSS * end RSS * budget",
            "*::test_heavy * ok * 11?.? MiB *",
            "*::test_middle * ok * 3?.? MiB *",
            "peak RSS of the run *; largest growth 11?.? MiB in *::test_heavy",
            "JSON report: *memguard.json",
        ]
    )
    assert "::test_light  " not in result.stdout.str()
    # Names are aligned left and figures right, under their headers.
    lines = result.stdout.lines
    header = next(i for i, line in enumerate(lines) if line.startswith("test "))
    rows = lines[header + 2 : header + 4]
    assert lines[header + 1].startswith("----")
    end = lines[header].index("peak growth") + len("peak growth")
    assert [row[:end].endswith(" MiB") for row in rows] == [True, True]
    assert all(row.split()[0].endswith(("::test_heavy", "::test_middle")) for row in rows)


@pytest.mark.parametrize("json_report", [True, False], ids=["json", "terminal-only"])
def test_the_summary_reads_the_same_with_or_without_a_json_report(
    pytester: pytest.Pytester, json_report: bool
) -> None:
    # A report or none: people see the same section either way.
    pytester.makepyfile(SUITE)
    args = ["--memguard", "--memguard-top=2", "--memguard-budget=100MB", "--maxfail=1"]
    if json_report:
        args.append("--memguard-json=memguard.json")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= memguard =*",
            "heaviest tests by peak growth (top 2 of 2 tests):",
            "test * status * peak growth * peak RSS * end RSS * budget",
            "*::test_heavy * OVER BUDGET * 11?.? MiB * 95.4 MiB",
            "*::test_light * ok * 95.4 MiB",
            "1 memory failures:",
            "  OVER BUDGET *::test_heavy - memguard: peak growth 11?.? MiB is over the budget*",
            "3 test(s) were not run",
            "peak RSS of the run *; largest growth 11?.? MiB in *::test_heavy",
        ]
    )
    assert ("JSON report: " in result.stdout.str()) is json_report


def test_top_zero_hides_the_table(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(SUITE)
    result, _ = run("--memguard-top=0", inprocess=True)
    assert "heaviest tests" not in result.stdout.str()
    result.stdout.fnmatch_lines(["peak RSS of the run *"])


def test_the_header_shows_the_effective_settings(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result, _ = run("--memguard-max=2GB", "--memguard-budget=100MB", inprocess=True)
    result.stdout.fnmatch_lines(
        [
            "memguard: enforce, max 2 GB (1.9 GiB) (--memguard-max), budget 100 MB (95.4 MiB)",
            "memguard: peak *; memory *, * available",
        ]
    )


def test_ctrl_c_writes_the_report_marked_interrupted(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        def test_one():
            pass

        def test_interrupted():
            raise KeyboardInterrupt

        def test_never():
            pass
        """
    )
    result, report = run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert report["interrupted"] is True
    assert entry(report, "test_one")["status"] == "ok"
    assert entry(report, "test_never")["status"] == "not_run"
    assert entry(report, "test_never")["outcome"] == "not_run"
    result.stdout.fnmatch_lines(["* test(s) were not run"])


def test_ctrl_c_between_two_tests_keeps_the_finished_one(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_logfinish(nodeid, location):
            if nodeid.endswith("test_done"):
                raise KeyboardInterrupt  # after every report of test_done
        """
    )
    pytester.makepyfile("def test_done(): pass\n\ndef test_never(): pass\n")
    result, report = run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    done = entry(report, "test_done")
    assert (done["status"], done["outcome"]) == ("ok", "passed")
    assert done["rss_peak"] is not None
    assert entry(report, "test_never")["status"] == "not_run"


def test_threshold_alerts_are_recorded_and_shown(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        def test_grows(request):
            guard = request.config.pluginmanager.get_plugin("memguard-plugin").guard
            first = bytearray(150_000_000)
            guard.poll()  # one watchdog step while `first` is held: no waiting for the thread
            second = bytearray(150_000_000)
            guard.poll()
        """
    )
    # Wide steps: the run starts at 40-100 MB, depending on the plugins installed.
    result, report = run("--memguard-warn=100MB", "--memguard-critical=260MB", "--memguard-max=1GB")
    result.assert_outcomes(passed=1)
    levels = [a["level"] for a in report["alerts"]]
    assert levels == ["warning", "critical"]
    alert = report["alerts"][1]
    assert alert["nodeid"].endswith("test_grows")
    assert alert["threshold"] == 260 * MB
    assert alert["process"] == "main"
    assert entry(report, "test_grows")["status"] == "warning"
    result.stdout.fnmatch_lines(
        [
            "2 threshold alert(s):",
            "  WARNING RSS * reached the warning threshold 95.4 MiB (--memguard-warn)"
            " while running *",
            "  CRITICAL RSS * reached the critical threshold 248.0 MiB (--memguard-critical)"
            " while running *",
        ]
    )


def test_the_report_is_plain_json_for_ci(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile("def test_ok(): pass")
    _, report = run()
    path = pytester.path / "memguard.json"
    assert json.loads(path.read_text()) == report
    assert not list(pytester.path.glob(".memguard.json.*")), "no temporary file left behind"


OUTCOMES = """
import pytest

def test_passes():
    pass

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed since")
def test_xpasses():
    pass

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown")

def test_teardown_errors(broken_teardown):
    pass

def test_skips_itself():
    pytest.skip("not here")
"""


@pytest.mark.parametrize(
    "args", [(), ("-p", "no:terminal"), ("-n", "2")], ids=["terminal", "no-terminal", "xdist"]
)
def test_each_test_has_the_outcome_of_its_reports(
    pytester: pytest.Pytester, run: InnerSession, args: tuple[str, ...]
) -> None:
    """The outcomes come from pytest's reports, with or without the terminal reporter, and
    from an xdist worker's (merged where the test ran, sent with its result)."""
    pytester.makepyfile(OUTCOMES)
    result, report = run(*args)
    terminal = "no:terminal" not in args
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in report["tests"]}
    assert outcomes == {
        "test_passes": "passed",
        "test_xfails": "xfailed",
        "test_xpasses": "xpassed",
        "test_teardown_errors": "error",
        "test_skips_itself": "skipped",
    }
    # One outcome a test, as pytest words them (pytest's line counts the test whose
    # teardown errs twice: "2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error").
    assert report["summary"]["outcomes"] == {
        "passed": 1,
        "xfailed": 1,
        "xpassed": 1,
        "error": 1,
        "skipped": 1,
    }
    if terminal:
        result.assert_outcomes(passed=2, skipped=1, xfailed=1, xpassed=1, errors=1)
    assert report["summary"]["failed"] == 1


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes, FIFOs, symlinks")


@posix_only
def test_a_symlinked_report_path_keeps_its_link_and_its_target_gets_the_report(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    target = pytester.path / "artifacts" / "real.json"
    target.parent.mkdir()
    target.write_text("{}\n")
    (pytester.path / "memguard.json").symlink_to(target)
    pytester.makepyfile("def test_ok(): pass")
    result, report = run(inprocess=True)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "memguard.json").is_symlink()
    assert json.loads(target.read_text()) == report
    assert [path.name for path in target.parent.iterdir()] == ["real.json"]


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o660])
def test_an_existing_report_keeps_its_mode(
    pytester: pytest.Pytester, run: InnerSession, mode: int
) -> None:
    path = pytester.path / "memguard.json"
    path.write_text("{}\n")
    path.chmod(mode)
    pytester.makepyfile("def test_ok(): pass")
    run(inprocess=True)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@posix_only
def test_a_new_report_follows_the_umask(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile("def test_ok(): pass")
    previous = os.umask(0o027)
    try:
        run(inprocess=True)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((pytester.path / "memguard.json").stat().st_mode) == 0o640


@posix_only
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("fifo", "it is a FIFO (named pipe), not a regular file"),
        ("link to a fifo", "its target {target} is a FIFO (named pipe), not a regular file"),
        ("directory", "it is a directory"),
    ],
)
def test_a_report_path_that_is_not_a_regular_file_is_a_usage_error(
    pytester: pytest.Pytester, kind: str, reason: str
) -> None:
    path = pytester.path / "memguard.json"
    target = pytester.path / "pipe"
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(target if kind == "link to a fifo" else path)
        if kind == "link to a fifo":
            path.symlink_to(target)
    fifo = target if kind == "link to a fifo" else path
    # A reader held open: a writer opening the FIFO by mistake would not hang the test.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK) if kind != "directory" else None
    try:
        pytester.makepyfile("def test_never_runs(): raise AssertionError('ran')")
        result = pytester.runpytest("--memguard", f"--memguard-json={path}")
        if reader is not None:
            assert os.read(reader, 1) == b"", "something was written into the FIFO"
    finally:
        if reader is not None:
            os.close(reader)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = reason.format(target=target)
    result.stderr.fnmatch_lines(
        [f"ERROR: --memguard-json: cannot write the report to '{path}' ({message})"]
    )
    assert "test_never_runs" not in result.stdout.str()
    if kind == "directory":
        assert path.is_dir()
        assert list(path.iterdir()) == []
    else:
        assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced"
        assert path.is_symlink() == (kind == "link to a fifo")


def test_a_report_path_taken_by_a_folder_during_the_run_is_left_alone(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.path / "memguard.json"
    pytester.makepyfile(
        f"""
        import os

        def test_takes_the_report_path():
            os.mkdir({str(path)!r})
        """
    )
    result = pytester.runpytest("--memguard", f"--memguard-json={path}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"memguard: cannot write the report to '{path}' (it is a directory)"]
    )
    result.stdout.no_fnmatch_line("*internal error*")
    assert path.is_dir()
    assert list(path.iterdir()) == []


def test_a_report_asked_for_and_not_written_is_never_exit_status_0(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import os

        def test_takes_the_reports_place():
            os.mkdir("memguard.json")  # the path turns into a folder during the run
        """
    )
    result = pytester.runpytest_subprocess("--memguard", "--memguard-json=memguard.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [
            "memguard: cannot write the report to *memguard.json* (it is a directory*",
            "memguard: the report asked for was not written (*memguard.json):"
            " the exit status says so (3)",
        ]
    )


class _Entries:
    """Counts the test entries made (``TestMemory.to_json``), and the most alive at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pytest_memguard.reporting.results import TestMemory

        self.made = self.alive = self.most = 0
        to_json = TestMemory.to_json

        class Entry(dict):  # type: ignore[type-arg]  # a dict that can be weakly referenced
            pass

        def watched(result: TestMemory) -> dict[str, Any]:
            entry = Entry(to_json(result))
            self.made += 1
            self.alive += 1
            self.most = max(self.most, self.alive)
            weakref.finalize(entry, self._gone)
            return entry

        monkeypatch.setattr(TestMemory, "to_json", watched)

    def _gone(self) -> None:
        self.alive -= 1


@pytest.mark.parametrize("hook", [False, True], ids=["no report hook", "a report hook"])
def test_the_reports_entries_are_made_one_at_a_time_unless_the_hook_reads_them(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch, hook: bool
) -> None:
    """A run keeps its tests' results; the JSON and HTML reports make each entry as they
    write it, never the list of them all (at 20,000 tests it is memory the run need not
    hold: see benchmarks/run_memory.py).  A report hook is given the report with a plain
    list of entries.  (pytest's cache is off: the peak history takes in its entries in a
    list of its own.)"""
    pytester.makepyfile("\n".join(f"def test_{i}(): pass" for i in range(40)))
    if hook:
        pytester.makeconftest(
            """
            def pytest_memguard_report(config, report):
                assert type(report["tests"]) is list
                return {"seen": [entry["nodeid"] for entry in report["tests"]][-1]}
            """
        )
    entries = _Entries(monkeypatch)
    result, report = run("--memguard-html=memguard.html", inprocess=True)
    result.assert_outcomes(passed=40)
    assert len(report["tests"]) == 40
    assert (pytester.path / "memguard.html").read_text().count("test_39") >= 1
    if hook:
        assert report["extra"] == {"seen": report["tests"][-1]["nodeid"]}
        assert entries.most >= 40, "the hook was given every entry at once"
    else:
        assert "extra" not in report
        assert entries.made >= 40, "the JSON report made each entry"
        assert entries.most <= 2, "one at a time, never the list of them all"
