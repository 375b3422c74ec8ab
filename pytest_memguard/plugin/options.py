"""The memguard option group, its ini twins, and the one setting read while off.

pytest imports this module on every run, so it imports nothing heavy: when the guard is
off, nothing but these declarations and ``memguard`` itself is ever read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import pytest

__all__ = [
    "DEFAULT_TOP",
    "VALUE_OPTIONS",
    "add_options",
    "is_enabled",
    "lookup",
    "parse_bool",
    "spaced_values",
]

DEFAULT_TOP: Final = 10

_OPTIONS: Final = (
    # (name, metavar, help)
    ("budget", "SIZE", "Default peak budget of every test body (e.g. 200MB); none by default"),
    ("warn", "SIZE|PCT", "Warning threshold on the RSS of the pytest process (default 70%%)"),
    ("critical", "SIZE|PCT", "Critical threshold on the RSS of the pytest process (default 80%%)"),
    (
        "max",
        "SIZE|PCT",
        "Hard limit: a test that takes the process past it is stopped (default 90%%)",
    ),
    (
        "mode",
        "enforce|report",
        "Enforce: memory failures fail tests; report: measure and warn only",
    ),
    (
        "leak-budget",
        "SIZE",
        "Memory a leak-checked test may keep (default 1MiB: far above pytest's own"
        " bookkeeping, far below real leaks)",
    ),
    (
        "aggregate",
        "SIZE|PCT",
        "Limit on the sum of the RSS of all xdist workers: past it the largest is killed"
        " (default 90%%)",
    ),
    (
        "min-free",
        "SIZE",
        "Pre-flight: a test does not start while less memory than this is available"
        " (container-aware)",
    ),
    ("recycle", "SIZE", "Under xdist, replace a worker whose RSS after a test is above this"),
    (
        "worker-memory",
        "SIZE",
        "Memory-aware -n auto: no more workers than available memory holds at SIZE each",
    ),
    (
        "history",
        "FILE[,FILE...]",
        "--memguard-pack: take each test's peak from these history files or JSON reports"
        " (merged in order: a later figure measured later wins) instead of pytest's cache",
    ),
    (
        "history-save",
        "FILE",
        "Merge this run's peaks into the history file FILE (to commit or cache in CI; read"
        " back by --memguard-history); under xdist the controller writes it",
    ),
    (
        "ledger",
        "on|off",
        "Count the other guarded runs on this machine (a host-wide ledger of what each"
        " holds and reserves): a heavy test waits for room; on by default with"
        " --memguard-pack",
    ),
    (
        "json",
        "PATH",
        "Write the JSON report to PATH (a report an earlier run left there is emptied"
        " when the run starts)",
    ),
    (
        "records",
        "DIR",
        "Where the crash-proof records go while the run lasts (default: beside the JSON"
        " report, named after it, e.g. memguard.records; else a temporary folder);"
        " memguard recover DIR makes a report of what a killed run left there",
    ),
    (
        "html",
        "PATH",
        "Write the HTML report to PATH: one self-contained page (charts, a sortable table)",
    ),
    (
        "top",
        "N",
        f"Rows of the heaviest-tests table in the summary (default {DEFAULT_TOP}; 0 hides it)",
    ),
    (
        "baseline",
        "REPORT",
        "Fail tests whose memory grew past --memguard-max-increase over this earlier JSON report",
    ),
    (
        "max-increase",
        "PCT|SIZE",
        "Growth over the baseline a test may have: 10%%, 50MB, or 10%%+8MB to fail only past"
        " both (default 10%%+1MB)",
    ),
)


#: The options that take a value, as written on the command line.
VALUE_OPTIONS: Final = tuple(f"--memguard-{name}" for name, _, _ in _OPTIONS)


def spaced_values(args: Sequence[str], options: Iterable[str]) -> list[str]:
    """The values given to ``options`` in the space form (``--opt VALUE``) in ``args``."""
    wanted = set(options)
    found = []
    for index, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        if arg in wanted:
            found.append(args[index + 1])
    return found


def add_options(parser: pytest.Parser) -> None:
    """Declare the ``memguard`` option group and its ini twins."""
    group = parser.getgroup("memguard", "memory guard (pytest-memguard)")
    group.addoption(
        "--memguard",
        action="store_true",
        default=None,
        help="Guard and measure the memory of every test (ini memguard, env MEMGUARD)",
    )
    parser.addini("memguard", "Turn the memory guard on (true/false)", type="string", default="")
    for name, metavar, text in _OPTIONS:
        if name == "leak-budget":  # the switch first, then its budget
            group.addoption(
                "--memguard-leaks",
                action="store_true",
                default=None,
                help="Fail tests that keep memory after their teardown (tracemalloc;"
                " ini memguard_leaks, env MEMGUARD_LEAKS)",
            )
            parser.addini("memguard_leaks", "Check every test for leaks (true/false)", default="")
        if name == "history":  # the switch first, then where its figures come from
            group.addoption(
                "--memguard-pack",
                action="store_true",
                default=None,
                help="xdist: send tests to workers so that their predicted peaks (measured in"
                " earlier runs) fit --memguard-aggregate together (ini memguard_pack, env"
                " MEMGUARD_PACK)",
            )
            parser.addini(
                "memguard_pack", "Pack xdist workers by measured peaks (true/false)", default=""
            )
        group.addoption(f"--memguard-{name}", metavar=metavar, default=None, help=text)
        ini = f"memguard_{name.replace('-', '_')}"
        parser.addini(ini, text.replace("%%", "%"), type="string", default="")


def lookup(config: pytest.Config, name: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(raw value, source label) of setting ``name`` by precedence; (None, "default") if unset."""
    key = name.replace("-", "_")
    option = f"memguard_{key}" if name else "memguard"
    cli = config.getoption(option, default=None)
    if cli is not None:
        label = f"--memguard-{name}" if name else "--memguard"
        if not str(cli).strip():
            raise pytest.UsageError(f"{label}: empty value (give one, or leave the option out)")
        return str(cli), label
    env_name = f"MEMGUARD_{key.upper()}" if name else "MEMGUARD"
    env = environ.get(env_name, "").strip()
    if env:
        return env, env_name
    ini_name = f"memguard_{key}" if name else "memguard"
    ini = str(config.getini(ini_name) or "").strip()
    if ini:
        return ini, f"{ini_name} (ini)"
    return None, "default"


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def parse_bool(raw: str, source: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise pytest.UsageError(f"{source}: invalid value {raw!r} (expected true or false, 1 or 0)")


def is_enabled(config: pytest.Config) -> bool:
    """Whether the guard is on (``--memguard``, ``MEMGUARD``, ini ``memguard``)."""
    raw, source = lookup(config, "", os.environ)
    return raw is not None and parse_bool(raw, source)
