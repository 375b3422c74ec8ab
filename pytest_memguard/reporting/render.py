"""Render a report's tests, or a diff of two reports, as a table, GitHub markdown or JSON.

Rows are sorted heaviest first and cut to the top N; memory failures are marked.  Sizes are
printed with IEC units (:func:`format_size`); JSON keeps integers in bytes.  The markdown
(a one-line summary above a pipe table) fits a pull-request comment or a CI job summary
(``$GITHUB_STEP_SUMMARY``).  A report's text never reaches a terminal raw: its control
characters (``\x1b``...) are shown escaped; the table colours its status words only when
asked (``colour``: the CLI asks on a terminal).  No pytest import here: the CLI and the
plugin both use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

from ..core.sizes import MAX_SIZE, format_size
from .compare import METRICS, MetricChange, ReportDiff, TestChange, checked_entries
from .results import FAILING_STATUSES, STATUS_WORDS, STATUSES, TestMemory

__all__ = [
    "FORMATS",
    "SORTS",
    "STATUS_WORDS",
    "render_diff",
    "render_report",
    "report_rows",
    "summary_line",
]

Format = Literal["table", "markdown", "json"]
Sort = Literal["peak", "leak", "duration"]
FORMATS: Final[tuple[Format, ...]] = ("table", "markdown", "json")
SORTS: Final[tuple[Sort, ...]] = ("peak", "leak", "duration")
_SORT_WORDS: Final = {"peak": "peak growth", "leak": "leaked memory", "duration": "duration"}
_MD_MARKS: Final = {"regression": ":x: ", "improvement": ":heavy_check_mark: ", "new": ":new: "}
_NAME_WIDTH: Final = 70
_FAILING: Final = [s for s in STATUSES if s in FAILING_STATUSES]
#: Control characters in a report's text ("\x1b[" starts a terminal's command).
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The table's status words, coloured: memory failures bold red, warnings yellow.
_COLOURS: Final = {"fail": "\x1b[1;31m", "warning": "\x1b[33m"}


def _visible(text: str) -> str:
    """``text`` with each control character escaped (``\\x1b``)."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def _word(status: str, colour: bool) -> str:
    word = STATUS_WORDS[status]
    code = _COLOURS.get("fail" if status in FAILING_STATUSES else status) if colour else None
    return f"{code}{word}\x1b[0m" if code else word


def _size(value: object) -> str:
    """A size of a row or the summary; ``?`` for what no version writes (a hand edit's "2GB")."""
    if value is None:
        return format_size(None)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_SIZE:
        return "?"
    return format_size(value)


def _violation(test: TestMemory) -> bool:
    return test.status in FAILING_STATUSES


Entry = Mapping[str, Any]


def _sort_key(sort: Sort) -> Callable[[Entry], tuple[bool, float, str]]:
    """The order of checked test entries: ``TestMemory``'s figures, read from the entry."""
    if sort == "duration":

        def duration(entry: Entry) -> tuple[bool, float, str]:
            return (False, -float(entry.get("duration_s") or 0.0), entry["nodeid"])

        return duration
    field = {"peak": "peak_delta", "leak": "leaked"}[sort]

    def key(entry: Entry) -> tuple[bool, float, str]:
        value: int | None = entry.get(field)
        return (value is None, -(value or 0), entry["nodeid"])

    return key


def _sorted(report: Mapping[str, Any], sort: Sort) -> list[Entry]:
    """The report's checked test entries, heaviest first by ``sort``.

    The commands sort and count entries and turn only the rows they show into
    :class:`TestMemory` (a report can hold tens of thousands of tests).
    """
    if sort not in SORTS:
        raise ValueError(f"invalid sort {sort!r} (expected one of {', '.join(SORTS)})")
    return sorted(checked_entries(report), key=_sort_key(sort))


def report_rows(
    report: Mapping[str, Any], *, sort: Sort = "peak", top: int | None = None
) -> list[TestMemory]:
    """The report's tests, heaviest first by ``sort``; the first ``top`` (0/None: all).

    Unmeasured values sort last.  :raises ReportError: when the report is malformed.
    """
    entries = _sorted(report, sort)
    return [TestMemory.from_json(entry) for entry in (entries[:top] if top else entries)]


def summary_line(report: Mapping[str, Any], *, markdown: bool = False) -> str:
    """``4 tests, 1 memory failure (1 over budget); peak RSS 272.2 MiB; largest growth ...``."""
    return _summary(report, _sorted(report, "peak"), markdown)


def _summary(report: Mapping[str, Any], rows: Sequence[Entry], markdown: bool) -> str:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    failing = [f"{counts[s]} {STATUS_WORDS[s].lower()}" for s in _FAILING if counts[s]]
    failures = sum(counts[s] for s in _FAILING)
    parts = [_count(len(rows), "test"), _count(failures, "memory failure")]
    if failing:
        parts[-1] += f" ({', '.join(failing)})"
    if markdown and failures:
        parts[-1] = f":x: {parts[-1]}"
    if counts["warning"]:
        parts.append(_count(counts["warning"], "warning"))
    if counts["not_run"]:
        parts.append(f"{counts['not_run']} not run")
    text = ", ".join(parts)
    summary = report.get("summary")
    peak = summary.get("peak_rss") if isinstance(summary, Mapping) else None
    if not isinstance(peak, int) or isinstance(peak, bool):
        peaks = (row.get("rss_peak") for row in rows)
        peak = max((value for value in peaks if value is not None), default=None)
    if peak is not None:
        text += f"; peak RSS {_size(peak)}"
    worst = max(
        (row for row in rows if row.get("peak_delta") is not None),
        key=lambda row: row["peak_delta"] or 0,
        default=None,
    )
    if worst is not None:
        name = _code(worst["nodeid"]) if markdown else _visible(worst["nodeid"])
        text += f"; largest growth {_size(worst['peak_delta'])} in {name}"
    shards = report.get("shards")
    if isinstance(shards, list) and shards:  # memguard merge
        text += f"; {_count(len(shards), 'shard')} merged"
    if report.get("interrupted") is True:
        text += "; the run was interrupted"
    return f"**memguard**: {text}" if markdown else f"memguard: {text}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _code(text: str) -> str:
    """A markdown code span that survives a pipe table (``|`` escaped, backticks fenced)."""
    text = _visible(text.replace("|", "\\|").replace("\n", " "))
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _plain(text: str | None) -> str:
    """Message text for a table cell or list item: one line, pipes escaped."""
    return _visible(("" if text is None else str(text)).replace("\n", " ").replace("|", "\\|"))


def _short(text: str) -> str:
    nodeid = _visible(text)
    return nodeid if len(nodeid) <= _NAME_WIDTH else "..." + nodeid[-(_NAME_WIDTH - 3) :]


def _pipe_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _columns(every: Sequence[Entry]) -> list[str]:
    columns = ["peak growth"]
    if any(row.get("children_peak") for row in every):
        columns.append("children")
    if any(row.get("prediction") is not None for row in every):
        columns.append("predicted")
    columns.append("peak RSS")
    if any(row.get("heap_peak") is not None for row in every):
        columns.append("heap")
    if any(row.get("leaked") is not None for row in every):
        columns.append("leaked")
    columns += ["duration", "budget"]
    if any(row.get("beside") for row in every):
        columns.append("ran beside")
    return columns


def _beside(row: TestMemory) -> str:
    """The test that ran beside ``row`` with the largest peak, and how many more did."""
    if not row.beside:
        return "-"
    more = f" +{len(row.beside) - 1}" if len(row.beside) > 1 else ""
    return _short(str(row.beside[0])) + more


def _cells(row: TestMemory, columns: Sequence[str]) -> list[str]:
    values = {
        "peak growth": _size(row.peak_delta),
        "children": _size(row.children_peak),
        "predicted": _size(row.prediction),
        "ran beside": _beside(row),
        "peak RSS": _size(row.rss_peak),
        "heap": _size(row.heap_peak),
        "leaked": _size(row.leaked),
        "duration": f"{row.duration_s:.2f} s",
        "budget": _size(row.budget.peak),
    }
    return [values[c] for c in columns]


def render_report(
    report: Mapping[str, Any],
    fmt: Format = "table",
    *,
    sort: Sort = "peak",
    top: int | None = 20,
    colour: bool = False,
) -> str:
    """The heaviest tests of ``report`` as ``table``, ``markdown`` or ``json`` text.

    :param sort: ``peak`` (growth), ``leak`` or ``duration``, largest first
    :param top: rows shown (0 or None: all); memory failures are also listed below the table
    :param colour: colour the table's status words with terminal escapes
    :raises ReportError: when the report is malformed
    """
    every = _sorted(report, sort)
    rows = [TestMemory.from_json(entry) for entry in (every[:top] if top else every)]
    failures = [
        TestMemory.from_json(entry) for entry in every if entry["status"] in FAILING_STATUSES
    ]
    if fmt == "json":
        data = {
            "summary": _summary(report, every, False),
            "created": report.get("created"),
            "sort": sort,
            "top": top or None,
            "tests": len(every),
            "failures": len(failures),
            "rows": [{**row.to_json(), "violation": _violation(row)} for row in rows],
        }
        return json.dumps(data, indent=2)
    columns = _columns(every)
    heading = f"heaviest tests by {_SORT_WORDS[sort]} (top {len(rows)} of {len(every)})"
    if fmt == "markdown":
        lines = [_summary(report, every, True), ""]
        if rows:
            table = [[_code(r.nodeid), _md_status(r.status), *_cells(r, columns)] for r in rows]
            right = set(range(2, 2 + len(columns)))
            lines += [
                f"{heading[0].upper()}{heading[1:]}:",
                "",
                _pipe_table(["test", "status", *columns], table, right),
            ]
        if failures:
            lines += ["", "Memory failures:", ""]
            lines += [
                f"- {_code(r.nodeid)}: {_plain(r.message) or STATUS_WORDS[r.status]}"
                for r in failures
            ]
        return "\n".join(lines)
    if fmt != "table":
        raise ValueError(f"invalid format {fmt!r} (expected one of {', '.join(FORMATS)})")
    from tabulate import tabulate

    lines = [_summary(report, every, False)]
    if rows:
        table = [
            [
                "M" if _violation(r) else "",
                _short(r.nodeid),
                _word(r.status, colour),
                *_cells(r, columns),
            ]
            for r in rows
        ]
        align = ("left", "left", "left", *("right" for _ in columns))
        lines += [
            f"{heading}:",
            tabulate(table, headers=["", "test", "status", *columns], colalign=align),
        ]
    else:
        lines.append("no tests in the report")
    if failures:
        lines.append(f"memory failures ({len(failures)}):")
        lines += [
            f"  {_word(r.status, colour)} {_visible(r.nodeid)}: {_plain(r.message) or '-'}"
            for r in failures
        ]
    if sort == "leak" and all(row.get("leaked") is None for row in every):
        lines.append("no test has a leak measurement (pytest --memguard-leaks records them)")
    return "\n".join(lines)


def _md_status(status: str) -> str:
    word = STATUS_WORDS.get(status, status)
    if status in FAILING_STATUSES:
        return f":x: **{word}**"
    return f":warning: {word}" if status == "warning" else word


def _cell(change: MetricChange, kind: str, markdown: bool) -> str:
    arrow = " → " if markdown else " -> "
    if kind in ("new", "removed") or (change.old is None and change.new is None):
        return format_size(change.new if kind == "new" else change.old)
    if change.old is None or change.new is None:
        return f"{format_size(change.old)}{arrow}{format_size(change.new)}"
    delta, percent = change.delta or 0, change.percent
    if delta == 0:
        text = f"{format_size(change.new)} (=)"
    else:
        shown = (
            f"{percent:+.0f}%"
            if percent is not None
            else f"{'+' if delta > 0 else '-'}{format_size(abs(delta))}"
        )
        text = f"{format_size(change.old)}{arrow}{format_size(change.new)} ({shown})"
    return f"**{text}**" if markdown and change.exceeded else text


def _diff_order(change: TestChange) -> tuple[int, int, str]:
    rank = ("regression", "improvement", "new", "removed", "unchanged").index(change.kind)
    biggest = max((abs(m.delta or 0) for m in change.metrics), default=0)
    return (rank, -biggest, change.nodeid)


def render_diff(diff: ReportDiff, fmt: Format = "table", *, everything: bool = False) -> str:
    """The changes of ``diff`` as ``table``, ``markdown`` or ``json`` text.

    Regressions first, then improvements, new and removed tests; tests within the allowance
    are only counted unless ``everything``.  Heap and leak columns appear when measured.
    """
    counts = diff.counts()
    shown = sorted(
        (c for c in diff.changes if everything or c.kind != "unchanged"), key=_diff_order
    )
    words = [
        _count(counts["regression"], "regression"),
        _count(counts["improvement"], "improvement"),
        f"{counts['unchanged']} within the allowance",
        f"{counts['new']} new",
        f"{counts['removed']} removed",
    ]
    summary = f"{', '.join(words)} (allowed increase {diff.allowance.describe()})"
    if fmt == "json":
        data = {
            "ok": diff.ok,
            "allowance": diff.allowance.describe(),
            "counts": counts,
            "tests": [
                {
                    "nodeid": c.nodeid,
                    "kind": c.kind,
                    "metrics": {
                        m.metric: {"old": m.old, "new": m.new, "delta": m.delta,
                                   "percent": m.percent, "exceeded": m.exceeded,
                                   "improved": m.improved}
                        for m in c.metrics
                    },
                }
                for c in shown
            ],
        }  # fmt: skip
        return json.dumps(data, indent=2)
    markdown = fmt == "markdown"
    if not markdown and fmt != "table":
        raise ValueError(f"invalid format {fmt!r} (expected one of {', '.join(FORMATS)})")
    measured = [
        name
        for name in METRICS
        if any(
            m.old is not None or m.new is not None
            for c in diff.changes
            for m in c.metrics
            if m.metric == name
        )
    ] or ["peak"]
    headers = ["test", "change", *measured]
    table = []
    for change in shown:
        kind = change.kind.upper() if change.kind == "regression" else change.kind
        cells = [_cell(change.metric(name), change.kind, markdown) for name in measured]
        if markdown:
            table.append([_code(change.nodeid), f"{_MD_MARKS.get(change.kind, '')}{kind}", *cells])
        else:
            table.append([_short(change.nodeid), kind, *cells])
    if markdown:
        lines = [f"**memguard diff**: {summary}"]
        if table:
            lines += ["", _pipe_table(headers, table, set(range(2, len(headers))))]
        return "\n".join(lines)
    lines = [f"memguard diff: {summary}"]
    if table:  # tabulate is imported only for a table (none when nothing changed)
        from tabulate import tabulate

        lines.append(
            tabulate(
                table, headers=headers, colalign=("left", "left", *("right" for _ in measured))
            )
        )
    return "\n".join(lines)
