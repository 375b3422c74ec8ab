"""The effective settings of a guarded run, resolved once from options, env and ini.

Each setting has one name: ``max`` is ``--memguard-max``, ini ``memguard_max`` and
environment ``MEMGUARD_MAX``.  Precedence, highest first: command line, environment,
ini, default (a marker, per test, beats them all).  Ini values are plain strings parsed
here, so a typo is a usage error that names the setting, never an internal error.
Imported only when the guard is on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

import pytest

from ..core.levels import MemoryThresholds
from ..core.sizes import parse_limit
from ..errors import SizeError, ThresholdError
from ..probe.system import read_system_memory
from .options import DEFAULT_TOP, lookup, parse_bool

if TYPE_CHECKING:
    from ..reporting.compare import Allowance

__all__ = ["DEFAULT_THRESHOLDS", "Settings", "resolve_paths", "resolve_settings"]

Mode = Literal["enforce", "report"]
MODES: Final = ("enforce", "report")
#: Process thresholds when none is given, as shares of the memory the process can use.
DEFAULT_THRESHOLDS: Final = {"warning": "70%", "critical": "80%", "max": "90%"}
#: The default limit on the sum of all xdist workers' RSS.
DEFAULT_AGGREGATE: Final = "90%"
_THRESHOLD_OPTION: Final = {"warning": "warn", "critical": "critical", "max": "max"}


class Settings(NamedTuple):
    """The effective configuration of one run.

    A named tuple rather than a dataclass: it is built once per run, and defining a
    dataclass would generate and compile its methods at every guarded run's start.
    """

    mode: Mode = "enforce"
    budget: int | None = None
    thresholds: MemoryThresholds = MemoryThresholds()
    json_path: Path | None = None
    top: int = DEFAULT_TOP
    #: Check every test for leaks; ``leak_budget`` None means the engine's default.
    leaks: bool = False
    leak_budget: int | None = None
    #: Bytes all xdist workers may use together (None: no limit).
    aggregate: int | None = None
    #: An earlier JSON report to compare each test with (None: no comparison).
    baseline: Path | None = None
    #: How much a test's figures may grow over the baseline's.
    #: (None: the default of ``compare.DEFAULT_ALLOWANCE``, parsed only when a baseline is used).
    max_increase: Allowance | None = None
    #: Pre-flight: bytes that must be available before a test starts (None: no check).
    min_free: int | None = None
    #: xdist: a worker whose RSS after a test is above this many bytes is replaced.
    recycle: int | None = None
    #: ``-n auto``: bytes each xdist worker is expected to need.
    worker_memory: int | None = None
    #: xdist: schedule tests by their predicted peaks (``--memguard-pack``).
    pack: bool = False
    #: The history files or reports packing takes its predictions from (none: pytest's
    #: cache), merged in order.
    history: tuple[Path, ...] = ()
    #: The history file the run merges its peaks into (None: none).
    history_save: Path | None = None
    #: Count other guarded runs on this machine (``--memguard-ledger``; on with packing).
    ledger: bool = False
    sources: Mapping[str, str] = MappingProxyType({})
    #: Where the self-contained HTML report goes (None: nowhere).
    html_path: Path | None = None
    #: Where the crash-proof records go (None: beside the JSON report, else a temporary
    #: folder; see :func:`records_folder`).
    records: Path | None = None

    @property
    def enforce(self) -> bool:
        """True when budgets fail tests (``enforce`` mode), False in ``report`` mode."""
        return self.mode == "enforce"

    def source(self, name: str) -> str:
        """Where setting ``name`` came from, e.g. ``--memguard-max`` or ``MEMGUARD_MAX``."""
        return self.sources.get(name, "default")

    def to_json(self) -> dict[str, object]:
        """The ``config`` section of the JSON report (the leak budget in effect when every
        test is checked: the default when none is set)."""
        leak_budget = self.leak_budget
        if leak_budget is None and self.leaks:
            from ..core.leaks import DEFAULT_LEAK_BUDGET

            leak_budget = DEFAULT_LEAK_BUDGET
        return {
            "mode": self.mode,
            "warning": self.thresholds.warning,
            "critical": self.thresholds.critical,
            "max": self.thresholds.max,
            "budget": self.budget,
            "leaks": self.leaks,
            "leak_budget": leak_budget,
            "aggregate": self.aggregate,
            "baseline": str(self.baseline) if self.baseline else None,
            "max_increase": self.max_increase.describe() if self.max_increase else None,
            "min_free": self.min_free,
            "recycle": self.recycle,
            "worker_memory": self.worker_memory,
            "pack": self.pack,
            "history": ", ".join(map(str, self.history)) if self.history else None,
            "history_save": str(self.history_save) if self.history_save else None,
            "ledger": self.ledger,
            "top": self.top,
            "json": str(self.json_path) if self.json_path else None,
            "html": str(self.html_path) if self.html_path else None,
            "records": str(self.records) if self.records else None,
            "sources": dict(self.sources),
        }


def _parse_int(raw: str, source: str) -> int:
    text = raw.strip()  # ASCII digits, as in sizes: int() takes fullwidth digits and "1_0"
    value = int(text) if text.isascii() and text.isdigit() and len(text) < 20 else -1
    if value < 0:
        raise pytest.UsageError(
            f"{source}: invalid number {raw!r} (expected a whole number >= 0, e.g. 10)"
        )
    return value


def _check_writable(path: Path, source: str) -> Path:
    """Fail now, not after an hour of tests, when the report cannot or must not be written
    (e.g. the path is a FIFO or a device: it is never replaced)."""
    from ..core.files import OutputPathError, check_output_path

    try:
        check_output_path(path)
    except OutputPathError as error:
        raise pytest.UsageError(
            f"{source}: cannot write the report to {str(path)!r} ({error.reason})"
        ) from None
    return path


def resolve_settings(config: pytest.Config) -> Settings:
    """Resolve every memguard setting of a guarded run (the guard is on); raises
    ``pytest.UsageError`` naming the bad one."""
    env = os.environ
    # Read at most once: the percentages of several settings are of the same total.
    memory_total = functools.cache(lambda: read_system_memory().total)
    sources: dict[str, str] = {"memguard": lookup(config, "", env)[1]}

    raw_mode, mode_source = lookup(config, "mode", env)
    mode = ("enforce" if raw_mode is None else raw_mode).strip().lower()
    if mode not in MODES:
        raise pytest.UsageError(
            f"{mode_source}: invalid mode {raw_mode!r} (expected enforce or report)"
        )
    sources["mode"] = mode_source

    budget = resolve_size_setting(config, "budget", sources)

    thresholds = _resolve_thresholds(config, env, sources, memory_total)

    raw_leaks, leaks_source = lookup(config, "leaks", env)
    leaks = raw_leaks is not None and parse_bool(raw_leaks, leaks_source)
    if raw_leaks is not None:
        sources["leaks"] = leaks_source
    aggregate = _resolve_aggregate(config, env, sources, memory_total)
    leak_budget, min_free, recycle, worker_memory = (
        resolve_size_setting(config, name, sources)
        for name in ("leak-budget", "min-free", "recycle", "worker-memory")
    )
    baseline, max_increase = _resolve_baseline(config, env, sources)
    raw_pack, pack_source = lookup(config, "pack", env)
    pack = raw_pack is not None and parse_bool(raw_pack, pack_source)
    if raw_pack is not None:
        sources["pack"] = pack_source
    history = resolve_paths(config, "history", env, sources)
    history_save = _resolve_history_save(config, env, sources)
    raw_ledger, ledger_source = lookup(config, "ledger", env)
    ledger = pack if raw_ledger is None else parse_bool(raw_ledger, ledger_source)
    if raw_ledger is not None:
        sources["ledger"] = ledger_source
    records = _resolve_path(config, "records", env, sources)

    json_path, html_path = (
        _resolve_output(config, name, env, sources) for name in ("json", "html")
    )

    raw_top, top_source = lookup(config, "top", env)
    top = DEFAULT_TOP if raw_top is None else _parse_int(raw_top, top_source)
    if raw_top is not None:
        sources["top"] = top_source
    return Settings(
        mode=mode,  # type: ignore[arg-type]
        budget=budget,
        thresholds=thresholds,
        json_path=json_path,
        top=top,
        leaks=leaks,
        leak_budget=leak_budget,
        aggregate=aggregate,
        baseline=baseline,
        max_increase=max_increase,
        min_free=min_free,
        recycle=recycle,
        worker_memory=worker_memory,
        pack=pack,
        history=history,
        history_save=history_save,
        ledger=ledger,
        sources=sources,
        html_path=html_path,
        records=records.absolute() if records is not None else None,
    )


def _resolve_output(
    config: pytest.Config, name: str, env: Mapping[str, str], sources: dict[str, str]
) -> Path | None:
    """The path of a report (``json``, ``html``), checked now."""
    raw, source = lookup(config, name, env)
    if raw is None:
        return None
    sources[name] = source
    return _check_writable(Path(raw).expanduser().absolute(), source)


def _resolve_thresholds(
    config: pytest.Config,
    env: Mapping[str, str],
    sources: dict[str, str],
    memory_total: Callable[[], int],
) -> MemoryThresholds:
    """Given thresholds win; a default that would sit above a given higher one is dropped."""
    given: dict[str, str] = {}
    labels: dict[str, str] = {}
    for name, option in _THRESHOLD_OPTION.items():
        raw, source = lookup(config, option, env)
        if raw is not None:
            given[name], labels[name] = raw, source
            sources[name] = source
    values: dict[str, str | None] = {}
    ceiling_given = False
    for name in reversed(list(_THRESHOLD_OPTION)):  # max, critical, warning
        if name in given:
            values[name] = given[name]
            ceiling_given = True
        else:
            values[name] = None if ceiling_given else DEFAULT_THRESHOLDS[name]
            labels[name] = f"default {DEFAULT_THRESHOLDS[name]}"
    try:
        return MemoryThresholds(
            values["warning"],
            values["critical"],
            values["max"],
            total=memory_total,
            sources=labels,
        )
    except (SizeError, ThresholdError) as error:
        raise pytest.UsageError(str(error)) from None


def _resolve_aggregate(
    config: pytest.Config,
    env: Mapping[str, str],
    sources: dict[str, str],
    memory_total: Callable[[], int],
) -> int | None:
    """The limit on the sum of the workers' RSS (xdist); ``none`` turns it off."""
    raw, source = lookup(config, "aggregate", env)
    if raw is None:
        raw, source = DEFAULT_AGGREGATE, f"default {DEFAULT_AGGREGATE}"
    sources["aggregate"] = source
    if raw.strip().lower() == "none":
        return None
    try:
        total = None
        if raw.strip().endswith("%"):
            total = memory_total()
        return parse_limit(raw, percent_of=total)
    except SizeError as error:
        raise pytest.UsageError(f"{source}: {error}") from None


def _resolve_baseline(
    config: pytest.Config, env: Mapping[str, str], sources: dict[str, str]
) -> tuple[Path | None, Allowance | None]:
    """The baseline report's path (an ini path is relative to the ini file) and the allowance.

    The comparison module is imported only when an allowance is given.
    """
    raw, source = lookup(config, "max-increase", env)
    allowance = None
    if raw is not None:
        from ..reporting.compare import parse_allowance

        try:
            allowance = parse_allowance(raw)
        except ValueError as error:
            raise pytest.UsageError(f"{source}: {error}") from None
        sources["max_increase"] = source
    return _resolve_path(config, "baseline", env, sources), allowance


def _resolve_path(
    config: pytest.Config, name: str, env: Mapping[str, str], sources: dict[str, str]
) -> Path | None:
    """The path setting ``name`` (an ini path is relative to the ini file), or None."""
    raw, source = lookup(config, name, env)
    if raw is None:
        return None
    sources[name] = source
    path = Path(raw).expanduser()
    if source.endswith("(ini)") and config.inipath is not None and not path.is_absolute():
        path = config.inipath.parent / path
    return path


def resolve_paths(
    config: pytest.Config, name: str, env: Mapping[str, str], sources: dict[str, str]
) -> tuple[Path, ...]:
    """The comma-separated paths of setting ``name`` (each as :func:`_resolve_path`)."""
    raw, source = lookup(config, name, env)
    if raw is None:
        return ()
    sources[name] = source
    paths = []
    for part in raw.split(","):
        if not part.strip():
            raise pytest.UsageError(
                f"{source}: empty path in {raw!r} (expected e.g. a.json or a.json,b.json)"
            )
        path = Path(part.strip()).expanduser()
        if source.endswith("(ini)") and config.inipath is not None and not path.is_absolute():
            path = config.inipath.parent / path
        paths.append(path)
    return tuple(paths)


def _resolve_history_save(
    config: pytest.Config, env: Mapping[str, str], sources: dict[str, str]
) -> Path | None:
    """The history file to write, checked now (it is written when the run ends)."""
    path = _resolve_path(config, "history-save", env, sources)
    if path is None:
        return None
    from ..core.files import OutputPathError, check_output_path

    source = sources["history-save"]
    sources["history_save"] = sources.pop("history-save")
    try:
        check_output_path(path)
    except OutputPathError as error:
        raise pytest.UsageError(
            f"{source}: cannot write the history to {str(path)!r} ({error.reason})"
        ) from None
    return path.absolute()


def resolve_size_setting(
    config: pytest.Config, name: str, sources: dict[str, str] | None = None
) -> int | None:
    """The size setting ``name`` (e.g. ``min-free``) in bytes, or None when not given.

    Every size setting is a limit, threshold or budget: at least one memory page.
    """
    raw, source = lookup(config, name, os.environ)
    if raw is None:
        return None
    try:
        value = parse_limit(raw)
    except SizeError as error:
        raise pytest.UsageError(f"{source}: {error}") from None
    if sources is not None:
        sources[name.replace("-", "_")] = source
    return value
