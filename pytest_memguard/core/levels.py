"""Memory levels and the thresholds that map an RSS to a level."""

from __future__ import annotations

import enum
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import SizeError, ThresholdError
from .sizes import format_size, parse_limit

__all__ = ["Level", "MemoryThresholds"]


class Level(enum.IntEnum):
    """Ordered memory levels: ``OK < WARNING < CRITICAL < ABORT``; compare with ``>=``."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    ABORT = 3

    def __str__(self) -> str:
        return self.name.lower()


_NAMES = ("warning", "critical", "max")


@dataclass(frozen=True, init=False)
class MemoryThresholds:
    """Warning, critical and hard (``max``) limits on RSS, in bytes; ``None`` disables one.

    Each value may be given as an int of bytes, a size string (``"2 GB"``) or a percentage
    (``"80%"``) of ``total`` bytes, by default the memory this process can really use
    (the cgroup limit when there is one).  Thresholds out of order, or below one memory
    page (:func:`~pytest_memguard.core.sizes.parse_limit`), are refused.
    """

    warning: int | None
    critical: int | None
    max: int | None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __init__(
        self,
        warning: int | str | None = None,
        critical: int | str | None = None,
        max: int | str | None = None,
        *,
        total: int | Callable[[], int] | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        names = dict(zip(_NAMES, (warning, critical, max), strict=True))
        labels = dict(sources or {})
        resolved: dict[str, int | None] = {}
        memory_total: int | None = total if isinstance(total, int) else None
        for name, value in names.items():
            if value is None:
                resolved[name] = None
                continue
            if isinstance(value, str) and value.strip().endswith("%") and memory_total is None:
                memory_total = total() if callable(total) else _usable_memory()
            try:
                resolved[name] = parse_limit(value, percent_of=memory_total or 1)
            except SizeError as error:
                label = labels.get(name, name)
                raise SizeError(f"{label}: {error}") from None
        order = [(n, resolved[n]) for n in _NAMES if resolved[n] is not None]
        for (low_name, low), (high_name, high) in itertools.pairwise(order):
            assert low is not None
            assert high is not None
            if low > high:
                raise ThresholdError(
                    f"{_shown(labels, low_name, names[low_name], low)} is above "
                    f"{_shown(labels, high_name, names[high_name], high)} "
                    "(expected warning <= critical <= max, e.g. 2GB, 3GB, 4GB)"
                )
        object.__setattr__(self, "warning", resolved["warning"])
        object.__setattr__(self, "critical", resolved["critical"])
        object.__setattr__(self, "max", resolved["max"])
        object.__setattr__(self, "sources", labels)

    def level(self, rss: int) -> Level:
        """The level of ``rss`` bytes: ABORT at or above ``max``, then CRITICAL, WARNING, OK."""
        if self.max is not None and rss >= self.max:
            return Level.ABORT
        if self.critical is not None and rss >= self.critical:
            return Level.CRITICAL
        if self.warning is not None and rss >= self.warning:
            return Level.WARNING
        return Level.OK

    def limit_of(self, level: Level) -> int | None:
        """The threshold in bytes at which ``level`` starts, or None."""
        return {
            Level.WARNING: self.warning,
            Level.CRITICAL: self.critical,
            Level.ABORT: self.max,
        }.get(level)

    def describe(self) -> str:
        """``"warning 1.0 GiB, critical 2.0 GiB, max 4.0 GiB"``, for headers and messages."""
        return ", ".join(f"{n} {format_size(getattr(self, n))}" for n in _NAMES)

    @classmethod
    def from_env(
        cls,
        prefix: str = "MEMGUARD_",
        default: MemoryThresholds | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> MemoryThresholds:
        """Thresholds from ``{prefix}WARN``, ``{prefix}CRITICAL`` and ``{prefix}MAX``.

        Variables that are unset or empty keep the value of ``default``, but a default
        that would be above a higher threshold set, or below a lower one, is dropped
        (``MEMGUARD_MAX=1GB`` alone leaves no critical threshold of 2 GB above it).
        Errors name the variable: ``MEMGUARD_MAX: invalid size '4 apples' (expected e.g.
        4GB or 3.5GiB)``.
        """
        env = os.environ if environ is None else environ
        base = default or cls()
        keys = {"warning": f"{prefix}WARN", "critical": f"{prefix}CRITICAL", "max": f"{prefix}MAX"}
        given = {name: env.get(key, "").strip() for name, key in keys.items()}
        given = {name: raw for name, raw in given.items() if raw}
        labels = {name: keys[name] for name in given}
        chosen = cls(**given, sources=labels)  # type: ignore[arg-type]
        values: dict[str, int | str | None] = dict(given)
        for index, name in enumerate(_NAMES):
            if name in given:
                continue
            value = getattr(base, name)
            lower = [getattr(chosen, low) for low in _NAMES[:index] if low in given]
            higher = [getattr(chosen, high) for high in _NAMES[index + 1 :] if high in given]
            if value is not None and (
                any(value < low for low in lower) or any(value > high for high in higher)
            ):
                value = None
            values[name], labels[name] = value, base.sources.get(name, name)
        return cls(values["warning"], values["critical"], values["max"], sources=labels)


def _shown(labels: Mapping[str, str], name: str, raw: int | str | None, value: int) -> str:
    if isinstance(raw, str):
        return f"{labels.get(name, name)} {raw!r} ({format_size(value)})"
    return f"{labels.get(name, name)} {format_size(value)}"


def _usable_memory() -> int:
    from ..probe.system import read_system_memory

    return read_system_memory().total
