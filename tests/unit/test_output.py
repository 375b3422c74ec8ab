"""The rules for every file memguard writes: symlinks followed, special files refused
(never opened, never replaced), modes kept or from the umask, nothing half-written."""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_memguard import MemguardError
from pytest_memguard.core.files import (
    OutputPathError,
    append_text,
    check_output_path,
    write_atomically,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes, FIFOs, symlinks")


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@contextlib.contextmanager
def _fifo(path: Path) -> Iterator[int]:
    """A FIFO at ``path`` with a reader held open (non-blocking): a writer opening it by
    mistake would not hang the test, and what it wrote would be read back."""
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield reader
    finally:
        os.close(reader)


def _nothing_written(reader: int) -> bool:
    try:
        return os.read(reader, 1) == b""
    except BlockingIOError:  # a writer is still open: it may have written nothing yet
        return False


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def append_text_x(path: Path) -> None:
    append_text(path, "x")


def test_a_symlink_keeps_its_link_and_its_target_gets_the_text(tmp_path: Path) -> None:
    target = tmp_path / "real" / "report.json"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    check_output_path(link)
    assert write_atomically(link, "new\n") == link
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert _files(target.parent) == ["report.json"], "the temporary file was beside the target"


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "made" / "there.json")
    check_output_path(link)
    write_atomically(link, "{}\n")
    assert link.is_symlink()
    assert (tmp_path / "made" / "there.json").read_text() == "{}\n"


def test_a_fifo_is_refused_never_opened_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with _fifo(path) as reader:
        for write in (check_output_path, lambda p: write_atomically(p, "x"), append_text_x):
            with pytest.raises(OutputPathError) as refused:
                write(path)
            assert refused.value.reason == "it is a FIFO (named pipe), not a regular file"
            with pytest.raises(OutputPathError, match=f"its target {path} is a FIFO"):
                write(link)
        assert stat.S_ISFIFO(path.lstat().st_mode)
        assert _nothing_written(reader)
    assert _files(tmp_path) == ["link.json", "report.json"], "no temporary file left"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "report.json"
    folder.mkdir()
    for write in (check_output_path, lambda p: write_atomically(p, "x"), append_text_x):
        with pytest.raises(OutputPathError, match=r"report\.json: it is a directory$"):
            write(folder)
    assert _files(folder) == []


def test_a_character_device_is_refused_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/dev/null``'s status stands in for a path in ``tmp_path``: no device is touched."""
    device = os.stat("/dev/null")
    assert stat.S_ISCHR(device.st_mode)
    path = tmp_path / "report.json"
    real_stat = os.stat

    def fake_stat(name: str | os.PathLike[str], *args: object, **kwargs: object) -> object:
        return device if Path(name) == path else real_stat(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", fake_stat)
    for write in (check_output_path, lambda p: write_atomically(p, "x"), append_text_x):
        with pytest.raises(OutputPathError, match="it is a character device, not a regular file"):
            write(path)
    monkeypatch.undo()
    assert _files(tmp_path) == []


def test_a_folder_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file\n")
    with pytest.raises(OutputPathError) as refused:
        check_output_path(blocker / "deeper" / "r.json")
    assert str(refused.value) == f"{blocker}/deeper/r.json: {blocker} is not a directory"
    assert blocker.read_text() == "a file\n"


def test_missing_folders_are_created_by_the_check(tmp_path: Path) -> None:
    path = tmp_path / "out" / "deep" / "r.json"
    check_output_path(path)
    assert path.parent.is_dir()
    assert _files(path.parent) == [], "the probe file is removed, the target not created"


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o600])
def test_an_existing_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "r.json"
    path.write_text("old\n")
    path.chmod(mode)
    with _umask(0o077):
        write_atomically(path, "new\n")
        append_text(path, "more\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "new\nmore\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_a_new_file_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    with _umask(umask):
        write_atomically(tmp_path / "r.json", "{}\n")
        append_text(tmp_path / "log.jsonl", "{}\n")
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "log.jsonl").stat().st_mode) == mode


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "\ud800")  # a lone surrogate: not UTF-8
    assert path.read_text() == "old\n"
    assert _files(tmp_path) == ["r.json"]


def test_append_text_appends_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.log"
    link = tmp_path / "link.log"
    link.symlink_to(target)
    append_text(link, "one\n")
    append_text(link, "two\n")
    assert link.is_symlink()
    assert target.read_text() == "one\ntwo\n"


def test_the_error_is_an_os_error_of_memguard_that_pickles(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError) as refused:
        check_output_path(tmp_path)
    error = refused.value
    assert isinstance(error, OSError)
    assert isinstance(error, MemguardError)
    assert error.strerror == error.reason == "it is a directory"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, str(copy)) == (error.path, error.reason, str(error))
