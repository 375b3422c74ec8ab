"""A suite split across runners by pytest-split: a report a shard, each of that shard's
tests only, and ``memguard merge`` of them one report and one page of every test once."""

from __future__ import annotations

import json

import pytest

from pytest_memguard.cli import main

from ..sessions import guarded_run, validate

pytest.importorskip("pytest_split", reason="pytest-split is not installed (the test extra)")
pytest.importorskip("xdist")

SUITE = {
    f"test_part{part}": "\n".join(
        f"def test_{name}():\n    data = bytearray({size})\n    assert data\n"
        for name, size in (("small", 1_000), ("large", 4_000_000))
    )
    for part in range(4)
}


def test_three_shards_merge_into_one_report_of_every_test_once(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(**SUITE)
    every = {f"test_part{part}.py::test_{name}" for part in range(4) for name in ("small", "large")}
    paths = []
    for group in (1, 2, 3):
        xdist = ("-n", "2") if group == 2 else ()  # a shard may run its tests in workers
        report_name = f"memguard-{group}.json"
        shard = ("--splits", "3", "--group", str(group), *xdist)
        result, report = guarded_run(
            pytester,
            *("-p", "pytest-split"),  # inner sessions load it only when asked (conftest)
            *shard,
            report=report_name,
        )
        assert result.ret == pytest.ExitCode.OK
        assert report["tests"], f"group {group} ran no test"
        assert report["summary"]["statuses"]["not_run"] == 0, "the tests of other shards"
        paths.append(str(pytester.path / report_name))
    merged_path, page = pytester.path / "merged.json", pytester.path / "merged.html"
    capsys.readouterr()
    assert main(["merge", *paths, "-o", str(merged_path), "--html", str(page)]) == 0
    merged = json.loads(merged_path.read_text())
    validate(merged)
    nodeids = [test["nodeid"] for test in merged["tests"]]
    assert sorted(nodeids) == sorted(every), "every test exactly once"
    assert merged["summary"]["tests"] == len(every)
    assert [shard["name"] for shard in merged["shards"]] == [
        "memguard-1",
        "memguard-2",
        "memguard-3",
    ]
    workers = {test["worker"] for test in merged["tests"] if test["shard"] == "memguard-2"}
    assert workers
    assert workers <= {"memguard-2/gw0", "memguard-2/gw1"}
    assert "<h2>Shards</h2>" in page.read_text()
    out = capsys.readouterr().out
    assert f"memguard: {len(every)} tests, 0 memory failures;" in out
    assert f"memguard: report written to {page}" in out
