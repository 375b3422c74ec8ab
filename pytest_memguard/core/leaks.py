"""Leak detection: the allocators' counts, filtered diffs of tracemalloc snapshots, verdicts.

A checked unit of work (a test) is judged in two steps, so that nothing cries wolf and a
unit that keeps nothing pays next to nothing:

1. Screening, untraced (:class:`HeapCount`: counters, read without walking the heap):
   the allocators' counts before and after the unit (and its teardown) bound what it
   kept from above (:meth:`HeapCount.kept_since`).  At most the budget: clean.  Over it,
   or RSS grown by :data:`NATIVE_LEAK_THRESHOLD`: a ``gc.collect()`` (and a heap trim for
   RSS) and the counts again; a unit still over is a suspect.
2. Only for a suspect: the unit runs again, counted.  Keeping its budget or less this
   time, the first run filled a cache or imported something: a warm-up.  Keeping more
   again, it runs once more, traced, between two snapshots (:func:`take_snapshot`,
   :func:`diff`): a leak when those allocations of its own (pytest's bookkeeping left
   out) still held the budget too, and here, by file and line (:func:`judge`).  The
   counts see what a run frees, tracing only what it allocates: a global replaced on each
   run keeps nothing new by the counts, though all it holds is new to tracing.  RSS that
   grew again over the counted rerun by far more than the traced rerun kept is a
   possible native leak (:func:`native_leak_message`); threads started and joined, whose
   stacks and malloc arenas stay for the next threads, grow RSS once, not again.

:data:`DEFAULT_LEAK_BUDGET` is 1 MiB.  Measured from the start of a test body to the
teardown of its function fixtures (pytest 9.2), pytest's own bookkeeping keeps about
3 KiB for a passing test, 13 KiB for one that printed 10 KB and 17 KiB for a failing
one: some tens to a few hundred blocks, far from the 2,048 blocks of 512 bytes that make
1 MiB in the counts' bound.  1 MiB is far above the bookkeeping, so few tests pay for a
rerun, and far below the leaks that sink a CI runner (tens of MB per test).
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from ..probe.process import c_heap_in_use, small_object_bytes
from .sites import DEFAULT_EXCLUDES, Site, display_path, site_rules
from .sizes import format_limit, format_size
from .tracing import DEFAULT_NFRAMES, Tracer, take_snapshot

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_LEAK_BUDGET",
    "DEFAULT_NFRAMES",
    "NATIVE_LEAK_THRESHOLD",
    "SMALL_BLOCK_MAX",
    "HeapCount",
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

#: The largest block of Python's small-object allocator (pymalloc): a counted block holds
#: at most this many bytes of a small object; larger objects are ``malloc``'d.
SMALL_BLOCK_MAX: Final = 512

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


@dataclass(frozen=True)
class HeapCount:
    """What the allocators hold at one moment, read without tracing.

    ``blocks`` is ``sys.getallocatedblocks()`` (every Python allocation, small or
    ``malloc``'d, counts one), ``c_heap`` the bytes ``malloc`` has handed out
    (:func:`~pytest_memguard.probe.process.c_heap_in_use`; None where it cannot be read)
    and ``rss`` the process's resident memory.  Reading one walks nothing (counters the
    allocators and the kernel keep), so every test can afford it.
    ``small``, read only by :meth:`exact` (it walks the allocator's pools), is the bytes in
    pymalloc's blocks in use.
    """

    blocks: int
    c_heap: int | None
    rss: int
    small: int | None = None

    @classmethod
    def now(cls, rss: Callable[[], int]) -> HeapCount:
        """The counts now; ``rss`` reads the resident memory."""
        return cls(sys.getallocatedblocks(), c_heap_in_use(), rss())

    @classmethod
    def exact(cls, rss: Callable[[], int]) -> HeapCount:
        """The counts now, with the bytes of the small blocks (for a suspect's reruns)."""
        return cls(sys.getallocatedblocks(), c_heap_in_use(), rss(), small_object_bytes())

    def kept_since(self, start: HeapCount) -> int:
        """The bytes allocated since ``start`` and still held: exact (net) where both
        counts read the small blocks' bytes and the C heap, else a bound from above.

        For the bound, each block gained counts :data:`SMALL_BLOCK_MAX` bytes (a
        ``malloc``'d block is counted again in the C heap's growth, at its size).  Where
        the C heap cannot be read, RSS growth stands in for it: a big buffer shows there,
        but a ``malloc``'d block that reused freed resident memory does not.
        """
        heap = None
        if self.c_heap is not None and start.c_heap is not None:
            heap = self.c_heap - start.c_heap
        if self.small is not None and start.small is not None and heap is not None:
            return max(0, self.small - start.small + heap)
        blocks = max(0, self.blocks - start.blocks) * SMALL_BLOCK_MAX
        if heap is not None:
            return blocks + max(0, heap)
        return blocks + max(0, self.rss - start.rss)


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
    Cost grows with the snapshots and their frames: whole traces are counted in C and
    only the traces that changed reach Python code, where ``Snapshot.compare_to`` builds
    statistics of every trace (benchmarks/leak_costs.py); the first call also learns
    where the libraries are.

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
    the first run's figure (the counts' bound), ``growth`` the reruns', ``sites`` where
    the traced rerun grew.
    """

    kind: VerdictKind
    retained: int
    budget: int
    growth: int | None = None
    sites: tuple[Site, ...] = ()
    error: str | None = None
    #: What pytest's (and other frameworks') bookkeeping kept over the rerun.
    framework: int = 0

    @property
    def leaked(self) -> bool:
        """Whether a leak was confirmed."""
        return self.kind == "leak"


def judge(
    first: int,
    budget: int,
    *,
    kept_again: int | None = None,
    traced: LeakDiff | None = None,
    error: str | None = None,
) -> Verdict:
    """Decide on a unit that kept ``first`` bytes, given what its reruns kept.

    More than ``budget`` makes a suspect.  ``kept_again`` is what the counts saw an
    untraced rerun keep (net: what it freed counts too), ``traced`` what a traced rerun's
    allocations still held, made when ``kept_again`` was over the budget.  The growth is
    the smaller of the two: growing by ``budget`` or more (and by at least one byte)
    confirms a leak, less is a warm-up.  A suspect whose rerun failed (``error``) or was
    not made is unconfirmed, as is one the counts saw grow again that was not traced.
    """
    if first <= budget:
        return Verdict("clean", first, budget)
    if error is not None or kept_again is None:
        return Verdict("unconfirmed", first, budget, error=error)
    growth = kept_again if traced is None else min(kept_again, traced.growth)
    if growth < max(budget, 1):
        framework = traced.excluded if traced is not None else 0
        return Verdict("warm_up", first, budget, growth, framework=framework)
    if traced is None:
        return Verdict("unconfirmed", first, budget, growth)
    return Verdict("leak", first, budget, growth, traced.sites)


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
    """One line for users: what was measured, the budget and, for a leak, the top sites.

    e.g. ``kept 20.0 MiB when run again (leak budget 1.0 MiB): leak at tests/test_a.py:12
    (20.0 MiB, 1 block); its first run: at most 30.0 MiB by the allocators' counts``.
    What a rerun kept is a measure (the least of the reruns', the traced one's for a
    leak); the first run's figure is the counts' bound, said as a bound.  Of the ``top``
    largest sites, those under 1% of the growth are left out (the largest is named).
    """
    budget = f"leak budget {format_limit(verdict.budget)}"
    bound = f"at most {format_size(verdict.retained)} by the allocators' counts"
    if verdict.kind == "clean":
        return f"kept {bound} ({budget})"
    if verdict.kind == "unconfirmed":
        why = f"the rerun failed: {verdict.error}" if verdict.error else "no rerun"
        return f"kept {bound} on its first run ({budget}); not judged: {why}"
    again = format_size(verdict.growth)
    if verdict.kind == "warm_up":
        if verdict.framework > max(verdict.growth or 0, 0):
            budget += f"; pytest's own bookkeeping grew {format_size(verdict.framework)}"
        first = f"{bound} on its first run"
        return f"kept {again} when run again ({budget}; {first}): a warm-up, not a leak"
    largest = verdict.sites[: max(top, 0)]
    growth = verdict.growth or 0
    shown = [site for site in largest if site.size * 100 >= growth] or largest[:1]
    where = format_sites(shown, root=root) or "no allocation site found"
    return f"kept {again} on every rerun ({budget}): leak at {where}; its first run: {bound}"


def native_leak_message(
    rss_growth: int,
    traced_growth: int,
    *,
    overhead_growth: int = 0,
    threshold: int = NATIVE_LEAK_THRESHOLD,
) -> str | None:
    """A warning when RSS grew by much more than traced memory, else None.

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
