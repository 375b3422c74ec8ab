"""What the subcommands share: argument types, the command error, report loading."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, Final

from ..compare import Allowance, AllowanceError, parse_allowance, report_tests
from ..core.sizes import parse_size
from ..errors import SizeError
from ..report import ReportError, load_report

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
    """A size (``4GB``) or a percentage of usable memory (``80%``); kept as written."""
    try:
        parse_size(value, percent_of=100)
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
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(
            f"invalid count {value!r} (expected a whole number >= 0, e.g. 10)"
        )
    return number


def seconds(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    """A type for a number of seconds above (or at) ``minimum``."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def parse(value: str) -> float:
        try:
            number = float(value)
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
        report_tests(report)
    except ReportError as error:
        text = str(error)
        raise CommandError(text if text.startswith(f"{path}:") else f"{path}: {text}") from None
    return report
