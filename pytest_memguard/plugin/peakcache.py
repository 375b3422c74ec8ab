"""Where the tests' peaks are kept between runs: pytest's cache, a history file, a report.

Every guarded run that ends in this process (a single process, or the xdist controller)
merges its tests' peaks into ``memguard/peaks.json`` in pytest's cache folder, as
``--lf`` keeps the last failures, and into the history file of
``--memguard-history-save`` when asked (:mod:`pytest_memguard.reporting.historyfile`:
for CI, where the cache is not kept); ``--memguard-pack`` reads the cache back, or the
history files and reports named by ``--memguard-history``.  The history file's lock is
in the temporary folder, named after the file's real path, so that nothing appears
beside a file a project commits; one that is not a memguard history is never replaced.

Runs that end together take turns: each holds ``peaks.json.lock`` (beside it) while it
reads, merges and writes, so no run's peaks are lost; a run that waits more than
:data:`LOCK_TIMEOUT` seconds keeps nothing and says so.  The file is compact JSON
written atomically, bounded as :mod:`pytest_memguard.reporting.history` says and read no further
than :data:`CACHE_LIMIT`.  It is memguard's own, not the user's: one that cannot be read
or understood is started afresh with a notice, and one that cannot be written is a
notice, never an error of the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest

from ..reporting.history import HistoryError, PeakHistory
from .context import RunContext
from .settings import Settings

__all__ = [
    "CACHE_FILE",
    "CACHE_LIMIT",
    "LOCK_TIMEOUT",
    "load_history",
    "read_cached",
    "save_history",
]

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


def read_cached(path: Path) -> tuple[PeakHistory, str | None]:
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
    if settings.history:
        from ..reporting.historyfile import load_histories

        option = settings.source("history")
        try:
            history = load_histories(settings.history).peaks()
        except HistoryError as error:
            raise pytest.UsageError(f"{option}: {error}") from None
        if history.dropped and notices is not None:
            from ..core.sizes import format_size
            from ..reporting.history import MAX_FIGURE

            notices.append(
                f"memguard: {option}: {_entries(history.dropped)} of {history.source} not"
                " understood, left out (a report's test entry needs its nodeid and"
                " peak_delta, a history's test its figures and date; sizes are bytes from 0"
                f" to {format_size(MAX_FIGURE)})"
            )
        return history
    path = _cache_file(config)
    if path is None:
        return PeakHistory(source="none (pytest's cache is off)")
    return read_cached(path)[0]


def save_history(config: pytest.Config, context: RunContext) -> None:
    """Merge the run's peaks into the history in pytest's cache (if it is on) and into
    the ``--memguard-history-save`` file (if asked), from the results, an entry at a time
    (a run of many thousand tests never holds its entries all at once).

    A file that cannot be read, understood or written is a notice of the run (never an
    exception): the run's tests have passed or failed already.
    """
    from ..core.files import locked, reason_of
    from ..reporting.historyfile import lock_path

    notices, saved = context.log.notices, context.settings.history_save
    if getattr(config, "cache", None) is None and saved is None:
        return
    results = context.source.results()

    def tests() -> Iterator[dict[str, Any]]:
        return (result.to_json() for result in results)

    where = "pytest's cache"
    try:
        path = _cache_file(config)
        if path is not None:
            where = str(path)
            with locked(path.with_name(path.name + ".lock"), LOCK_TIMEOUT):
                _merge(path, notices, tests(), context.source.collected())
    except OSError as error:
        notices.append(f"memguard: cannot keep the tests' peaks in {where} ({reason_of(error)})")
    if saved is not None:
        option = context.settings.source("history_save")
        try:
            with locked(lock_path(saved), LOCK_TIMEOUT):
                _save_file(saved, option, notices, tests())
        except OSError as error:
            notices.append(
                f"memguard: {option}: the history was not written to {saved} ({reason_of(error)})"
            )


def _save_file(
    path: Path, option: str, notices: list[str], tests: Iterable[Mapping[str, Any]]
) -> None:
    """Read, merge and write the history file at ``path`` (its lock held).  A file
    there that is not a memguard history is left alone, with a notice."""
    from ..core.files import read_text, write_atomically
    from ..reporting.historyfile import HistoryFile, load_history_file, utc_stamp

    history, before = HistoryFile(source=str(path)), None
    if os.path.exists(path):
        try:
            history = load_history_file(path, reports=False)
            before = read_text(path)
        except (HistoryError, OSError, ValueError) as error:
            notices.append(f"memguard: {option}: {error}: not overwritten")
            return
        if history.dropped:
            notices.append(
                f"memguard: {option}: {_entries(history.dropped)} of {path} not understood,"
                " left out"
            )
    changed = history.record_run(tests, utc_stamp(time.time()))
    text = history.encode()
    if text != before:  # the same figures: not even the file's time changes
        write_atomically(path, text)
    notices.append(
        f"memguard: {option}: {len(changed)} test(s) new or changed in {path}"
        f" ({len(history)} in all)"
    )


def _merge(
    path: Path, notices: list[str], tests: Iterable[Mapping[str, Any]], collected: Sequence[str]
) -> None:
    """Read, merge and write the history at ``path`` (its lock held)."""
    from ..core.files import write_atomically

    history, problem = read_cached(path)
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


def _encoded(history: PeakHistory) -> Iterator[str]:
    """The history as compact JSON, in pieces, within :data:`CACHE_LIMIT` (the tests seen
    longest ago go first, when node ids are so long that it is not)."""
    # A bound first: a test's line is its escaped id (at most 6 bytes a character) and
    # four numbers; only a history near the limit is measured exactly.
    while sum(6 * len(nodeid) + 100 for nodeid in history) > CACHE_LIMIT:
        if sum(map(len, history.json_pieces())) <= CACHE_LIMIT:  # ASCII: bytes = len
            break
        history.keep(len(history) // 2)
    return history.json_pieces()


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"
