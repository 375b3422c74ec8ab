"""--memguard-html: the self-contained page of a run, written where the JSON report is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import InnerSession, entry, settings

SUITE = """
import pytest

def test_light():
    data = bytearray(5_000_000)

@pytest.mark.memory_budget("50 MB")
def test_over_budget():
    data = bytearray(120_000_000)

@pytest.mark.memory_budget(rss="400 MB")
def test_runaway():
    chunks = []
    while True:
        chunks.append(bytearray(20_000_000))
"""


def test_the_page_names_the_failures_and_every_test(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(SUITE)
    page_path = pytester.path / "out" / "memguard.html"
    result, report = run(f"--memguard-html={page_path}", "--memguard-max=2GB")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([f"HTML report: {page_path}"])
    page = page_path.read_text()
    assert not re.search(r"(src|href)\s*=|https?://(?!www\.w3\.org)", page), "self-contained"
    failures = page[page.index('id="failures"') : page.index('id="heaviest"')]
    assert "OVER BUDGET" in failures
    assert "test_over_budget" in failures
    assert "ABORTED" in failures
    assert "test_runaway" in failures
    table = page[page.index('id="tests"') :]
    for test in report["tests"]:
        assert test["nodeid"] in table
    # The timeline: the report's samples of the one process, and the stop of the runaway.
    (lane,) = report["timeline"]["processes"]
    assert lane["process"] == "main"
    assert len(lane["samples"]) >= 6, "each test's start and end at least"
    (stop,) = report["timeline"]["events"]
    assert stop["kind"] == "stop"
    assert stop["nodeid"] == entry(report, "test_runaway")["nodeid"]
    assert (
        entry(report, "test_light")["started"]
        >= report["timeline"]["processes"][0]["samples"][0][0]
    )
    assert '<g class="mark stop">' in page


def test_under_xdist_each_worker_has_a_lane(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(
        **{f"test_{i}": f"def test_{i}():\n    data = bytearray(30_000_000)\n" for i in range(4)}
    )
    page_path = pytester.path / "memguard.html"
    result, report = run("-n", "2", f"--memguard-html={page_path}")
    result.assert_outcomes(passed=4)
    lanes = {lane["process"] for lane in report["timeline"]["processes"]}
    assert lanes == {"gw0", "gw1"}
    page = page_path.read_text()
    assert 'data-process="gw0"' in page
    assert 'data-process="gw1"' in page


@pytest.mark.parametrize(
    ("how", "source"),
    [("option", "--memguard-html"), ("env", "MEMGUARD_HTML"), ("ini", "memguard_html (ini)")],
)
def test_the_html_path_has_its_twins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, source: str
) -> None:
    args = ["--memguard"]
    if how == "option":
        args.append("--memguard-html=page.html")
    elif how == "env":
        monkeypatch.setenv("MEMGUARD_HTML", "page.html")
    else:
        pytester.makeini("[pytest]\nmemguard_html = page.html\n")
    found = settings(pytester, *args)
    assert found.html_path == Path("page.html").absolute()
    assert found.source("html") == source
    assert found.to_json()["html"] == str(Path("page.html").absolute())


def test_a_path_that_cannot_be_written_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "page.html").mkdir()
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--memguard", "--memguard-html=page.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --memguard-html: cannot write the report to '*page.html' (it is a directory)"]
    )


def test_without_the_guard_no_page_is_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--memguard-html=page.html")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "page.html").exists()


def test_help_lists_the_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--memguard-html=PATH*Write the HTML report to PATH*"])
