"""``memguard run``: run a command under the :class:`ProcessMonitor`, stop it at the hard limit.

The command inherits stdin, stdout and stderr, so its output passes through untouched;
memguard's own lines go to stderr and start with ``memguard:``.

The guard covers the command's whole process tree, also what it leaves behind: on Linux
memguard is the child subreaper of what it starts (``PR_SET_CHILD_SUBREAPER``), so an
orphan (``sh -c 'work &'``) is reparented to memguard, not to init; elsewhere the
descendants seen at a reading stay guarded once orphaned.  After the command exited,
memguard waits up to ``--wait-children`` seconds for its leftovers (still guarded: they
count toward the limits and are stopped at the hard limit, exit 137), then ends them
(SIGTERM, then SIGKILL after ``--grace``), reaps them and reports them.  Exit status: the command's
own; ``128 + N`` when a signal N ended it (as a shell reports it); :data:`EXIT_MEMORY_LIMIT`
(137) when memguard stopped it; 126/127 when it cannot be started; 2 on a usage error, an
output path (``--json``, ``--log-dir``) that cannot be written (checked before the command
starts), or a ``--json`` summary that could not be written after a command that exited 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, Final

from ..core.levels import MemoryThresholds
from ..core.sizes import format_size
from ..errors import SizeError, ThresholdError
from ..library.monitor import (
    ALERTS_FILE,
    MONITOR_FILE,
    STATS_FILE,
    MonitorEvent,
    ProcessGoneError,
    ProcessMonitor,
)
from .common import EXIT_ERROR, CommandError, seconds, threshold
from .orphans import Adopted, Leftovers, child_subreaper, wait_for_leftovers

__all__ = ["EXIT_CANNOT_EXECUTE", "EXIT_MEMORY_LIMIT", "EXIT_NOT_FOUND", "add_parser", "exit_code"]

#: memguard stopped the command at its hard limit: 128 + SIGKILL, what CI shows for an OOM kill.
EXIT_MEMORY_LIMIT: Final = 137
EXIT_CANNOT_EXECUTE: Final = 126
EXIT_NOT_FOUND: Final = 127
_NAMES: Final = {
    "warning": ("--warn", "MEMGUARD_WARN"),
    "critical": ("--critical", "MEMGUARD_CRITICAL"),
    "max": ("--max", "MEMGUARD_MAX"),
}
_SHOWN: Final = frozenset({"warning", "critical", "abort", "aggregate", "kill"})


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``run``."""
    run = commands.add_parser(
        "run",
        help="Run a command under the memory guard",
        description="Run CMD with its children under the process monitor. At the hard limit "
        "it is terminated (SIGTERM, then SIGKILL after --grace seconds) and memguard exits "
        f"{EXIT_MEMORY_LIMIT}; otherwise memguard exits with the command's status (128+N "
        "when signal N ended it). Processes the command leaves behind (e.g. sh -c 'work "
        "&') stay guarded: memguard waits for them up to --wait-children seconds after "
        "the command exited, then ends them (SIGTERM, then SIGKILL after --grace), and "
        "reports them. Limits not given come from MEMGUARD_WARN, MEMGUARD_CRITICAL and "
        "MEMGUARD_MAX; none are set by default.",
        allow_abbrev=False,
    )
    for name, (flag, _) in _NAMES.items():
        run.add_argument(
            flag, dest=name, type=threshold, metavar="SIZE|PCT",
            help=f"The {'hard limit' if name == 'max' else name + ' threshold'} on the RSS of "
            "the command and its children, e.g. 4GB or 80%% of usable memory",
        )  # fmt: skip
    run.add_argument(
        "--interval", type=seconds(0, inclusive=False), default=0.25, metavar="S",
        help="Seconds between two readings (default 0.25)",
    )  # fmt: skip
    run.add_argument(
        "--grace", type=seconds(0, inclusive=True), default=5.0, metavar="S",
        help="Seconds between SIGTERM and SIGKILL at the hard limit (default 5)",
    )  # fmt: skip
    run.add_argument(
        "--wait-children", type=seconds(0, inclusive=True), default=10.0, metavar="S",
        help="Seconds to wait, still guarded, for the processes the command left behind "
        "before ending them (default 10)",
    )  # fmt: skip
    run.add_argument(
        "--log-dir", metavar="DIR",
        help="Append JSON lines to DIR/memory-alerts.log and DIR/subprocess-stats.jsonl",
    )  # fmt: skip
    run.add_argument("--json", metavar="PATH", help="Write a JSON summary of the run to PATH")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    run.set_defaults(handler=_run)


def exit_code(returncode: int, aborted: bool) -> int:
    """memguard's exit status for a command that ended with ``returncode``."""
    if aborted:
        return EXIT_MEMORY_LIMIT
    return 128 - returncode if returncode < 0 else returncode


def _thresholds(args: argparse.Namespace) -> tuple[MemoryThresholds, dict[str, str]]:
    """Thresholds from the options, else the environment; and each one as the user wrote it."""
    values: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    for name, (flag, variable) in _NAMES.items():
        given = getattr(args, name)
        from_env = os.environ.get(variable, "").strip()
        values[name] = given if given is not None else (from_env or None)
        labels[name] = flag if given is not None else variable
    try:
        thresholds = MemoryThresholds(
            values["warning"], values["critical"], values["max"], sources=labels
        )
    except (SizeError, ThresholdError) as error:
        raise CommandError(str(error)) from None
    shown = {name: f"{labels[name]} {value}" for name, value in values.items() if value}
    return thresholds, shown


def _in_foreground() -> bool:
    """True when this process group gets the terminal's Ctrl-C (and so does the command)."""
    if os.name != "posix":
        return True  # a console sends Ctrl-C to every process attached to it
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


@contextmanager
def _forwarding(children: list[subprocess.Popen[bytes]], stop: threading.Event) -> Iterator[None]:
    """Pass SIGINT and SIGTERM on to the command (the last of ``children``) while it runs,
    and set ``stop``: the processes it leaves behind are not waited for.

    A Ctrl-C typed in our terminal already reached the command (same process group), so
    SIGINT is forwarded only when it did not come that way.
    """

    def forward(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if not children or (signum == signal.SIGINT and _in_foreground()):
            return
        with suppress(OSError):  # it has just ended
            children[-1].send_signal(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def _quiet_monitor_log() -> Iterator[None]:
    """The monitor logs its alerts; here they are printed once, by :func:`_say`."""
    logger = logging.getLogger("pytest_memguard.library.monitor")
    handler, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _say(text: str) -> None:
    print(f"memguard: {text}", file=sys.stderr, flush=True)


class _Watch:
    """Reads the monitor and says what it saw; keeps why memguard stopped the command."""

    def __init__(self, monitor: ProcessMonitor, ident: str, adopted: Adopted) -> None:
        self.monitor = monitor
        self.ident = ident
        self.adopted = adopted
        self.reason: str | None = None
        self.failed = False

    def poll(self) -> None:
        try:
            events = self.monitor.poll()
        except Exception as error:  # a broken reading must not lose the command's run
            events = []
            if not self.failed:
                _say(f"reading memory failed ({error!r}); the command goes on")
            self.failed = True
        for event in events:
            self.reason = _report(event, self.reason)

    def until_exit(self, popen: subprocess.Popen[bytes]) -> None:
        """Poll until the command ends (its orphans are adopted meanwhile)."""
        while True:
            self.adopted.adopt(self.monitor, self.ident)
            self.poll()
            self.adopted.reap()
            if popen.poll() is not None:
                return
            with suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=self.monitor.interval)


def _report(event: MonitorEvent, reason: str | None) -> str | None:
    if event.kind in _SHOWN:
        _say(event.message)
    if event.kind in ("abort", "aggregate") and reason is None:
        return event.message.partition(": ")[2].removesuffix("; terminating it")
    return reason


#: The environment variable the command is started with (a value of this run's own), by
#: which memguard tells the command's orphans from other processes reparented to it.
RUN_MARK: Final = "MEMGUARD_RUN_TOKEN"


def _start(command: Sequence[str], mark: tuple[str, str]) -> subprocess.Popen[bytes]:
    name, value = mark
    try:
        return subprocess.Popen(list(command), env={**os.environ, name: value})
    except FileNotFoundError:
        raise CommandError(f"command not found: {command[0]!r}", EXIT_NOT_FOUND) from None
    except OSError as error:
        raise CommandError(
            f"cannot run {command[0]!r}: {error.strerror or error}", EXIT_CANNOT_EXECUTE
        ) from None


def _run(args: argparse.Namespace) -> int:
    command: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise CommandError("no command given (e.g. memguard run --max 4GB -- python train.py)")
    thresholds, shown = _thresholds(args)
    _check_outputs(args)
    monitor = ProcessMonitor(
        thresholds, interval=args.interval, min_free=None, log_dir=args.log_dir, grace=args.grace
    )
    name = Path(command[0]).name or command[0]
    started = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    reason: str | None = None
    command_reason: str | None = None  # why memguard stopped it while it ran
    stats: dict[str, Any] = {}
    left = Leftovers()
    with _quiet_monitor_log(), _forwarding(children, stop), child_subreaper() as subreaper:
        mark = (RUN_MARK, f"{os.getpid()}-{time.time_ns()}")
        adopted = Adopted(subreaper, mark)
        popen = _start(command, mark)
        children.append(popen)
        adopted.command = popen.pid
        try:
            ident = monitor.track(popen, name=name, leftovers=True)
        except ProcessGoneError:  # ended and reaped before it could be tracked
            popen.wait()
        else:
            watch = _Watch(monitor, ident, adopted)
            watch.until_exit(popen)
            command_reason = watch.reason
            left = wait_for_leftovers(monitor, ident, adopted, watch.poll, args.wait_children, stop)
            reason = watch.reason
            stats = monitor.untrack(ident)
            adopted.reap()
    returncode = popen.wait()
    aborted = bool(stats.get("aborted"))
    code = exit_code(returncode, aborted)
    if aborted:
        limit = f" ({shown['max']})" if "max" in shown and "hard limit" in (reason or "") else ""
        whom = f"{name} (pid {popen.pid})"
        if command_reason is None:  # the command had exited: what it left behind was
            whom = f"what {name} (pid {popen.pid}) left behind"
        _say(
            f"stopped {whom}: {reason}{limit}; peak RSS "
            f"{format_size(stats.get('peak'))}; exit status {code}"
        )
    if left.pids:
        _say(left.describe(name, args.wait_children, stopped=aborted))
    if args.json and not _summary(
        args.json, command, popen, code, returncode, stats, reason, started, thresholds, left
    ):
        code = code or EXIT_ERROR  # the command's own failure says more than ours
    return code


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the command runs, an output path that cannot be written."""
    from ..core.files import OutputPathError, check_output_path

    outputs = [("--json", args.json)] if args.json else []
    if args.log_dir:
        outputs += [
            ("--log-dir", os.path.join(args.log_dir, name))
            for name in (ALERTS_FILE, STATS_FILE, MONITOR_FILE)
        ]
    for flag, path in outputs:
        try:
            check_output_path(path)
        except OutputPathError as error:
            raise CommandError(
                f"{flag}: cannot write {path!r} ({error.reason}); the command was not run"
            ) from None


def _summary(
    path: str,
    command: list[str],
    popen: subprocess.Popen[bytes],
    code: int,
    returncode: int,
    stats: dict[str, Any],
    reason: str | None,
    started: float,
    thresholds: MemoryThresholds,
    left: Leftovers,
) -> bool:
    """Write the ``--json`` summary; False (and a line saying why) when it cannot be."""
    from ..core.files import reason_of
    from ..reporting.report import write_report

    data = {
        "command": command,
        "pid": popen.pid,
        "exit_code": code,
        "returncode": returncode,
        "aborted": bool(stats.get("aborted")),
        "killed": bool(stats.get("killed")),
        "reason": reason,
        "peak_rss": stats.get("peak"),
        "start_rss": stats.get("start"),
        "end_rss": stats.get("end"),
        "duration_s": round(time.monotonic() - started, 3),
        "thresholds": {"warning": thresholds.warning, "critical": thresholds.critical,
                       "max": thresholds.max},
        "warnings": stats.get("warnings", []),
        "leftovers": left.record(),
    }  # fmt: skip
    try:
        write_report(data, path)
    except OSError as error:  # OutputPathError too: the path changed since the start
        _say(f"--json: cannot write {path!r} ({reason_of(error)})")
        return False
    return True
