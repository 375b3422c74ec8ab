"""Exceptions raised by pytest-memguard; all share the base :class:`MemguardError`.

``MemguardError`` itself derives from ``BaseException`` so that one of its children,
:class:`MemoryLimitExceeded`, can stop a runaway test through ``except Exception``.
Every other error also derives from ``Exception`` (and from the matching builtin, such
as ``ValueError``), so ordinary ``except Exception`` handling keeps working for them.
"""

from __future__ import annotations

__all__ = [
    "MemguardError",
    "MemoryBudgetExceeded",
    "MemoryLeakDetected",
    "MemoryLimitExceeded",
    "SizeError",
    "ThresholdError",
]


class MemguardError(BaseException):
    """Base class of every error pytest-memguard raises on purpose."""


class SizeError(MemguardError, ValueError):
    """A size or percentage that cannot be parsed; the message quotes it and shows a valid form."""


class ThresholdError(MemguardError, ValueError):
    """Thresholds that make no sense together (e.g. warning above max)."""


class MemoryBudgetExceeded(MemguardError, Exception):
    """A unit of work used more memory than its budget allowed."""


class MemoryLeakDetected(MemguardError, Exception):
    """A unit of work kept memory it should have released."""


class MemoryLimitExceeded(MemguardError):
    """The process passed its hard limit; raised inside the running work to stop it.

    Not an ``Exception``: like ``KeyboardInterrupt`` it passes through
    ``except Exception`` in the code under test.

    :param rss: the resident set size, in bytes, that passed the limit
    :param limit: the hard limit in bytes
    :param source: where the limit came from (e.g. ``--memguard-max``)
    """

    def __init__(self, message: str, *, rss: int = 0, limit: int = 0, source: str = "") -> None:
        super().__init__(message)
        self.rss = rss
        self.limit = limit
        self.source = source
