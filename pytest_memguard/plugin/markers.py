"""The ``memory_budget`` marker: its signature, and parsing it into a Budget at collection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from ..reporting.results import Budget

__all__ = ["MARKER", "MARKER_LINE", "budget_of"]

MARKER: Final = "memory_budget"
MARKER_LINE: Final = (
    "memory_budget(peak=None, *, leak=None, heap=None, rss=None): memory budget of this test; "
    "peak = RSS growth of the test body, leak = memory kept after it, heap = peak traced "
    "Python allocations, rss = absolute hard cap while it runs (sizes like '200 MB' or '1.5GiB')"
)
_USAGE: Final = 'expected e.g. memory_budget("200 MB") or memory_budget(peak="1 GB", leak="1 MB")'


def memory_budget(
    peak: int | str | None = None,
    *,
    leak: int | str | None = None,
    heap: int | str | None = None,
    rss: int | str | None = None,
) -> dict[str, int | str | None]:
    """The marker's signature; calling it with the marker's arguments checks their shape."""
    return {"peak": peak, "leak": leak, "heap": heap, "rss": rss}


def budget_of(item: pytest.Item, defaults: Budget) -> Budget:
    """The budget of ``item``: its closest marker's values over the run's ``defaults``.

    :raises ValueError: with a message naming the marker and the bad value
    """
    from ..core.sizes import parse_limit
    from ..errors import SizeError
    from ..reporting.results import Budget

    mark = item.get_closest_marker(MARKER)
    sources = dict(defaults.sources)
    values: dict[str, int | None] = defaults.to_json()
    if mark is None:
        return defaults
    try:
        raw = memory_budget(*mark.args, **mark.kwargs)
    except TypeError as error:
        detail = str(error).replace("memory_budget() ", "")
        raise ValueError(f"{MARKER}: {detail} ({_USAGE})") from None
    for kind, value in raw.items():
        if value is None:
            continue
        try:
            values[kind] = parse_limit(value)
        except SizeError as error:
            raise ValueError(f"{MARKER}({kind}={value!r}): {error}") from None
        sources[kind] = f"{MARKER}({kind}={value!r})"
    return Budget(**values, sources=sources)


def marked(items: Iterable[pytest.Item], name: str) -> list[pytest.Item]:
    """The items with a ``name`` marker, on themselves or on a parent (class, module...).

    What ``get_closest_marker`` finds, but each parent is looked at once for all of its
    items rather than once per item: it runs at every guarded collection, whose parents
    hold many items each.
    """
    parents: dict[int, bool] = {}

    def on_parents(node: pytest.Item | pytest.Collector | None) -> bool:
        if node is None:
            return False
        known = parents.get(id(node))
        if known is None:
            known = parents[id(node)] = _own(node, name) or on_parents(node.parent)
        return known

    return [item for item in items if _own(item, name) or on_parents(item.parent)]


def _own(node: pytest.Item | pytest.Collector, name: str) -> bool:
    for mark in node.own_markers:  # noqa: SIM110 (a loop: no generator per node)
        if mark.name == name:
            return True
    return False
