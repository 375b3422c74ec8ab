"""``memguard show``, ``memguard diff`` and ``memguard merge``: read JSON reports, print
tables (the status words of ``show`` coloured on a terminal; ``NO_COLOR`` and
``FORCE_COLOR`` are honoured), merge the reports of a suite's shards into one."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, Final, TextIO

from ..core.sizes import format_size
from ..reporting.compare import DEFAULT_ALLOWANCE, diff_figures, entry_figures, parse_allowance
from ..reporting.render import FORMATS, SORTS, render_diff, render_report, summary_line
from ..reporting.results import FAILING_STATUSES
from .common import CommandError, allowance, count, load

__all__ = ["EXIT_REGRESSION", "add_parsers", "colour_wanted"]

#: ``memguard diff``: a test grew past the allowed increase.
EXIT_REGRESSION: Final = 1


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``show``, ``diff`` and ``merge``."""
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

    merge = commands.add_parser(
        "merge",
        help="One report from the reports of a suite's shards",
        description="Merge the JSON reports of the shards of a suite (e.g. pytest-split's "
        "groups on several CI runners) into one report with every test once, each test "
        "naming its shard. A shard is named after its file (memguard-2.json: memguard-2) "
        "unless given as NAME=PATH. A test in two shards keeps its run over a not-run "
        "entry, else the result of the shard given last.",
        allow_abbrev=False,
    )
    merge.add_argument(
        "shards",
        nargs="+",
        metavar="SHARD",
        help="A shard's report written by --memguard-json, as PATH or NAME=PATH",
    )
    merge.add_argument("-o", "--output", metavar="PATH", help="Write the merged JSON report here")
    merge.add_argument("--html", metavar="PATH", help="Write the merged report's HTML page here")
    merge.set_defaults(handler=_merge)


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


def _shard_arg(text: str) -> tuple[str, str]:
    """A ``merge`` argument as (name, path): ``NAME=PATH``, or a path named by its file."""
    from ..reporting.merge import shard_name

    name, equals, path = text.partition("=")
    if equals and name and "/" not in name and os.sep not in name and not Path(text).exists():
        return name, path
    return shard_name(text), text


def _shard_line(name: str, report: Mapping[str, Any], width: int) -> str:
    tests = report["tests"]
    failed = sum(1 for t in tests if t["outcome"] in ("failed", "error"))
    memory = sum(1 for t in tests if t["status"] in FAILING_STATUSES)
    not_run = sum(1 for t in tests if t["status"] == "not_run")
    summary = report.get("summary")
    peak = summary.get("peak_rss") if isinstance(summary, Mapping) else None
    words = [f"{len(tests)} tests", f"{failed} failed", f"{memory} memory failures"]
    if not_run:
        words.append(f"{not_run} not run")
    words.append(f"peak RSS {format_size(peak if isinstance(peak, int) else None)}")
    interrupted = ", interrupted" if report.get("interrupted") is True else ""
    return f"  {name:<{width}}  {', '.join(words)}{interrupted}"


@_paused
def _merge(args: argparse.Namespace) -> int:
    from ..core.files import check_output_path, reason_of, write_atomically
    from ..reporting.merge import MergeError, Shard, merge_reports
    from ..reporting.report import write_report

    outputs = [path for path in (args.output, args.html) if path]
    if not outputs:
        raise CommandError("say where to write the merged report: -o PATH or --html PATH")
    try:
        for path in outputs:  # before the work: a typo is not found after minutes of it
            check_output_path(path)
    except OSError as error:
        raise CommandError(f"cannot write the report ({reason_of(error)})") from None
    shards = [Shard(name, load(path), path) for name, path in map(_shard_arg, args.shards)]
    try:
        merged = merge_reports(shards)
    except MergeError as error:
        raise CommandError(str(error)) from None
    written = []
    try:
        if args.output:
            written.append(write_report(merged.report, args.output))
        if args.html:
            from ..reporting.html_report import render_html

            written.append(write_atomically(args.html, render_html(merged.report, None)))
    except OSError as error:  # OutputPathError too
        raise CommandError(f"cannot write the report ({reason_of(error)})") from None
    width = max(len(shard.name) for shard in shards)
    print(f"memguard merge: {len(shards)} shard(s)")
    for shard in shards:
        print(_shard_line(shard.name, shard.report, width))
    print(summary_line(merged.report))
    for notice in merged.notices:
        print(f"note: {notice}")
    for path in written:
        print(f"memguard: report written to {path}")
    return 0
