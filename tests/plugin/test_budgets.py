"""Per-test budgets measured on real RSS, end to end."""

from __future__ import annotations

import pytest

from .conftest import InnerSession, entry, run_bad_marker

MB = 1_000_000

BUDGETS = """
import pytest

def test_spike():
    spike = bytearray(250_000_000)
    del spike

@pytest.mark.memory_budget("100 MB")
def test_over():
    data = bytearray(200_000_000)

@pytest.mark.memory_budget(peak="300 MB")
def test_under():
    data = bytearray(200_000_000)

def test_after():
    pass
"""


def test_a_short_spike_is_measured_exactly(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makepyfile(BUDGETS)
    result, report = run("-v")
    result.assert_outcomes(passed=3, failed=1)
    spike = entry(report, "test_spike")
    # The kernel's RSS counters are batched per CPU, so the figure can lag by some KiB.
    assert spike["peak_delta"] >= 249.5 * MB
    assert spike["rss_peak"] - spike["rss_start"] == spike["peak_delta"]
    assert spike["status"] == "ok"
    assert report["environment"]["peak_method"] == "exact (kernel VmHWM)"


def test_over_budget_fails_with_its_own_letter_and_word(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(BUDGETS)
    result, report = run()
    result.stdout.fnmatch_lines(["*.py .M..*"])
    result, report = run("-v")
    result.stdout.fnmatch_lines(
        [
            "*::test_over MEMORY*",
            "*::test_under PASSED*",
            "*_ test_over _*",
            "memguard: peak growth 19?.? MiB is over the budget of 100 MB (95.4 MiB)"
            " (memory_budget(peak='100 MB'))",
            "*- memguard -*",
            "RSS at start *, peak *, growth 19?.? MiB (exact (kernel VmHWM))",
            "budget: peak 100 MB (95.4 MiB) (memory_budget(peak='100 MB'))",
            "MEMORY *::test_over - *",
        ]
    )
    over = entry(report, "test_over")
    assert (over["status"], over["outcome"]) == ("over_budget", "failed")
    assert over["budget"] == {"peak": 100 * MB, "leak": None, "heap": None, "rss": None}
    assert over["message"].startswith("memguard: peak growth")
    assert entry(report, "test_under")["status"] == "ok"
    assert report["summary"]["statuses"]["over_budget"] == 1


def test_default_budget_applies_and_the_marker_overrides_it(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_default():
            data = bytearray(80_000_000)

        @pytest.mark.memory_budget("200 MB")
        def test_marked():
            data = bytearray(80_000_000)

        @pytest.mark.memory_budget(rss="2 GB")
        def test_rss_only_keeps_the_default_peak():
            data = bytearray(80_000_000)
        """
    )
    result, report = run("--memguard-budget=50MB")
    result.assert_outcomes(passed=1, failed=2)
    assert entry(report, "test_default")["message"].endswith("(--memguard-budget)")
    assert entry(report, "test_marked")["status"] == "ok"
    assert entry(report, "test_rss_only_keeps_the_default_peak")["budget"]["peak"] == 50 * MB


def test_class_and_module_markers_apply_closest_first(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.memory_budget("10 MB")

        def test_module_budget():
            data = bytearray(30_000_000)

        @pytest.mark.memory_budget("100 MB")
        class TestLarger:
            def test_class_budget(self):
                data = bytearray(30_000_000)
        """
    )
    result, report = run()
    result.assert_outcomes(passed=1, failed=1)
    assert entry(report, "test_module_budget")["status"] == "over_budget"


def test_report_mode_measures_and_fails_nothing(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(BUDGETS)
    result, report = run("--memguard-mode=report")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "1 memory problems (report mode: not failed):",
            "  OVER BUDGET *::test_over - memguard: peak growth*",
        ]
    )
    over = entry(report, "test_over")
    assert (over["status"], over["outcome"]) == ("over_budget", "passed")
    assert report["config"]["mode"] == "report"


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            '"12 apples"',
            "memory_budget(peak='12 apples'): invalid size '12 apples': unknown unit 'apples'"
            " (expected e.g. 4GB or 3.5GiB)",
        ),
        (
            'peek="1 MB"',
            # Python 3.13 adds "Did you mean 'peak'?" to the TypeError it words
            "memory_budget: got an unexpected keyword argument 'peek'*"
            ' (expected e.g. memory_budget("200 MB") or memory_budget(peak="1 GB", leak="1 MB"))',
        ),
        (
            '"1 MB", "2 MB"',
            "memory_budget: takes from 0 to 1 positional arguments but 2 were given*",
        ),
        (
            'rss="2G"',
            "memory_budget(rss='2G'): invalid size '2G': 'G' is ambiguous, MB or MiB?"
            " (expected e.g. 2MB or 2MiB)",
        ),
        (
            'leak="-1 MB"',
            "memory_budget(leak='-1 MB'): invalid size '-1 MB'*",
        ),
    ],
)
def test_a_bad_marker_errors_only_its_test(
    pytester: pytest.Pytester, run: InnerSession, marker: str, message: str
) -> None:
    result, _ = run_bad_marker(pytester, run, marker)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad*", message])


def test_the_marker_is_accepted_by_strict_markers(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memory_budget("1 GB", rss="4 GB")
        def test_ok():
            pass
        """
    )
    result, _ = run("--strict-markers", inprocess=True)
    result.assert_outcomes(passed=1)


def test_budgets_from_param_marks_and_from_conftest_hooks_apply(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_marked_by_conftest":
                    item.add_marker(pytest.mark.memory_budget("10 MB"))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize(
            "size", [pytest.param(30_000_000, marks=pytest.mark.memory_budget("10 MB")), 1]
        )
        def test_param(size):
            data = bytearray(size)

        def test_marked_by_conftest():
            data = bytearray(30_000_000)
        """
    )
    result, report = run()
    result.assert_outcomes(passed=1, failed=2)
    assert entry(report, "test_param[30000000]")["status"] == "over_budget"
    assert entry(report, "test_marked_by_conftest")["status"] == "over_budget"
    assert entry(report, "test_param[1]")["budget"]["peak"] is None
