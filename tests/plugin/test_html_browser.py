"""The HTML report in a real browser (headless Chromium): the report of a run with a
budget failure, a leak and a stopped runaway opens with no script error, its charts
drawn, its table sorted by the address fragment, and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..sessions import check_session

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BROWSER = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium;"
    " .ci/run installs it where it can)",
)


def _no_script_error(dom: str) -> None:
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None, dom[:500]
    assert "data-js-error" not in root.group(0), root.group(0)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [
        BROWSER,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of the examples (as ``make demo`` runs them)."""
    folder = tmp_path_factory.mktemp("browser")
    path = folder / "memguard.html"
    command = [
        "pytest",
        str(EXAMPLES),
        "--memguard",
        "--memguard-max=1GB",
        "--memguard-leaks",
        f"--memguard-html={path}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=folder, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    check_session(done.stdout + done.stderr, done.args)
    return path


def test_the_report_names_the_three_and_references_nothing_outside(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"(src|href)\s*=|url\(|@import|https?://(?!www\.w3\.org)", text)
    failures = text[text.index('id="failures"') : text.index('id="heaviest"')]
    for name, status in (
        ("test_over_budget", "OVER BUDGET"),
        ("test_keeps_growing_a_global", "LEAK"),
        ("test_runaway", "ABORTED"),
    ):
        assert re.search(rf"{status}</td><td class=\"test\">[^<]*{name}</td>", failures), name


def test_it_opens_without_script_errors_with_its_charts_drawn_and_sorted(
    page: Path, tmp_path: Path
) -> None:
    shown = _chromium(tmp_path / "profile", "--dump-dom", f"{page.as_uri()}#sort=peak&dir=desc")
    dom = shown.stdout
    assert "<body" in dom, shown.stderr
    _no_script_error(dom)
    assert not re.search(r"Uncaught|:CONSOLE[:(]", shown.stderr), shown.stderr
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-ready="1"' in body.group(1), "the script ran to its end"
    assert 'data-sorted="peak:desc"' in body.group(1)
    drawn = re.search(r'data-charts="(\d+)"', body.group(1))
    assert drawn is not None
    assert int(drawn.group(1)) >= 2, "the bar chart and a lane"
    assert dom.count('<g class="bar') >= 10
    assert '<polyline class="rss"' in dom
    assert '<g class="mark stop">' in dom
    table = dom[dom.index('id="tests"') :]
    peaks = [
        float(v or "-inf") for v in re.findall(r'<td class="num" data-v="([^"]*)">', table)[::6]
    ]
    assert len(peaks) == 11
    assert peaks == sorted(peaks, reverse=True), "sorted by peak growth, largest first"
    assert 'data-key="peak" class="num" aria-sort="descending"' in table


def test_the_table_sorts_by_name_and_filters_by_status(page: Path, tmp_path: Path) -> None:
    shown = _chromium(
        tmp_path / "profile", "--dump-dom", f"{page.as_uri()}#sort=test&dir=asc&status=leak"
    )
    dom = shown.stdout
    _no_script_error(dom)
    table = dom[dom.index('id="tests"') :]
    names = re.findall(r'<td class="test">([^<]*)</td>', table)
    assert names == sorted(names)
    visible = re.findall(r'<tr class="[^"]*" data-status="([^"]*)" title="[^"]*">', table)
    assert visible == ["leak"], "only the leak's row is not hidden"
    assert re.search(r'<span id="shown">1</span>', dom)


@pytest.mark.parametrize(
    ("fragment", "shown"),
    [
        ("#q=100%", 0),  # a malformed escape: searched for as it stands
        ("#sort=%E0%A4%A", 11),
        ("#status=&q=%", 0),
        ("#sort=nonexistent&dir=sideways", 11),
        ("#status=nonexistent", 11),
        ("#q=%3A%3Atest_runaway&sort=peak&dir=asc", 1),  # a valid escape is decoded
        ("#sort=peak&dir=" + "9" * 400 + "&q=&status=", 11),
        ("#=&&=x&q&__proto__=1&constructor=2&%=%", 11),
    ],
)
def test_any_fragment_opens_without_a_script_error(
    page: Path, tmp_path: Path, fragment: str, shown: int
) -> None:
    done = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri() + fragment)
    dom = done.stdout
    assert "<body" in dom, done.stderr
    _no_script_error(dom)
    assert not re.search(r"Uncaught", done.stderr), done.stderr
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-ready="1"' in body.group(1), "the script ran to its end"
    assert re.search(rf'<span id="shown">{shown}</span>', dom), fragment


def test_a_screenshot_is_taken(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _chromium(
        tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, "more than a blank page"
