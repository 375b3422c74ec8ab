"""Each of our hookspecs, implemented in a test conftest."""

from __future__ import annotations

import json

import pytest

from .conftest import Run, entry

MB = 1_000_000


def test_budget_hook_decides_a_tests_budget(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest(
        """
        import dataclasses
        import pytest

        @pytest.hookimpl
        def pytest_memguard_budget(item, budget):
            if "strict" in item.name:
                return dataclasses.replace(budget, peak=10_000_000, sources={"peak": "conftest"})
            return None
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_strict():
            data = bytearray(30_000_000)

        @pytest.mark.memory_budget("1 MB")
        def test_lenient_falls_through_to_the_marker():
            data = bytearray(30_000_000)

        def test_free():
            data = bytearray(30_000_000)
        """
    )
    result, report = run(inprocess=True)
    result.assert_outcomes(passed=1, failed=2)
    assert entry(report, "test_strict")["message"].endswith("(conftest)")
    assert entry(report, "test_lenient_falls_through_to_the_marker")["budget"]["peak"] == MB


def test_threshold_hook_hears_each_crossing(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest(
        """
        import pytest
        seen = []

        def pytest_memguard_threshold_crossed(config, event):
            seen.append((str(event.level), event.unit, event.rss >= event.threshold))

        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line(f"crossings: {seen}")
        """
    )
    pytester.makepyfile(
        """
        def test_grows(request):
            guard = request.config.pluginmanager.get_plugin("memguard-plugin").guard
            data = bytearray(200_000_000)
            guard.poll()  # one watchdog step while `data` is held: no waiting for the thread
        """
    )
    result, _ = run("--memguard-warn=150MB", "--memguard-max=2GB")
    result.stdout.fnmatch_lines(
        ["crossings: [('warning', 'test_threshold_hook_hears_each_crossing.py::test_grows', True)]"]
    )


def test_result_hook_gets_every_test(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest(
        """
        results = []

        def pytest_memguard_test_result(item, result):
            assert result.nodeid == item.nodeid
            big = result.peak_delta > 40_000_000
            results.append((item.name, result.status, result.outcome, big))

        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line(f"results: {sorted(results)}")
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_big():
            data = bytearray(50_000_000)

        @pytest.mark.memory_budget("1 MB")
        def test_over():
            data = bytearray(50_000_000)
        """
    )
    result, _ = run(inprocess=True)
    result.stdout.fnmatch_lines(
        [
            "results: [('test_big', 'ok', 'passed', True),"
            " ('test_over', 'over_budget', 'failed', True)]"
        ]
    )


def test_report_hook_adds_extra_fields(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_report(config, report):
            return {"team": "storage", "tests_seen": len(report["tests"])}
        """
    )
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    _, report = run(inprocess=True)
    assert report["extra"] == {"team": "storage", "tests_seen": 2}


def test_a_failing_report_hook_does_not_lose_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_report(config, report):
            raise RuntimeError("broken conftest")
        """
    )
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("--memguard", "--memguard-json", "mem.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= memguard =*",
            "peak RSS of the run *",
            "JSON report: *mem.json",
            "memguard: internal error, the guard went on:"
            " calling pytest_memguard_report: RuntimeError: broken conftest",
        ]
    )
    report = json.loads((pytester.path / "mem.json").read_text())
    assert [test["nodeid"] for test in report["tests"]] == [
        "test_a_failing_report_hook_does_not_lose_the_run.py::test_a"
    ]
    assert report["errors"] == ["calling pytest_memguard_report: RuntimeError: broken conftest"]
    assert "extra" not in report
