"""Compare memory figures of tests between two reports: allowances, per-test changes, diffs.

Three figures are compared per test: ``peak`` (the report's ``peak_delta``, peak RSS growth
during the test), ``heap`` (``heap_peak``) and ``leak`` (``leaked``).  A figure that is null
on either side was not measured: it is never read as 0 and never a regression.

An :class:`Allowance` says how much a figure may grow: ``10%``, ``50MB`` or ``10%+8MB``
(both the relative and the absolute increase must be passed, so tiny tests do not flap).
No pytest import here: the CLI and the plugin both use this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal, NamedTuple

from ..core.sizes import format_size, parse_size
from ..errors import SizeError
from .report import ReportError
from .results import STATUSES, TestMemory

__all__ = [
    "DEFAULT_ALLOWANCE",
    "FIELDS",
    "KINDS",
    "METRICS",
    "Allowance",
    "AllowanceError",
    "ChangeKind",
    "Figures",
    "MetricChange",
    "ReportDiff",
    "TestChange",
    "baseline_figures",
    "checked_entries",
    "compare_figures",
    "diff_figures",
    "diff_reports",
    "entry_figures",
    "parse_allowance",
    "report_tests",
]

#: The compared figures, in display order, and the report field each one reads.
METRICS: Final = ("peak", "heap", "leak")
FIELDS: Final = {"peak": "peak_delta", "heap": "heap_peak", "leak": "leaked"}
#: Used when no allowance is given: growth must pass 10% and 1 MB to count.
DEFAULT_ALLOWANCE: Final = "10%+1MB"
FORMS: Final = "10%, 50MB or 10%+8MB"

ChangeKind = Literal["regression", "improvement", "unchanged", "new", "removed"]
KINDS: Final[tuple[ChangeKind, ...]] = ("regression", "improvement", "unchanged", "new", "removed")
_PERCENT_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%", re.ASCII)


class AllowanceError(SizeError):
    """An allowed increase that cannot be parsed; the message quotes it and shows the forms."""


@dataclass(frozen=True)
class Allowance:
    """How much a figure may grow: ``percent`` of the old value and/or ``size`` bytes.

    With both, an increase counts only when it passes both.  ``size_text`` is the size as
    the user wrote it (``"8MB"``), kept for messages.
    """

    percent: float | None = None
    size: int | None = None
    size_text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.percent is None and self.size is None:
            raise AllowanceError(f"an allowed increase needs a percentage or a size, e.g. {FORMS}")
        if (self.percent is not None and not self.percent >= 0) or (
            self.size is not None and self.size < 0
        ):
            raise AllowanceError(f"an allowed increase cannot be negative (expected e.g. {FORMS})")

    def _passed(self, change: int, base: int) -> bool:
        """True when ``change`` bytes (> 0) pass the allowance over a value of ``base`` bytes."""
        if change <= 0:
            return False
        if self.size is not None and change <= self.size:
            return False
        if self.percent is not None and base > 0:
            return change > base * self.percent / 100
        return True  # any growth from zero (or less) is past every percentage

    def exceeded(self, old: int | None, new: int | None) -> bool:
        """True when ``new`` grew past ``old`` by more than allowed; never when unmeasured."""
        if old is None or new is None:
            return False
        return self._passed(new - old, old)

    def improved(self, old: int | None, new: int | None) -> bool:
        """True when ``new`` shrank below ``old`` by more than the same allowance."""
        if old is None or new is None:
            return False
        return self._passed(old - new, old)

    def describe(self) -> str:
        """``"+10%"``, ``"+50MB"`` or ``"+10% and +8MB"``: the allowed increase, for messages."""
        parts = []
        if self.percent is not None:
            parts.append(f"+{self.percent:g}%")
        if self.size is not None:
            parts.append(f"+{self.size_text or format_size(self.size)}")
        return " and ".join(parts)

    def __str__(self) -> str:
        return self.describe()


def parse_allowance(value: str | int | Allowance) -> Allowance:
    """Parse ``"10%"``, ``"50MB"`` (any size :func:`parse_size` takes) or ``"10%+8MB"``.

    An ``int`` is bytes.  :raises AllowanceError: (a ``ValueError``) quoting the input.
    """
    if isinstance(value, Allowance):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise AllowanceError(f"invalid increase {value!r}: cannot be negative (e.g. {FORMS})")
        return Allowance(size=value)
    if not isinstance(value, str):
        raise AllowanceError(f"invalid increase {value!r} (expected e.g. {FORMS})")
    text = value.strip()
    parts = [part.strip() for part in text.removeprefix("+").split("+")]
    percent: float | None = None
    size: int | None = None
    size_text = ""
    for part in parts:
        match = _PERCENT_RE.fullmatch(part)
        if match is not None and percent is None:
            percent = float(match[1])
            continue
        if match is None and size is None and part and not part.endswith("%"):
            try:
                size = parse_size(part)
            except SizeError as error:
                raise AllowanceError(
                    f"invalid increase {value!r}: {error}; forms: {FORMS}"
                ) from None
            size_text = part
            continue
        raise AllowanceError(
            f"invalid increase {value!r} (expected a percentage, a size or both, e.g. {FORMS})"
        )
    return Allowance(percent, size, size_text)


class Figures(NamedTuple):
    """One test's compared figures in bytes; None when not measured."""

    peak: int | None
    heap: int | None
    leak: int | None

    @classmethod
    def of(cls, test: TestMemory | Mapping[str, Any]) -> Figures:
        """The figures of a :class:`TestMemory` or of a report's test entry."""
        if isinstance(test, Mapping):
            return cls(*(test.get(FIELDS[metric]) for metric in METRICS))
        return cls(test.peak_delta, test.heap_peak, test.leaked)


@dataclass(frozen=True)
class MetricChange:
    """One figure of one test, before and after; ``exceeded``: grew past the allowance."""

    metric: str
    old: int | None
    new: int | None
    exceeded: bool = False
    improved: bool = False

    @property
    def delta(self) -> int | None:
        """``new - old`` in bytes, or None when either was not measured."""
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def percent(self) -> float | None:
        """The change in percent of ``old``; None when unmeasured or ``old`` is not positive."""
        delta = self.delta
        if delta is None or self.old is None or self.old <= 0:
            return None
        return 100.0 * delta / self.old

    def describe(self) -> str:
        """``"peak 114.4 MiB -> 286.1 MiB (+171.7 MiB, +150%)"``."""
        old, new = format_size(self.old), format_size(self.new)
        delta = self.delta
        if delta is None:
            return f"{self.metric} {old} -> {new}"
        sign = "+" if delta >= 0 else "-"
        percent = self.percent
        ratio = f", {percent:+.0f}%" if percent is not None else ""
        return f"{self.metric} {old} -> {new} ({sign}{format_size(abs(delta))}{ratio})"


@dataclass(frozen=True)
class TestChange:
    """How one test's figures changed; ``old``/``new`` are None for a new/removed test."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    old: Figures | None
    new: Figures | None
    metrics: tuple[MetricChange, ...]
    allowance: Allowance

    @cached_property  # read for every test of a diff, several times
    def kind(self) -> ChangeKind:
        """``regression`` beats ``improvement``; ``new``/``removed`` when one side is missing."""
        if self.old is None:
            return "new"
        if self.new is None:
            return "removed"
        if self.regressed:
            return "regression"
        if any(m.improved for m in self.metrics):
            return "improvement"
        return "unchanged"

    @property
    def regressed(self) -> bool:
        """True when a figure grew past the allowance."""
        return any(m.exceeded for m in self.metrics)

    def metric(self, name: str) -> MetricChange:
        """The change of one figure (``peak``, ``heap`` or ``leak``)."""
        for change in self.metrics:
            if change.metric == name:
                return change
        raise KeyError(name)

    def describe(self) -> str:
        """One line: the figures that passed the allowance, e.g. for a failure message."""
        grown = [m.describe() for m in self.metrics if m.exceeded]
        if not grown:
            return f"{self.nodeid}: {self.kind}"
        return (
            f"{self.nodeid}: {', '.join(grown)} grew past the allowed increase "
            f"{self.allowance.describe()}"
        )


def compare_figures(
    nodeid: str,
    old: Figures | None,
    new: Figures | None,
    allowance: Allowance | str | int = DEFAULT_ALLOWANCE,
) -> TestChange:
    """Compare one test's baseline figures with its new ones under ``allowance``."""
    allowed = parse_allowance(allowance)
    if old is not None and old == new:  # most tests of a diff: no figure passes the allowance
        peak, heap, leak = old
        same = (MetricChange("peak", peak, peak), MetricChange("heap", heap, heap),  # METRICS
                MetricChange("leak", leak, leak))  # fmt: skip
        change = TestChange(nodeid, old, new, same, allowed)
        change.__dict__["kind"] = "unchanged"  # what the cached property would find
        return change
    metrics = []
    for index, name in enumerate(METRICS):
        before = old[index] if old is not None else None
        after = new[index] if new is not None else None
        metrics.append(
            MetricChange(
                name,
                before,
                after,
                exceeded=allowed.exceeded(before, after),
                improved=allowed.improved(before, after),
            )
        )
    return TestChange(nodeid, old, new, tuple(metrics), allowed)


_SECONDS: Final = (int, float)
#: Past this a number of seconds is no run's (about the year 33658).
_MAX_SECONDS: Final = 10**12
#: Other fields of a test entry whose type is checked: name, types, what is expected.
_SHAPES: Final = (
    ("duration_s", _SECONDS, "seconds"),
    ("started", _SECONDS, "seconds since the epoch or null"),
    ("leak_check", Mapping, "an object or null"),
    ("reruns", int, "a count"),
)


def _checked(index: int, entry: object) -> TestMemory:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("nodeid"), str):
        raise ReportError(f'tests[{index}] is not a test entry with a "nodeid"')
    where = f"tests[{index}] ({entry['nodeid']})"
    if entry.get("status") not in STATUSES:
        raise ReportError(f"{where}: unknown status {entry.get('status')!r}")
    for name in _BYTES:
        value = entry.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ReportError(f"{where}: {name} is {value!r}, expected bytes or null")
    for name, kinds, expected in _SHAPES:
        value = entry.get(name)
        if value is None:
            continue
        wrong = isinstance(value, bool) or not isinstance(value, kinds)
        if not wrong and kinds == _SECONDS:
            wrong = not math.isfinite(value) if isinstance(value, float) else value > _MAX_SECONDS
        if wrong:
            raise ReportError(f"{where}: {name} is {value!r}, expected {expected}")
    try:
        return TestMemory.from_json(entry)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as error:
        raise ReportError(f"{where}: malformed entry ({error!r})") from None


#: Fields of a test entry that hold bytes or null.
_BYTES: Final = ("rss_start", "rss_end", "rss_peak", *FIELDS.values())
_NONE: Final[type] = type(None)
#: The types of each field read, in the entries this version writes.
_PLAIN_TYPES: Final[tuple[tuple[str, set[type]], ...]] = (
    ("nodeid", {str}),
    ("status", {str}),
    *((name, {int, _NONE}) for name in _BYTES),
    ("duration_s", {float, int, _NONE}),
    ("started", {float, int, _NONE}),
    ("reruns", {int, _NONE}),
    ("budget", {dict, _NONE}),
    ("leak_check", {dict, _NONE}),
    ("beside", {list, _NONE}),
    ("sites", {list, _NONE}),
)
_STATUS_SET: Final = frozenset(STATUSES)
_SITE_KEYS: Final = frozenset(("file", "line", "size", "count"))
#: Entries checked together by :func:`_plainly_valid`.
_CHUNK: Final = 500


def _plainly_valid(entries: list[Any]) -> bool:
    """True when every entry is of the shape this version writes, so that :func:`_checked`
    accepts it and :meth:`TestMemory.from_json` reads it.

    A narrower test than :func:`_checked` (exact types, no messages), field by field over
    many entries at once, for the commands that read reports of tens of thousands of
    tests (benchmarks/report_speed.py).  Entries it does not accept go through :func:`_checked`,
    which accepts each or says what is wrong, so a malformed report gets the same error.
    """
    if any(type(entry) is not dict for entry in entries):
        return False
    for name, kinds in _PLAIN_TYPES:
        if not {type(entry.get(name)) for entry in entries} <= kinds:
            return False
    if not all("outcome" in entry for entry in entries):
        return False
    if not {entry["status"] for entry in entries} <= _STATUS_SET:
        return False
    for name in ("duration_s", "started"):
        numbers = [entry[name] for entry in entries if entry.get(name) is not None]
        try:  # not finite, or an int too large for a float: an exact check says
            finite = math.isfinite(math.fsum(numbers))
        except (OverflowError, ValueError):
            return False
        if not finite or max(numbers, default=0) > _MAX_SECONDS:
            return False
    return all(
        type(site) is dict and site.keys() == _SITE_KEYS
        for entry in entries
        for site in entry.get("sites") or ()
    )


def checked_entries(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The test entries of a loaded report, each checked as :func:`report_tests` checks it.

    For the commands that read a few fields of every test: they turn into
    :class:`TestMemory` only the entries they show.  :raises ReportError: as
    :func:`report_tests`, for the first malformed entry.
    """
    tests = report.get("tests")
    if not isinstance(tests, list):
        raise ReportError('the report has no "tests" list')
    for start in range(0, len(tests), _CHUNK):
        chunk = tests[start : start + _CHUNK]
        if not _plainly_valid(chunk):
            for index, entry in enumerate(chunk, start):
                _checked(index, entry)
    return tests


def report_tests(report: Mapping[str, Any]) -> list[TestMemory]:
    """The tests of a loaded report, checked; :class:`ReportError` says what is malformed."""
    tests = report.get("tests")
    if not isinstance(tests, list):
        raise ReportError('the report has no "tests" list')
    return [_checked(index, entry) for index, entry in enumerate(tests)]


def baseline_figures(report: Mapping[str, Any]) -> dict[str, Figures]:
    """Each test's figures by nodeid (the last entry wins), for comparing a run with a baseline."""
    return entry_figures(checked_entries(report))


def entry_figures(entries: Iterable[Mapping[str, Any]]) -> dict[str, Figures]:
    """Each test's figures by nodeid (the last entry wins), from entries that
    :func:`checked_entries` returned (they are not checked again)."""
    peak, heap, leak = (FIELDS[metric] for metric in METRICS)
    return {
        entry["nodeid"]: Figures(entry.get(peak), entry.get(heap), entry.get(leak))
        for entry in entries
    }


@dataclass(frozen=True)
class ReportDiff:
    """Every test's change between two reports: the new report's order, then removed tests."""

    changes: tuple[TestChange, ...]
    allowance: Allowance

    def _of(self, kind: ChangeKind) -> tuple[TestChange, ...]:
        return tuple(change for change in self.changes if change.kind == kind)

    @property
    def regressions(self) -> tuple[TestChange, ...]:
        """Tests with a figure grown past the allowance."""
        return self._of("regression")

    @property
    def improvements(self) -> tuple[TestChange, ...]:
        """Tests with a figure shrunk by more than the allowance (and none grown past it)."""
        return self._of("improvement")

    @property
    def unchanged(self) -> tuple[TestChange, ...]:
        """Tests in both reports whose figures stayed within the allowance."""
        return self._of("unchanged")

    @property
    def new(self) -> tuple[TestChange, ...]:
        """Tests only in the new report."""
        return self._of("new")

    @property
    def removed(self) -> tuple[TestChange, ...]:
        """Tests only in the base report."""
        return self._of("removed")

    @property
    def ok(self) -> bool:
        """True when no test regressed."""
        return not self.regressions

    def counts(self) -> dict[str, int]:
        """Tests per kind of change."""
        counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        for change in self.changes:
            counts[change.kind] += 1
        return counts


def diff_reports(
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    allowance: Allowance | str | int = DEFAULT_ALLOWANCE,
) -> ReportDiff:
    """Compare two loaded reports test by test; :class:`ReportError` when one is malformed."""
    return diff_figures(baseline_figures(base), baseline_figures(new), allowance)


def diff_figures(
    before: Mapping[str, Figures],
    after: Mapping[str, Figures],
    allowance: Allowance | str | int = DEFAULT_ALLOWANCE,
) -> ReportDiff:
    """Compare the figures of two reports' tests by nodeid (see :func:`entry_figures`)."""
    allowed = parse_allowance(allowance)
    changes = [compare_figures(n, before.get(n), figures, allowed) for n, figures in after.items()]
    changes += [
        compare_figures(n, figures, None, allowed)
        for n, figures in before.items()
        if n not in after
    ]
    return ReportDiff(tuple(changes), allowed)
