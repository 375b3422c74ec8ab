"""``memguard history show|prune|merge``: the history file a project commits or caches
(``--memguard-history-save``), read, trimmed and merged from shards.

Exit status 0 when done, 2 for usage errors and files that cannot be read or written
(as ``memguard show`` and ``diff``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from fnmatch import fnmatchcase
from typing import Any, Final

from ..core.sizes import format_size
from ..reporting.history import HistoryError
from ..reporting.historyfile import HistoryFile, load_histories, load_history_file
from .common import CommandError, count

__all__ = ["add_parser"]

#: Dropped tests named one a line before the rest are counted.
_LISTED: Final = 20


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``history`` and its subcommands."""
    history = commands.add_parser(
        "history",
        help="Show, prune and merge the history file of --memguard-history-save",
        description="The history file a project commits or caches in CI: each test's "
        "measured peak, read by --memguard-history.",
        allow_abbrev=False,
    )
    actions = history.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="How many tests, the heaviest, the median",
        description="Summarise a history file (or a JSON report): its tests, the heaviest "
        "by peak (growth + children), the median, the file's size and age.",
        allow_abbrev=False,
    )
    show.add_argument("file", metavar="FILE", help="A history file or a JSON report")
    show.add_argument(
        "--top",
        type=count,
        default=10,
        metavar="N",
        help="Heaviest tests to list (0: all; default 10)",
    )
    show.add_argument("--json", action="store_true", help="Print JSON (bytes)")
    show.set_defaults(handler=_show)

    prune = actions.add_parser(
        "prune",
        help="Drop tests that no longer exist",
        description="Drop tests from a history file, in place, and list them: those not in "
        "--keep-tests, those matching --drop, all but the --max measured last.",
        allow_abbrev=False,
    )
    prune.add_argument("file", metavar="FILE", help="A history file (rewritten)")
    prune.add_argument(
        "--keep-tests",
        action="append",
        default=[],
        metavar="FROM",
        help="Keep only the tests of FROM: a JSON report, a history file, or the text of "
        "`pytest --collect-only -q` (node ids one a line); may be repeated",
    )
    prune.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Drop the tests whose node id matches this glob (e.g. 'tests/old/*'); may be repeated",
    )
    prune.add_argument(
        "--max", type=count, metavar="N", help="Keep at most N tests, those measured last"
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="Say what would be dropped; write nothing"
    )
    prune.set_defaults(handler=_prune)

    merge = actions.add_parser(
        "merge",
        help="Merge shards' history files or reports into one",
        description="Write OUT with the tests of every IN (history files or JSON reports), "
        "in order: a test already taken takes a later IN's figures when they were measured "
        "later and moved past 10% and 1 MiB. OUT is replaced: name it first among the INs "
        "to keep its tests and rewrite only what changed.",
        allow_abbrev=False,
    )
    merge.add_argument("out", metavar="OUT", help="The history file to write")
    merge.add_argument("inputs", metavar="IN", nargs="+", help="History files or JSON reports")
    merge.set_defaults(handler=_merge)


def _loaded(path: str, *, reports: bool = True) -> HistoryFile:
    try:
        return load_history_file(path, reports=reports)
    except HistoryError as error:
        raise CommandError(str(error)) from None


def _write(path: str, history: HistoryFile) -> None:
    """Replace ``path`` with ``history`` (atomically); a file there that is not a history
    is never replaced."""
    from ..core.files import write_atomically

    if os.path.exists(path):
        _loaded(path, reports=False)
    try:
        write_atomically(path, history.encode())
    except OSError as error:
        from ..core.files import reason_of

        raise CommandError(f"{path}: cannot write it ({reason_of(error)})") from None


def _show(args: argparse.Namespace) -> int:
    history = _loaded(args.file)
    found = os.stat(args.file)
    order = sorted(history.items(), key=lambda item: (-item[1].peak.total, item[0]))
    heaviest = order[: args.top or len(order)]
    totals = [record.peak.total for record in history.values()]
    stamps = sorted(record.measured for record in history.values() if record.measured)
    summary = {
        "file": args.file,
        "tests": len(history),
        "bytes": found.st_size,
        "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.st_mtime)),
        "median_peak": int(statistics.median(totals)) if totals else None,
        "measured": [stamps[0], stamps[-1]] if stamps else None,
        "dropped": history.dropped,
        "heaviest": [
            {
                "nodeid": nodeid,
                "peak": record.peak.total,
                "growth": record.peak.growth,
                "children": record.peak.children,
                "rss_start": record.peak.rss_start,
                "measured": record.measured or None,
            }
            for nodeid, record in heaviest
        ],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    age = _age(time.time() - found.st_mtime)
    print(f"{args.file}: {len(history)} test(s), {format_size(found.st_size)}, written {age} ago")
    if stamps:
        print(f"measured: {stamps[0]} to {stamps[-1]}")
    if history.dropped:
        print(f"not understood, left out: {history.dropped} entry(ies)")
    print(f"median peak: {format_size(summary['median_peak'])}")
    if heaviest:
        print(f"heaviest {len(heaviest)} (peak = growth + children):")
        width = max(len(format_size(record.peak.total)) for _, record in heaviest)
        for nodeid, record in heaviest:
            print(f"  {format_size(record.peak.total):>{width}}  {nodeid}")
    return 0


def _age(seconds: float) -> str:
    """``seconds`` for people: 42 s, 5 min, 3 h, 12 days."""
    seconds = max(0.0, seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


@contextmanager
def _turn(path: str) -> Iterator[None]:
    """Hold the history file's lock while it is read, changed and written: a run saving
    it meanwhile waits, and loses nothing."""
    from ..core.files import locked, reason_of
    from ..reporting.historyfile import LOCK_TIMEOUT, lock_path

    with ExitStack() as stack:
        try:
            stack.enter_context(locked(lock_path(path), LOCK_TIMEOUT))
        except OSError as error:  # TimeoutError too
            raise CommandError(f"{path}: cannot take its lock ({reason_of(error)})") from None
        yield


def _prune(args: argparse.Namespace) -> int:
    if not (args.keep_tests or args.drop or args.max is not None):
        raise CommandError("nothing to prune by (give --keep-tests, --drop or --max)")
    with _turn(args.file):
        return _pruned(args)


def _pruned(args: argparse.Namespace) -> int:
    history = _loaded(args.file, reports=False)
    total = len(history)
    reasons: dict[str, str] = {}
    if args.keep_tests:
        wanted: set[str] = set()
        for source in args.keep_tests:
            wanted.update(_node_ids(source))
        gone = [nodeid for nodeid in history if nodeid not in wanted]
        reasons.update(dict.fromkeys(history.drop(gone), "not in --keep-tests"))
    for pattern in args.drop:
        matching = [nodeid for nodeid in history if fnmatchcase(nodeid, pattern)]
        reasons.update(dict.fromkeys(history.drop(matching), f"matches {pattern!r}"))
    if args.max is not None:
        reasons.update(dict.fromkeys(history.keep(args.max), f"beyond --max {args.max}"))
    verb = "would drop" if args.dry_run else "dropped"
    print(f"{args.file}: {verb} {len(reasons)} of {total} test(s), {len(history)} kept")
    for nodeid, why in list(reasons.items())[:_LISTED]:
        print(f"  {nodeid}  ({why})")
    if len(reasons) > _LISTED:
        print(f"  ... and {len(reasons) - _LISTED} more")
    if reasons and not args.dry_run:
        _write(args.file, history)
    return 0


def _node_ids(source: str) -> list[str]:
    """The node ids of a report (every test entry, measured or not), a history file, or a
    text of node ids one a line (``pytest --collect-only -q``: its other lines have no
    ``::``); :class:`CommandError` when there are none."""
    from ..core.files import InputFileError, read_text
    from ..reporting.historyfile import HISTORY_SCHEMA
    from ..reporting.report import SCHEMA

    try:
        text = read_text(source)
    except InputFileError as error:
        raise CommandError(f"--keep-tests: {error}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as error:
            raise CommandError(f"--keep-tests: {source}: not valid JSON ({error})") from None
        tests = data.get("tests") if isinstance(data, dict) else None
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema == SCHEMA and isinstance(tests, list):
            found = [t["nodeid"] for t in tests if isinstance(t, dict) and "nodeid" in t]
        elif schema == HISTORY_SCHEMA and isinstance(tests, dict):
            found = list(tests)
        else:
            found = []
    else:
        found = [line.strip() for line in text.splitlines() if "::" in line]
    if not found:
        raise CommandError(
            f"--keep-tests: {source}: no node ids in it (expected a JSON report, a history"
            " file, or node ids one a line, as `pytest --collect-only -q` prints them)"
        )
    return [str(nodeid) for nodeid in found]


def _merge(args: argparse.Namespace) -> int:
    with _turn(args.out):
        try:
            merged = load_histories(args.inputs)
        except HistoryError as error:
            raise CommandError(str(error)) from None
        _write(args.out, merged)
    note = f" ({merged.dropped} entry(ies) not understood, left out)" if merged.dropped else ""
    print(f"{args.out}: {len(merged)} test(s) from {len(args.inputs)} file(s){note}")
    return 0
