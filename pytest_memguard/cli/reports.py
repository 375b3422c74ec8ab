"""``memguard show`` and ``memguard diff``: read JSON reports, print tables (the status
words of ``show`` coloured on a terminal; ``NO_COLOR`` and ``FORCE_COLOR`` are honoured)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, TextIO

from ..reporting.compare import DEFAULT_ALLOWANCE, diff_figures, entry_figures, parse_allowance
from ..reporting.render import FORMATS, SORTS, render_diff, render_report
from .common import allowance, count, load

__all__ = ["EXIT_REGRESSION", "add_parsers", "colour_wanted"]

#: ``memguard diff``: a test grew past the allowed increase.
EXIT_REGRESSION: Final = 1


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``show`` and ``diff``."""
    show = commands.add_parser(
        "show",
        help="The heaviest tests of a JSON report",
        description="List the heaviest tests of a pytest-memguard JSON report; memory "
        "failures are marked (M) and listed with their messages.",
        allow_abbrev=False,
    )
    show.add_argument("report", metavar="REPORT", help="A report written by --memguard-json")
    show.add_argument(
        "--top", type=count, default=20, metavar="N", help="Rows to show (0: all; default 20)"
    )
    show.add_argument("--sort", choices=SORTS, default="peak", help="Order, largest first")
    show.add_argument(
        "--format",
        choices=(*FORMATS, "html"),
        default="table",
        help="Output format (html: the self-contained page of --memguard-html, every test)",
    )
    show.add_argument(
        "--baseline",
        metavar="BASE",
        help="With --format html: show each test's change of peak growth against this report",
    )
    show.set_defaults(handler=_show)

    diff = commands.add_parser(
        "diff",
        help="Per-test memory changes between two reports",
        description="Compare peak growth, heap peak and leaked memory per test. Exit status 1 "
        "when a test grew past the allowed increase, 0 otherwise. Figures a report did not "
        "measure are never regressions.",
        allow_abbrev=False,
    )
    diff.add_argument("base", metavar="BASE", help="The baseline report (e.g. from main)")
    diff.add_argument("new", metavar="NEW", help="The report to check")
    diff.add_argument(
        "--max-increase",
        type=allowance,
        default=parse_allowance(DEFAULT_ALLOWANCE),
        metavar="ALLOWED",
        help="Allowed growth per figure: 10%%, 50MB, or 10%%+8MB (past both) "
        f"(default {DEFAULT_ALLOWANCE})",
    )
    diff.add_argument("--format", choices=FORMATS, default="table", help="Output format")
    diff.add_argument(
        "--all", action="store_true", help="Also list tests within the allowed increase"
    )
    diff.set_defaults(handler=_diff)


def _paused(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with the cyclic garbage collector paused while it runs.

    A report of tens of thousands of tests decodes into millions of objects, and the
    collections that their allocations set off walk all of them again and again
    (benchmarks/report_speed.py); the commands make no cycles to free.
    """

    @wraps(command)
    def run(args: argparse.Namespace) -> int:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return command(args)
        finally:
            if enabled:
                gc.enable()

    return run


@_paused
def _show(args: argparse.Namespace) -> int:
    report = load(args.report)
    if args.format == "html":
        from ..reporting.html_report import render_html

        baseline = load(args.baseline) if args.baseline else None
        sys.stdout.write(render_html(report, baseline))
        return 0
    colour = args.format == "table" and colour_wanted(sys.stdout)
    text = render_report(report, args.format, sort=args.sort, top=args.top, colour=colour)
    print(text, file=sys.stdout)
    return 0


def colour_wanted(stream: TextIO) -> bool:
    """Whether to colour text for ``stream``, as pytest decides: ``NO_COLOR`` (set and not
    empty) says no, then ``FORCE_COLOR`` says yes; else only a terminal that is not ``dumb``.
    """
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and os.environ.get("TERM") != "dumb"


@_paused
def _diff(args: argparse.Namespace) -> int:
    base, new = load(args.base), load(args.new)  # each checked once, here
    result = diff_figures(
        entry_figures(base["tests"]), entry_figures(new["tests"]), args.max_increase
    )
    print(render_diff(result, args.format, everything=args.all), file=sys.stdout)
    return 0 if result.ok else EXIT_REGRESSION
