"""Leak detection: filtered diffs of tracemalloc snapshots, verdicts and messages.

A checked unit of work (a test) is judged in two steps, so that nothing cries wolf:

1. Counters, O(1) (:class:`Tracer`): ``retained`` = traced bytes after the unit (and its
   teardown and a ``gc.collect()``) minus traced bytes before it.  At most the budget:
   clean.
2. Only for a suspect: :func:`take_snapshot`, run the unit again, ``gc.collect()``,
   :func:`take_snapshot`, :func:`diff`, :func:`judge`.  Growing again by the budget or
   more confirms a leak; otherwise the first run filled a cache or imported something.

:data:`DEFAULT_LEAK_BUDGET` is 1 MiB.  Measured with tracing scoped to each test (call
phase to after teardown and ``gc.collect()``, pytest 9.2), pytest's own bookkeeping keeps
about 3 KiB for a passing test, 13 KiB for one that printed 10 KB and 17 KiB for a
failing one (80 KiB for the first failure).  The rare larger figures are one-off resizes
of interpreter tables (the interned-strings dict grew by 0.95 MiB once in 550 tests),
which the rerun clears.  1 MiB is far above the bookkeeping, so few tests pay for a
rerun, and far below the leaks that sink a CI runner (tens of MB per test).

Tracing scoped to the checked test is cheaper and surer than tracing the whole session:
pytest's work between tests is not traced, snapshots hold thousands of traces instead of
a hundred thousand, and memory released by a module fixture's teardown after the last
test of its module cannot hide that test's leak.
"""

from __future__ import annotations

import os
import tracemalloc
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from .sites import DEFAULT_EXCLUDES, Site, display_path, site_rules
from .sizes import format_size
from .tracing import DEFAULT_NFRAMES, Tracer, take_snapshot

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_LEAK_BUDGET",
    "DEFAULT_NFRAMES",
    "NATIVE_LEAK_THRESHOLD",
    "LeakDiff",
    "Tracer",
    "Verdict",
    "VerdictKind",
    "diff",
    "format_sites",
    "judge",
    "leak_message",
    "native_leak_message",
    "relative_sites",
    "take_snapshot",
]

#: Retained bytes allowed per test before it becomes a suspect (see the module docstring).
DEFAULT_LEAK_BUDGET: Final = 1024**2
#: RSS growth not seen by tracemalloc from which a possible native leak is reported.
NATIVE_LEAK_THRESHOLD: Final = 32 * 1024**2

VerdictKind = Literal["clean", "warm_up", "leak", "unconfirmed"]


@dataclass(frozen=True)
class LeakDiff:
    """What grew between two snapshots, framework traces left out; sizes in bytes.

    ``growth`` is the net change of the kept traces; ``sites`` are those that grew,
    largest first (``size`` the bytes grown, ``count`` the blocks gained); ``excluded``
    is the net change of the framework's own traces, left out of ``growth``; ``nframes``
    the snapshots' traceback limit (with 1, sites may point into libraries).
    """

    growth: int
    sites: tuple[Site, ...] = ()
    excluded: int = 0
    nframes: int = 1


def _raw_traces(snapshot: tracemalloc.Snapshot) -> Sequence[tuple[Any, ...]]:
    """``(domain, size, frames innermost first, ...)`` tuples of ``snapshot``."""
    # The snapshot's own list, also used by tracemalloc's statistics(); building Trace
    # objects through the public API costs several times more.
    raw = getattr(snapshot.traces, "_traces", None)
    if isinstance(raw, list):
        return raw
    return [  # pragma: no cover - CPython always has _traces
        (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
        for t in snapshot.traces
    ]


def diff(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    *,
    top: int = 10,
    exclude: Iterable[str] = DEFAULT_EXCLUDES,
) -> LeakDiff:
    """What grew from ``before`` to ``after``, grouped by allocation site.

    The site of a trace is the innermost frame of user code in its traceback (see
    :mod:`pytest_memguard.core.sites`); traces with no user frame that pass through an
    ``exclude`` module (pytest's bookkeeping) count in ``excluded``, not in ``growth``.
    Cost grows with the snapshots: tens of ms for tracing scoped to one test, 0.25 s for
    157,000 traces of 1 frame and about 1 s for 110,000 to 157,000 traces of 8 frames
    (``Snapshot.compare_to``: 2.4 s, 8 to 11 s); the first call also spends 20 to 120 ms
    learning where the libraries are.

    :param top: how many sites to keep, largest growth first
    :param exclude: top-level modules whose frames are framework, not user code
    """
    rules = site_rules(exclude)
    # Counting whole traces stays in C; only the traces that changed reach Python code.
    counts_before = Counter(_raw_traces(before))
    counts_after = Counter(_raw_traces(after))
    get = counts_before.get
    changed = [
        (trace, n - get(trace, 0)) for trace, n in counts_after.items() if n != get(trace, 0)
    ]
    changed += [(trace, -counts_before[trace]) for trace in counts_before.keys() - counts_after]
    growth = excluded = 0
    by_site: dict[tuple[str, int], list[int]] = {}
    for trace, blocks in changed:
        size = trace[1] * blocks
        where = rules.site(trace[2])
        if where is None:
            excluded += size
            continue
        growth += size
        total = by_site.setdefault(where, [0, 0])
        total[0] += size
        total[1] += blocks
    grown = sorted((item for item in by_site.items() if item[1][0] > 0), key=lambda i: -i[1][0])
    sites = tuple(Site(file, line, size, n) for (file, line), (size, n) in grown[: max(top, 0)])
    return LeakDiff(growth, sites, excluded, after.traceback_limit)


@dataclass(frozen=True)
class Verdict:
    """The judgement on one unit of work; sizes in bytes.

    ``kind`` is ``clean`` (kept at most ``budget``), ``warm_up`` (kept more once, not
    again on a rerun), ``leak`` (grew again by ``budget`` or more) or ``unconfirmed``
    (a suspect whose rerun failed, or was not made: ``error`` says why).  ``retained`` is
    the first run's figure, ``growth`` the rerun's, ``sites`` where the rerun grew.
    """

    kind: VerdictKind
    retained: int
    budget: int
    growth: int | None = None
    sites: tuple[Site, ...] = ()
    error: str | None = None

    @property
    def leaked(self) -> bool:
        """Whether a leak was confirmed."""
        return self.kind == "leak"


def judge(
    first: int, budget: int, rerun: LeakDiff | None = None, rerun_error: str | None = None
) -> Verdict:
    """Decide on a unit that retained ``first`` bytes, given what its rerun grew.

    More than ``budget`` makes a suspect; a rerun that grows by ``budget`` or more (and
    by at least one byte) confirms the leak.  ``rerun`` is ignored for a clean unit and
    when ``rerun_error`` says that the rerun failed.
    """
    if first <= budget:
        return Verdict("clean", first, budget)
    if rerun_error is not None or rerun is None:
        return Verdict("unconfirmed", first, budget, error=rerun_error)
    kind: VerdictKind = "leak" if rerun.growth >= max(budget, 1) else "warm_up"
    return Verdict(kind, first, budget, rerun.growth, rerun.sites)


def _blocks(count: int) -> str:
    return f"{count} block" if count in (1, -1) else f"{count} blocks"


def format_sites(sites: Iterable[Site], *, root: str | os.PathLike[str] | None = None) -> str:
    """``"file:line (size, N blocks), ..."``, files relative to ``root`` when under it."""
    return ", ".join(
        f"{display_path(s.file, root)}:{s.line} ({format_size(s.size)}, {_blocks(s.count)})"
        for s in sites
    )


def relative_sites(sites: Iterable[Site], root: str | os.PathLike[str]) -> tuple[Site, ...]:
    """``sites`` with files relative to ``root`` when under it (for portable reports)."""
    return tuple(replace(s, file=display_path(s.file, root)) for s in sites)


def leak_message(
    verdict: Verdict, *, root: str | os.PathLike[str] | None = None, top: int = 3
) -> str:
    """One line for users: the retained size, the budget and, for a leak, the top sites.

    e.g. ``retained 20.0 MiB (leak budget 1.0 MiB) and 20.0 MiB more on a rerun: leak at
    tests/test_a.py:12 (20.0 MiB, 1 block)``.  Of the ``top`` largest sites, those under
    1% of the growth are left out (the largest is always named).
    """
    head = f"retained {format_size(verdict.retained)} (leak budget {format_size(verdict.budget)})"
    if verdict.kind == "clean":
        return head
    if verdict.kind == "unconfirmed":
        why = f"the rerun failed: {verdict.error}" if verdict.error else "no rerun"
        return f"{head}; not confirmed as a leak: {why}"
    grew = format_size(verdict.growth)
    if verdict.kind == "warm_up":
        return f"{head} but did not grow again on a rerun ({grew}): a warm-up, not a leak"
    largest = verdict.sites[: max(top, 0)]
    growth = verdict.growth or 0
    shown = [site for site in largest if site.size * 100 >= growth] or largest[:1]
    where = format_sites(shown, root=root) or "no allocation site found"
    return f"{head} and {grew} more on a rerun: leak at {where}"


def native_leak_message(
    rss_growth: int,
    traced_growth: int,
    *,
    overhead_growth: int = 0,
    threshold: int = NATIVE_LEAK_THRESHOLD,
) -> str | None:
    """A warning when RSS grew by much more than traced Python memory, else None.

    The growth tracemalloc cannot see is ``rss_growth`` minus the traced growth and
    minus the growth of tracemalloc's own tables (``overhead_growth``, see
    :meth:`Tracer.overhead`).  It is reported when it reaches ``threshold`` and exceeds
    the traced growth: small Python objects alone cost up to half again their traced
    size in RSS (allocator pools), and a first import maps shared libraries (numpy: about
    11 MiB beyond its traced 6 MiB).
    """
    traced = max(traced_growth, 0)
    untraced = rss_growth - traced - max(overhead_growth, 0)
    if untraced < threshold or untraced <= traced:
        return None
    return (
        f"possible native leak: RSS grew by {format_size(rss_growth)} but traced Python "
        f"memory by {format_size(traced)}; {format_size(untraced)} was allocated where "
        "tracemalloc cannot see (C extensions, ctypes, the allocator)"
    )
