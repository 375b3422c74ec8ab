"""pytest-html's report of a guarded run: memory columns per test, memguard's section."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

pytest.importorskip("pytest_html", reason="pytest-html is not installed")

SUITE = """
import pytest

def test_light():
    data = bytearray(5_000_000)

@pytest.mark.memory_budget("50 MB")
def test_over_budget():
    data = bytearray(120_000_000)
"""


def _rows(page: str) -> dict[str, dict[str, Any]]:
    """pytest-html's test rows (its data blob), by test id."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None, "not a pytest-html report"
    data = json.loads(html.unescape(blob.group(1)))
    return {test_id.split("::")[-1]: row for test_id, rows in data["tests"].items() for row in rows}


def _cells(row: dict[str, Any]) -> dict[str, str]:
    cells = {}
    for cell in row["resultsTableRow"]:
        found = re.match(r'<td class="col-([\w-]+)"[^>]*>(.*)</td>', cell)
        assert found is not None, cell
        cells[found.group(1)] = found.group(2)
    return cells


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_pytest_html_report_shows_memory_figures_per_test(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    pytester.makepyfile(SUITE)
    args = ["-p", "html", "-p", "metadata", "--memguard", "--html=report.html"]
    if xdist:
        args += ["-n", "2"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, failed=1)
    page = (pytester.path / "report.html").read_text()
    for heading in ("Peak growth", "Peak RSS", "Memory"):
        assert f">{heading}</th>" in page
    rows = _rows(page)
    light, heavy = _cells(rows["test_light"]), _cells(rows["test_over_budget"])
    assert light["memguard-status"] == "ok"
    assert heavy["memguard-status"] == "OVER BUDGET"
    growth = re.fullmatch(r"([0-9.]+) MiB", heavy["memguard-peak"])
    assert growth is not None, heavy["memguard-peak"]
    assert float(growth.group(1)) > 100
    assert heavy["memguard-rss"].endswith("MiB")
    extras = [e for e in rows["test_over_budget"]["extras"] if e["format_type"] == "html"]
    assert len(extras) == 1
    assert "memguard" in extras[0]["content"]
    assert "over" not in json.dumps(rows["test_light"]["extras"])


def test_without_pytest_html_nothing_of_it_is_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_modules():
            assert "pytest_html" not in sys.modules
            assert "pytest_memguard.plugin.htmlresults" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("--memguard", "--memguard-html=page.html")
    result.assert_outcomes(passed=1)
