"""``memguard merge``: one report and one page from the reports of a suite's shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from tests.cli.reports import MB, make_test, write_report

from ..sessions import validate


@pytest.fixture
def shards(tmp_path: Path) -> list[str]:
    return [
        write_report(
            tmp_path / "memguard-1.json", make_test("a.py::x", 5 * MB), make_test("a.py::y")
        ),
        write_report(
            tmp_path / "memguard-2.json",
            make_test("b.py::x", 300 * MB, status="over_budget", budget=100 * MB, message="big"),
        ),
        write_report(tmp_path / "memguard-3.json", make_test("c.py::x", 1 * MB)),
    ]


def test_three_shards_give_one_valid_report_and_page_with_every_test_once(
    tmp_path: Path, shards: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, html = tmp_path / "merged.json", tmp_path / "merged.html"
    assert main(["merge", *shards, "-o", str(out), "--html", str(html)]) == 0
    report = json.loads(out.read_text())
    validate(report)
    assert [t["nodeid"] for t in report["tests"]] == ["a.py::x", "a.py::y", "b.py::x", "c.py::x"]
    assert [t["shard"] for t in report["tests"]] == ["memguard-1"] * 2 + [
        "memguard-2",
        "memguard-3",
    ]
    page = html.read_text()
    assert "<h2>Shards</h2>" in page
    assert "<td>memguard-2/main</td>" in page
    stdout, stderr = capsys.readouterr()
    assert stderr == ""
    assert stdout.splitlines() == [
        "memguard merge: 3 shard(s)",
        "  memguard-1  2 tests, 0 failed, 0 memory failures, peak RSS 57.2 MiB",
        "  memguard-2  1 tests, 1 failed, 1 memory failures, peak RSS 333.8 MiB",
        "  memguard-3  1 tests, 0 failed, 0 memory failures, peak RSS 48.6 MiB",
        "memguard: 4 tests, 1 memory failure (1 over budget); peak RSS 333.8 MiB;"
        " largest growth 286.1 MiB in b.py::x; 3 shards merged",
        f"memguard: report written to {out}",
        f"memguard: report written to {html}",
    ]


def test_a_shard_given_as_name_equals_path_takes_that_name(
    tmp_path: Path, shards: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged.json"
    argv = ["merge", f"linux={shards[0]}", f"mac={shards[1]}", "-o", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert [s["name"] for s in report["shards"]] == ["linux", "mac"]
    assert [s["report"] for s in report["shards"]] == shards[:2]
    assert "  linux  2 tests" in capsys.readouterr().out


def test_the_same_file_twice_is_an_error_that_says_how_to_name_them(
    tmp_path: Path, shards: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged.json"
    assert main(["merge", shards[0], shards[0], "-o", str(out)]) == 2
    stdout, stderr = capsys.readouterr()
    assert stderr == (
        f"memguard merge: error: two shards are named 'memguard-1' ({shards[0]} and"
        f" {shards[0]}): name them NAME=PATH\n"
    )
    assert stdout == ""
    assert not out.exists()


def test_a_test_run_in_two_shards_is_kept_once_and_said(
    tmp_path: Path, shards: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    again = write_report(tmp_path / "again.json", make_test("a.py::x", 9 * MB))
    out = tmp_path / "merged.json"
    assert main(["merge", shards[0], again, "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sorted(t["nodeid"] for t in report["tests"]) == ["a.py::x", "a.py::y"]
    assert (
        "note: 1 test(s) ran in more than one shard, each kept from the shard given last:"
        " a.py::x (memguard-1, again)"
    ) in capsys.readouterr().out.splitlines()


def test_no_shard_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", "-o", "merged.json"]) == 2
    assert "memguard merge: error: the following arguments are required: SHARD" in (
        capsys.readouterr().err
    )


def test_no_output_is_an_error(shards: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", *shards]) == 2
    assert capsys.readouterr().err == (
        "memguard merge: error: say where to write the merged report: -o PATH or --html PATH\n"
    )


def test_an_output_that_cannot_be_written_is_said_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing.json"
    assert main(["merge", str(missing), "-o", str(folder)]) == 2
    assert capsys.readouterr().err == (
        "memguard merge: error: cannot write the report (it is a directory)\n"
    )


def test_show_and_diff_read_the_merged_report_against_an_unsharded_baseline(
    tmp_path: Path, shards: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged.json"
    assert main(["merge", *shards, "-o", str(out)]) == 0
    baseline = write_report(
        tmp_path / "main.json",
        make_test("a.py::x", 5 * MB),
        make_test("a.py::y"),
        make_test("b.py::x", 100 * MB),
        make_test("c.py::x", 1 * MB),
    )
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("memguard: 4 tests, 1 memory failure (1 over budget)")
    assert shown.splitlines()[0].endswith("; 3 shards merged")
    assert main(["diff", baseline, str(out)]) == 1
    diff = capsys.readouterr().out
    assert diff.startswith("memguard diff: 1 regression,")
    assert ", 0 new, 0 removed " in diff.split("\n", 1)[0], "matched by node id"
    assert "b.py::x" in diff
