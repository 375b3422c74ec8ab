"""A child memory cgroup for a test that needs a real container limit (Linux, as root).

:func:`memory_cgroup` makes one below this process's memory cgroup, with its limit and
no swap, and removes it after; the test is skipped, with the reason, where that cannot
be done.  :func:`inside` is the command that runs a command in it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_memguard.probe.system import Cgroup, find_memory_cgroup


def inside(group: Cgroup, *command: str) -> tuple[str, ...]:
    """``command``, run in ``group`` (a shell moves itself in, then execs it)."""
    procs = str(group.path / "cgroup.procs")
    return ("sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *command)


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[Cgroup]:
    """A fresh memory cgroup of ``limit`` bytes and no swap, removed after."""
    own = find_memory_cgroup()
    if own is None:
        pytest.skip("no memory cgroup controller on this machine")
    if os.geteuid() != 0:
        pytest.skip("making a memory cgroup needs root")
    path = own.path / f"memguard-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        path.mkdir()
    except OSError as error:
        pytest.skip(f"cannot make a memory cgroup: {error}")
    try:
        if own.version == 1:
            (path / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):  # no swap accounting
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
        else:
            (path / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        yield Cgroup(own.version, path)
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    """Remove the cgroup once its processes are gone (they may take a moment to exit)."""
    for _ in range(100):
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.05)
    path.rmdir()
