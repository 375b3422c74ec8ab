"""``-n auto`` / ``-n logical`` with memguard: no more workers than the memory holds.

Two cuts of the CPU count xdist offers, the smaller winning:

- ``--memguard-worker-memory SIZE``: available memory / SIZE workers;
- a history of measured peaks (pytest's cache of the last guarded run, or
  ``--memguard-history``): the workers the usable memory (the aggregate limit, less what
  the other guarded runs on the machine hold with the ledger on) holds at the measured
  worker base and the heavy peaks: ``base x n`` and the largest peak when packing (one
  heavy test at a time is its plan at worst), else the ``n`` largest peaks (any ``n``
  tests may meet).

Runs in ``pytest_cmdline_main``, before ``pytest_configure``: no resolved settings and
no ``config.cache`` yet, so the settings are looked up here and the cache's file is
found as pytest's cache provider finds its folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from ...core.sizes import format_size

if TYPE_CHECKING:
    from ...probe.system import SystemMemory
    from ...reporting.history import PeakHistory

__all__ = ["AUTO_KEY", "has_history", "limit_workers"]

#: How ``-n auto`` was cut (for the header).
AUTO_KEY: Final = pytest.StashKey[str]()


def _cache_file(config: pytest.Config) -> Path | None:
    """The kept peaks in pytest's cache (None: the cache is off)."""
    if not config.pluginmanager.has_plugin("cacheprovider"):
        return None
    from ..peakcache import CACHE_FILE

    folder = Path(os.path.expanduser(os.path.expandvars(str(config.getini("cache_dir")))))
    if not folder.is_absolute():
        folder = config.rootpath / folder
    return folder / "d" / CACHE_FILE


def has_history(config: pytest.Config) -> bool:
    """Whether a history is there to cut ``-n auto`` by (cheap: no file is read)."""
    from ..options import lookup

    if lookup(config, "history", os.environ)[0] is not None:
        return True
    path = _cache_file(config)
    return path is not None and path.is_file()


def _history(config: pytest.Config) -> PeakHistory | None:
    """The measured peaks, or None (none, or not readable: the run says why later)."""
    from ...core.files import InputFileError
    from ...reporting.history import HistoryError
    from ..peakcache import read_cached
    from ..settings import resolve_paths

    named = resolve_paths(config, "history", os.environ, {})
    if named:  # history files or reports, merged in order
        from ...reporting.historyfile import load_histories

        try:
            return load_histories(named).peaks()
        except (InputFileError, HistoryError):
            return None
    path = _cache_file(config)
    if path is None or not path.is_file():
        return None
    return read_cached(path)[0]  # empty when it cannot be used


def _switch(config: pytest.Config, name: str, default: bool) -> bool:
    from ..options import lookup, parse_bool

    raw, source = lookup(config, name, os.environ)
    return default if raw is None else parse_bool(raw, source)


def _usable(config: pytest.Config, memory: SystemMemory) -> tuple[int, str]:
    """The aggregate limit (the memory all workers may use together) and its source."""
    from ...core.sizes import parse_limit
    from ...errors import SizeError
    from ..options import lookup
    from ..settings import DEFAULT_AGGREGATE

    raw, source = lookup(config, "aggregate", os.environ)
    if raw is None or raw.strip().lower() == "none":
        raw, source = DEFAULT_AGGREGATE, f"default {DEFAULT_AGGREGATE}"
    try:
        return parse_limit(raw, percent_of=memory.total), source
    except SizeError as error:
        raise pytest.UsageError(f"{source}: {error}") from None


def _outside(memory: SystemMemory) -> int:
    """What the other guarded runs of this memory domain hold and reserve (the ledger)."""
    from ...library.ledger import Ledger, LedgerError, ledger_path
    from ..gate import memory_domain, this_run

    try:
        others = Ledger(ledger_path()).others(this_run(), memory_domain(memory))
    except (LedgerError, OSError):
        return 0
    return sum(entry.held for entry in others)


def _by_history(
    config: pytest.Config, count: int, history: PeakHistory, memory: SystemMemory
) -> tuple[int, str]:
    """The workers the usable memory holds at the history's worker base and peaks."""
    pack = _switch(config, "pack", False)
    outside = _outside(memory) if _switch(config, "ledger", pack) else 0
    usable, source = _usable(config, memory)
    room = max(0, usable - outside)
    base = history.usual_start() or 0
    peaks = sorted((peak.total for peak in history.values()), reverse=True)

    def need(workers: int) -> int:
        heavy = peaks[:1] if pack else peaks[:workers]
        return base * workers + sum(heavy)

    chosen = count
    while chosen > 1 and need(chosen) > room:
        chosen -= 1
    less = f" less {format_size(outside)} other runs hold" if outside else ""
    shown = peaks[:1] if pack else peaks[:chosen]
    heavy = ", ".join(format_size(peak) for peak in shown[:3]) + (", ..." if len(shown) > 3 else "")
    what = "the largest peak (packed)" if pack else f"the {len(shown)} largest peak(s)"
    return chosen, (
        f"{format_size(usable)} usable ({source}){less}; {history.source}: worker base"
        f" {format_size(base)}, {what} {heavy or '0 B'}"
    )


def limit_workers(config: pytest.Config, count: int) -> int:
    """``-n auto``: at most ``count`` workers (xdist's CPU count), cut by
    ``--memguard-worker-memory`` and by the measured peaks (the smaller wins; at least 1);
    the header says why."""
    from ...probe.system import read_system_memory
    from ..settings import resolve_size_setting

    memory = read_system_memory()
    chosen = max(1, count)
    reasons = [f"{count} CPU(s)"]
    each = resolve_size_setting(config, "worker-memory")
    if each is not None and each > 0:
        chosen = min(chosen, max(1, memory.available // each))
        reasons.append(
            f"{format_size(memory.available)} available / {format_size(each)} per worker"
        )
    history = _history(config) if has_history(config) else None
    if history is not None and len(history):
        fits, why = _by_history(config, count, history, memory)
        chosen = min(chosen, fits)
        reasons.append(why)
    config.stash[AUTO_KEY] = f"memguard: -n auto: {chosen} worker(s): {', '.join(reasons)}"
    return chosen
