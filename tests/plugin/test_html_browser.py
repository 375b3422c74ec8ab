"""The HTML report in a real browser (headless Chromium): the report of a run with a
budget failure, a leak and a stopped runaway opens with no script error, its charts
drawn, its table sorted by the address fragment, and a screenshot; a report of 5,000
tests has only the rows in view in the page, and sorts and filters (by name, memory
status and pytest outcome) every one of them; a report of odd fields opens cleanly."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memguard.reporting.html_report import render_html
from pytest_memguard.reporting.report import build_report
from pytest_memguard.reporting.results import TestMemory
from pytest_memguard.reporting.timeline import build_timeline

from ..sessions import check_session

MiB = 2**20
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
    table = dom[dom.index('id="tests"') : dom.index("</table>", dom.index('id="tests"'))]
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
    table = dom[dom.index('id="tests"') : dom.index("</table>", dom.index('id="tests"'))]
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


OUTCOMES = ("passed", "failed", "skipped", "xfailed", "error", "xpassed", "not_run")
LARGE = 5000


def _large_tests() -> list[TestMemory]:
    """5,000 tests: every outcome, a peak growth each of its own (7919 is prime to 5000)."""
    return [
        TestMemory(
            f"tests/test_m{i // 1000}.py::test_case[{i}]",
            OUTCOMES[i % len(OUTCOMES)],
            "over_budget" if i % 500 == 3 else "ok",
            f"gw{i % 2}",
            0.001,
            rss_peak=60 * MiB + i * 7919 % LARGE * 1024,
            peak_delta=i * 7919 % LARGE * 1024,
            started=1000.0 + i / 1000,
        )
        for i in range(LARGE)
    ]


@pytest.fixture(scope="module")
def large_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tests = _large_tests()
    report = build_report(
        tests=tests,
        environment={},
        config={"max": 2**30},
        started=1000.0,
        duration_s=5.0,
        interrupted=False,
    )
    report["timeline"] = build_timeline(tests=tests)
    path = tmp_path_factory.mktemp("large") / "memguard.html"
    path.write_text(render_html(report))
    return path


def _open(page: Path, profile: Path, fragment: str = "") -> tuple[str, str, str]:
    """The page's DOM once its script ran: (the ``<body>`` tag, the table, the DOM)."""
    done = _chromium(profile, "--window-size=1200,900", "--dump-dom", page.as_uri() + fragment)
    dom = done.stdout
    assert "<body" in dom, done.stderr
    _no_script_error(dom)
    assert not re.search(r"Uncaught", done.stderr), done.stderr
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-ready="1"' in body.group(1), "the script ran to its end"
    start = dom.index('id="tests"')
    return body.group(1), dom[start : dom.index("</table>", start)], dom


ROW = re.compile(
    r'<tr class="[^"]*" data-status="([^"]*)" title="[^"]*">'
    r'<td class="status"[^>]*>[^<]*</td><td class="outcome [^"]*">([^<]*)</td>'
    r'<td class="test">([^<]*)</td><td class="num" data-v="(-?\d*)">'
)


def test_a_large_table_has_only_the_rows_in_view_in_the_page(
    large_page: Path, tmp_path: Path
) -> None:
    body, table, dom = _open(large_page, tmp_path / "profile")
    rows = ROW.findall(table)
    assert 20 <= len(rows) <= 150, "a window of rows, not 5,000"
    assert f'data-rows="{len(rows)}"' in body
    assert [name for _, _, name, _ in rows] == [t.nodeid for t in _large_tests()[: len(rows)]]
    assert re.search(rf'<span id="shown">{LARGE}</span>', dom)
    padding = re.search(r'<tr class="pad" aria-hidden="true"><td [^>]*height: ([\d.]+)px', table)
    assert padding is not None, "the rows below the view, as the table's height"
    assert float(padding.group(1)) > (LARGE - len(rows)) * 15


def test_a_large_table_sorts_and_filters_every_row_not_only_those_drawn(
    large_page: Path, tmp_path: Path
) -> None:
    tests = _large_tests()
    _, table, _ = _open(large_page, tmp_path / "profile", "#sort=peak&dir=desc")
    rows = ROW.findall(table)
    heaviest = sorted(tests, key=lambda t: -(t.peak_delta or 0))
    assert [name for _, _, name, _ in rows] == [t.nodeid for t in heaviest[: len(rows)]]
    assert rows[0][3] == str((LARGE - 1) * 1024)

    _, table, dom = _open(large_page, tmp_path / "profile2", "#q=test_case%5B4321%5D")
    assert re.search(r'<span id="shown">1</span>', dom)
    assert [name for _, _, name, _ in ROW.findall(table)] == ["tests/test_m4.py::test_case[4321]"]


def test_the_outcome_filter_keeps_the_tests_of_that_outcome(
    large_page: Path, tmp_path: Path
) -> None:
    tests = _large_tests()
    failed = sorted(t.nodeid for t in tests if t.outcome == "failed")
    _, table, dom = _open(large_page, tmp_path / "profile", "#outcome=failed&sort=test&dir=asc")
    assert re.search(rf'<span id="shown">{len(failed)}</span>', dom)
    rows = ROW.findall(table)
    assert {outcome for _, outcome, _, _ in rows} == {"failed"}
    assert [name for _, _, name, _ in rows] == failed[: len(rows)]
    budget = [t for t in tests if t.outcome == "xfailed" and t.status == "over_budget"]
    _, table, dom = _open(large_page, tmp_path / "profile2", "#outcome=xfailed&status=over_budget")
    assert re.search(rf'<span id="shown">{len(budget)}</span>', dom)
    assert [(s, o) for s, o, _, _ in ROW.findall(table)] == [("over_budget", "xfailed")] * len(
        budget
    )


def test_a_report_with_odd_fields_opens_without_a_script_error(tmp_path: Path) -> None:
    tests = _large_tests()[:3]
    report = build_report(
        tests=tests,
        environment={},
        config={},
        started=1000.0,
        duration_s=1.0,
        interrupted=False,
    )
    report["tests"] = list(report["tests"])  # as a file holds them, to edit
    report["tests"][0].update(outcome=None, status="x\" onmouseover='y'", nodeid="no-file")
    report["tests"][1].update(budget={"peak": "1 MB", "rss": 10**400}, peak_delta=-5)
    report["tests"][2].update(nodeid="</script>::x", duration_s="slow", message=7)
    report["tests"].append({"nodeid": 3})
    report["timeline"] = {"processes": [{"process": "main", "samples": [[None, 1]]}]}
    page = tmp_path / "odd.html"
    page.write_text(
        render_html(report, baseline={"tests": [{"nodeid": "no-file", "peak_delta": 1}]})
    )
    _, table, _ = _open(page, tmp_path / "profile", "#sort=baseline&dir=asc")
    assert len(ROW.findall(table)) == 3
    assert "&lt;/script&gt;::x" in table
    assert '<td class="outcome unknown">unknown</td>' in table
