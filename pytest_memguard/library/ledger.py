"""The host-wide ledger of guarded runs: what each process holds and reserves, so that
several runs on one machine do not plan their memory as if each were alone.

One small JSON file (:func:`ledger_path`) taken turns at with a lock file beside it
(:func:`~pytest_memguard.core.files.locked`).  Each process that runs tests (a single
process, or an xdist worker) has one :class:`Entry`: its RSS outside tests (*base*) and,
while it runs a heavy test, that test's predicted peak growth (*reserved*).  The rules:

- an entry belongs to one process, known by its pid *and* its start time: a reused pid
  is another process; entries of processes that ended are dropped on every write and
  ignored on every read;
- only entries of the same memory *domain* count (the cgroup whose limit a run uses, or
  ``"host"``): runs in two containers do not share their memory;
- :func:`decide`: a heavy test runs when its process's base and prediction fit the limit
  beside what every other process holds, or when no other run reserves anything (a run
  never waits forever: a waiting process reserves nothing, so two waiting runs cannot
  block each other, and a run alone runs as packing lets it);
- first come, first served between runs: a heavy test does not start while a test of
  another run waits that began waiting before it (else a run whose tests follow each
  other without a pause would keep the room to itself).  The first waiter waits only
  for tests that run, so the line moves; a waiter that stopped writing its entry for
  :data:`STALE` seconds (stopped, frozen) is not waited for;
- a file that cannot be read or understood is started afresh (the caller is told once);
  nothing here fails a run.

No pytest import: the plugin's gate (:mod:`pytest_memguard.plugin.gate`) and the xdist
controller drive it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final, NamedTuple

import psutil

from ..core.files import InputFileError, locked, read_json, write_atomically
from ..errors import MemguardError

__all__ = [
    "ENV_FILE",
    "LEDGER_VERSION",
    "Decision",
    "Entry",
    "Ledger",
    "LedgerError",
    "decide",
    "is_alive",
    "ledger_path",
    "process_key",
]

#: The environment variable that names the ledger's file (tests, or a shared folder).
ENV_FILE: Final = "MEMGUARD_LEDGER_FILE"
#: The version of the file's JSON form.
LEDGER_VERSION: Final = 1
#: The most of the file that is read: thousands of entries.
MAX_SIZE: Final = 1 << 20
#: Seconds a process waits for another's turn at the file (each turn is one small write).
LOCK_TIMEOUT: Final = 10.0
#: Seconds between two looks at the file while a test waits for room.
POLL: Final = 0.1
#: Seconds after which a waiting entry not written again is not waited for (a waiting
#: process writes it every :data:`POLL` seconds).
STALE: Final = 5.0
#: Start times of one process, as two reads give them, differ by less than this.
_SAME_START: Final = 0.05


class LedgerError(MemguardError, OSError):
    """The ledger's folder must not be used (a symlink, or another user's)."""


def ledger_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The ledger's file: ``$MEMGUARD_LEDGER_FILE``, else
    ``$XDG_RUNTIME_DIR/memguard/ledger.json``, else ``memguard-<uid>/ledger.json`` in the
    temporary folder.  The folder is created (0700) when missing; :class:`LedgerError`
    when it is a symlink or not this user's."""
    named = environ.get(ENV_FILE, "").strip()
    if named:
        return Path(named)
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    uid = os.getuid() if hasattr(os, "getuid") else None
    if runtime and os.path.isdir(runtime):
        folder = Path(runtime) / "memguard"
    else:
        folder = Path(tempfile.gettempdir()) / f"memguard-{uid if uid is not None else 'user'}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if os.path.islink(folder):
        raise LedgerError(f"{folder} is a symlink: the ledger of guarded runs is not kept there")
    if uid is not None and info.st_uid != uid:
        raise LedgerError(f"{folder} belongs to another user: the ledger is not kept there")
    return folder / "ledger.json"


def process_key(pid: int | None = None) -> tuple[int, float]:
    """(pid, start time) of a process (this one by default): a reused pid differs."""
    process = psutil.Process(pid)
    return process.pid, process.create_time()


def is_alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a zombie has
    ended; one not readable counts as running)."""
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > _SAME_START:
            return False  # the pid was given to another process
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


@dataclass(frozen=True, slots=True)
class Entry:
    """One process's line of the ledger (sizes in bytes, times in seconds since the epoch)."""

    pid: int
    #: The process's start time: with the pid, what names it.
    started: float
    #: The run it belongs to: its xdist controller's (or its own) ``"pid:start"``.
    run: str
    #: The memory it shares: ``"v1:/sys/fs/cgroup/..."`` (the cgroup of its limit) or "host".
    domain: str
    #: Its RSS outside tests.
    base: int = 0
    #: The predicted peak growth of the heavy test it runs now (0: none).
    reserved: int = 0
    #: That test's node id.
    test: str | None = None
    #: The run's root folder, for people ("pid 1234 in /src/project").
    where: str = ""
    updated: float = 0.0
    #: Since when it waits for room for its test (0: it does not wait).
    waiting: float = 0.0

    @property
    def key(self) -> tuple[int, float]:
        return self.pid, self.started

    @property
    def held(self) -> int:
        """What it holds and reserves: its base and its test's prediction."""
        return self.base + self.reserved

    def describe(self) -> str:
        """``"pid 1234 in /src/project"``, for messages."""
        return f"pid {self.run.split(':', 1)[0]} in {self.where or 'an unnamed folder'}"

    @classmethod
    def from_json(cls, data: object) -> Entry | None:
        """The entry ``data`` is, or None when it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            entry = cls(
                pid=int(data["pid"]),
                started=float(data["started"]),
                run=str(data["run"]),
                domain=str(data["domain"]),
                base=int(data.get("base") or 0),
                reserved=int(data.get("reserved") or 0),
                test=None if data.get("test") is None else str(data["test"]),
                where=str(data.get("where") or ""),
                updated=float(data.get("updated") or 0.0),
                waiting=float(data.get("waiting") or 0.0),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return entry if entry.base >= 0 and entry.reserved >= 0 else None


class Decision(NamedTuple):
    """Whether a heavy test may start now, and what the other processes hold."""

    run: bool
    #: Bytes the other processes of the domain hold and reserve.
    held: int
    #: The other runs' entries that reserve memory now (those a waiting test waits for).
    holders: tuple[Entry, ...]
    #: The other runs' tests that wait and began waiting first (it waits behind them).
    ahead: tuple[Entry, ...] = ()


def decide(
    me: Entry, prediction: int, entries: Iterable[Entry], limit: int, now: float = 0.0
) -> Decision:
    """May ``me`` start a test predicted to grow by ``prediction`` bytes now?

    Yes when its base and the prediction fit ``limit`` beside what every other process of
    its domain holds (its own run's too), or when no other run reserves anything then
    (its own run's plan is packing's, not the ledger's); and no test of another run
    waits that began waiting before ``me`` (``me.waiting``, or ``now`` when it does not
    wait yet), its entry written within :data:`STALE` seconds of ``now``.
    """
    others = [e for e in entries if e.domain == me.domain and e.key != me.key]
    held = sum(entry.held for entry in others)
    holders = tuple(e for e in others if e.run != me.run and e.reserved > 0)
    since = me.waiting or now
    ahead = tuple(
        e for e in others if e.run != me.run and 0 < e.waiting < since and now - e.updated <= STALE
    )
    fits = held + me.base + prediction <= limit or not holders
    return Decision(fits and not ahead, held, holders, ahead)


class Ledger:
    """The file at ``path`` and the rules of its entries (see the module).

    Thread-safe as files are: each change is one turn at the lock.

    :param alive: whether a process (pid, start time) still runs
    :param on_problem: told, once, why the file was started afresh
    """

    def __init__(
        self,
        path: Path,
        *,
        alive: Callable[[int, float], bool] = is_alive,
        clock: Callable[[], float] = time.time,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.alive = alive
        self.clock = clock
        self.on_problem = on_problem
        self._told = False

    @contextlib.contextmanager
    def _turn(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path.with_name(self.path.name + ".lock"), LOCK_TIMEOUT):
            yield

    def entries(self) -> list[Entry]:
        """The entries of live processes (read without the lock: writes are atomic)."""
        return [e for e in self._read() if self.alive(e.pid, e.started)]

    def others(self, run: str, domain: str) -> list[Entry]:
        """The live entries of other runs in ``domain``."""
        return [e for e in self.entries() if e.run != run and e.domain == domain]

    def put(self, entry: Entry) -> None:
        """Write ``entry`` (in place of the process's last one)."""
        with self._turn():
            self._write([*self._live(entry.key), replace(entry, updated=self.clock())])

    def remove(self, key: tuple[int, float]) -> None:
        """Take a process's entry out (it ends)."""
        with self._turn():
            self._write(self._live(key))

    def enter(self, me: Entry, prediction: int, test: str, limit: int) -> Decision:
        """One look, in one turn at the lock: when the test may start, ``me`` is written
        with its reservation; else with none, waiting (since ``me.waiting``, or now)."""
        with self._turn():
            kept = self._live(me.key)
            now = self.clock()
            decision = decide(me, prediction, kept, limit, now)
            if decision.run:
                mine = replace(me, reserved=prediction, test=test, waiting=0.0)
            else:  # a waiting process reserves nothing
                mine = replace(me, reserved=0, test=test, waiting=me.waiting or now)
            self._write([*kept, replace(mine, updated=now)])
            return decision

    def wait(
        self,
        me: Entry,
        prediction: int,
        test: str,
        limit: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> tuple[float, tuple[Entry, ...]]:
        """Wait until the test may start (see :func:`decide`), its reservation then
        written; (seconds waited, the entries it waited for)."""
        began = self.clock()  # its place in the line, should it wait
        waited_for: dict[tuple[int, float], Entry] = {}
        try:
            while True:
                decision = self.enter(replace(me, waiting=began), prediction, test, limit)
                if decision.run:
                    waited = self.clock() - began if waited_for else 0.0
                    return waited, tuple(waited_for.values())
                for entry in (*decision.holders, *decision.ahead):
                    waited_for.setdefault(entry.key, entry)
                sleep(POLL)  # the lock is let go meanwhile
        except BaseException:
            with contextlib.suppress(Exception):  # interrupted: no longer in the line
                self.put(replace(me, test=None, waiting=0.0))
            raise

    def _live(self, drop: tuple[int, float]) -> list[Entry]:
        return [e for e in self._read() if e.key != drop and self.alive(e.pid, e.started)]

    def _read(self) -> list[Entry]:
        if not os.path.lexists(self.path):
            return []
        try:
            data = read_json(self.path, limit=MAX_SIZE)
            if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
                raise ValueError(f"{self.path}: not a memguard ledger of version {LEDGER_VERSION}")
            listed = data.get("entries")
            if not isinstance(listed, list):
                raise ValueError(f"{self.path}: no list of entries")
        except (InputFileError, ValueError) as error:
            self._problem(str(error))
            return []
        found = [Entry.from_json(item) for item in listed]
        if any(entry is None for entry in found):
            self._problem(f"{self.path}: entries not understood, left out")
        return [entry for entry in found if entry is not None]

    def _write(self, entries: Sequence[Entry]) -> None:
        data = {"version": LEDGER_VERSION, "entries": [asdict(e) for e in entries]}
        write_atomically(self.path, json.dumps(data, separators=(",", ":")))

    def _problem(self, why: str) -> None:
        if not self._told and self.on_problem is not None:
            self._told = True
            self.on_problem(why)
