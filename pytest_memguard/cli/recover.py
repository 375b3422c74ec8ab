"""``memguard recover``: the report of a run that was killed before it wrote its own.

Exit status: 0 when the report was written; 2 when the folder holds no records, no
output path is known, or an output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import CommandError

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``recover``."""
    recover = commands.add_parser(
        "recover",
        help="Write the report of a killed run from its crash-proof records",
        description="A guarded pytest run keeps crash-proof records while it runs (in the "
        "folder of --memguard-records; by default beside the JSON report, e.g. "
        "memguard.records for memguard.json) and removes them once it has written its "
        "report. When the run was killed first (SIGKILL, the OOM killer), they are left "
        "behind: this writes the report they hold, with every test that finished, the "
        "test that was running as killed with the highest RSS recorded, and the rest as "
        "not run.",
        allow_abbrev=False,
    )
    recover.add_argument("folder", metavar="FOLDER", help="The records folder of the run")
    recover.add_argument(
        "--json",
        metavar="PATH",
        help="Where the JSON report goes (default: where the run would have written it)",
    )
    recover.add_argument(
        "--html",
        metavar="PATH",
        help="Also write the HTML page (default: where the run would have written it, if any)",
    )
    recover.set_defaults(handler=_recover)


def _recover(args: argparse.Namespace) -> int:
    from ..core.files import reason_of
    from ..reporting.recovery import RecoveryError, recover_report
    from ..reporting.report import write_report

    folder = Path(args.folder)
    try:
        report = recover_report(folder)
    except RecoveryError as error:
        raise CommandError(str(error)) from None
    config = report["config"]
    json_path = args.json or config.get("json")
    html_path = args.html or config.get("html")
    if not json_path and not html_path:
        raise CommandError(
            f"{folder}: the run wrote no report to a file: say where with --json PATH"
        )
    written = []
    try:
        if json_path:
            written.append(str(write_report(report, json_path)))
        if html_path:
            from ..core.files import write_atomically
            from ..reporting.html_report import render_html

            written.append(str(write_atomically(html_path, render_html(report, None))))
    except OSError as error:  # OutputPathError too
        raise CommandError(f"cannot write the report ({reason_of(error)})") from None
    summary = report["summary"]
    killed = [t["nodeid"] for t in report["tests"] if t["status"] in ("killed", "aborted")]
    running = f"; killed while running: {', '.join(killed)}" if killed else ""
    print(
        f"memguard: recovered {summary['tests']} test(s) from {folder}"
        f" ({summary['statuses']['not_run']} not run){running}",
        file=sys.stderr,
    )
    for path in written:
        print(f"memguard: report written to {path}", file=sys.stderr)
    return 0
