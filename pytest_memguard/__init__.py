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
    "SCHEMA": ".reporting.report",
    "ReportError": ".reporting.report",
    "load_report": ".reporting.report",
    "load_schema": ".reporting.report",
    "Budget": ".reporting.results",
    "Allowance": ".reporting.compare",
    "AllowanceError": ".reporting.compare",
    "ReportDiff": ".reporting.compare",
    "diff_reports": ".reporting.compare",
    "parse_allowance": ".reporting.compare",
    "render_report": ".reporting.render",
    "Site": ".core.sites",
    "TestMemory": ".reporting.results",
    # library
    "AutomaticError": ".library.automatic",
    "start_memory_cleanup": ".library.lifespan",
    "stop_memory_cleanup": ".library.lifespan",
    "BoundedDict": ".library.bounded",
    "BoundedError": ".library.bounded",
    "BoundedList": ".library.bounded",
    "MetricsCollector": ".library.bounded",
    "SingletonMeta": ".library.bounded",
    "AgentSingleton": ".library.singletons",
    "BoundedCache": ".library.cache",
    "CacheError": ".library.cache",
    "CacheExistsError": ".library.cache",
    "CacheManager": ".library.cache",
    "CacheMetrics": ".library.cache",
    "deep_sizeof": ".library.cache",
    "get_cache_manager": ".library.cache",
    "AllocationSite": ".library.diagnostics",
    "LeakCandidate": ".library.diagnostics",
    "MemoryDiagnostics": ".library.diagnostics",
    "MonitorError": ".library.monitor",
    "MonitorEvent": ".library.monitor",
    "ProcessGoneError": ".library.monitor",
    "ProcessMonitor": ".library.monitor",
    "UnknownProcessError": ".library.monitor",
    "HandlerExistsError": ".library.pressure",
    "MemoryPressureCoordinator": ".library.pressure",
    "PressureError": ".library.pressure",
    "PressureResponse": ".library.pressure",
    "get_memory_pressure_coordinator": ".library.pressure",
    # services
    "memory_app": ".web.endpoints",
    "MemoryMonitorMiddleware": ".web.asgi",
    "RequestRecord": ".web.recorder",
    "WebConfigError": ".web.recorder",
    "WSGIMemoryMonitorMiddleware": ".web.wsgi",
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
        from .library.cache import get_cache_manager

        return get_cache_manager()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the "X as X" form marks each name as re-exported
    from .core.guard import AbortInfo as AbortInfo
    from .core.guard import Guard as Guard
    from .core.guard import LevelEvent as LevelEvent
    from .core.levels import Level as Level
    from .core.levels import MemoryThresholds as MemoryThresholds
    from .core.sites import Site as Site
    from .core.sizes import format_size as format_size
    from .core.sizes import parse_size as parse_size
    from .errors import MemguardError as MemguardError
    from .errors import MemoryBudgetExceeded as MemoryBudgetExceeded
    from .errors import MemoryLeakDetected as MemoryLeakDetected
    from .errors import MemoryLimitExceeded as MemoryLimitExceeded
    from .errors import SizeError as SizeError
    from .errors import ThresholdError as ThresholdError
    from .library.automatic import AutomaticError as AutomaticError
    from .library.bounded import BoundedDict as BoundedDict
    from .library.bounded import BoundedError as BoundedError
    from .library.bounded import BoundedList as BoundedList
    from .library.bounded import MetricsCollector as MetricsCollector
    from .library.bounded import SingletonMeta as SingletonMeta
    from .library.cache import BoundedCache as BoundedCache
    from .library.cache import CacheError as CacheError
    from .library.cache import CacheExistsError as CacheExistsError
    from .library.cache import CacheManager as CacheManager
    from .library.cache import CacheMetrics as CacheMetrics
    from .library.cache import deep_sizeof as deep_sizeof
    from .library.cache import get_cache_manager as get_cache_manager
    from .library.diagnostics import AllocationSite as AllocationSite
    from .library.diagnostics import LeakCandidate as LeakCandidate
    from .library.diagnostics import MemoryDiagnostics as MemoryDiagnostics
    from .library.lifespan import start_memory_cleanup as start_memory_cleanup
    from .library.lifespan import stop_memory_cleanup as stop_memory_cleanup
    from .library.monitor import MonitorError as MonitorError
    from .library.monitor import MonitorEvent as MonitorEvent
    from .library.monitor import ProcessGoneError as ProcessGoneError
    from .library.monitor import ProcessMonitor as ProcessMonitor
    from .library.monitor import UnknownProcessError as UnknownProcessError
    from .library.pressure import HandlerExistsError as HandlerExistsError
    from .library.pressure import MemoryPressureCoordinator as MemoryPressureCoordinator
    from .library.pressure import PressureError as PressureError
    from .library.pressure import PressureResponse as PressureResponse
    from .library.pressure import get_memory_pressure_coordinator as get_memory_pressure_coordinator
    from .library.singletons import AgentSingleton as AgentSingleton
    from .probe.process import current_rss as current_rss
    from .probe.process import open_peak_meter as open_peak_meter
    from .probe.process import rss_of as rss_of
    from .probe.system import SystemMemory as SystemMemory
    from .probe.system import read_pressure as read_pressure
    from .probe.system import read_system_memory as read_system_memory
    from .reporting.compare import Allowance as Allowance
    from .reporting.compare import AllowanceError as AllowanceError
    from .reporting.compare import ReportDiff as ReportDiff
    from .reporting.compare import diff_reports as diff_reports
    from .reporting.compare import parse_allowance as parse_allowance
    from .reporting.render import render_report as render_report
    from .reporting.report import SCHEMA as SCHEMA
    from .reporting.report import ReportError as ReportError
    from .reporting.report import load_report as load_report
    from .reporting.report import load_schema as load_schema
    from .reporting.results import Budget as Budget
    from .reporting.results import TestMemory as TestMemory
    from .web.asgi import MemoryMonitorMiddleware as MemoryMonitorMiddleware
    from .web.endpoints import memory_app as memory_app
    from .web.recorder import RequestRecord as RequestRecord
    from .web.recorder import WebConfigError as WebConfigError
    from .web.wsgi import WSGIMemoryMonitorMiddleware as WSGIMemoryMonitorMiddleware

    cache_manager: CacheManager
    __version__: str
