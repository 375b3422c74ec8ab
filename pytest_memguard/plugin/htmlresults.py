"""pytest-html's results table with memguard's figures: peak growth, peak RSS, status.

Registered only when pytest-html is loaded and writes a report (``--html``), in the
process that writes it (never in an xdist worker): pytest-html is not a dependency, and
nothing here is imported without it.  The columns come through pytest-html's own hooks
(``pytest_html_results_table_header`` and ``_row``); a memory failure's ``memguard``
section also goes into the row's extras, as HTML.

pytest-html builds a test's rows when its teardown report is logged, when the test's
result is final: the run's result source has it (this process's, or the one its xdist
worker sent).
"""

from __future__ import annotations

from html import escape
from typing import Final

import pytest

from ..core.sizes import format_size
from ..reporting.results import FAILING_STATUSES, STATUS_WORDS
from .context import RunContext

__all__ = ["HTML_NAME", "HtmlColumns"]

HTML_NAME: Final = "memguard-html"
#: After pytest-html's result, test, duration columns.
_AT: Final = 3
_WORDS: Final[dict[str, str]] = dict(STATUS_WORDS)


class HtmlColumns:
    """pytest-html hook implementations over the run's results."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[_AT:_AT] = [
            '<th class="memguard-peak">Peak growth</th>',
            '<th class="memguard-rss">Peak RSS</th>',
            '<th class="memguard-status">Memory</th>',
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        try:
            result = self.context.source.result_of(report.nodeid)
            status = result.status if result is not None else ""
            word = _WORDS.get(status, "-")
            style = ' style="color:#c62828;font-weight:bold"' if status in FAILING_STATUSES else ""
            delta = result.peak_delta if result is not None else None
            rss = result.rss_peak if result is not None else None
            cells[_AT:_AT] = [
                f'<td class="col-memguard-peak">{format_size(delta)}</td>',
                f'<td class="col-memguard-rss">{format_size(rss)}</td>',
                f'<td class="col-memguard-status"{style}>{escape(word)}</td>',
            ]
        except Exception as error:  # never the cause of a lost report
            self.context.log.error(f"adding memory columns for {report.nodeid}", error)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A report with memguard's section (a memory failure): the section as an extra."""
        sections = [text for name, text in report.sections if name == "memguard"]
        if not sections:
            return
        from pytest_html import extras

        content = "".join(
            f'<div class="memguard"><p><b>memguard</b></p><pre>{escape(text)}</pre></div>'
            for text in sections
        )
        report.extras = [*getattr(report, "extras", []), extras.html(content)]  # type: ignore[attr-defined]
