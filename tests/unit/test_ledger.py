"""The host-wide ledger of guarded runs (pytest_memguard.library.ledger), with fake
processes, a fake clock and a fake sleep."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_memguard.library.ledger import (
    Entry,
    Ledger,
    LedgerError,
    decide,
    is_alive,
    ledger_path,
    process_key,
)

GiB = 1 << 30
MiB = 1 << 20


def entry(
    pid: int, run: str, *, base: int = 50 * MiB, reserved: int = 0, domain: str = "host"
) -> Entry:
    return Entry(pid, 1000.0 + pid, run, domain, base, reserved, where=f"/src/{run}")


class Processes:
    """Which fake processes run."""

    def __init__(self, *pids: int) -> None:
        self.pids = set(pids)

    def __call__(self, pid: int, started: float) -> bool:
        return pid in self.pids and started == 1000.0 + pid


def make(tmp_path: Path, *pids: int) -> tuple[Ledger, Processes, list[str]]:
    problems: list[str] = []
    alive = Processes(*pids)
    return (
        Ledger(tmp_path / "ledger.json", alive=alive, on_problem=problems.append),
        alive,
        problems,
    )


def test_a_test_that_fits_beside_the_others_runs() -> None:
    me = entry(1, "a")
    others = [entry(2, "b", reserved=GiB), entry(3, "b")]
    decision = decide(me, GiB, others, limit=3 * GiB)
    assert decision.run
    assert decision.held == GiB + 100 * MiB
    assert [e.pid for e in decision.holders] == [2]


def test_a_test_that_does_not_fit_waits_for_the_other_run() -> None:
    me = entry(1, "a")
    others = [entry(2, "b", reserved=GiB), entry(3, "b", reserved=GiB)]
    decision = decide(me, GiB, others, limit=2 * GiB)
    assert not decision.run
    assert {e.pid for e in decision.holders} == {2, 3}


def test_a_test_runs_alone_when_no_other_run_reserves_anything() -> None:
    """Its own run's reservations are packing's plan; other runs' bases do not block."""
    me = entry(1, "a")
    others = [entry(2, "a", reserved=2 * GiB), entry(3, "b", base=GiB)]
    decision = decide(me, 2 * GiB, others, limit=2 * GiB)
    assert decision.run
    assert decision.holders == ()


def test_only_the_same_memory_domain_counts() -> None:
    me = entry(1, "a", domain="v1:/sys/fs/cgroup/memory/ci")
    others = [entry(2, "b", reserved=2 * GiB), entry(3, "c", reserved=GiB, domain=me.domain)]
    decision = decide(me, GiB, others, limit=3 * GiB)
    assert decision.run
    assert decision.held == GiB + 50 * MiB


def test_entries_of_ended_processes_are_dropped_and_a_reused_pid_is_another(
    tmp_path: Path,
) -> None:
    ledger, alive, _ = make(tmp_path, 1, 2, 3)
    for pid in (1, 2, 3):
        ledger.put(entry(pid, "b"))
    alive.pids.discard(2)
    assert [e.pid for e in ledger.entries()] == [1, 3]
    # An entry of pid 3 that started at another time: that process ended, pid 3 is another.
    stale = {"pid": 3, "started": 5.0, "run": "c", "domain": "host", "base": 1}
    data = json.loads((tmp_path / "ledger.json").read_text())
    (tmp_path / "ledger.json").write_text(
        json.dumps({**data, "entries": [*data["entries"], stale]})
    )
    alive.pids.discard(1)
    ledger.put(entry(4, "d"))
    stored = json.loads((tmp_path / "ledger.json").read_text())["entries"]
    assert [(e["pid"], e["started"]) for e in stored] == [(3, 1003.0), (4, 1004.0)]


def test_put_replaces_the_process_own_entry_and_remove_takes_it_out(tmp_path: Path) -> None:
    ledger, _, _ = make(tmp_path, 1, 2)
    ledger.put(entry(1, "a"))
    ledger.put(entry(1, "a", base=80 * MiB))
    ledger.put(entry(2, "b"))
    assert [(e.pid, e.base) for e in ledger.entries()] == [(1, 80 * MiB), (2, 50 * MiB)]
    assert [e.pid for e in ledger.others("a", "host")] == [2]
    ledger.remove(entry(1, "a").key)
    assert [e.pid for e in ledger.entries()] == [2]


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"version": 99, "entries": []}', '{"version": 1, "entries": 3}', "[]"],
)
def test_a_corrupt_file_is_started_afresh_and_said_once(tmp_path: Path, text: str) -> None:
    ledger, _, problems = make(tmp_path, 1, 2)
    (tmp_path / "ledger.json").write_text(text)
    assert ledger.entries() == []
    ledger.put(entry(1, "a"))
    ledger.put(entry(2, "b"))
    assert [e.pid for e in ledger.entries()] == [1, 2]
    assert len(problems) == 1
    assert str(tmp_path / "ledger.json") in problems[0]


def test_entries_not_understood_are_left_out(tmp_path: Path) -> None:
    ledger, _, problems = make(tmp_path, 1)
    good = {"pid": 1, "started": 1001.0, "run": "a", "domain": "host", "base": 5}
    bad = [{"pid": "x"}, {"pid": 2, "started": 1002.0, "run": "b", "domain": "host", "base": -1}]
    (tmp_path / "ledger.json").write_text(json.dumps({"version": 1, "entries": [good, *bad]}))
    assert [e.pid for e in ledger.entries()] == [1]
    assert problems == [f"{tmp_path / 'ledger.json'}: entries not understood, left out"]


def test_wait_returns_at_once_when_the_test_fits(tmp_path: Path) -> None:
    ledger, _, _ = make(tmp_path, 1, 2)
    ledger.put(entry(2, "b", reserved=GiB))
    sleeps: list[float] = []
    waited = ledger.wait(entry(1, "a"), GiB, "t.py::test_big", 3 * GiB, sleep=sleeps.append)
    assert waited == (0.0, ())
    assert sleeps == []
    mine = [e for e in ledger.entries() if e.pid == 1]
    assert [(e.reserved, e.test) for e in mine] == [(GiB, "t.py::test_big")]


def test_wait_holds_no_reservation_while_waiting_and_runs_once_room_is_made(
    tmp_path: Path,
) -> None:
    now = [100.0]
    ledger = Ledger(tmp_path / "ledger.json", alive=Processes(1, 2), clock=lambda: now[0])
    other = entry(2, "b", reserved=2 * GiB)
    ledger.put(other)
    seen: list[int] = []

    def sleep(seconds: float) -> None:
        mine = [e for e in ledger.entries() if e.pid == 1]
        seen.append(mine[0].reserved)
        now[0] += seconds
        if len(seen) == 3:
            ledger.put(entry(2, "b"))  # its test ended

    waited, holders = ledger.wait(entry(1, "a"), GiB, "t.py::test_big", 2 * GiB, sleep=sleep)
    assert seen == [0, 0, 0]
    assert waited == pytest.approx(0.3)
    assert [h.describe() for h in holders] == ["pid b in /src/b"]
    assert [e.reserved for e in ledger.entries() if e.pid == 1] == [GiB]


def test_the_folder_is_the_named_file_else_the_runtime_folder(tmp_path: Path) -> None:
    assert ledger_path({"MEMGUARD_LEDGER_FILE": str(tmp_path / "l.json")}) == tmp_path / "l.json"
    path = ledger_path({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert path == tmp_path / "memguard" / "ledger.json"
    assert (tmp_path / "memguard").stat().st_mode & 0o777 == 0o700


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "memguard").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LedgerError, match="is a symlink"):
        ledger_path({"XDG_RUNTIME_DIR": str(tmp_path)})


def test_this_process_is_alive_and_a_changed_start_time_is_not() -> None:
    pid, started = process_key()
    assert pid == os.getpid()
    assert is_alive(pid, started)
    assert not is_alive(pid, started - 10)


def test_the_watch_aggregate_limit_is_less_what_other_runs_hold(tmp_path: Path) -> None:
    """The controller's watch kills past the aggregate limit less the ledger's others."""
    from pytest_memguard.core.levels import MemoryThresholds
    from pytest_memguard.plugin.distributed.watch import WorkerState, WorkerWatch

    watch = WorkerWatch(tmp_path, MemoryThresholds(None, None, None), 1 << 40, interval=3600)
    killed: list[str] = []

    def kill(state: WorkerState, reason: str, rss: int | None) -> None:
        killed.append(reason)
        state.kill = reason

    watch.kill = kill  # type: ignore[method-assign]
    (tmp_path / f"gw0-{os.getpid()}.jsonl").write_text("")  # this process stands for gw0
    watch.ready("gw0")
    expected = {"gw0": 2 * (1 << 40)}  # predicted to use all it has, and more
    watch.expected = expected.get
    try:
        watch.outside = lambda: 0
        watch.poll()
        assert killed == []
        watch.outside = lambda: (1 << 40) - MiB  # other runs leave this run 1 MiB
        watch.poll()
        assert killed == [], "within its prediction: other runs' room kills no worker"
        expected["gw0"] = 1  # now past its prediction
        watch.poll()
    finally:
        watch.close()
    assert len(killed) == 1
    assert "more than the aggregate limit 1.0 MiB (the aggregate limit 1.0 TiB less" in killed[0]
    assert "other guarded runs hold) together" in killed[0]


def test_a_test_of_another_run_that_waited_first_goes_first() -> None:
    me = entry(1, "a")
    first = replace(entry(2, "b"), waiting=10.0, updated=19.0)
    decision = decide(me, GiB, [first], limit=3 * GiB, now=20.0)
    assert not decision.run, "it fits, but waits behind the test that waited first"
    assert decision.ahead == (first,)
    # Not behind: its own run's waiter, a later one, or one that stopped writing its entry.
    for other in (
        replace(first, run="a"),
        replace(first, waiting=30.0),
        replace(first, updated=20.0 - 6.0),
    ):
        assert decide(replace(me, waiting=25.0), GiB, [other], limit=3 * GiB, now=26.0).run


def test_the_first_waiter_runs_once_the_room_is_free_and_the_later_one_after_it(
    tmp_path: Path,
) -> None:
    """Two runs' waiters never block each other: the first waits only for tests that run."""
    now = [100.0]
    ledger = Ledger(tmp_path / "ledger.json", alive=Processes(1, 2, 3), clock=lambda: now[0])
    ledger.put(entry(1, "a", reserved=2 * GiB))  # run a's test holds the room
    limit = 2 * GiB + 200 * MiB
    first = ledger.enter(replace(entry(2, "b"), waiting=now[0]), GiB, "b.py::t", limit)
    assert not first.run
    now[0] += 1
    # Run a's next test: no other run holds memory (it could run), but b's waited first.
    later = ledger.enter(replace(entry(3, "a"), waiting=now[0]), 100 * MiB, "a.py::t2", limit)
    assert not later.run
    assert [e.pid for e in later.ahead] == [2]
    ledger.put(entry(1, "a"))  # run a's test ended
    now[0] += 1
    assert ledger.enter(replace(entry(2, "b"), waiting=100.0), GiB, "b.py::t", limit).run
    assert ledger.enter(replace(entry(3, "a"), waiting=101.0), 100 * MiB, "a.py::t2", limit).run


def test_an_interrupted_wait_leaves_the_line(tmp_path: Path) -> None:
    ledger, _, _ = make(tmp_path, 1, 2)
    ledger.put(entry(2, "b", reserved=2 * GiB))

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ledger.wait(entry(1, "a"), GiB, "t.py::test_big", 2 * GiB, sleep=interrupt)
    (mine,) = [e for e in ledger.entries() if e.pid == 1]
    assert (mine.waiting, mine.reserved, mine.test) == (0.0, 0, None)
