"""``memguard status`` and ``memguard diagnostics``: this machine and this process, now."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..core.sizes import format_size
from ..errors import SizeError, ThresholdError
from .common import CommandError

__all__ = ["add_parsers", "status"]


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``status`` and ``diagnostics``."""
    status_parser = commands.add_parser(
        "status",
        help="Memory this process can use, pressure level and PSI",
        description="Show the memory a process started here can really use (the cgroup "
        "limit in a container, else the host's), the pressure level and, where the kernel "
        "has it, pressure stall information (PSI).",
        allow_abbrev=False,
    )
    status_parser.add_argument("--json", action="store_true", help="Print JSON (bytes)")
    status_parser.set_defaults(handler=_status)
    diagnostics = commands.add_parser(
        "diagnostics",
        help="The memory library's diagnostics of this process",
        description="Print MemoryDiagnostics().diagnostics(): configuration (MEMGUARD_* "
        "thresholds, pressure fractions), RSS, system memory, caches, pressure history.",
        allow_abbrev=False,
    )
    diagnostics.add_argument("--json", action="store_true", help="Print JSON (bytes)")
    diagnostics.set_defaults(handler=_diagnostics)


def status() -> dict[str, Any]:
    """Usable memory (bytes) with its source, the pressure level and PSI (None without it)."""
    from ..library.pressure import MemoryPressureCoordinator
    from ..probe.system import read_pressure, read_system_memory

    memory = read_system_memory()
    coordinator = MemoryPressureCoordinator()
    psi = read_pressure()
    return {
        "total": memory.total,
        "available": memory.available,
        "used": memory.used,
        "fraction_used": round(memory.fraction_used, 4),
        "source": memory.source,
        "cgroup": memory.cgroup,
        "pressure": {
            "level": str(coordinator.level_of(memory.fraction_used)),
            "warning": coordinator.warning,
            "critical": coordinator.critical,
        },
        "psi": psi._asdict() if psi is not None else None,
    }


def _status(args: argparse.Namespace) -> int:
    data = status()
    if args.json:
        print(json.dumps(data, indent=2), file=sys.stdout)
        return 0
    where = f"cgroup {data['cgroup']}" if data["source"] == "cgroup" else "host"
    pressure = data["pressure"]
    lines = [
        f"memory: {format_size(data['available'])} available of {format_size(data['total'])} "
        f"({where}), {data['fraction_used']:.1%} used",
        f"pressure: {pressure['level']} (warning at {pressure['warning']:.0%} used, "
        f"critical at {pressure['critical']:.0%})",
    ]
    psi = data["psi"]
    if psi is None:
        lines.append("PSI: not available on this system")
    else:
        lines.append(
            f"PSI: some {psi['some_avg10']:.2f}% (10 s), {psi['some_avg60']:.2f}% (60 s); "
            f"full {psi['full_avg10']:.2f}% (10 s), {psi['full_avg60']:.2f}% (60 s)"
        )
    print("\n".join(lines), file=sys.stdout)
    return 0


def _diagnostics(args: argparse.Namespace) -> int:
    from ..library.diagnostics import MemoryDiagnostics

    try:
        with MemoryDiagnostics() as diagnostics:
            data = diagnostics.diagnostics()
    except (SizeError, ThresholdError) as error:  # MEMGUARD_* thresholds from the environment
        raise CommandError(str(error)) from None
    if args.json:
        print(json.dumps(data, indent=2, default=str), file=sys.stdout)
        return 0
    profile = data["profile"]
    system = profile["system"]
    limits = ", ".join(f"{k} {format_size(v)}" for k, v in profile["thresholds"].items())
    config = data["configuration"]["pressure"]
    handlers = ", ".join(config["handlers"]) or "none"
    lines = [
        f"process: pid {profile['pid']}, RSS {format_size(profile['rss'])} "
        f"({profile['rss_level']}; {limits})",
        f"memory: {format_size(system['available'])} available of "
        f"{format_size(system['total'])} ({system['source']}), {system['fraction_used']:.1%} used",
        f"pressure: {profile['pressure']['level']} (warning at {config['warning']:.0%}, "
        f"critical at {config['critical']:.0%}); handlers: {handlers}",
        f"caches: {len(profile['caches'])}, holding {format_size(profile['cache_bytes'])}",
        f"tracemalloc: {'tracing' if data['tracemalloc']['tracing'] else 'off'}",
    ]
    for site in data["top_allocations"]:
        lines.append(f"  {site['where']}: {format_size(site['size'])} in {site['count']} blocks")
    print("\n".join(lines), file=sys.stdout)
    return 0
