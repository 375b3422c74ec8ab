"""Where the tests' peaks are kept between runs: pytest's cache, or a JSON report.

Every guarded run that writes a report (a single process, or the xdist controller)
merges its tests' peaks into pytest's cache under :data:`CACHE_KEY`, as ``--lf`` keeps
the last failures; ``--memguard-pack`` reads them back, or reads the report named by
``--memguard-history`` (for CI, where the cache is not kept but the last report is).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import pytest

from ..history import PeakHistory
from .settings import Settings

__all__ = ["CACHE_KEY", "load_history", "save_history"]

CACHE_KEY: Final = "memguard/peaks"


def load_history(config: pytest.Config, settings: Settings) -> PeakHistory:
    """The history packing predicts from; ``UsageError`` for a bad ``--memguard-history``."""
    if settings.history is not None:
        from ..report import ReportError, load_report

        try:
            report = load_report(settings.history)
        except ReportError as error:
            raise pytest.UsageError(f"{settings.source('history')}: {error}") from None
        return PeakHistory.from_report(report, source=str(settings.history))
    cache = getattr(config, "cache", None)
    if cache is None:
        return PeakHistory(source="none (pytest's cache is off)")
    return PeakHistory.from_json(cache.get(CACHE_KEY, None), source="pytest's cache")


def save_history(config: pytest.Config, tests: Iterable[Mapping[str, Any]]) -> None:
    """Merge a run's test entries into the history in pytest's cache (if it is on)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return
    history = PeakHistory.from_json(cache.get(CACHE_KEY, None))
    history.learn(tests)
    cache.set(CACHE_KEY, history.to_json())
