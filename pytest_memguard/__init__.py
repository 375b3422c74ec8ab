"""pytest-memguard: a memory guard for pytest, and the memory library it stands on.

The library is importable without pytest:

>>> import pytest_memguard as memguard
>>> memguard.parse_size("1.5 GiB")
1610612736

Names are loaded on first use (PEP 562), so that pytest, which imports the plugin
module inside this package on every run, pays nothing for them while the guard is off.
The pytest plugin lives in :mod:`pytest_memguard.plugin`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # engine
    "AbortInfo": ".core.guard",
    "Guard": ".core.guard",
    "LevelEvent": ".core.guard",
    "Level": ".core.levels",
    "MemoryThresholds": ".core.levels",
    "format_size": ".core.sizes",
    "parse_size": ".core.sizes",
    # errors
    "MemguardError": ".errors",
    "MemoryBudgetExceeded": ".errors",
    "MemoryLeakDetected": ".errors",
    "MemoryLimitExceeded": ".errors",
    "SizeError": ".errors",
    "ThresholdError": ".errors",
    # probe
    "current_rss": ".probe.process",
    "open_peak_meter": ".probe.process",
    "rss_of": ".probe.process",
    "SystemMemory": ".probe.system",
    "read_pressure": ".probe.system",
    "read_system_memory": ".probe.system",
    # reports
    "SCHEMA": ".report",
    "ReportError": ".report",
    "load_report": ".report",
    "load_schema": ".report",
    "Budget": ".results",
    "Site": ".results",
    "TestMemory": ".results",
    # library
    "BoundedDict": ".bounded",
    "BoundedError": ".bounded",
    "BoundedList": ".bounded",
    "MetricsCollector": ".bounded",
    "SingletonMeta": ".bounded",
    "BoundedCache": ".cache",
    "CacheError": ".cache",
    "CacheExistsError": ".cache",
    "CacheManager": ".cache",
    "CacheMetrics": ".cache",
    "deep_sizeof": ".cache",
    "get_cache_manager": ".cache",
    "AllocationSite": ".diagnostics",
    "LeakCandidate": ".diagnostics",
    "MemoryDiagnostics": ".diagnostics",
    "MonitorError": ".monitor",
    "MonitorEvent": ".monitor",
    "ProcessGoneError": ".monitor",
    "ProcessMonitor": ".monitor",
    "UnknownProcessError": ".monitor",
    "HandlerExistsError": ".pressure",
    "MemoryPressureCoordinator": ".pressure",
    "PressureError": ".pressure",
    "PressureResponse": ".pressure",
    "get_memory_pressure_coordinator": ".pressure",
}

__all__ = sorted([*_EXPORTS, "cache_manager", "__version__"])


def __getattr__(name: str) -> Any:
    if name == "__version__":  # the one static version, in pyproject.toml
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pytest-memguard")
        except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
            return "0+unknown"
    if name == "cache_manager":
        from .cache import get_cache_manager

        return get_cache_manager()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .bounded import BoundedDict, BoundedError, BoundedList, MetricsCollector, SingletonMeta
    from .cache import (
        BoundedCache,
        CacheError,
        CacheExistsError,
        CacheManager,
        CacheMetrics,
        deep_sizeof,
        get_cache_manager,
    )
    from .core.guard import AbortInfo, Guard, LevelEvent
    from .core.levels import Level, MemoryThresholds
    from .core.sizes import format_size, parse_size
    from .diagnostics import AllocationSite, LeakCandidate, MemoryDiagnostics
    from .errors import (
        MemguardError,
        MemoryBudgetExceeded,
        MemoryLeakDetected,
        MemoryLimitExceeded,
        SizeError,
        ThresholdError,
    )
    from .monitor import (
        MonitorError,
        MonitorEvent,
        ProcessGoneError,
        ProcessMonitor,
        UnknownProcessError,
    )
    from .pressure import (
        HandlerExistsError,
        MemoryPressureCoordinator,
        PressureError,
        PressureResponse,
        get_memory_pressure_coordinator,
    )
    from .probe.process import current_rss, open_peak_meter, rss_of
    from .probe.system import SystemMemory, read_pressure, read_system_memory
    from .report import SCHEMA, ReportError, load_report, load_schema
    from .results import Budget, Site, TestMemory

    cache_manager: CacheManager
    __version__: str
