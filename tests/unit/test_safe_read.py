"""The rules for every file memguard reads: a regular file only (a FIFO is never waited
on), no more than a bound, and one error of one line for whatever is wrong with it."""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_memguard.core import files as output
from pytest_memguard.core.files import InputFileError, read_json, read_text
from pytest_memguard.reporting.report import ReportError, load_report

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, symlinks, modes")

#: Deeper than any JSON parser's recursion.
NESTED = "[" * 100_000


def _refused(read: Callable[[Path], Any], path: Path) -> str:
    """What ``read(path)`` refuses ``path`` with, proving it did not wait on a FIFO there:
    it runs in a thread, and a writer opened and closed at once would end its wait."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            read(path)
        except BaseException as error:  # the one that is asserted
            failure.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # it waits for a writer: give it one, so the test run ends
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join()
        pytest.fail(f"reading {path} waited for a writer")
    assert len(failure) == 1, f"{path} was read"
    (error,) = failure
    assert isinstance(error, InputFileError)
    assert "\n" not in str(error)
    return str(error)


def test_a_regular_file_is_read_and_a_symlink_followed(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"a": [1, "é"]}', encoding="utf-8")
    (tmp_path / "link.json").symlink_to(path)
    assert read_json(path) == {"a": [1, "é"]}
    assert read_json(tmp_path / "link.json") == {"a": [1, "é"]}
    assert read_text(path, limit=path.stat().st_size) == '{"a": [1, "é"]}'  # at the bound


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert _refused(read_json, fifo) == f"{fifo}: it is a FIFO (named pipe), not a regular file"
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    assert _refused(read_text, link) == (
        f"{link}: its target {fifo} is a FIFO (named pipe), not a regular file"
    )


def test_a_directory_and_a_device_are_refused(tmp_path: Path) -> None:
    assert str(_error(tmp_path)) == f"{tmp_path}: it is a directory"
    if os.path.exists("/dev/null"):
        assert str(_error(Path("/dev/null"))) == (
            "/dev/null: it is a character device, not a regular file"
        )


def _error(path: Path, limit: int | None = None) -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        read_json(path, limit=limit)
    assert "\n" not in str(caught.value)
    return caught.value


def test_a_file_past_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 600 + "0]")
    assert str(_error(path, limit=1000)) == (
        f"{path}: it is larger than 1000 B, the most memguard reads of it"
    )
    monkeypatch.setattr(output, "MAX_READ", 1000)  # the default bound of every read
    with pytest.raises(ReportError, match=r"big\.json: it is larger than 1000 B"):
        load_report(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (NESTED.encode(), "not valid JSON (nested too deeply)"),
        (b'{"schema": "\xff"}', "not valid UTF-8 (byte 12)"),
        (b"", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (b'{"a": 1', "not valid JSON (Expecting ',' delimiter: line 1 column 8 (char 7))"),
    ],
    ids=["nested", "bad-utf8", "empty", "cut-short"],
)
def test_what_is_not_utf8_json_is_one_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    error = _error(path)
    assert (str(error), error.path, error.reason) == (f"{path}: {reason}", str(path), reason)
    with pytest.raises(ReportError) as caught:  # a report is read with the same rules
        load_report(path)
    assert str(caught.value) == f"{path}: {reason}"


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert str(_error(tmp_path / "none.json")) == f"{tmp_path / 'none.json'}: no such file"
    locked = tmp_path / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("root reads any file")
        assert str(_error(locked)) == f"{locked}: cannot read it (Permission denied)"
    finally:
        locked.chmod(0o600)


def test_the_error_pickles_with_its_parts() -> None:
    error = pickle.loads(pickle.dumps(InputFileError("r.json", "no such file")))
    assert (str(error), error.path, error.reason) == (
        "r.json: no such file",
        "r.json",
        "no such file",
    )
    assert isinstance(error, ValueError)
