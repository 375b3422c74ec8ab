"""The HTML report page: self-contained, escaped, every test in its table."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from pytest_memguard.probe.system import SystemMemory
from pytest_memguard.reporting.html_report import render_html
from pytest_memguard.reporting.html_report.table import STATIC_ROWS
from pytest_memguard.reporting.report import (
    TestEntries,
    build_report,
    encode_report,
    environment,
)
from pytest_memguard.reporting.results import Budget, TestMemory
from pytest_memguard.reporting.timeline import build_timeline

from ..sessions import validate

MiB = 2**20


def _built(*tests: TestMemory) -> dict[str, Any]:
    """The report as the plugin builds it: its entries made from the results as read."""
    report = build_report(
        tests=tests,
        environment=environment(
            SystemMemory(8 * 2**30, 4 * 2**30, "cgroup"), peak_method="exact", interrupt="signal"
        ),
        config={
            "mode": "enforce",
            "max": 2 * 2**30,
            "warning": 2**30,
            "critical": None,
            "budget": None,
            "aggregate": 8 * 2**30,
            "leaks": True,
            "leak_budget": None,
            "sources": {"max": "--memguard-max", "warning": "MEMGUARD_WARN"},
        },
        started=1000.0,
        duration_s=3.0,
        interrupted=False,
    )
    report["timeline"] = build_timeline(tests=tests)
    return report


def _report(*tests: TestMemory) -> dict[str, Any]:
    """The report as a file holds it (its entries a list of dicts, to edit)."""
    report = _built(*tests)
    report["tests"] = list(report["tests"])
    return report


def _tests() -> list[TestMemory]:
    return [
        TestMemory(
            "t.py::test_light",
            "passed",
            "ok",
            "main",
            0.1,
            rss_start=50 * MiB,
            rss_end=50 * MiB,
            rss_peak=60 * MiB,
            peak_delta=10 * MiB,
            started=1000.1,
        ),
        TestMemory(
            "t.py::test_heavy",
            "failed",
            "over_budget",
            "main",
            0.3,
            rss_start=50 * MiB,
            rss_end=51 * MiB,
            rss_peak=350 * MiB,
            peak_delta=300 * MiB,
            budget=Budget(peak=100 * MiB),
            message="over the budget",
            started=1000.3,
        ),
        TestMemory(
            't.py::test_x[<script>alert("x")</script>]',
            "passed",
            "ok",
            "main",
            0.01,
            peak_delta=0,
            started=1000.7,
        ),
    ]


def test_the_page_is_self_contained_and_escapes_the_reports_text() -> None:
    page = render_html(_report(*_tests()))
    assert page.isascii()
    assert not re.search(r"(src|href)\s*=|url\(|@import|https?://(?!www\.w3\.org)", page)
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert page.count("<script>") == 2, "the error trap and the table's script, inline"


def test_the_summary_names_the_counts_limits_and_their_sources() -> None:
    page = render_html(_report(*_tests()))
    summary = page[page.index('id="summary"') : page.index('id="failures"')]
    assert 'data-status="over_budget">OVER BUDGET<b>1</b>' in summary
    assert 'data-status="ok">ok<b>2</b>' in summary
    assert "<td>hard limit</td><td class='num'>2.0 GiB</td><td>--memguard-max</td>" in summary
    assert "<td>warning threshold</td><td class='num'>1.0 GiB</td><td>MEMGUARD_WARN</td>" in summary
    assert "350.0 MiB" in summary, "the run's peak RSS"
    assert "aggregate" not in summary, "one process: no sum of workers"
    failures = page[page.index('id="failures"') : page.index('id="heaviest"')]
    assert "t.py::test_heavy" in failures
    assert "over the budget" in failures


def test_the_charts_draw_a_bar_per_measured_test_and_a_lane_per_process() -> None:
    page = render_html(_report(*_tests()))
    bars = page[page.index('id="bars"') : page.index("</svg>", page.index('id="bars"'))]
    assert bars.count('<g class="bar') == 3
    assert bars.count('class="budget"') == 1
    assert page.count('class="chart lane"') == 1
    assert 'data-process="main"' in page
    assert "max 2.0 GiB" in page, "the hard limit is in range: drawn with its label"


def test_the_table_has_every_test_and_the_change_against_a_baseline() -> None:
    tests = _tests()
    base = _report(
        TestMemory("t.py::test_heavy", "passed", "ok", "main", 0.3, peak_delta=200 * MiB)
    )
    page = render_html(_report(*tests), baseline=base)
    table = page[page.index('id="tests"') : page.index("</table>", page.index('id="tests"'))]
    assert table.count("<tr class=") == len(tests)
    assert 'data-key="baseline"' in table
    assert "+100.0 MiB (+50%)" in table
    assert "+100.0 MiB" not in render_html(_report(*tests))


def test_a_report_written_with_the_timeline_validates_and_an_old_one_still_renders() -> None:
    report = _report(*_tests())
    validate(report)
    del report["timeline"]
    for test in report["tests"]:
        test.pop("started")
    validate(report)
    page = render_html(report)
    assert "This report has no timeline" in page
    assert page.count('<g class="bar') == 3


def test_kills_and_recycles_are_marked_in_their_workers_lanes() -> None:
    tests = [
        TestMemory(
            "t.py::a", "passed", "ok", "gw0", 0.2, rss_start=MiB, rss_end=MiB, started=1000.0
        ),
        TestMemory("t.py::b", "failed", "killed", "gw1", 0.0, message="worker gw1 was killed"),
    ]
    report = _report(*tests)
    report["workers"] = [
        {
            "id": "gw0",
            "pid": 1,
            "peak_rss": MiB,
            "killed": False,
            "reason": "recycled at RSS 2 GiB",
            "recycled": True,
        },
        {"id": "gw1", "pid": 2, "peak_rss": 3 * 2**30, "killed": True, "reason": "killed"},
    ]
    report["alerts"] = [
        {
            "timestamp": 1000.1,
            "level": "abort",
            "process": "gw1 (seen by the controller)",
            "pid": 2,
            "rss": 3 * 2**30,
            "threshold": None,
            "nodeid": None,
            "message": "gw1: killed by memguard: RSS 3.0 GiB passed 1.5 x the hard limit",
        },
    ]
    report["config"]["aggregate"] = 4 * 2**30
    report["timeline"] = build_timeline(
        tests=tests, alerts=report["alerts"], workers=report["workers"]
    )
    validate(report)
    page = render_html(report)
    lanes = dict(re.findall(r'data-process="(\w+)"(.*?)</svg>', page, re.S))
    assert set(lanes) == {"gw0", "gw1"}
    assert '<g class="mark recycle">' in lanes["gw0"]
    assert '<g class="mark kill">' in lanes["gw1"]
    assert "killed by memguard" in lanes["gw1"]
    limits = page[page.index("id='limits'") : page.index('id="failures"')]
    assert "<td>aggregate limit (xdist)</td><td class='num'>4.0 GiB</td>" in limits


def test_the_bar_chart_stacks_a_tests_child_processes_after_its_own_growth() -> None:
    pool = TestMemory(
        "t.py::test_pool", "passed", "ok", "main", 0.2, peak_delta=2 * MiB, children_peak=40 * MiB
    )
    page = render_html(_report(*_tests(), pool))
    bars = page[page.index('id="bars"') : page.index("</svg>", page.index('id="bars"'))]
    assert bars.count('class="children"') == 1
    assert "2.0 MiB + 40.0 MiB children" in bars
    assert "t.py::test_pool: peak growth 2.0 MiB, child processes 40.0 MiB" in bars
    assert "its child processes' own memory" in bars, "the legend names the stacked part"
    assert "child processes" not in render_html(_report(*_tests())), "none: not drawn"


def test_fields_of_the_wrong_type_read_as_unknown_and_the_rest_still_shows() -> None:
    report = _report(*_tests())
    report["config"] = "enforce"  # another version's (or a hand edit's) config
    report["summary"] = None
    report["timeline"]["processes"][0]["samples"] = [
        [None, None],
        [1000.2, 200 * MiB],
        [1000.3],
        ["x", 1],
        [1000.4, 10**400],
    ]
    report["timeline"]["events"] = [{"time": None, "kind": "stop"}, 3]
    report["tests"][0]["budget"] = {"peak": "10MB", "rss": 10**400}
    report["tests"][0]["started"] = 10**400
    report["tests"][1]["duration_s"] = "slow"
    report["alerts"] = [None, {"level": 3, "rss": "big"}]
    report["workers"] = [None, 7]
    page = render_html(report)
    assert page.endswith("</html>\n")
    summary = page[page.index('id="summary"') : page.index('id="failures"')]
    assert "<td>hard limit</td><td class='num'>none</td><td>default</td>" in summary
    assert 'data-status="over_budget">OVER BUDGET<b>1</b>' in summary, "counted from the tests"
    assert "Largest peak growth: t.py::test_heavy" in summary
    lane = page[page.index('data-process="main"') :]
    points = re.search(r'<polyline class="rss" points="([^"]*)"', lane)
    assert points is not None
    assert len(points.group(1).split()) == 1, "the one well-formed sample"
    assert '<g class="mark' not in lane
    assert "<td>?</td><td>?</td><td class='num'>-</td>" in page, "the alert, its fields unknown"


def test_an_unknown_status_is_escaped_in_the_rows_attributes() -> None:
    report = _report(*_tests())
    report["tests"][0]["status"] = 'x" onmouseover="alert(1)'
    page = render_html(report)
    assert 'onmouseover="alert(1)' not in page
    assert 'data-status="x&quot; onmouseover=&quot;alert(1)"' in page


def _table_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="table-data">(.*?)</script>', page)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _rows(page: str) -> str:
    start = page.index('id="tests"')
    return page[start : page.index("</table>", start)]


def test_each_row_shows_the_pytest_outcome_beside_the_memory_status() -> None:
    tests = _tests()
    tests.append(
        TestMemory("t.py::test_broken", "failed", "ok", "main", 0.1, message=None, peak_delta=0)
    )
    report = _report(*tests)
    report["tests"][2]["outcome"] = "xfailed"
    page = render_html(report)
    table = _rows(page)
    assert '<th data-key="outcome">Outcome</th>' in table
    assert (
        '<td class="status" data-v="6">ok</td><td class="outcome failed">failed</td>'
        '<td class="test">t.py::test_broken</td>' in table
    ), "a failed test whose memory was fine says both"
    assert '<td class="outcome xfailed">xfailed</td>' in table
    outcomes = re.search(r'<select id="outcome-filter"[^>]*>(.*?)</select>', page)
    assert outcomes is not None
    assert re.findall(r'<option value="([^"]*)">', outcomes.group(1)) == [
        "",
        "passed",
        "failed",
        "xfailed",
    ], "the outcomes of this run, in pytest's order"


def test_an_outcome_of_any_text_is_shown_escaped_and_a_missing_one_as_unknown() -> None:
    report = _report(*_tests())
    report["tests"][0]["outcome"] = 'rerun" onclick="x'
    del report["tests"][1]["outcome"]
    report["tests"][2]["outcome"] = 7
    page = render_html(report)
    table = _rows(page)
    assert '<td class="outcome other">rerun&quot; onclick=&quot;x</td>' in table
    assert table.count('<td class="outcome unknown">unknown</td>') == 2
    data = _table_data(page)
    assert [name for name, _ in data["outcomes"]] == ['rerun" onclick="x', "unknown"]
    assert data["outcomes"][0][1] == "other", "the CSS class is never the report's text"


def test_a_large_report_holds_its_tests_once_as_columns() -> None:
    tests = [
        TestMemory(
            f"tests/test_m{i % 3}.py::test_case[{i}]",
            "failed" if i % 10 == 0 else "passed",
            "over_budget" if i == 17 else "ok",
            f"gw{i % 2}",
            0.001,
            rss_peak=60 * MiB + i,
            peak_delta=i,
            message="over the budget" if i == 17 else None,
            started=1000.0 + i / 1000,
        )
        for i in range(5000)
    ]
    page = render_html(_report(*tests))
    table = _rows(page)
    assert table.count("<tr class=") == STATIC_ROWS, "the first rows, for a reader with no script"
    assert "t.py" not in table
    assert f"the first {STATIC_ROWS} of 5000 tests" in page
    data = _table_data(page)
    nodeids = [data["files"][f] + rest for f, rest in zip(data["file"], data["test"], strict=True)]
    assert nodeids == [test.nodeid for test in tests]
    assert data["files"] == ["tests/test_m0.py", "tests/test_m1.py", "tests/test_m2.py"]
    assert data["peak"] == list(range(5000))
    assert [data["outcomes"][i][0] for i in data["outcome"][:11]] == ["failed"] + 9 * ["passed"] + [
        "failed"
    ]
    assert data["messages"] == {"17": "over the budget"}, "the few messages, by row"
    assert [data["statuses"][i][0] for i in data["status"][16:18]] == ["ok", "over_budget"]
    assert data["workers"] == ["gw0", "gw1"]
    # The timeline draws the tests of each worker in groups, not 2,500 spans a lane.
    for lane in re.findall(r'data-process="gw\d"(.*?)</svg>', page, re.S):
        assert 0 < lane.count('<g class="test group') <= 960 // 3
        assert '<g class="test ok"' not in lane
    assert '<g class="test group fail">' in page, "the group of the budget failure"
    assert "1 memory failure(s): tests/test_m2.py::test_case[17]" in page


def test_a_nodeid_cannot_end_the_script_that_holds_the_data() -> None:
    report = _report(*_tests())
    name = "t.py::test[</script><script>alert(1)</script>&amp;]"
    report["tests"][0]["nodeid"] = name
    report["tests"][1]["nodeid"] = "no-separator"
    report["tests"][2]["nodeid"] = "::only::colons::"
    page = render_html(report)
    assert "</script><script>alert(1)" not in page
    data = _table_data(page)
    nodeids = [data["files"][f] + rest for f, rest in zip(data["file"], data["test"], strict=True)]
    assert nodeids == [name, "no-separator", "::only::colons::"]


def test_the_charts_keep_their_labels_inside_and_off_the_lane_names() -> None:
    heavy = TestMemory(
        "t.py::test_pool_with_a_long_name",
        "passed",
        "ok",
        "main",
        0.2,
        rss_peak=2 * 2**30,
        peak_delta=1000 * MiB,
        children_peak=900 * MiB,
        started=1000.5,
    )
    page = render_html(_report(*_tests(), heavy))
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        width = float(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))  # type: ignore[union-attr]
        for tag, text in re.findall(r"(<text[^>]*>)([^<]*)</text>", svg):
            x = float(re.search(r' x="([\d.]+)"', tag).group(1))  # type: ignore[union-attr]
            anchor = re.search(r'text-anchor="(\w+)"', tag)
            size = len(html.unescape(text)) * 6.4  # about: 11 px text
            left = {"end": x - size, "middle": x - size / 2}.get(
                anchor.group(1) if anchor else "start", x
            )
            assert left >= 0, (text, tag)
            assert left + size <= width + 1, (text, tag)
    assert '<text class="value inside"' in page, "the longest bar's figure, inside the bar"
    lane = page[page.index('data-process="main"') :]
    name_y = float(re.search(r'class="lane-name" x="4" y="([\d.]+)"', lane).group(1))  # type: ignore[union-attr]
    ticks = [float(y) for y in re.findall(r'<text class="tick" x="68" y="([\d.]+)"', lane)]
    assert len(ticks) == 5
    assert min(ticks) - 11 > name_y, "the highest size label is below the lane's name"


def test_the_runs_own_report_gives_the_page_a_file_of_it_gives() -> None:
    """The plugin renders the report it just built from its results, without making its
    entries: the page is the one ``memguard show --format html`` makes of its file."""
    tests = [
        *_tests(),
        TestMemory.not_run("t.py::test_never", "not run (interrupted)"),  # no "started"
    ]
    report = _built(*tests)
    assert isinstance(report["tests"], TestEntries)
    written = json.loads(encode_report(report))
    assert render_html(report) == render_html(written)
