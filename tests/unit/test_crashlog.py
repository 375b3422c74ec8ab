"""Crash-proof records: what a process that dies leaves behind names its test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pytest_memguard.reporting.crashlog import RecordWriter, read_records

MiB = 2**20


def test_records_survive_a_death_mid_test(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path / "main-123.jsonl", "main")
    writer.start("t::a", 40 * MiB)
    writer.end("ok", 41 * MiB)
    writer.start("t::b", 41 * MiB)
    writer.grew("t::b", 700 * MiB)
    writer.close()
    with (tmp_path / "main-123.jsonl").open("ab") as handle:
        handle.write(b'{"event":"rss","nodeid":"t::b","rss":7')  # cut short by SIGKILL
    (process,) = read_records([tmp_path / "main-123.jsonl"])
    assert process.finished == {"t::a": "ok"}
    assert process.running == "t::b"
    culprit = process.unfinished("the process was killed")
    assert culprit is not None
    assert (culprit.nodeid, culprit.status, culprit.rss_peak) == ("t::b", "killed", 700 * MiB)
    assert culprit.message == "the process was killed; last known RSS 700.0 MiB"
    # The xdist controller saw it higher: that figure, in the entry and in its message.
    seen = process.unfinished("the process was killed", seen=1500 * MiB)
    assert seen is not None
    assert seen.rss_peak == 1500 * MiB
    assert seen.message == (
        "the process was killed; RSS reached 1.5 GiB (seen from outside; last recorded 700.0 MiB)"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_process_killed_without_closing_leaves_its_lines(tmp_path: Path) -> None:
    """The lines are in the file the moment they are copied, before any close or flush."""
    path = tmp_path / "gw0-1.jsonl"
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from pytest_memguard.reporting.crashlog import RecordWriter
        writer = RecordWriter(Path({str(path)!r}), "gw0")
        writer.start("t::a", 10)
        writer.end("ok", 11)
        writer.start("t::b", 11)
        writer.grew("t::b", 500)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    completed = subprocess.run([sys.executable, "-c", code], check=False)
    assert completed.returncode == -signal.SIGKILL
    (process,) = read_records([path])
    assert (process.worker, process.finished, process.running) == ("gw0", {"t::a": "ok"}, "t::b")
    assert process.last_rss == 500
    assert process.pid is not None


def test_records_grow_past_their_reserved_block_and_close_to_their_content(
    tmp_path: Path,
) -> None:
    path = tmp_path / "main-1.jsonl"
    writer = RecordWriter(path, "main")
    writer.start("t::0", 1)
    count = 3 * RecordWriter.BLOCK // 60  # lines of about 60 bytes: three blocks
    for index in range(count):
        writer.end("ok", index)
        writer.start(f"t::{index + 1}", index)
    writer.close()
    data = path.read_bytes()
    assert b"\0" not in data
    assert len(data) > 2 * RecordWriter.BLOCK
    (process,) = read_records([path])
    assert len(process.finished) == count
    assert process.running == f"t::{count}"
    writer.end("ok", 1)  # after close: dropped, not an error
    assert path.read_bytes() == data


def test_records_are_written_when_the_file_cannot_be_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    path = tmp_path / "main-1.jsonl"
    writer = RecordWriter(path, "main")
    writer.start("t::a", 1)
    (process,) = read_records([path])  # readable while the writer is open
    assert process.running == "t::a"
    writer.end("ok", 2)
    writer.close()
    (process,) = read_records([path])
    assert (process.finished, process.running) == ({"t::a": "ok"}, None)
    assert b"\0" not in path.read_bytes()


def test_two_threads_write_whole_lines_across_growth(tmp_path: Path) -> None:
    """The test's thread and the watchdog's write at once; no line is lost or torn."""
    path = tmp_path / "main-1.jsonl"
    writer = RecordWriter(path, "main")
    count = 2 * RecordWriter.BLOCK // 50  # each thread: about two blocks of lines

    def grow() -> None:
        for index in range(count):
            writer.grew("t::watched", index)

    watchdog = threading.Thread(target=grow)
    watchdog.start()
    for index in range(count):
        writer.end("ok", index)
        writer.start(f"t::{index + 1}", index)
    watchdog.join()
    writer.close()
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == 1 + 3 * count  # the process line, end + start, rss
    grown = [line["rss"] for line in lines if line["event"] == "rss"]
    assert grown == list(range(count))
    ended = [line["rss"] for line in lines if line["event"] == "end"]
    assert ended == list(range(count))


def test_a_full_disk_at_growth_switches_to_written_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "main-1.jsonl"
    writer = RecordWriter(path, "main")

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    count = 2 * RecordWriter.BLOCK // 60
    writer.start("t::0", 1)
    for index in range(count):
        writer.end("ok", index)
        writer.start(f"t::{index + 1}", index)
    (process,) = read_records([path])  # readable while the writer is open
    assert (len(process.finished), process.running) == (count, f"t::{count}")
    writer.close()
    data = path.read_bytes()
    assert b"\0" not in data
    assert len(data.splitlines()) == 2 + 2 * count
