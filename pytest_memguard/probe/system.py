"""Machine memory as this process can really use it: the cgroup's limit when there is one.

``psutil.virtual_memory()`` reads ``/proc/meminfo`` only, so inside a memory-limited
container it reports the host.  Here the memory cgroup is found through
``/proc/self/cgroup`` and ``/proc/self/mountinfo`` (v2 ``memory.max``/``memory.current``,
v1 ``hierarchical_memory_limit``/``memory.usage_in_bytes``), the working set is usage
minus inactive file cache, and available = min(limit - working set, host available).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal, NamedTuple

__all__ = [
    "Cgroup",
    "Pressure",
    "SystemMemory",
    "find_memory_cgroup",
    "read_pressure",
    "read_system_memory",
]

# v1 writes "unlimited" as PAGE_COUNTER_MAX * page size, about 2**63: this large is no limit.
_UNLIMITED: Final = 1 << 62


class SystemMemory(NamedTuple):
    """Memory the process can use, in bytes; ``source`` says where the total comes from."""

    total: int
    available: int
    source: Literal["cgroup", "host"]
    cgroup: str | None = None

    @property
    def used(self) -> int:
        """Bytes in use (total minus available)."""
        return self.total - self.available

    @property
    def fraction_used(self) -> float:
        """Share of ``total`` in use, from 0.0 to 1.0."""
        return self.used / self.total if self.total else 0.0


class Pressure(NamedTuple):
    """Memory pressure stall information (PSI), percentages over 10 s and 60 s."""

    some_avg10: float
    some_avg60: float
    full_avg10: float
    full_avg60: float


class Cgroup(NamedTuple):
    """This process's memory cgroup: its version and its directory."""

    version: Literal[1, 2]
    path: Path

    def _read(self, directory: Path, name: str) -> str | None:
        try:
            return (directory / name).read_text().strip()
        except OSError:
            return None

    def _stat(self, name: str) -> int | None:
        text = self._read(self.path, "memory.stat")
        if text is None:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
        return None

    def limit(self) -> int | None:
        """The effective limit in bytes (the lowest over the ancestors), or None if unlimited."""
        if self.version == 1:
            value = self._stat("hierarchical_memory_limit")
            if value is None:
                raw = self._read(self.path, "memory.limit_in_bytes")
                value = int(raw) if raw and raw.isdigit() else None
            return value if value is not None and value < _UNLIMITED else None
        lowest: int | None = None
        directory = self.path
        while True:
            raw = self._read(directory, "memory.max")
            if raw is not None and raw != "max" and raw.isdigit():
                lowest = int(raw) if lowest is None else min(lowest, int(raw))
            if directory.parent == directory or raw is None:
                break
            directory = directory.parent
        return lowest

    def working_set(self) -> int | None:
        """Usage minus reclaimable inactive file cache, in bytes."""
        if self.version == 1:
            raw = self._read(self.path, "memory.usage_in_bytes")
            inactive = self._stat("total_inactive_file")
        else:
            raw = self._read(self.path, "memory.current")
            inactive = self._stat("inactive_file")
        if raw is None or not raw.isdigit():
            return None
        return max(0, int(raw) - (inactive or 0))

    def oom_kills(self) -> int | None:
        """How many processes the kernel's OOM killer ended in this cgroup (v1
        ``memory.oom_control``, v2 ``memory.events``), or None where it is not told."""
        text = self._read(self.path, "memory.oom_control" if self.version == 1 else "memory.events")
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.isdigit():
                return int(value)
        return None

    def describe(self) -> str:
        """``"v2:/sys/fs/cgroup/..."``, for reports."""
        return f"v{self.version}:{self.path}"


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fstype, super options) of each cgroup mount."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, tail_fields = head.split(), tail.split()
        if len(fields) >= 5 and len(tail_fields) >= 3 and tail_fields[0] in ("cgroup", "cgroup2"):
            found.append((fields[3], fields[4], tail_fields[0], tail_fields[2]))
    return found


def _join(mount: str, root: str, path: str) -> Path:
    relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
    return Path(mount) if relative == "." else Path(mount) / relative


def find_memory_cgroup() -> Cgroup | None:
    """This process's memory cgroup, or None (no cgroups, or no memory controller)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mounts = _mounts()
    v2_path: str | None = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            for root, point, fstype, options in mounts:
                if fstype == "cgroup" and "memory" in options.split(","):
                    directory = _join(point, root, path)
                    if (directory / "memory.usage_in_bytes").exists():
                        return Cgroup(1, directory)
    if v2_path is not None:
        for root, point, fstype, _ in mounts:
            if fstype == "cgroup2":
                directory = _join(point, root, v2_path)
                if (directory / "memory.current").exists() or (directory / "memory.max").exists():
                    return Cgroup(2, directory)
    return None


def _host_memory() -> tuple[int, int]:
    """(total, available) of the host: ``/proc/meminfo`` on Linux, psutil elsewhere."""
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                fields[key] = int(value.split()[0]) * 1024
        return fields["MemTotal"], fields["MemAvailable"]
    except (OSError, KeyError, ValueError, IndexError):
        import psutil

        host = psutil.virtual_memory()
        return int(host.total), int(host.available)


def read_system_memory(cgroup: Cgroup | Literal["find"] | None = "find") -> SystemMemory:
    """Total and available memory for this process, container-aware.

    :param cgroup: the memory cgroup to read; by default it is looked up (it reads
        ``/proc/self/cgroup`` and the mounts: pass one found once to read it often)
    """
    host_total, host_available = _host_memory()
    group = find_memory_cgroup() if cgroup == "find" else cgroup
    limit = group.limit() if group is not None else None
    if group is None or limit is None:
        return SystemMemory(host_total, host_available, "host")
    total = min(limit, host_total)
    working = group.working_set() or 0
    available = max(0, min(total - working, host_available))
    return SystemMemory(total, available, "cgroup", group.describe())


def read_pressure(path: str = "/proc/pressure/memory") -> Pressure | None:
    """Memory PSI, or None where the kernel has none."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        kind, *pairs = line.split()
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key in ("avg10", "avg60"):
                values[f"{kind}_{key}"] = float(value)
    try:
        return Pressure(
            values["some_avg10"], values["some_avg60"], values["full_avg10"], values["full_avg60"]
        )
    except KeyError:
        return None
