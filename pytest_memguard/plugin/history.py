"""Where the tests' peaks are kept between runs: pytest's cache, or a JSON report.

Every guarded run that ends in this process (a single process, or the xdist controller)
merges its tests' peaks into ``memguard/peaks.json`` in pytest's cache folder, as
``--lf`` keeps the last failures; ``--memguard-pack`` reads them back, or reads the
report named by ``--memguard-history`` (for CI, where the cache is not kept but the last
report is).  The file is compact JSON written atomically: thousands of tests cost a few
milliseconds a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from ..history import PeakHistory
from .run import Run
from .settings import Settings

__all__ = ["CACHE_FILE", "load_history", "save_history"]

#: The history's file, in pytest's cache folder.
CACHE_FILE: Final = "memguard/peaks.json"


def _cache_file(config: pytest.Config) -> Path | None:
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    folder, name = CACHE_FILE.split("/")
    return Path(cache.mkdir(folder)) / name


def _cached(path: Path) -> PeakHistory:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or not ours to understand: start again
        data = None
    return PeakHistory.from_json(data, source="pytest's cache")


def load_history(config: pytest.Config, settings: Settings) -> PeakHistory:
    """The history packing predicts from; ``UsageError`` for a bad ``--memguard-history``."""
    if settings.history is not None:
        from ..report import ReportError, load_report

        try:
            report = load_report(settings.history)
        except ReportError as error:
            raise pytest.UsageError(f"{settings.source('history')}: {error}") from None
        return PeakHistory.from_report(report, source=str(settings.history))
    path = _cache_file(config)
    if path is None:
        return PeakHistory(source="none (pytest's cache is off)")
    return _cached(path)


def save_history(config: pytest.Config, run: Run, report: Mapping[str, Any] | None) -> None:
    """Merge the run's peaks into the history in pytest's cache (if it is on): from the
    report's entries when it was built, else from the results (no report needed)."""
    path = _cache_file(config)
    if path is None:
        return
    if report is not None:
        tests = report["tests"]
    else:
        tests = [
            {
                "nodeid": state.nodeid,
                "status": state.final_status(),
                "peak_delta": state.peak_delta,
                "children_peak": state.children_peak,
                "rss_start": state.rss_start,
                "rss_peak": state.rss_peak,
            }
            for state in run.results
        ]
    history = _cached(path)
    history.learn(tests)
    from ..output import write_atomically

    write_atomically(path, json.dumps(history.to_json(), separators=(",", ":")))
