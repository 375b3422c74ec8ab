"""The page's table of every test: its first rows as HTML, every row as compact data.

At 20,000 tests, 20,000 rows of HTML made a page of megabytes that a browser took
seconds to lay out (see benchmarks/html_load.py).  So the page holds the tests once, as
columns of JSON (a list per field; statuses, outcomes, workers and the nodeids' files as
indexes into their names; the few messages by row), and the script draws only the rows in view
(:mod:`.assets`).  Without a script (a text browser, JavaScript off) the table shows its
first :data:`STATIC_ROWS` rows, written here in the order the tests ran, and says how many
there are; every row the script draws has the same HTML as these.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from html import escape
from typing import Any, Final

from ...core.sizes import format_size
from ..results import FAILING_STATUSES, STATUS_WORDS, STATUSES, TestMemory
from .shape import took

__all__ = ["STATIC_ROWS", "table"]

#: Rows written as HTML, for a reader without a script; the script draws every row.
STATIC_ROWS: Final = 100
#: The tests whose column values are written as one piece of the page.
_SLICE: Final = 2000
#: Table columns: key (for sorting and the address fragment), heading, numeric.
_COLUMNS: Final = (
    ("status", "Status", False),
    ("outcome", "Outcome", False),
    ("test", "Test", False),
    ("peak", "Peak growth", True),
    ("rss", "Peak RSS", True),
    ("heap", "Heap peak", True),
    ("retained", "Retained", True),
    ("duration", "Duration", True),
    ("budget", "Budget", True),
    ("worker", "Worker", False),
)
#: pytest's outcomes in the order the outcome filter lists them; others follow by name.
_OUTCOMES: Final = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "not_run")
#: Sorting by status: the worst first (descending).
_RANK: Final[dict[str, int]] = {status: i for i, status in enumerate(reversed(STATUSES))}
_WORDS: Final[dict[str, str]] = dict(STATUS_WORDS)


def word(status: str) -> str:
    """How people read ``status`` (an unknown one as it stands)."""
    return _WORDS.get(status, status)


def css(status: str) -> str:
    """The CSS class of a row of ``status``: ``fail`` for a memory failure."""
    return "fail" if status in FAILING_STATUSES else status


def _outcome_class(outcome: str) -> str:
    return outcome if outcome.isascii() and outcome.replace("_", "").isalpha() else "other"


def _num(value: object) -> str:
    return "" if not isinstance(value, (int, float)) else repr(value)


def _change(now: object, before: int | None) -> tuple[str, str]:
    """The cell of the change of peak growth against the baseline: (sort value, html)."""
    if before is None or not isinstance(now, int):
        return "", "-"
    delta = now - before
    share = f" ({delta / before:+.0%})" if before > 0 else ""
    kind = "worse" if delta > 0 else "better" if delta < 0 else ""
    text = ("+" if delta > 0 else "") + format_size(delta) + share
    return str(delta), f'<span class="{kind}">{escape(text)}</span>'


def _row(test: TestMemory, peaks: dict[str, int] | None) -> str:
    """A test's row (the script's ``row()`` writes the same)."""
    status, outcome = test.status, test.outcome
    budget, cap = test.budget.peak, test.budget.rss
    duration = took(test)
    cells = [
        f'<td class="status" data-v="{_RANK.get(status, 0)}">{escape(word(status))}</td>',
        f'<td class="outcome {_outcome_class(outcome)}">{escape(outcome)}</td>',
        f'<td class="test">{escape(test.nodeid)}</td>',
    ]
    for value in (test.peak_delta, test.rss_peak, test.heap_peak, test.leaked):
        cells.append(f'<td class="num" data-v="{_num(value)}">{escape(format_size(value))}</td>')
    cells.append(f'<td class="num" data-v="{duration!r}">{duration:.3f} s</td>')
    shown = format_size(budget) + (f" (RSS cap {format_size(cap)})" if cap else "")
    cells.append(f'<td class="num" data-v="{_num(budget)}">{escape(shown)}</td>')
    cells.append(f"<td>{escape(test.worker or 'main')}</td>")
    if peaks is not None:
        change, html = _change(test.peak_delta, peaks.get(test.nodeid))
        cells.append(f'<td class="num" data-v="{change}">{html}</td>')
    title = escape(test.nodeid + (f"\n{test.message}" if test.message else ""), quote=True)
    return (
        f'<tr class="{escape(css(status), quote=True)}"'
        f' data-status="{escape(status, quote=True)}" title="{title}">' + "".join(cells) + "</tr>"
    )


def _names(values: Iterable[str], first: Sequence[str] = ()) -> list[str]:
    """The distinct ``values``: those of ``first`` in its order, then the rest by name."""
    found = set(values)
    return [v for v in first if v in found] + sorted(found.difference(first))


def _columns(tests: Sequence[TestMemory], peaks: dict[str, int] | None) -> Iterator[str]:
    """The table's columns, for the script (see the module docstring): the JSON text of
    one object, in pieces of :data:`_SLICE` tests (at 20,000 tests, the columns all at
    once, their text and the page around it were most of what the run's end held)."""
    statuses = _names({t.status for t in tests}, STATUSES)
    outcomes = _names({t.outcome for t in tests}, _OUTCOMES)
    workers = _names({t.worker or "main" for t in tests})
    files = _names({t.nodeid.partition("::")[0] for t in tests})
    at_status = {name: i for i, name in enumerate(statuses)}
    at_outcome = {name: i for i, name in enumerate(outcomes)}
    at_worker = {name: i for i, name in enumerate(workers)}
    at_file = {name: i for i, name in enumerate(files)}
    ranked = [[status, word(status), css(status), _RANK.get(status, 0)] for status in statuses]
    yield f'{{"statuses":{_json(ranked)}'
    yield f',"outcomes":{_json([[outcome, _outcome_class(outcome)] for outcome in outcomes])}'
    yield f',"workers":{_json(workers)}'
    # A nodeid as its file's index and the rest: the file's path is written once.
    yield f',"files":{_json(files)}'
    yield from _column("file", tests, lambda t: at_file[t.nodeid.partition("::")[0]])
    yield from _column("test", tests, lambda t: t.nodeid[len(t.nodeid.partition("::")[0]) :])
    yield from _column("status", tests, lambda t: at_status[t.status])
    yield from _column("outcome", tests, lambda t: at_outcome[t.outcome])
    yield from _column("worker", tests, lambda t: at_worker[t.worker or "main"])
    yield from _column("duration", tests, took)
    yield from _column("budget", tests, lambda t: t.budget.peak)
    caps = {str(i): t.budget.rss for i, t in enumerate(tests) if t.budget.rss}
    yield f',"cap":{_json(caps)}'
    yield f',"messages":{_json({str(i): t.message for i, t in enumerate(tests) if t.message})}'
    yield from _column("peak", tests, lambda t: t.peak_delta)
    yield from _column("rss", tests, lambda t: t.rss_peak)
    yield from _column("heap", tests, lambda t: t.heap_peak)
    yield from _column("retained", tests, lambda t: t.leaked)
    if peaks is not None:
        yield from _column("before", tests, lambda t: peaks.get(t.nodeid))
    yield "}"


def _width(key: str, tests: Sequence[TestMemory]) -> str:
    """The worker column's width when its names are long (a merged report's
    ``shard/worker``); the style sheet's otherwise."""
    if key != "worker":
        return ""
    longest = max((len(t.worker or "main") for t in tests), default=0)
    return f' style="width: {0.6 * longest + 1:.1f}em"' if longest > 6 else ""


def _column(
    key: str, tests: Sequence[TestMemory], value: Callable[[TestMemory], Any]
) -> Iterator[str]:
    """``,"key":[...]``, a ``value`` a test, written :data:`_SLICE` tests at a time."""
    yield f',"{key}":['
    for start in range(0, len(tests), _SLICE):
        text = _json([value(test) for test in tests[start : start + _SLICE]])[1:-1]
        yield text if start == 0 else "," + text
    yield "]"


def _json(value: object) -> str:
    """``value`` as JSON text that cannot end its ``<script>`` element (nor be HTML)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def table(tests: Sequence[TestMemory], peaks: dict[str, int] | None) -> Iterator[str]:
    """The section of every test, in pieces (``peaks``: the baseline's peak growth by
    nodeid, which adds the column of the change against it)."""
    columns = list(_COLUMNS)
    if peaks is not None:
        columns.append(("baseline", "vs baseline", True))
    head = "".join(
        f'<th data-key="{key}"{" class=num" if numeric else ""}>{escape(label)}</th>'
        for key, label, numeric in columns
    )
    cols = "".join(f'<col class="c-{key}"{_width(key, tests)}>' for key, _, _ in columns)
    rows = "".join(_row(test, peaks) for test in tests[:STATIC_ROWS])
    statuses = "".join(
        f'<option value="{status}">{escape(word(status))}</option>' for status in STATUSES
    )
    outcomes = "".join(
        f'<option value="{escape(o, quote=True)}">{escape(o)}</option>'
        for o in _names({t.outcome for t in tests}, _OUTCOMES)
    )
    cut = (
        f'<noscript><p class="legend">Without JavaScript the table shows the first'
        f" {STATIC_ROWS} of {len(tests)} tests, in the order they ran (the memory failures"
        " are all listed above; <code>memguard show</code> prints every test).</p></noscript>"
        if len(tests) > STATIC_ROWS
        else ""
    )
    yield (
        '<section id="all-tests"><h2>Every test</h2><div class="controls">'
        '<input id="filter" type="search" placeholder="Filter by name or message"'
        ' aria-label="Filter the tests">'
        f'<select id="status-filter" aria-label="Memory status">'
        f'<option value="">every status</option>{statuses}</select>'
        f'<select id="outcome-filter" aria-label="Outcome">'
        f'<option value="">every outcome</option>{outcomes}</select>'
        f'<span><span id="shown">{min(len(tests), STATIC_ROWS)}</span> of {len(tests)}'
        f'</span></div>{cut}<div id="table-view"><table id="tests"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
        '<p class="legend">Click a heading to sort. Status is memguard\'s verdict, outcome'
        " pytest's. Sizes are bytes in IEC units; peak growth is the body's peak RSS over"
        " its start; retained is what a leak suspect kept on its rerun.</p>"
        '<script type="application/json" id="table-data">'
    )
    yield from _columns(tests, peaks)
    yield "</script></section>"
