"""Where the tests' peaks are kept between runs: pytest's cache, or a JSON report.

Every guarded run that ends in this process (a single process, or the xdist controller)
merges its tests' peaks into ``memguard/peaks.json`` in pytest's cache folder, as
``--lf`` keeps the last failures; ``--memguard-pack`` reads them back, or reads the
report named by ``--memguard-history`` (for CI, where the cache is not kept but the last
report is).

Runs that end together take turns: each holds ``peaks.json.lock`` (beside it) while it
reads, merges and writes, so no run's peaks are lost; a run that waits more than
:data:`LOCK_TIMEOUT` seconds keeps nothing and says so.  The file is compact JSON
written atomically, bounded as :mod:`pytest_memguard.reporting.history` says and read no further
than :data:`CACHE_LIMIT`.  It is memguard's own, not the user's: one that cannot be read
or understood is started afresh with a notice, and one that cannot be written is a
notice, never an error of the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest

from ..reporting.history import HistoryError, PeakHistory
from .context import RunContext
from .settings import Settings

__all__ = ["CACHE_FILE", "CACHE_LIMIT", "LOCK_TIMEOUT", "load_history", "save_history"]

#: The history's file, in pytest's cache folder.
CACHE_FILE: Final = "memguard/peaks.json"
#: The most of it that is read, and written: 64 MiB (100,000 tests of long node ids).
CACHE_LIMIT: Final = 64 << 20
#: Seconds a run waits for another run's turn at the file before it keeps nothing.
LOCK_TIMEOUT: Final = 30.0


def _cache_file(config: pytest.Config) -> Path | None:
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    folder, name = CACHE_FILE.split("/")
    return Path(cache.mkdir(folder)) / name


def _cached(path: Path) -> tuple[PeakHistory, str | None]:
    """The history kept at ``path`` and, when it could not be used, why (afresh then)."""
    from ..core.files import InputFileError, read_json

    source = "pytest's cache"
    if not os.path.lexists(path):
        return PeakHistory(source=source), None
    try:
        history = PeakHistory.from_json(read_json(path, limit=CACHE_LIMIT), source=source)
    except InputFileError as error:
        return PeakHistory(source=source), str(error)
    except HistoryError as error:
        return PeakHistory(source=source), f"{path}: {error}"
    return history, None


def load_history(
    config: pytest.Config, settings: Settings, notices: list[str] | None = None
) -> PeakHistory:
    """The history packing predicts from; ``UsageError`` for a bad ``--memguard-history``.

    :param notices: where to say how many of ``--memguard-history``'s entries were left
        out (the cache's problems are said when the run keeps its peaks)
    """
    if settings.history is not None:
        from ..reporting.report import ReportError, load_report

        option = settings.source("history")
        try:
            history = PeakHistory.from_report(
                load_report(settings.history), source=str(settings.history)
            )
        except (ReportError, HistoryError) as error:
            text = str(error)
            where = "" if text.startswith(f"{settings.history}:") else f"{settings.history}: "
            raise pytest.UsageError(f"{option}: {where}{text}") from None
        if history.dropped and notices is not None:
            from ..core.sizes import format_size
            from ..reporting.history import MAX_FIGURE

            notices.append(
                f"memguard: {option}: {_entries(history.dropped)} of {settings.history} not"
                " understood, left out (a test entry needs its nodeid and peak_delta, and"
                f" sizes in bytes from 0 to {format_size(MAX_FIGURE)})"
            )
        return history
    path = _cache_file(config)
    if path is None:
        return PeakHistory(source="none (pytest's cache is off)")
    return _cached(path)[0]


def save_history(
    config: pytest.Config, context: RunContext, entries: list[dict[str, Any]] | None = None
) -> None:
    """Merge the run's peaks into the history in pytest's cache (if it is on), from the
    report's ``entries`` when it was built (else from the results, an entry at a time).

    A file that cannot be read, understood or written is a notice of the run (never an
    exception): the peaks are memguard's to keep, not the user's.
    """
    from ..core.files import locked, reason_of

    where = "pytest's cache"
    notices = context.log.notices
    try:
        path = _cache_file(config)
        if path is None:
            return
        where = str(path)
        tests: Iterable[Mapping[str, Any]] = entries or (
            result.to_json() for result in context.source.results()
        )
        with locked(path.with_name(path.name + ".lock"), LOCK_TIMEOUT):
            _merge(path, notices, tests, context.source.collected())
    except OSError as error:
        notices.append(f"memguard: cannot keep the tests' peaks in {where} ({reason_of(error)})")


def _merge(
    path: Path, notices: list[str], tests: Iterable[Mapping[str, Any]], collected: Sequence[str]
) -> None:
    """Read, merge and write the history at ``path`` (its lock held)."""
    from ..core.files import write_atomically

    history, problem = _cached(path)
    if problem is not None:
        if os.path.exists(path) and not os.path.isfile(path):
            notices.append(f"memguard: the tests' peaks were not kept: {problem}")
            return  # a FIFO, a folder: left alone, and not written either
        notices.append(
            f"memguard: the tests' peaks in pytest's cache could not be used, started afresh:"
            f" {problem}"
        )
    elif history.dropped:
        notices.append(
            f"memguard: {_entries(history.dropped)} of the tests' peaks in {path} not"
            " understood, left out"
        )
    history.add_run(tests, collected)
    write_atomically(path, _encoded(history))


def _encoded(history: PeakHistory) -> str:
    """The history as compact JSON, within :data:`CACHE_LIMIT` (the tests seen longest
    ago go first, when node ids are so long that it is not)."""
    while True:
        text = json.dumps(history.to_json(), separators=(",", ":"))  # ASCII: bytes = len
        if len(text) <= CACHE_LIMIT:
            return text
        history.keep(len(history) // 2)


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"
