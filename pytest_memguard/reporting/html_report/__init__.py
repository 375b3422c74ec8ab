"""The HTML report: one self-contained page rendered from a JSON report's dict.

Inline CSS, inline SVG and a little inline script; no address outside the page (no
font, image, style sheet or script is fetched), so it opens from a CI artifact as it is.
It shows the summary (counts per status, peak RSS, the limits and where each came
from), the memory failures, a bar chart of the heaviest tests against their budgets, a
timeline of each process's RSS (:mod:`.charts`), a sortable, filterable table of every
test with its memory status and pytest outcome (:mod:`.table`: its rows are data the
script draws as they come into view, so a suite of many thousand tests still opens at
once; see benchmarks/html_load.py), and the allocation sites of confirmed leaks.  Every
text from the report is escaped.  The report is first given the shape the page reads
(:mod:`.shape`): a report ``memguard show`` accepts renders, whatever other version or
hand edit wrote it.  No pytest import here: the plugin and ``memguard show`` both render
it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any, Final

from ...core.sizes import format_size
from ..results import FAILING_STATUSES, STATUSES, TestMemory
from .assets import ERROR_TRAP, SCRIPT, STYLE
from .charts import bar_chart, timeline_chart
from .shape import normalised
from .shards import shards_section
from .table import css, table, word

__all__ = ["html_pieces", "render_html"]

#: The limits of the summary: report config key, label, settings source key.
_LIMITS: Final = (
    ("warning", "warning threshold", "warning"),
    ("critical", "critical threshold", "critical"),
    ("max", "hard limit", "max"),
    ("aggregate", "aggregate limit (xdist)", "aggregate"),
    ("budget", "default peak budget", "budget"),
    ("leak_budget", "leak budget", "leak_budget"),
    ("min_free", "pre-flight free memory", "min_free"),
    ("recycle", "recycle workers above", "recycle"),
)


def _summary(report: Mapping[str, Any]) -> str:
    summary = report.get("summary") or {}
    counts: Mapping[str, int] = summary.get("statuses") or {}
    chips = "".join(
        f'<span class="chip {css(status)}" data-status="{status}">{escape(word(status))}'
        f"<b>{int(counts.get(status, 0))}</b></span>"
        for status in STATUSES
    )
    worst = summary.get("worst") or None
    figures = [
        ("tests", str(summary.get("tests", 0))),
        ("failed", str(summary.get("failed", 0))),
        ("peak RSS", format_size(summary.get("peak_rss"))),
        ("duration", f"{float(report.get('duration_s') or 0):.2f} s"),
    ]
    if worst:
        figures.append(("largest peak growth", format_size(worst.get("peak_delta"))))
    blocks = "".join(f"<div><span>{escape(k)}</span><b>{escape(v)}</b></div>" for k, v in figures)
    worst_line = (
        f'<p class="meta">Largest peak growth: {escape(str(worst["nodeid"]))}</p>' if worst else ""
    )
    return (
        f'<section id="summary"><h2>Summary</h2><div class="chips">{chips}</div>'
        f'<div class="figures">{blocks}</div>{worst_line}{_limits(report)}'
        f"{shards_section(report)}</section>"
    )


def _limits(report: Mapping[str, Any]) -> str:
    config = report.get("config") or {}
    sources: Mapping[str, str] = config.get("sources") or {}
    environment = report.get("environment") or {}
    # xdist workers: not a run's main process, nor a shard's (``shard-1/main``, merged)
    workers = [w for w in report.get("workers") or () if w["id"].rpartition("/")[2] != "main"]
    rows = []
    for key, label, source in _LIMITS:
        value = config.get(key)
        if key == "aggregate" and not workers:
            continue  # one process: nothing to add up
        if key == "leak_budget" and value is None and config.get("leaks"):
            value = _default_leak_budget(report)
        if value is None and key != "max":
            continue
        shown = format_size(value) if value is not None else "none"
        rows.append(
            f"<tr><td>{escape(label)}</td><td class='num'>{escape(shown)}</td>"
            f"<td>{escape(str(sources.get(source, 'default')))}</td></tr>"
        )
    memory = environment.get("memory_total")
    if memory is not None:
        where = str(environment.get("memory_source") or "host")
        rows.append(
            f"<tr><td>memory the process can use</td><td class='num'>"
            f"{escape(format_size(memory))}</td><td>{escape(where)}</td></tr>"
        )
    mode = str(config.get("mode") or "enforce")
    return (
        f'<h2>Limits</h2><p class="meta">mode: {escape(mode)}</p>'
        "<table id='limits'><thead><tr><th>limit</th><th class='num'>value</th>"
        f"<th>source</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _default_leak_budget(report: Mapping[str, Any]) -> int | None:
    """The leak budget leak mode gave the tests without a marker (the most common one)."""
    tests: Sequence[TestMemory] = report["tests"]
    found = [t.budget.leak for t in tests if t.budget.leak is not None]
    return max(set(found), key=found.count) if found else None


def _failures(tests: Sequence[TestMemory]) -> str:
    failing = [test for test in tests if test.status in FAILING_STATUSES]
    if not failing:
        return '<section id="failures"><h2>Memory failures</h2><p class="empty">None.</p></section>'
    items = "".join(
        f'<tr class="fail"><td class="status">{escape(word(test.status))}</td>'
        f'<td class="test">{escape(test.nodeid)}</td>'
        f"<td>{escape(test.message or '')}</td></tr>"
        for test in failing
    )
    return (
        '<section id="failures"><h2>Memory failures</h2><table><thead><tr><th>status</th>'
        f"<th>test</th><th>what memguard said</th></tr></thead><tbody>{items}</tbody></table>"
        "</section>"
    )


def _baseline_peaks(baseline: Mapping[str, Any]) -> dict[str, int]:
    tests: Sequence[TestMemory] = baseline["tests"]
    return {test.nodeid: test.peak_delta for test in tests if test.peak_delta is not None}


def _leak_sites(tests: Sequence[TestMemory]) -> str:
    leaks = [test for test in tests if test.status == "leak"]
    if not leaks:
        return ""
    blocks = []
    for test in leaks:
        sites = test.sites
        lines = "".join(
            f"<tr><td>{escape(site.file)}:{site.line}</td>"
            f"<td class='num'>{escape(format_size(site.size))}</td>"
            f"<td class='num'>{site.count}</td></tr>"
            for site in sites
        )
        table = (
            f"<table><thead><tr><th>allocated at</th><th class='num'>size</th>"
            f"<th class='num'>blocks</th></tr></thead><tbody>{lines}</tbody></table>"
            if sites
            else '<p class="empty">No site was traced.</p>'
        )
        blocks.append(
            f"<h3>{escape(test.nodeid)}</h3>"
            f"<p>retained {escape(format_size(test.leaked))}</p>{table}"
        )
    return f'<section id="leaks"><h2>Leak sites</h2>{"".join(blocks)}</section>'


def _alerts(report: Mapping[str, Any]) -> str:
    alerts = report.get("alerts") or ()
    if not alerts:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(alert.get('level')))}</td><td>{escape(str(alert.get('process')))}"
        f"</td><td class='num'>{escape(format_size(alert.get('rss')))}</td>"
        f"<td>{escape(str(alert.get('message') or ''))}</td></tr>"
        for alert in alerts
    )
    return (
        '<section id="alerts"><h2>Alerts</h2><table><thead><tr><th>level</th><th>process</th>'
        f"<th class='num'>RSS</th><th>message</th></tr></thead><tbody>{rows}</tbody></table>"
        "</section>"
    )


def _environment(report: Mapping[str, Any]) -> str:
    env = report.get("environment") or {}
    words = [
        f"Python {env.get('python')} ({env.get('implementation')})",
        f"pytest {env.get('pytest')}",
        f"{env.get('platform')} {env.get('machine')}",
        f"{env.get('cpu_count')} CPU(s)",
        f"peak: {env.get('peak_method')}",
    ]
    return f"<footer>{escape('; '.join(words))}. Written by pytest-memguard.</footer>"


def render_html(report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """The HTML page of ``report`` (a loaded JSON report); with ``baseline`` (another
    report), the table also shows each test's change of peak growth against it.

    ASCII only (other characters are character references), so it can go to any stream.
    Fields of the wrong type are read as unknown (see :mod:`.shape`); it does not raise.
    """
    return "".join(html_pieces(report, baseline))


def html_pieces(
    report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """:func:`render_html`'s page in pieces, to be written as they come: the page of a run
    of thousands of tests is never one string in memory.

    The report the plugin just built is read from its results (see
    :class:`~..report.TestEntries`): its entries are not made for the page.
    """
    report = normalised(report)
    tests: list[TestMemory] = report["tests"]
    peaks = None if baseline is None else _baseline_peaks(normalised(baseline))
    interrupted = " (interrupted)" if report.get("interrupted") else ""
    created = escape(str(report.get("created") or ""))
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pytest-memguard report {created}</title>"
        f"<script>{ERROR_TRAP}</script><style>{STYLE}</style></head><body>"
        f"<header><h1>pytest-memguard report</h1><p class='meta'>{created}{interrupted};"
        f" {len(tests)} tests</p></header>"
        f"{_summary(report)}{_failures(tests)}"
        f'<section id="heaviest"><h2>Heaviest tests</h2>{bar_chart(tests)}</section>'
        f'<section id="timeline"><h2>RSS over the run</h2>{timeline_chart(report)}</section>'
    )
    yield _ascii(head)
    for piece in table(tests, peaks):  # the most of the page: a column at a time
        yield _ascii(piece)
    yield _ascii(
        f"{_leak_sites(tests)}{_alerts(report)}"
        f"{_environment(report)}<script>{SCRIPT}</script></body></html>\n"
    )


def _ascii(text: str) -> str:
    """``text`` with every character outside ASCII as a character reference."""
    return text if text.isascii() else text.encode("ascii", "xmlcharrefreplace").decode()
