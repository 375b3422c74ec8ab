"""pytest-memguard: a memory guard for pytest, and the memory library it stands on.

The library is importable without pytest::

    from pytest_memguard import parse_size, MemoryThresholds, Guard

The pytest plugin lives in :mod:`pytest_memguard.plugin` and is loaded by pytest
through the ``pytest11`` entry point.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .core.guard import AbortInfo, Guard, LevelEvent
from .core.levels import Level, MemoryThresholds
from .core.sizes import format_size, parse_size
from .errors import (
    MemguardError,
    MemoryBudgetExceeded,
    MemoryLeakDetected,
    MemoryLimitExceeded,
    SizeError,
    ThresholdError,
)
from .probe.process import current_rss, open_peak_meter, rss_of
from .probe.system import SystemMemory, read_pressure, read_system_memory
from .report import SCHEMA, ReportError, load_report, load_schema
from .results import Budget, Site, TestMemory

try:
    __version__ = version("pytest-memguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "SCHEMA",
    "AbortInfo",
    "Budget",
    "Guard",
    "Level",
    "LevelEvent",
    "MemguardError",
    "MemoryBudgetExceeded",
    "MemoryLeakDetected",
    "MemoryLimitExceeded",
    "MemoryThresholds",
    "ReportError",
    "Site",
    "SizeError",
    "SystemMemory",
    "TestMemory",
    "ThresholdError",
    "__version__",
    "current_rss",
    "format_size",
    "load_report",
    "load_schema",
    "open_peak_meter",
    "parse_size",
    "read_pressure",
    "read_system_memory",
    "rss_of",
]
