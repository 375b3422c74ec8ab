"""Each of our hookspecs, implemented in a test conftest."""

from __future__ import annotations

import json

import pytest

from .conftest import InnerSession, entry

MB = 1_000_000


def test_budget_hook_decides_a_tests_budget(pytester: pytest.Pytester, run: InnerSession) -> None:
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
    result, report = run()  # real RSS: a fresh process (memory freed earlier is reused)
    result.assert_outcomes(passed=1, failed=2)
    assert entry(report, "test_strict")["message"].endswith("(conftest)")
    assert entry(report, "test_lenient_falls_through_to_the_marker")["budget"]["peak"] == MB


def test_threshold_hook_hears_each_crossing(pytester: pytest.Pytester, run: InnerSession) -> None:
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


def test_result_hook_gets_every_test(pytester: pytest.Pytester, run: InnerSession) -> None:
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


def test_report_hook_adds_extra_fields(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_report(config, report):
            return {"team": "storage", "tests_seen": len(report["tests"])}
        """
    )
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    _, report = run(inprocess=True)
    assert report["extra"] == {"team": "storage", "tests_seen": 2}


@pytest.mark.memguard_errors
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
            "memguard: error: pytest_memguard_report in conftest.py raised RuntimeError:"
            " broken conftest",
        ]
    )
    report = json.loads((pytester.path / "mem.json").read_text())
    assert [test["nodeid"] for test in report["tests"]] == [
        "test_a_failing_report_hook_does_not_lose_the_run.py::test_a"
    ]
    assert report["errors"] == [
        "pytest_memguard_report in conftest.py raised RuntimeError: broken conftest"
    ]
    assert "extra" not in report


@pytest.mark.parametrize(
    "answer",
    ["[1, 2]", "'a string'", "{'when': object()}"],
    ids=["list", "string", "not-json"],
)
def test_a_report_hook_with_the_wrong_answer_is_named_and_the_report_written(
    pytester: pytest.Pytester, run: InnerSession, answer: str
) -> None:
    pytester.makeconftest(
        f"""
        def pytest_memguard_report(config, report):
            return {answer}
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result, report = run(inprocess=True, errors=True)
    assert result.ret == pytest.ExitCode.OK
    (error,) = report["errors"]
    assert error.startswith("pytest_memguard_report in conftest.py ")
    assert "extra" not in report
    result.stdout.fnmatch_lines(["memguard: error: pytest_memguard_report in conftest.py *"])


def test_a_report_hook_that_answers_well_beside_a_wrong_one_keeps_its_fields(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_report(config, report):
            return {"build": 7}
        """
    )
    pytester.makepyfile(
        other_plugin="""
        def pytest_memguard_report(config, report):
            return ["oops"]
        """,
        test_one="def test_ok(): pass",
    )
    pytester.syspathinsert()
    _result, report = run("-p", "other_plugin", inprocess=True, errors=True)
    assert report["extra"] == {"build": 7}
    assert report["errors"] == [
        "pytest_memguard_report in other_plugin.py returned list ['oops'], expected a"
        " mapping of extra fields or None; the report is written without it"
    ]


def test_a_budget_hook_with_the_wrong_answer_errors_that_test_only(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_budget(item, budget):
            return "100MB" if "bad" in item.name else None
        """
    )
    pytester.makepyfile("def test_bad(): pass\ndef test_good(): pass")
    result, report = run(inprocess=True)
    result.assert_outcomes(passed=1, errors=1)
    assert "Traceback" not in result.stdout.str()
    message = (
        "memguard: pytest_memguard_budget in conftest.py returned str '100MB' for this test,"
        " expected a pytest_memguard.Budget or None"
    )
    result.stdout.fnmatch_lines([f"*{message}*"])
    assert entry(report, "test_bad")["message"] == message
    assert entry(report, "test_good")["status"] == "ok"
