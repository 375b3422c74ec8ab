"""``memguard show``, ``diff`` and ``merge`` given a file that is not a report they can
read: one line naming it and exit 2, never a traceback, never a wait on a FIFO."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_memguard.cli import main
from tests.cli.reports import make_test, write_report

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs")


def _nested(path: Path) -> str:
    path.write_text("[" * 100_000)
    return "not valid JSON (nested too deeply)"


def _bad_utf8(path: Path) -> str:
    path.write_bytes(b'{"schema": "\xff"}')
    return "not valid UTF-8 (byte 12)"


def _fifo(path: Path) -> str:
    os.mkfifo(path)  # no writer ever opens it: a read that waited would never end
    return "it is a FIFO (named pipe), not a regular file"


def _folder(path: Path) -> str:
    path.mkdir()
    return "it is a directory"


@pytest.mark.parametrize("make", [_nested, _bad_utf8, _fifo, _folder])
@pytest.mark.parametrize("command", ["show", "diff-base", "diff-new", "show-baseline", "merge"])
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], str],
    command: str,
) -> None:
    good = write_report(tmp_path / "good.json", make_test("t.py::a"))
    bad = tmp_path / "bad.json"
    reason = make(bad)
    argv = {
        "show": ["show", str(bad)],
        "diff-base": ["diff", str(bad), good],
        "diff-new": ["diff", good, str(bad)],
        "show-baseline": ["show", good, "--format", "html", "--baseline", str(bad)],
        "merge": ["merge", good, str(bad), "-o", str(tmp_path / "merged.json")],
    }[command]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err == f"memguard {argv[0]}: error: {bad}: {reason}\n"
    assert out == ""
