"""xdist extras: worker recycling, memory-aware ``-n auto``, the crash report's letter."""

from __future__ import annotations

import pytest

from pytest_memguard.plugin.terminal import memory_status

from .test_xdist import SMALL, run_xdist

pytest.importorskip("xdist")

HOG = """
HELD = []

def test_keeps_150mb():
    HELD.append(b"x" * 150_000_000)  # written, so resident
"""


def test_a_worker_over_the_recycle_limit_is_replaced_and_no_test_is_lost(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_a_hog=HOG, test_small=SMALL)
    result, report = run_xdist(pytester, "--memguard-recycle=100MB")
    result.assert_outcomes(passed=13)
    assert len(report["tests"]) == 13, "no test is lost"
    assert {t["outcome"] for t in report["tests"]} == {"passed"}
    assert not [t for t in report["tests"] if t["status"] in ("killed", "not_run")]
    recycled = [w for w in report["workers"] if w.get("recycled")]
    assert len(recycled) == 1
    (worker,) = recycled
    assert not worker["killed"]
    assert worker["reason"].startswith("recycled at RSS ")
    assert worker["reason"].endswith(" > --memguard-recycle 95.4 MiB")
    assert worker["peak_rss"] > 100 * 10**6
    assert len(report["workers"]) == 3, "two workers and the replacement"
    assert report["config"]["recycle"] == 100 * 10**6
    result.stdout.fnmatch_lines(
        ["memguard: worker gw* recycled at RSS * > --memguard-recycle 95.4 MiB; xdist replaced it*"]
    )
    assert "crashed while running" not in result.stdout.str()


def test_below_the_recycle_limit_no_worker_is_replaced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMALL)
    result, report = run_xdist(pytester, "--memguard-recycle=10GB")
    result.assert_outcomes(passed=12)
    assert [w["id"] for w in report["workers"]] == ["gw0", "gw1"]
    assert not any(w.get("recycled") for w in report["workers"])


def test_auto_with_a_huge_worker_memory_starts_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMALL)
    result, report = run_xdist(pytester, "--memguard-worker-memory=10TB", workers="auto")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        [
            "memguard: -n auto: 1 worker(s): * CPU(s), * available / 9.1 TiB per worker",
            "created: 1/1 worker",
        ]
    )
    assert [w["id"] for w in report["workers"]] == ["gw0"]
    assert report["config"]["worker_memory"] == 10 * 10**12


def test_auto_with_a_tiny_worker_memory_keeps_the_cpu_count(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")  # xdist's own count
    pytester.makepyfile(SMALL)
    result, report = run_xdist(pytester, "--memguard-worker-memory=1MB", workers="auto")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        ["memguard: -n auto: 2 worker(s): 2 CPU(s), *", "created: 2/2 workers"]
    )
    assert len(report["workers"]) == 2


def test_worker_memory_without_auto_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMALL)
    result, report = run_xdist(pytester, "--memguard-worker-memory=10TB")
    result.assert_outcomes(passed=12)
    assert len(report["workers"]) == 2
    assert "-n auto" not in result.stdout.str()


def test_a_bad_worker_memory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMALL)
    result = pytester.runpytest_subprocess(
        "-n", "auto", "--memguard", "--memguard-worker-memory=2G", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memguard-worker-memory: *'2G'*"])


@pytest.mark.parametrize(
    ("when", "category"),
    [("???", "failed"), ("call", "failed"), ("setup", "error"), ("teardown", "error")],
)
def test_a_memory_crash_report_is_a_failure_not_an_error(when: str, category: str) -> None:
    report = pytest.TestReport("t.py::t", ("t.py", None, "t"), {}, "failed", "x", when)  # type: ignore[arg-type]
    report.memguard_cause = True  # type: ignore[attr-defined]
    status = memory_status(report)
    assert status is not None
    assert status[:2] == (category, "M")
