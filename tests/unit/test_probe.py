from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memguard.probe.process import (
    ChildrenCheck,
    DescendantsMemory,
    KernelPeakMeter,
    RssReader,
    SampledPeakMeter,
    current_rss,
    descendants_rss,
    open_peak_meter,
    process_own_memory,
    rss_of,
)
from pytest_memguard.probe.system import Cgroup, SystemMemory, read_pressure, read_system_memory

MiB = 2**20
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_rss_readers_agree() -> None:
    reader = RssReader()
    try:
        assert abs(reader() - current_rss()) < 16 * MiB
        assert rss_of(os.getpid()) is not None
    finally:
        reader.close()


def test_rss_of_a_vanished_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert rss_of(child.pid) is None


@linux
def test_kernel_peak_catches_a_short_spike() -> None:
    meter = open_peak_meter()
    assert isinstance(meter, KernelPeakMeter)
    assert meter.exact
    try:
        start = meter.reset()
        spike = bytearray(120 * MiB)
        del spike
        assert meter.peak() - start >= 119 * MiB
        start = meter.reset()
        assert meter.peak() - start < 20 * MiB, "reset starts a new window"
    finally:
        meter.close()


_CHILD = """
from pytest_memguard.probe.process import open_peak_meter
meter = open_peak_meter()
start = meter.reset()
block = bytearray(30 * 2**20)
print(meter.peak() - start)
start = meter.reset()
spike = bytearray(30 * 2**20)
del spike
peak, end = meter.end()
print(peak - start, end - start)
"""


@linux
def test_kernel_peak_is_right_in_a_child_of_a_bigger_process() -> None:
    # A process started by a larger one inherits that one's peak as getrusage's floor;
    # the meter must not report it as the child's own peak.
    ballast = bytearray(150 * MiB)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True
        ).stdout
    finally:
        del ballast
    first, second, kept = (int(figure) for figure in out.split())
    assert 29 * MiB <= first < 60 * MiB
    assert 29 * MiB <= second < 60 * MiB  # the peak of a window that end() closes
    assert kept < 5 * MiB  # the spike was freed: RSS at the end is back near the start


def test_end_gives_the_window_peak_and_the_rss_now() -> None:
    meter = open_peak_meter()
    try:
        start = meter.reset()
        held = bytearray(40 * MiB)
        held[::4096] = b"x" * len(held[::4096])  # touch every page
        spike = bytearray(60 * MiB)
        spike[::4096] = b"x" * len(spike[::4096])
        del spike
        peak, now = meter.end()
        assert peak - start >= 99 * MiB
        assert 39 * MiB <= now - start < 60 * MiB, "the RSS now: the held block, not the spike"
        del held
    finally:
        meter.close()


def test_sampled_peak_keeps_the_largest_sample() -> None:
    rss = [100]
    meter = SampledPeakMeter(read=lambda: rss[0])
    assert not meter.exact
    assert "sampled" in meter.method
    assert meter.reset() == 100
    meter.observe(500)
    meter.observe(300)
    assert meter.peak() == 500
    rss[0] = 50
    assert meter.reset() == 50
    assert meter.peak() == 50


def test_system_memory_is_sane() -> None:
    memory = read_system_memory()
    assert memory.total > 0
    assert 0 <= memory.available <= memory.total
    assert memory.source in ("cgroup", "host")
    assert 0.0 <= memory.fraction_used <= 1.0


def _cgroup_v1(tmp_path: Path, limit: int, usage: int, inactive: int) -> Cgroup:
    (tmp_path / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (tmp_path / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (tmp_path / "memory.stat").write_text(
        f"cache 1\nhierarchical_memory_limit {limit}\ntotal_inactive_file {inactive}\n"
    )
    return Cgroup(1, tmp_path)


def test_cgroup_v1_limit_and_working_set(tmp_path: Path) -> None:
    group = _cgroup_v1(tmp_path, 2 * 2**30, 900 * MiB, 100 * MiB)
    assert group.limit() == 2 * 2**30
    assert group.working_set() == 800 * MiB
    memory = read_system_memory(group)
    assert memory.source == "cgroup"
    assert memory.total == 2 * 2**30
    assert memory.available == 2 * 2**30 - 800 * MiB
    assert memory.cgroup == f"v1:{tmp_path}"


def test_cgroup_v1_unlimited_falls_back_to_the_host(tmp_path: Path) -> None:
    group = _cgroup_v1(tmp_path, 9223372036854771712, 900 * MiB, 0)
    assert group.limit() is None
    assert read_system_memory(group).source == "host"


def test_cgroup_v2_takes_the_lowest_limit_of_the_ancestors(tmp_path: Path) -> None:
    parent = tmp_path
    child = tmp_path / "job"
    child.mkdir()
    (parent / "memory.max").write_text("1073741824\n")
    (child / "memory.max").write_text("max\n")
    (child / "memory.current").write_text(f"{300 * MiB}\n")
    (child / "memory.stat").write_text(f"anon 1\ninactive_file {50 * MiB}\n")
    group = Cgroup(2, child)
    assert group.limit() == 2**30
    assert group.working_set() == 250 * MiB
    memory = read_system_memory(group)
    assert (memory.total, memory.available) == (2**30, 2**30 - 250 * MiB)


def test_pressure_file(tmp_path: Path) -> None:
    path = tmp_path / "memory"
    path.write_text(
        "some avg10=1.50 avg60=0.25 avg300=0.00 total=10\n"
        "full avg10=0.50 avg60=0.00 avg300=0.00 total=3\n"
    )
    pressure = read_pressure(str(path))
    assert pressure is not None
    assert (pressure.some_avg10, pressure.full_avg10, pressure.some_avg60) == (1.5, 0.5, 0.25)
    assert read_pressure(str(tmp_path / "missing")) is None


def test_system_memory_in_use_and_its_share() -> None:
    reading = SystemMemory(total=1000, available=250, source="cgroup", cgroup="v2:/ci")
    assert (reading.used, reading.fraction_used) == (750, 0.75)
    assert SystemMemory(total=0, available=0, source="host").fraction_used == 0.0


@pytest.mark.skipif(
    not hasattr(sys, "_debugmallocstats"), reason="CPython's small-object statistics"
)
def test_small_object_bytes_counts_small_blocks_exactly() -> None:
    from pytest_memguard.probe.process import small_object_bytes

    before = small_object_bytes()
    if before is None:
        pytest.skip("pymalloc is off (PYTHONMALLOC)")
    kept = [str(i) * 2 for i in range(100_000)]  # small objects, about 60 bytes each
    after = small_object_bytes()
    assert after is not None
    assert 4 * 2**20 < after - before < 12 * 2**20
    assert len(kept) == 100_000


HOLD_OWN = """
import sys
block = bytearray({size})
block[::4096] = b"x" * len(block[::4096])
print("ready", flush=True)
sys.stdin.read()
"""


@linux
def test_a_forked_child_counts_its_own_memory_not_the_pages_it_shares() -> None:
    held = bytearray(96 * MiB)
    held[::4096] = b"p" * len(held[::4096])
    reader, to_child = os.pipe()
    from_child, writer = os.pipe()
    memory = DescendantsMemory()
    pid = os.fork()
    if pid == 0:  # the child: 16 MiB of its own, then wait to be told to go
        try:
            own = bytearray(16 * MiB)
            own[::4096] = b"c" * len(own[::4096])
            os.write(writer, b"r")
            os.read(reader, 1)
        finally:
            os._exit(0)
    try:
        assert os.read(from_child, 1) == b"r"
        assert memory.forked, "os.fork was called"
        full = rss_of(pid)
        assert full is not None
        assert full > 96 * MiB, "its RSS counts the parent's pages"
        assert 14 * MiB < memory() < 40 * MiB
        memory.reset()
        assert 14 * MiB < memory() < 40 * MiB
        assert memory.forked, "a sample saw a child sharing anonymous memory"
    finally:
        os.write(to_child, b"g")
        os.waitpid(pid, 0)
        for fd in (reader, to_child, from_child, writer):
            os.close(fd)
    assert held[0] == ord("p")


@linux
def test_a_program_started_with_exec_counts_its_own_memory() -> None:
    memory = DescendantsMemory()
    code = HOLD_OWN.format(size=64 * MiB)
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline() == b"ready\n"
        assert 64 * MiB < memory() < 100 * MiB
        assert 64 * MiB < descendants_rss() < 100 * MiB
        assert not memory.forked, "subprocess starts a program: no fork of this process"
        child.stdin.close()
    assert memory() == 0


def test_own_memory_through_psutil_is_uss_where_psutil_has_it() -> None:
    import psutil

    process = psutil.Process()
    own = process_own_memory(process)
    assert 0 < own <= process.memory_info().rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libc's pread")
def test_a_kept_file_is_read_from_its_start_keeping_the_interpreter_lock(tmp_path: Path) -> None:
    from pytest_memguard.probe.process import _held_pread, _kept_read

    assert _held_pread() is not None
    path = tmp_path / "kept"
    path.write_bytes(b"12345 678 9\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _kept_read(fd, 128) == b"12345 678 9\n"
        assert _kept_read(fd, 5) == b"12345"  # from the start again, as pread
    finally:
        os.close(fd)


@linux
@pytest.mark.parametrize("hold_lock", [True, False], ids=["holding the lock", "os.pread"])
def test_the_children_check_sees_a_child_while_it_runs(hold_lock: bool) -> None:
    check = ChildrenCheck(hold_lock=hold_lock)
    try:
        before = check()  # another test's fixture may have left a child of its own
        child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
        try:
            assert check() is True
        finally:
            child.communicate(b"\n")  # it ends, and is waited for
        assert check() is before
    finally:
        check.close()
    assert check() is False  # closed: unknown
