"""What the subcommands share: argument types, the command error, report loading."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, Final

from ..core.sizes import MAX_SIZE, parse_limit
from ..errors import SizeError
from ..reporting.compare import Allowance, AllowanceError, checked_entries, parse_allowance
from ..reporting.report import ReportError, load_report

__all__ = [
    "EXIT_ERROR",
    "CommandError",
    "allowance",
    "count",
    "load",
    "seconds",
    "threshold",
]

#: Usage errors, unreadable reports, bad settings.
EXIT_ERROR: Final = 2


class CommandError(Exception):
    """A problem the user can act on: printed as one line, ``main`` returns ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def threshold(value: str) -> str:
    """A size (``4GB``) or a percentage of usable memory (``80%``); kept as written.

    The rules of every limit (at least one memory page); a percentage's share is checked
    when the command starts and reads the memory it is a share of.
    """
    try:
        parse_limit(value, percent_of=MAX_SIZE)
    except SizeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def allowance(value: str) -> Allowance:
    """``10%``, ``50MB`` or ``10%+8MB``."""
    try:
        return parse_allowance(value)
    except AllowanceError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def count(value: str) -> int:
    """A whole number >= 0."""
    text = value.strip()  # ASCII digits, as in sizes: int() takes fullwidth digits and "1_0"
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 20 else -1
    if number < 0:
        raise argparse.ArgumentTypeError(
            f"invalid count {value!r} (expected a whole number >= 0, e.g. 10)"
        )
    return number


def seconds(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    """A type for a number of seconds above (or at) ``minimum``."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def parse(value: str) -> float:
        try:  # ASCII, as in sizes: float() takes fullwidth digits and "1_0"
            number = float(value) if value.isascii() and "_" not in value else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < minimum or (number == minimum and not inclusive):
            raise argparse.ArgumentTypeError(
                f"invalid seconds {value!r} (expected a number {bound}, e.g. 0.5)"
            )
        return number

    return parse


def load(path: str) -> dict[str, Any]:
    """A report, checked; :class:`CommandError` names the file and what is wrong."""
    try:
        report = load_report(path)
        checked_entries(report)
    except ReportError as error:
        text = str(error)
        raise CommandError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    return report
