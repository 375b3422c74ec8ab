"""The page's section of a merged report's shards (``memguard merge``): each shard's
figures, the limits it ran with and the machine it ran on.  A report of one run has no
shards and no such section."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any, Final

from ...core.sizes import format_size
from ..results import FAILING_STATUSES

__all__ = ["shards_section"]

#: The limits a shard's row shows: config key, label.
_LIMITS: Final = (
    ("warning", "warning"),
    ("critical", "critical"),
    ("max", "max"),
    ("budget", "budget"),
)


def _limits(config: Mapping[str, Any]) -> str:
    shown = [
        f"{label} {format_size(config[key])}" for key, label in _LIMITS if config[key] is not None
    ]
    return f"{config['mode']}: {', '.join(shown) or 'no limit'}"


def _machine(env: Mapping[str, Any]) -> str:
    words = [
        f"Python {env['python']}, pytest {env['pytest']}",
        f"{env['platform']} {env['machine']}, {env['cpu_count']} CPU(s)",
    ]
    if env["memory_total"] is not None:
        words.append(f"{format_size(env['memory_total'])} ({env['memory_source']})")
    if env["job"]:
        words.append(f"CI job {env['job']}")
    return "; ".join(words)


def _row(shard: Mapping[str, Any]) -> str:
    summary = shard["summary"]
    memory = sum(int(summary["statuses"].get(status) or 0) for status in FAILING_STATUSES)
    interrupted = " (interrupted)" if shard["interrupted"] else ""
    cells = [
        f"{escape(shard['name'])}{interrupted}",
        str(summary["tests"]),
        str(summary["failed"]),
        str(memory),
        escape(format_size(summary["peak_rss"])),
        f"{shard['duration_s']:.2f} s",
        escape(_limits(shard["config"])),
        escape(_machine(shard["environment"])),
    ]
    numeric = (1, 2, 3, 4, 5)
    return (
        "<tr>"
        + "".join(
            f"<td class='num'>{cell}</td>" if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(cells)
        )
        + "</tr>"
    )


def shards_section(report: Mapping[str, Any]) -> str:
    """The shards of ``report`` (normalised: :mod:`.shape`), or nothing for one run."""
    shards = report.get("shards") or ()
    if not shards:
        return ""
    head = "".join(
        f"<th class='num'>{label}</th>" if numeric else f"<th>{label}</th>"
        for label, numeric in (
            ("shard", False),
            ("tests", True),
            ("failed", True),
            ("memory failures", True),
            ("peak RSS", True),
            ("duration", True),
            ("limits", False),
            ("ran on", False),
        )
    )
    rows = "".join(_row(shard) for shard in shards)
    return (
        f'<h2>Shards</h2><p class="meta">Merged from {len(shards)} shard reports; each test'
        " names its shard in the worker column (shard/worker). The limits above are those of"
        f" {escape(shards[0]['name'])}; each shard's own are below.</p>"
        f"<table id='shards'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )
