"""The report page's two charts, as inline SVG: the heaviest tests' peak growth against
their budgets, and each process's RSS over the run.

Every text that comes from the report is escaped; a chart is drawn from the report's
numbers only and needs no script.  Sizes on the axes are IEC units.  A lane of many tests
draws them in groups a few pixels wide (see :data:`_EACH_TEST`), so the chart's size does
not grow with the suite; every label stays inside its chart and off the lane's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from ...core.sizes import format_size
from ..results import FAILING_STATUSES, STATUS_WORDS, TestMemory
from .shape import began, took

__all__ = ["bar_chart", "timeline_chart"]

WIDTH: Final = 960
#: Bars of the bar chart.
TOP_BARS: Final = 15
_BAR: Final = 22
_LABEL: Final = 360
_LANE: Final = 184
_LEFT: Final = 72
#: A lane's strip above its plot, for its name and the thresholds above the chart.
_TOP: Final = 26
#: Past this many tests a lane draws them in groups, one a :data:`_GROUP` pixels of time
#: (thousands of spans narrower than a pixel only made the page heavy).
_EACH_TEST: Final = 300
_GROUP: Final = 3
#: About the width of a character of the charts' 11 px text, to keep a label inside.
_CHAR: Final = 6.4
#: A threshold line is drawn when it is at most this many times the highest RSS sampled
#: (else it is named above the chart, which would be flat under it).
_IN_RANGE: Final = 3.0
#: Threshold name, report key, CSS class.
_THRESHOLDS: Final = (("warning", "warn"), ("critical", "crit"), ("max", "max"))
_MARKS: Final = {"stop": "\u25bc", "kill": "\u2716", "recycle": "\u21bb"}


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _status_class(status: str) -> str:
    return "fail" if status in FAILING_STATUSES else status


def bar_chart(tests: Sequence[TestMemory], top: int = TOP_BARS) -> str:
    """A horizontal bar per test with the largest peak growth (``top`` of them), its child
    processes' peak stacked after it (they count against its budget), its peak budget
    marked on the bar's scale; empty when no test was measured."""
    measured = [test for test in tests if test.peak_delta is not None]
    heaviest = sorted(measured, key=lambda test: -(test.peak_delta or 0))[:top]
    if not heaviest:
        return '<p class="empty">No test has a measured peak growth.</p>'
    budgets = [test.budget.peak for test in heaviest]
    children = [max(0, test.children_peak or 0) for test in heaviest]
    totals = [(test.peak_delta or 0) + kids for test, kids in zip(heaviest, children, strict=True)]
    scale = max(totals + [b for b in budgets if b]) or 1
    plot = WIDTH - _LABEL - 90
    height = len(heaviest) * _BAR + 24
    parts = [
        f'<svg class="chart" id="bars" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}"'
        f' height="{height}" role="img" aria-label="Peak growth of the heaviest tests">'
    ]
    for index, (test, budget, kids) in enumerate(zip(heaviest, budgets, children, strict=True)):
        y = index * _BAR + 4
        delta = max(0, test.peak_delta or 0)
        width = max(1.0, plot * delta / scale)
        extra = plot * kids / scale
        name = test.nodeid
        short = name if len(name) <= 52 else "\u2026" + name[-51:]
        status = test.status
        tip = f"{name}: peak growth {format_size(delta)}"
        tip += f", child processes {format_size(kids)}" if kids else ""
        tip += f", budget {format_size(budget)}" if budget else ", no peak budget"
        tip += f" ({STATUS_WORDS.get(status, status)})"
        parts.append(
            f'<g class="bar {_attr(_status_class(status))}"><title>{escape(tip)}</title>'
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{_LABEL}" y="{y}" width="{width:.1f}" height="{_BAR - 6}"></rect>'
        )
        value = format_size(delta)
        if kids:
            parts.append(
                f'<rect class="children" x="{_LABEL + width:.1f}" y="{y}" width="{extra:.1f}"'
                f' height="{_BAR - 6}" fill-opacity="0.45"></rect>'
            )
            value += f" + {format_size(kids)} children"
        end = _LABEL + width + extra
        if end + 4 + len(value) * _CHAR <= WIDTH:
            parts.append(f'<text class="value" x="{end + 4:.1f}" y="{y + 15}">')
        else:  # past the chart's edge: inside the bar, at its end
            parts.append(
                f'<text class="value inside" x="{end - 4:.1f}" y="{y + 15}" text-anchor="end">'
            )
        parts.append(f"{escape(value)}</text>")
        if budget:
            x = _LABEL + plot * budget / scale
            parts.append(
                f'<line class="budget" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}"'
                f' y2="{y + _BAR - 4}"></line>'
            )
        parts.append("</g>")
    legend = "bar: peak growth of the body over its start"
    if any(children):
        legend += "; lighter: its child processes' own memory at their peak"
    parts.append(
        f'<text class="legend" x="4" y="{height - 4}">{legend};'
        " tick: the test's peak budget</text></svg>"
    )
    return "".join(parts)


class _Scale:
    """Maps times (seconds) and sizes (bytes) to a lane's pixels."""

    def __init__(self, start: float, end: float, top: int) -> None:
        self.start = start
        self.span = max(end - start, 1e-3)
        self.top = max(top, 1)
        self.plot = WIDTH - _LEFT - 12
        self.height = _LANE - _TOP - 26

    def x(self, time: float) -> float:
        return _LEFT + self.plot * (time - self.start) / self.span

    def y(self, rss: int) -> float:
        return _TOP + self.height * (1 - min(rss, self.top) / self.top)


def _time_range(
    processes: Sequence[Mapping[str, Any]],
    tests: Sequence[TestMemory],
    events: Sequence[Mapping[str, Any]],
) -> tuple[float, float]:
    times = [float(s[0]) for p in processes for s in p.get("samples") or ()]
    times += [float(event["time"]) for event in events]
    low, high = min(times, default=math.inf), max(times, default=-math.inf)
    for test in tests:  # thousands: no list of their times
        started = began(test)
        if started is not None:
            ended = started + took(test)
            low, high = min(low, started, ended), max(high, started, ended)
    return (low, high) if low <= high else (0.0, 1.0)


def _axes(scale: _Scale, name: str) -> list[str]:
    bottom = _TOP + scale.height
    parts = [
        f'<text class="lane-name" x="4" y="16">{escape(name)}</text>',
        f'<line class="axis" x1="{_LEFT}" x2="{_LEFT + scale.plot}" y1="{bottom}"'
        f' y2="{bottom}"></line>',
    ]
    for step in range(0, 5):
        rss = scale.top * step // 4
        y = scale.y(rss)
        parts.append(
            f'<text class="tick" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_size(rss))}</text>"
            f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + scale.plot}" y1="{y:.1f}"'
            f' y2="{y:.1f}"></line>'
        )
    for step in range(0, 6):
        seconds = scale.span * step / 5
        x = _LEFT + scale.plot * step / 5
        anchor = "start" if step == 0 else "end" if step == 5 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 15}" text-anchor="{anchor}">'
            f"{seconds:.1f} s</text>"
        )
    return parts


def _spans(tests: Sequence[TestMemory], scale: _Scale, start: float) -> list[str]:
    """Each test's span, its peak as a band; the nodeid on hover."""
    parts = []
    for test in tests:
        first, duration = began(test) or 0.0, took(test)
        x1, x2 = scale.x(first), scale.x(first + duration)
        width = max(x2 - x1, 0.8)
        peak = test.rss_peak
        status = test.status
        tip = (
            f"{test.nodeid}\nstarted at {first - start:.3f} s,"
            f" took {duration:.3f} s"
            f"\nRSS {format_size(test.rss_start)}"
            f" -> peak {format_size(peak)} -> {format_size(test.rss_end)}"
            f" ({STATUS_WORDS.get(status, status)})"
        )
        parts.append(
            f'<g class="test {_attr(_status_class(status))}"><title>{escape(tip)}</title>'
            f'<rect class="span" x="{x1:.1f}" y="{_TOP}" width="{width:.1f}"'
            f' height="{scale.height}"></rect>'
        )
        if isinstance(peak, int):
            y = scale.y(peak)
            parts.append(
                f'<rect class="peak" x="{x1:.1f}" y="{y:.1f}" width="{width:.1f}"'
                f' height="{_TOP + scale.height - y:.1f}"></rect>'
            )
        parts.append(
            f'<line class="boundary" x1="{x1:.1f}" x2="{x1:.1f}" y1="{_TOP}"'
            f' y2="{_TOP + scale.height}"></line></g>'
        )
    return parts


def _groups(tests: Sequence[TestMemory], scale: _Scale) -> list[str]:
    """The tests in groups of :data:`_GROUP` pixels of time: each group's span up to its
    highest peak, marked failed when one of its tests failed; its count, its heaviest
    test and its memory failures on hover."""
    groups: dict[int, list[TestMemory]] = {}
    for test in tests:
        groups.setdefault(int((scale.x(began(test) or 0.0) - _LEFT) // _GROUP), []).append(test)
    parts = []
    for key in sorted(groups):
        members = groups[key]
        x1 = _LEFT + key * _GROUP
        end = max((began(t) or 0.0) + took(t) for t in members)
        width = max(scale.x(end) - x1, float(_GROUP))
        measured = [t for t in members if t.rss_peak is not None]
        heaviest = max(measured, key=lambda t: t.rss_peak or 0, default=None)
        failing = [t for t in members if t.status in FAILING_STATUSES]
        tip = f"{len(members)} tests"
        if heaviest is not None:
            tip += f"\nhighest peak RSS {format_size(heaviest.rss_peak)}: {heaviest.nodeid}"
        if failing:
            tip += f"\n{len(failing)} memory failure(s): " + ", ".join(
                t.nodeid for t in failing[:3]
            )
            tip += ", ..." if len(failing) > 3 else ""
        kind = "fail" if failing else "ok"
        parts.append(
            f'<g class="test group {kind}"><title>{escape(tip)}</title>'
            f'<rect class="span" x="{x1:.1f}" y="{_TOP}" width="{width:.1f}"'
            f' height="{scale.height}"></rect>'
        )
        if heaviest is not None:
            y = scale.y(heaviest.rss_peak or 0)
            parts.append(
                f'<rect class="peak" x="{x1:.1f}" y="{y:.1f}" width="{width:.1f}"'
                f' height="{_TOP + scale.height - y:.1f}"></rect>'
            )
        parts.append("</g>")
    return parts


def _lane(
    name: str,
    samples: Sequence[Sequence[Any]],
    tests: Sequence[TestMemory],
    events: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    start: float,
    end: float,
    highest: int,
) -> str:
    lines = [
        (label, css, int(config[label]))
        for label, css in _THRESHOLDS
        if isinstance(config.get(label), int)
    ]
    shown = [line for line in lines if line[2] <= highest * _IN_RANGE]
    top = int(max([highest, *(value for _, _, value in shown)]) * 1.08)
    scale = _Scale(start, end, top)
    parts = [
        f'<svg class="chart lane" data-process="{_attr(name)}" viewBox="0 0 {WIDTH} {_LANE}"'
        f' width="{WIDTH}" height="{_LANE}" role="img" aria-label="RSS of {_attr(name)}">'
    ]
    parts += _axes(scale, name)
    parts += _spans(tests, scale, start) if len(tests) <= _EACH_TEST else _groups(tests, scale)
    if samples:
        points = " ".join(f"{scale.x(float(t)):.1f},{scale.y(int(r)):.1f}" for t, r in samples)
        parts.append(f'<polyline class="rss" points="{points}"></polyline>')
    above = []
    for label, css, value in lines:
        if (label, css, value) not in shown:
            above.append(f"{label} {format_size(value)}")
            continue
        y = scale.y(value)
        parts.append(
            f'<line class="threshold {css}" x1="{_LEFT}" x2="{_LEFT + scale.plot}"'
            f' y1="{y:.1f}" y2="{y:.1f}"><title>{escape(label)} threshold'
            f" {escape(format_size(value))}</title></line>"
            f'<text class="threshold-label {css}" x="{_LEFT + scale.plot - 2}" y="{y - 3:.1f}"'
            f' text-anchor="end">{escape(label)} {escape(format_size(value))}</text>'
        )
    if above:
        parts.append(
            f'<text class="above" x="{_LEFT + scale.plot}" y="16" text-anchor="end">'
            "above the chart: "
            f"{escape(', '.join(above))}</text>"
        )
    for event in events:
        x = scale.x(float(event["time"]))
        kind = str(event["kind"])
        tip = f"{kind}: {event.get('nodeid') or name}\n{event.get('message') or ''}".strip()
        parts.append(
            f'<g class="mark {_attr(kind)}"><title>{escape(tip)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + scale.height}"></line>'
            f'<text x="{x:.1f}" y="{_TOP + scale.height - 4}" text-anchor="middle">'
            f"{_MARKS.get(kind, '*')}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(report: Mapping[str, Any]) -> str:
    """One lane per process (``main``, or each xdist worker): its RSS over the run, the
    thresholds, each test's span and peak (its name on hover), and the marks of stops,
    kills and recycles."""
    timeline = report.get("timeline") or {}
    processes: list[Mapping[str, Any]] = list(timeline.get("processes") or ())
    events: list[Mapping[str, Any]] = list(timeline.get("events") or ())
    tests: Sequence[TestMemory] = report["tests"]
    by_process: dict[str, list[TestMemory]] = {}
    for test in tests:
        if test.started is not None:
            by_process.setdefault(test.worker or "main", []).append(test)
    names = sorted({*(str(p["process"]) for p in processes), *by_process})
    if not names:
        return '<p class="empty">This report has no timeline (written by an older version).</p>'
    start, end = _time_range(processes, tests, events)
    samples = {str(p["process"]): p.get("samples") or [] for p in processes}
    config = report.get("config") or {}
    # One scale for every lane: the workers are compared at a glance.
    highest = max(
        [int(s[1]) for lane in samples.values() for s in lane]
        + [test.rss_peak or 0 for test in tests]
        + [1]
    )
    lanes = [
        _lane(
            name,
            samples.get(name, []),
            by_process.get(name, []),
            [event for event in events if event.get("process") == name],
            config,
            start,
            end,
            highest,
        )
        for name in names
    ]
    legend = (
        "<p class=\"legend\">Line: RSS sampled (each test's start and end, the watchdogs'"
        " readings); shaded: each test's span up to its peak (hover for its name);"
        f" marks: {_MARKS['stop']} stopped by memguard, {_MARKS['kill']} worker killed,"
        f" {_MARKS['recycle']} worker recycled.</p>"
    )
    return legend + "".join(lanes)
