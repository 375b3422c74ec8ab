"""The merge of shard reports (``memguard merge``): every test once, each naming its
shard, the shards' processes apart, each shard's limits and environment kept."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pytest_memguard.reporting.html_report import render_html
from pytest_memguard.reporting.merge import MergeError, Shard, merge_reports, shard_name
from tests.cli.reports import MB, make_report, make_test

from ..sessions import validate


def _shard(name: str, *tests: dict[str, Any], **fields: Any) -> Shard:
    report = make_report(*copy.deepcopy(tests))
    report.update(fields)
    validate(report)
    return Shard(name, report, f"{name}.json")


def _not_run(nodeid: str) -> dict[str, Any]:
    return {
        **make_test(nodeid, None),
        "outcome": "not_run",
        "status": "not_run",
        "worker": "",
        "message": "not run",
    }


def _ids(report: dict[str, Any]) -> list[str]:
    return [test["nodeid"] for test in report["tests"]]


def test_every_test_once_in_the_shards_order_each_naming_its_shard() -> None:
    merged = merge_reports(
        [
            _shard("one", make_test("a.py::x", 5 * MB), make_test("a.py::y", 7 * MB)),
            _shard(
                "two",
                make_test("b.py::x", 90 * MB, status="over_budget", message="over"),
            ),
            _shard("three", make_test("c.py::x", 1 * MB)),
        ]
    )
    report = merged.report
    validate(report)
    assert merged.notices == []
    assert _ids(report) == ["a.py::x", "a.py::y", "b.py::x", "c.py::x"]
    assert [t["shard"] for t in report["tests"]] == ["one", "one", "two", "three"]
    assert [t["worker"] for t in report["tests"]] == [
        "one/main",
        "one/main",
        "two/main",
        "three/main",
    ]
    summary = report["summary"]
    assert summary["tests"] == 4
    assert summary["statuses"]["ok"] == 3
    assert summary["statuses"]["over_budget"] == 1
    assert summary["outcomes"] == {"passed": 3, "failed": 1}
    assert summary["failed"] == 1
    assert summary["peak_rss"] == 140 * MB
    assert summary["worst"] == {"nodeid": "b.py::x", "peak_delta": 90 * MB}
    assert [shard["name"] for shard in report["shards"]] == ["one", "two", "three"]
    assert [shard["report"] for shard in report["shards"]] == ["one.json", "two.json", "three.json"]
    assert report["shards"][0]["summary"]["tests"] == 2, "each shard's own summary, as written"
    assert report["interrupted"] is False


@pytest.mark.parametrize("run_first", [True, False])
def test_a_run_is_kept_over_another_shards_not_run_entry(run_first: bool) -> None:
    ran = _shard("ran", make_test("t.py::x", 3 * MB), make_test("t.py::y"))
    listed = _shard("listed", _not_run("t.py::x"), make_test("t.py::z"))
    merged = merge_reports([ran, listed] if run_first else [listed, ran])
    validate(merged.report)
    tests = {test["nodeid"]: test for test in merged.report["tests"]}
    assert len(merged.report["tests"]) == 3
    assert tests["t.py::x"]["shard"] == "ran"
    assert tests["t.py::x"]["peak_delta"] == 3 * MB
    assert merged.report["summary"]["statuses"]["not_run"] == 0
    assert merged.notices == ["1 not-run entry left out: another shard ran the test"]


def test_a_test_run_in_two_shards_keeps_the_result_of_the_shard_given_last() -> None:
    first = _shard("first", make_test("t.py::x", 1 * MB), make_test("t.py::y"))
    last = _shard("last", make_test("t.py::x", 9 * MB))
    merged = merge_reports([first, last])
    validate(merged.report)
    assert _ids(merged.report) == ["t.py::y", "t.py::x"]
    kept = merged.report["tests"][1]
    assert (kept["shard"], kept["peak_delta"]) == ("last", 9 * MB)
    assert merged.notices == [
        "1 test(s) ran in more than one shard, each kept from the shard given last:"
        " t.py::x (first, last)"
    ]


def test_the_notice_of_tests_run_twice_names_three_and_counts_the_rest() -> None:
    tests = [make_test(f"t.py::test_{i}") for i in range(5)]
    merged = merge_reports([_shard("a", *tests), _shard("b", *tests)])
    assert len(merged.report["tests"]) == 5
    (notice,) = merged.notices
    assert notice.startswith("5 test(s) ran in more than one shard")
    assert notice.endswith("t.py::test_2 (a, b); and 2 more")


def test_a_shard_is_named_after_its_file() -> None:
    assert shard_name("reports/memguard-2.json") == "memguard-2"
    assert shard_name("memguard-3") == "memguard-3"


def test_two_shards_of_one_name_are_an_error_that_says_how_to_name_them() -> None:
    shards = [_shard("memguard", make_test("a.py::x")), _shard("memguard", make_test("b.py::x"))]
    shards[1] = Shard("memguard", shards[1].report, "b/memguard.json")
    with pytest.raises(MergeError) as raised:
        merge_reports(shards)
    assert str(raised.value) == (
        "two shards are named 'memguard' (memguard.json and b/memguard.json): name them NAME=PATH"
    )


def test_no_shard_an_empty_name_and_a_merged_report_are_errors() -> None:
    with pytest.raises(MergeError, match=r"^no shard reports to merge$"):
        merge_reports([])
    with pytest.raises(MergeError, match=r"^x\.json: a shard's name cannot be empty$"):
        merge_reports([Shard("", make_report(make_test("a.py::x")), "x.json")])
    merged = merge_reports([_shard("a", make_test("a.py::x"))]).report
    with pytest.raises(MergeError, match=r"^m\.json: already a merged report \(merge the shards"):
        merge_reports([Shard("m", merged, "m.json")])


def test_each_shard_keeps_its_limits_and_environment_the_first_is_on_top() -> None:
    small = _shard("small", make_test("a.py::x"))
    big = _shard("big", make_test("b.py::x"))
    small.report["config"].update(max=4_000 * MB, warning=3_000 * MB)
    big.report["config"].update(max=16_000 * MB, warning=3_000 * MB)
    big.report["environment"].update(
        memory_total=32_000 * MB, ci={"system": "github-actions", "job": "ci/test"}
    )
    merged = merge_reports([small, big])
    report = merged.report
    validate(report)
    assert report["config"]["max"] == 4_000 * MB
    assert report["environment"]["memory_total"] == 8_000 * MB
    assert [s["config"]["max"] for s in report["shards"]] == [4_000 * MB, 16_000 * MB]
    assert report["shards"][1]["environment"]["memory_total"] == 32_000 * MB
    assert report["shards"][1]["environment"]["ci"]["job"] == "ci/test"
    assert merged.notices == [
        "the shards ran with different limits (max): the merged report's config is"
        " small's, each shard's own is under shards"
    ]


def test_an_interrupted_shard_makes_the_merged_run_interrupted() -> None:
    cut = _not_run("b.py::y")
    cut["message"] = "the run was interrupted before this test"
    merged = merge_reports(
        [
            _shard("whole", make_test("a.py::x")),
            _shard("cut", make_test("b.py::x"), cut, interrupted=True, signal="SIGTERM"),
        ]
    )
    report = merged.report
    validate(report)
    assert report["interrupted"] is True
    assert "signal" not in report, "the shard's, not the merged run's"
    assert [(s["interrupted"], s.get("signal")) for s in report["shards"]] == [
        (False, None),
        (True, "SIGTERM"),
    ]
    assert report["summary"]["statuses"]["not_run"] == 1, "no other shard ran it"


def _xdist_shard(name: str, created: str, duration: float, *nodeids: str) -> Shard:
    tests = [{**make_test(nodeid), "worker": "gw0", "started": 1000.5} for nodeid in nodeids]
    return _shard(
        name,
        *tests,
        created=created,
        duration_s=duration,
        workers=[
            {"id": "gw0", "pid": 10, "peak_rss": 70 * MB, "killed": False, "reason": None},
        ],
        alerts=[
            {
                "timestamp": 1000.5,
                "level": "warning",
                "process": "gw0",
                "rss": 70 * MB,
                "message": "high",
            }
        ],
        timeline={
            "processes": [{"process": "gw0", "pid": 10, "samples": [[1000.5, 60 * MB]]}],
            "events": [{"time": 1001.0, "process": "gw0", "kind": "recycle"}],
        },
        errors=["a hook raised"],
    )


def test_the_shards_processes_alerts_and_errors_stay_apart() -> None:
    merged = merge_reports(
        [
            _xdist_shard("s1", "2026-01-02T03:04:05+0000", 10.0, "a.py::x"),
            _xdist_shard("s2", "2026-01-02T03:04:00+0000", 30.0, "b.py::x"),
        ]
    )
    report = merged.report
    validate(report)
    assert [w["id"] for w in report["workers"]] == ["s1/gw0", "s2/gw0"]
    assert [w["shard"] for w in report["workers"]] == ["s1", "s2"]
    assert [s["workers"] for s in report["shards"]] == [["s1/gw0"], ["s2/gw0"]]
    assert [t["worker"] for t in report["tests"]] == ["s1/gw0", "s2/gw0"]
    assert [(a["process"], a["shard"]) for a in report["alerts"]] == [
        ("s1/gw0", "s1"),
        ("s2/gw0", "s2"),
    ]
    timeline = report["timeline"]
    assert [p["process"] for p in timeline["processes"]] == ["s1/gw0", "s2/gw0"]
    assert [e["process"] for e in timeline["events"]] == ["s1/gw0", "s2/gw0"]
    assert timeline["processes"][0]["samples"] == [[1000.5, 60 * MB]], "times as they were"
    assert report["errors"] == ["s1: a hook raised", "s2: a hook raised"]
    assert report["created"] == "2026-01-02T03:04:00+0000", "the shard that started first"
    assert report["duration_s"] == 30.0, "from the first start to the last end"
    assert report["summary"]["peak_rss"] == 70 * MB, "the workers' peak counts"


def test_the_page_shows_each_shard_its_limits_and_each_tests_shard() -> None:
    big = _xdist_shard("s2", "2026-01-02T03:04:00+0000", 30.0, "b.py::x")
    big.report["config"].update(max=16_000 * MB)
    big.report["environment"].update(ci={"system": "github-actions", "job": "ci/test"})
    report = merge_reports([_shard("s1", make_test("a.py::x")), big]).report
    page = render_html(report)
    shards = page[page.index("<h2>Shards</h2>") : page.index('id="failures"')]
    assert shards.count("<tr><td>") == 2
    assert "The limits above are those of s1" in shards
    assert "<td>enforce: no limit</td>" in shards
    assert "<td>enforce: max 14.9 GiB</td>" in shards
    assert "CI job ci/test" in shards
    assert "<td>s1</td><td class='num'>1</td>" in shards
    table = page[page.index('id="tests"') : page.index("</table>", page.index('id="tests"'))]
    assert "<td>s1/main</td>" in table
    assert "<td>s2/gw0</td>" in table
    assert page.count('class="chart lane"') == 1, "s1 had no timeline"
    assert 'data-process="s2/gw0"' in page


def test_serial_shards_have_no_sum_of_workers_on_the_page() -> None:
    main = {"id": "main", "pid": 1, "peak_rss": 60 * MB, "killed": False, "reason": None}
    shards = [_shard(name, make_test(f"{name}.py::x"), workers=[main]) for name in ("s1", "s2")]
    for shard in shards:
        shard.report["config"]["aggregate"] = 8_000 * MB
    report = merge_reports(shards).report
    assert [w["id"] for w in report["workers"]] == ["s1/main", "s2/main"]
    assert "aggregate limit" not in render_html(report)
    xdist = _xdist_shard("s3", "2026-01-02T03:04:00+0000", 1.0, "c.py::x")
    xdist.report["config"]["aggregate"] = 8_000 * MB
    assert "aggregate limit" in render_html(merge_reports([xdist]).report)


def test_a_report_of_one_run_has_no_shards_section() -> None:
    page = render_html(make_report(make_test("a.py::x")))
    assert "<h2>Shards</h2>" not in page
