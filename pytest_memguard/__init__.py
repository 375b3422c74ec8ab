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
    "Allowance": ".compare",
    "AllowanceError": ".compare",
    "ReportDiff": ".compare",
    "diff_reports": ".compare",
    "parse_allowance": ".compare",
    "render_report": ".render",
    "Site": ".core.sites",
    "TestMemory": ".results",
    # library
    "AutomaticError": ".automatic",
    "start_memory_cleanup": ".lifespan",
    "stop_memory_cleanup": ".lifespan",
    "BoundedDict": ".bounded",
    "BoundedError": ".bounded",
    "BoundedList": ".bounded",
    "MetricsCollector": ".bounded",
    "SingletonMeta": ".bounded",
    "AgentSingleton": ".singletons",
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


if TYPE_CHECKING:  # the "X as X" form marks each name as re-exported
    from .automatic import AutomaticError as AutomaticError
    from .bounded import BoundedDict as BoundedDict
    from .bounded import BoundedError as BoundedError
    from .bounded import BoundedList as BoundedList
    from .bounded import MetricsCollector as MetricsCollector
    from .bounded import SingletonMeta as SingletonMeta
    from .cache import BoundedCache as BoundedCache
    from .cache import CacheError as CacheError
    from .cache import CacheExistsError as CacheExistsError
    from .cache import CacheManager as CacheManager
    from .cache import CacheMetrics as CacheMetrics
    from .cache import deep_sizeof as deep_sizeof
    from .cache import get_cache_manager as get_cache_manager
    from .compare import Allowance as Allowance
    from .compare import AllowanceError as AllowanceError
    from .compare import ReportDiff as ReportDiff
    from .compare import diff_reports as diff_reports
    from .compare import parse_allowance as parse_allowance
    from .core.guard import AbortInfo as AbortInfo
    from .core.guard import Guard as Guard
    from .core.guard import LevelEvent as LevelEvent
    from .core.levels import Level as Level
    from .core.levels import MemoryThresholds as MemoryThresholds
    from .core.sites import Site as Site
    from .core.sizes import format_size as format_size
    from .core.sizes import parse_size as parse_size
    from .diagnostics import AllocationSite as AllocationSite
    from .diagnostics import LeakCandidate as LeakCandidate
    from .diagnostics import MemoryDiagnostics as MemoryDiagnostics
    from .errors import MemguardError as MemguardError
    from .errors import MemoryBudgetExceeded as MemoryBudgetExceeded
    from .errors import MemoryLeakDetected as MemoryLeakDetected
    from .errors import MemoryLimitExceeded as MemoryLimitExceeded
    from .errors import SizeError as SizeError
    from .errors import ThresholdError as ThresholdError
    from .lifespan import start_memory_cleanup as start_memory_cleanup
    from .lifespan import stop_memory_cleanup as stop_memory_cleanup
    from .monitor import MonitorError as MonitorError
    from .monitor import MonitorEvent as MonitorEvent
    from .monitor import ProcessGoneError as ProcessGoneError
    from .monitor import ProcessMonitor as ProcessMonitor
    from .monitor import UnknownProcessError as UnknownProcessError
    from .pressure import HandlerExistsError as HandlerExistsError
    from .pressure import MemoryPressureCoordinator as MemoryPressureCoordinator
    from .pressure import PressureError as PressureError
    from .pressure import PressureResponse as PressureResponse
    from .pressure import get_memory_pressure_coordinator as get_memory_pressure_coordinator
    from .probe.process import current_rss as current_rss
    from .probe.process import open_peak_meter as open_peak_meter
    from .probe.process import rss_of as rss_of
    from .probe.system import SystemMemory as SystemMemory
    from .probe.system import read_pressure as read_pressure
    from .probe.system import read_system_memory as read_system_memory
    from .render import render_report as render_report
    from .report import SCHEMA as SCHEMA
    from .report import ReportError as ReportError
    from .report import load_report as load_report
    from .report import load_schema as load_schema
    from .results import Budget as Budget
    from .results import TestMemory as TestMemory
    from .singletons import AgentSingleton as AgentSingleton
    from .web.asgi import MemoryMonitorMiddleware as MemoryMonitorMiddleware
    from .web.endpoints import memory_app as memory_app
    from .web.recorder import RequestRecord as RequestRecord
    from .web.recorder import WebConfigError as WebConfigError
    from .web.wsgi import WSGIMemoryMonitorMiddleware as WSGIMemoryMonitorMiddleware

    cache_manager: CacheManager
    __version__: str
