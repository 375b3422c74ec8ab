"""The files memguard writes and reads: check a path before the work starts, then write
it safely; read a file only when it is a regular one, and only so much of it.

One set of rules for every output (the JSON report, ``memguard run --json`` and
``--log-dir``, the GitHub job summary):

- A symlink is followed: its target is written and the link stays.
- A path that exists and is not a regular file (a directory, a FIFO, a device, a socket)
  is refused, never opened and never replaced.
- A file that exists keeps its mode (and, where the OS allows, its owner and group); a
  new one is created with the default mode under the umask (``0o666 & ~umask``), as
  ``open(path, "w")`` would, because the kernel applies the umask itself.
- Missing folders are created.

:func:`write_atomically` writes a temporary file in the target's own folder and renames
it onto the target, so a reader sees the old file or the new one, never half of one.
:func:`append_text` appends (a log), opening without blocking.

And one for every file memguard reads (a report for ``memguard show`` and ``diff``,
``--memguard-baseline``, ``--memguard-history``, the peaks kept in pytest's cache):
:func:`read_json` opens it without blocking and reads it only when it is a regular file
(a FIFO is never waited on, a directory or a device is refused), reads at most ``limit``
bytes (:data:`MAX_READ`, 1 GiB, unless the caller asks for less), and turns whatever is
wrong with it (missing, unreadable, too large, not UTF-8, not JSON, nested too deeply
for the parser) into one :class:`InputFileError`, whose text is one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import MemguardError
from .sizes import format_size

__all__ = [
    "MAX_READ",
    "InputFileError",
    "OutputPathError",
    "append_text",
    "check_output_path",
    "locked",
    "read_json",
    "read_text",
    "reason_of",
    "write_atomically",
]

#: What a path that is not a regular file is, for messages.
_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
#: Opening a FIFO for writing waits for a reader; without blocking it fails instead.
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
#: Windows: no newline translation below Python's own.
_BINARY: Final = getattr(os, "O_BINARY", 0)
#: The most :func:`read_text` reads of a file unless told otherwise: 1 GiB, far above any
#: real report (a run of 100,000 tests writes about 60 MB).
MAX_READ: Final = 1 << 30


class OutputPathError(MemguardError, OSError):
    """A path memguard was asked to write and cannot or will not write.

    ``path`` is the path as given, ``reason`` says why in a few words, e.g.
    ``it is a FIFO (named pipe), not a regular file``; ``str()`` is ``path: reason``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, code: int | None = None):
        super().__init__(code, reason, os.fspath(path))
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self) -> tuple[type[OutputPathError], tuple[str, str, int | None]]:
        return type(self), (self.path, self.reason, self.errno)


class InputFileError(MemguardError, ValueError):
    """A file memguard was asked to read and cannot or will not read.

    ``path`` is the path as given, ``reason`` says why in a few words, e.g. ``no such
    file`` or ``not valid JSON (Expecting value: line 1 column 1 (char 0))``; ``str()``
    is ``path: reason``, one line.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[InputFileError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


def read_text(path: str | os.PathLike[str], *, limit: int | None = None) -> str:
    """The UTF-8 text of the regular file at ``path`` (a symlink is followed).

    Never blocks: the file is opened without waiting (a FIFO's writer is not awaited)
    and read only when :func:`os.fstat` says it is a regular file.  Raises
    :class:`InputFileError` when it is missing, not a regular file, unreadable, larger
    than ``limit`` bytes (default :data:`MAX_READ`) or not UTF-8.
    """
    if limit is None:
        limit = MAX_READ
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK | _BINARY)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "it is a directory") from None
    except OSError as error:
        raise InputFileError(path, f"cannot read it ({reason_of(error)})") from None
    try:
        found = os.fstat(fd)
        problem = _not_a_file(found.st_mode, path, Path(os.path.realpath(path)))
        if problem is not None:
            raise InputFileError(path, problem)
        # The size first: a larger file is not read at all.  A file that grows, or one
        # that says it is empty (``/proc``), is still read no further than the limit.
        data = _read_at_most(fd, limit + 1) if found.st_size <= limit else b""
    except OSError as error:
        raise InputFileError(path, f"cannot read it ({reason_of(error)})") from None
    finally:
        os.close(fd)
    if found.st_size > limit or len(data) > limit:
        raise InputFileError(
            path, f"it is larger than {format_size(limit)}, the most memguard reads of it"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError(path, f"not valid UTF-8 (byte {error.start})") from None


def _read_at_most(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``fd``, fewer only at its end."""
    chunks = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_json(path: str | os.PathLike[str], *, limit: int | None = None) -> Any:
    """The JSON value of the regular file at ``path``: :func:`read_text`, then parsed.

    Raises :class:`InputFileError` for whatever :func:`read_text` refuses and for text
    that is not JSON, or is nested too deeply for the parser (``[[[[...``).
    """
    text = read_text(path, limit=limit)
    try:
        return json.loads(text)
    except RecursionError:
        raise InputFileError(path, "not valid JSON (nested too deeply)") from None
    except ValueError as error:
        raise InputFileError(path, f"not valid JSON ({error})") from None


def reason_of(error: OSError) -> str:
    """Why writing failed, in a few words: ``it is a directory``, ``No space left on device``."""
    if isinstance(error, OutputPathError):
        return error.reason
    return error.strerror or str(error)


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Check now, before the work, that a file can be written at ``path``.

    Runs the checks of :func:`write_atomically` and creates the missing folders; a file
    is created in the folder and removed again, which proves it writable.  The file at
    ``path`` itself is not opened.  Raises :class:`OutputPathError`.
    """
    target, _ = _resolve(path)
    _make_folder(path, target)
    fd, temporary = _create_temporary(path, target)
    os.close(fd)
    with contextlib.suppress(OSError):
        temporary.unlink()


def write_atomically(path: str | os.PathLike[str], text: str | Iterable[str]) -> Path:
    """Replace the file at ``path`` (its target when a symlink) with ``text``, atomically;
    ``text`` may be pieces, written as they come (a large file is never one string).

    A temporary file in the target's folder, renamed onto it.  Returns ``path`` as a
    :class:`~pathlib.Path`.  Raises :class:`OutputPathError` for a path that must not
    be written, and ``OSError`` when the writing itself fails (no temporary file is left).
    """
    target, existing = _resolve(path)
    _make_folder(path, target)
    fd, temporary = _create_temporary(path, target)
    try:
        if existing is not None:
            _keep_attributes(fd, existing)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(text, str):
                handle.write(text)
            else:
                handle.writelines(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return Path(path)


def append_text(path: str | os.PathLike[str], text: str) -> Path:
    """Append ``text`` to the file at ``path`` (its target when a symlink), creating it.

    Raises :class:`OutputPathError` for a path that must not be written; ``OSError``
    when the writing fails.  Returns ``path`` as a :class:`~pathlib.Path`.
    """
    target, _ = _resolve(path)
    _make_folder(path, target)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _CLOEXEC | _NONBLOCK | _BINARY
    fd = os.open(target, flags, 0o666)
    try:
        # Made something else since it was checked: a FIFO or a device is left alone.
        problem = _not_a_file(os.fstat(fd).st_mode, path, target)
        if problem is not None:
            raise OutputPathError(path, problem)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
    return Path(path)


def _resolve(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file to write (symlinks followed) and its status, None when there is none yet."""
    target = Path(os.path.realpath(path))
    try:
        found = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # a missing folder: _make_folder says
        return target, None
    except OSError as error:  # e.g. a symlink loop, a folder we may not enter
        raise OutputPathError(path, reason_of(error), error.errno) from None
    problem = _not_a_file(found.st_mode, path, target)
    if problem is not None:
        raise OutputPathError(path, problem)
    return target, found


def _not_a_file(mode: int, path: str | os.PathLike[str], target: Path) -> str | None:
    """Why ``mode`` is not a regular file's (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    what = next((kind for test, kind in _KINDS if test(mode)), "a special file")
    subject = f"its target {target} is" if os.path.islink(path) else "it is"
    return f"{subject} {what}" + ("" if stat.S_ISDIR(mode) else ", not a regular file")


def _make_folder(path: str | os.PathLike[str], target: Path) -> None:
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        code = error.errno
        blocker = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
        if blocker is not None and not blocker.is_dir():
            reason, code = f"{blocker} is not a directory", errno.ENOTDIR
        else:
            reason = f"cannot create the folder {folder}: {reason_of(error)}"
        raise OutputPathError(path, reason, code) from None


def _create_temporary(path: str | os.PathLike[str], target: Path) -> tuple[int, Path]:
    """A new, empty file beside ``target``, open for writing, with the umask's mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | _BINARY
    for _ in range(100):
        temporary = target.with_name(f".{target.name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as error:
            reason = f"cannot create a file in {target.parent}: {reason_of(error)}"
            raise OutputPathError(path, reason, error.errno) from None
    raise OutputPathError(path, f"cannot create a temporary file in {target.parent}")


def _keep_attributes(fd: int, existing: os.stat_result) -> None:
    """Give the new file the replaced one's owner and group (where allowed) and mode."""
    if hasattr(os, "fchown"):
        made = os.fstat(fd)
        if (made.st_uid, made.st_gid) != (existing.st_uid, existing.st_gid):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.fchown(fd, existing.st_uid, existing.st_gid)
    if hasattr(os, "fchmod"):  # after chown, which clears the set-id bits
        os.fchmod(fd, stat.S_IMODE(existing.st_mode))


#: Errors of a lock another process holds.
_HELD: Final = frozenset({errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK})


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], timeout: float) -> Iterator[None]:
    """Hold the lock file at ``path`` (created if need be, never removed: a process that
    removed it would let the next two lock two different files), waiting for it at most
    ``timeout`` seconds (then :class:`TimeoutError`).

    Where files cannot be locked (some network file systems) the caller goes on unlocked,
    as it would without this lock.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _CLOEXEC | _NONBLOCK, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process held {Path(path).name} for {timeout:g} s")
            time.sleep(0.01)  # its holder only reads and writes a small file
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` for this process alone; False while another holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in _HELD:
            return False
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    return True


def _unlock(fd: int) -> None:
    """Let the lock go (closing ``fd`` would, but Windows asks for it first)."""
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
