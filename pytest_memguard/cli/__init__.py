"""The ``memguard`` console script: ``main(argv) -> int``.

Subcommands: ``show`` and ``diff`` (JSON reports), ``run`` (guard a command), ``recover``
(the report of a killed run, from its records), ``history`` (show, prune and merge the
history file of ``--memguard-history-save``), ``status``
and ``diagnostics`` (this machine, this process), ``profile``, ``cleanup`` and
``configure`` (a running service's memory endpoints).  Nothing here calls ``sys.exit``:
usage errors return 2, ``--help`` returns 0, and each subcommand documents its own codes.
No pytest import: the CLI stands on the library, the engine and the probe.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .common import CommandError

__all__ = ["build_parser", "main"]


class _Exit(Exception):
    """argparse wanted to exit (usage error or ``--help``) with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that returns to :func:`main` instead of exiting the interpreter."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


class _Version(argparse.Action):
    """``--version``, the version read from the package's metadata only when asked for it."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser._print_message(f"{parser.prog} {_version()}\n", sys.stdout)
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-memguard")
    except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``memguard`` parser with its subcommands."""
    from . import histories, machine, recover, remote, reports, run

    parser = _Parser(
        prog="memguard",
        description="Memory reports, regressions and guarded commands (pytest-memguard).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="show program's version number and exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    reports.add_parsers(commands)
    run.add_parser(commands)
    recover.add_parser(commands)
    histories.add_parser(commands)
    machine.add_parsers(commands)
    remote.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``memguard`` command line with ``argv`` (default ``sys.argv[1:]``).

    :returns: the exit status; 2 for usage errors and unreadable reports
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except _Exit as done:
        return done.status
    try:
        return int(args.handler(args))
    except CommandError as error:
        print(f"memguard {args.command}: error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("memguard: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `memguard show r.json | head`: the reader left
        return 1
