"""CI: baseline gating, JUnit properties, GitHub Actions annotations and summary, CI facts."""

from __future__ import annotations

import json
import os
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_memguard.plugin import PLUGIN_KEY
from pytest_memguard.plugin.ci import annotation
from pytest_memguard.reporting.compare import parse_allowance

from .conftest import InnerSession, entry, error_summary

MB = 1_000_000

# The small test runs first, in a fresh process, so its figure is the same in both runs.
TESTS = """
def test_small():
    data = bytearray(8 * 2**20)

def test_grow():
    data = bytearray({size})
"""


def test_growth_over_the_baseline_fails_only_the_grown_test(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(test_mem=TESTS.format(size=40 * MB))
    result, first = run()
    assert result.ret == pytest.ExitCode.OK
    (pytester.path / "main.json").write_text(json.dumps(first))

    pytester.makepyfile(test_mem=TESTS.format(size=120 * MB) + "\ndef test_new():\n    pass\n")
    result, report = run(
        "-ra", "--memguard-baseline", "main.json", "--memguard-max-increase", "20%"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_mem.py ..M.*",
            "*_ ERROR at teardown of test_grow _*",
            "memguard: peak growth 11?.? MiB is 2??% above the baseline's 3?.? MiB"
            " (allowed +20%, --memguard-baseline main.json)",
            "*- memguard -*",
            "RSS at start *, peak *, growth 11?.? MiB*",
            error_summary("MEMORY test_mem.py::test_grow - memguard: peak growth*"),
        ]
    )
    grown = entry(report, "test_grow")
    # Judged at the end of its teardown: an error, as pytest counts it.
    assert (grown["status"], grown["outcome"]) == ("over_budget", "error")
    assert "above the baseline's" in grown["message"]
    assert "--memguard-baseline main.json" in grown["message"]
    for name in ("test_small", "test_new"):
        assert (entry(report, name)["status"], entry(report, name)["message"]) == ("ok", None)
    assert report["config"]["baseline"] == "main.json"
    assert report["config"]["max_increase"] == "+20%"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--memguard-baseline", "missing.json"],
            "ERROR: --memguard-baseline: cannot use 'missing.json' as the baseline:"
            " missing.json: no such file (expected a report written by --memguard-json)",
        ),
        (
            ["--memguard-baseline", "broken.json"],
            "ERROR: --memguard-baseline: cannot use 'broken.json' as the baseline:"
            " broken.json: not valid JSON*",
        ),
        (
            ["--memguard-baseline", "other.json"],
            "ERROR: --memguard-baseline: cannot use 'other.json' as the baseline:"
            " other.json: not a pytest-memguard report*",
        ),
        (
            ["--memguard-max-increase", "12 apples"],
            "ERROR: --memguard-max-increase: invalid increase '12 apples'*10%, 50MB or 10%+8MB*",
        ),
    ],
)
def test_a_bad_baseline_or_allowance_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    (pytester.path / "broken.json").write_text("{not json")
    (pytester.path / "other.json").write_text('{"tests": []}')
    result = pytester.runpytest("--memguard", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    result.stdout.no_fnmatch_line("*test_never_runs*")


def test_baseline_settings_follow_the_precedence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nmemguard_max_increase = 5%\n")
    config = pytester.parseconfigure("--memguard")
    try:
        settings = config.stash[PLUGIN_KEY].settings
        assert settings.baseline is None
        assert settings.max_increase == parse_allowance("5%")
        assert settings.source("max_increase") == "memguard_max_increase (ini)"
    finally:
        config._ensure_unconfigure()
    monkeypatch.setenv("MEMGUARD_MAX_INCREASE", "20%+8MB")
    config = pytester.parseconfigure("--memguard")
    try:
        settings = config.stash[PLUGIN_KEY].settings
        assert settings.max_increase == parse_allowance("20%+8MB")
        assert settings.source("max_increase") == "MEMGUARD_MAX_INCREASE"
    finally:
        config._ensure_unconfigure()


def test_junit_xml_carries_the_memory_figures(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(
        """
        import functools
        import pytest

        @functools.cache
        def table():
            return bytes(3_000_000)

        @pytest.mark.memory_budget(heap="1 GB")  # heap peak: traced
        def test_a():
            table()  # a warm-up: run again by the leak check, and measured
            data = bytearray(20_000_000)
        """
    )
    xml = pytester.path / "junit.xml"
    result, report = run(f"--junitxml={xml}", "--memguard-leaks")
    assert result.ret == pytest.ExitCode.OK
    (case,) = ET.parse(xml).getroot().iter("testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    measured = entry(report, "test_a")
    assert properties == {
        "memguard_peak_delta": str(measured["peak_delta"]),
        "memguard_rss_peak": str(measured["rss_peak"]),
        "memguard_heap_peak": str(measured["heap_peak"]),
        "memguard_leaked": str(measured["leaked"]),
        "memguard_status": "ok",
    }
    assert measured["peak_delta"] >= 19 * MB
    assert measured["heap_peak"] >= 19 * MB
    assert measured["leaked"] is not None


def test_junit_properties_are_only_those_measured(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    xml = pytester.path / "junit.xml"
    run(f"--junitxml={xml}")
    names = {p.get("name") for p in ET.parse(xml).getroot().iter("property")}
    assert names == {"memguard_peak_delta", "memguard_rss_peak", "memguard_status"}


def test_github_actions_annotations_and_job_summary(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    pytester.mkpydir("pkg")
    pytester.makepyfile(
        **{
            "pkg/test_gh": """
                import pytest

                def test_fine():
                    pass

                @pytest.mark.memory_budget("10MB")
                def test_heavy():
                    data = bytearray(40_000_000)
            """
        }
    )
    result, _ = run()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "::error file=pkg/test_gh.py,line=6,title=memguard MEMORY::memguard: peak growth"
            " 3?.? MiB is over the budget of 10 MB (9.5 MiB) (memory_budget(peak='10MB'))",
        ]
    )
    assert sum(line.startswith("::") for line in result.outlines) == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n**memguard**: 2 tests, :x: 1 memory failure")
    assert "| `pkg/test_gh.py::test_heavy` | :x: **OVER BUDGET** |" in text
    assert "| test | status | peak growth |" in text


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX FIFOs and symlinks")
def test_the_job_summary_follows_a_symlink_and_leaves_a_fifo_alone(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(link))
    pytester.makepyfile("def test_a():\n    pass\n")
    run(inprocess=True)
    assert link.is_symlink()
    assert target.read_text().startswith("earlier step\n**memguard**: 1 test")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # A reader held open: a writer opening the FIFO by mistake would not hang the test.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
        result, _ = run(inprocess=True)
        assert os.read(reader, 1) == b"", "something was written into the FIFO"
    finally:
        os.close(reader)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"memguard: cannot write the GitHub job summary to '{fifo}'"
            " (it is a FIFO (named pipe), not a regular file)"
        ]
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_without_github_actions_nothing_is_annotated(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.memory_budget('1MB')\n"
        "def test_heavy():\n    data = bytearray(20_000_000)\n"
    )
    result, _ = run()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("::*")


def test_the_report_names_the_ci_job(
    pytester: pytest.Pytester, run: InnerSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "0123abcd",
        "GITHUB_REF_NAME": "main",
        "GITHUB_WORKFLOW": "tests",
        "GITHUB_JOB": "pytest",
        "GITHUB_RUN_ID": "1234",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    for name, value in github.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyfile("def test_a():\n    pass\n")
    _, report = run()
    assert report["environment"]["ci"] == {
        "system": "github-actions",
        "commit": "0123abcd",
        "branch": "main",
        "job": "tests/pytest",
        "build": "1234",
        "url": "https://github.com/acme/app/actions/runs/1234",
    }


def test_annotations_escape_what_github_reads_as_syntax() -> None:
    line = annotation("error", "50% of a\r\nb: c", "dir/a,b:c.py", 11, "memguard MEMORY")
    assert (
        line == "::error file=dir/a%2Cb%3Ac.py,line=12,title=memguard MEMORY::50%25 of a%0D%0Ab: c"
    )
    assert annotation("warning", "m", None, None, "t") == "::warning title=t::m"


def test_help_lists_the_baseline_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--memguard-baseline=REPORT*",
            "*--memguard-max-increase=PCT|SIZE*",
            "*memguard_baseline (string):*",
            "*memguard_max_increase (string):*",
        ]
    )
