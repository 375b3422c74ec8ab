"""Size strings: ``parse_size("1.5 GiB") -> int`` and ``format_size(n) -> "1.5 GiB"``.

Rules: an ``int`` is bytes; a string needs a unit, ``B``, ``KB``/``MB``/``GB``/``TB``
(powers of 1000) or ``KiB``/``MiB``/``GiB``/``TiB`` (powers of 1024), case-insensitive,
with an optional space and decimals.  A bare ``K``/``M``/``G``/``T`` is refused with a
hint, because nobody can tell whether it meant MB or MiB.  Process thresholds also take
a percentage of the memory the process can really use (``"80%"``).
"""

from __future__ import annotations

import math
import re
from typing import Final

from ..errors import SizeError

__all__ = ["EXAMPLE", "format_size", "parse_size"]

EXAMPLE: Final = "4GB or 3.5GiB"

_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_AMBIGUOUS: Final = {"k", "m", "g", "t", "ki", "mi", "gi", "ti"}
_SIZE_RE: Final = re.compile(
    r"\s*(?P<sign>[-+]?)(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-z]*|%)\s*"
)
_IEC: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _error(value: object, why: str = "", example: str = EXAMPLE) -> SizeError:
    detail = f": {why}" if why else ""
    return SizeError(f"invalid size {value!r}{detail} (expected e.g. {example})")


def parse_size(value: int | str, *, percent_of: int | None = None) -> int:
    """Return ``value`` in bytes.

    :param value: an ``int`` of bytes, or a string such as ``"200 MB"`` or ``"1.5GiB"``
    :param percent_of: when given, ``"80%"`` is also accepted and means that share of
        ``percent_of`` bytes (the memory the process can use, for process thresholds)
    :raises SizeError: (a ``ValueError``) on anything else, quoting the input
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SizeError(
            f"invalid size {value!r}: expected an int of bytes or a string (e.g. {EXAMPLE})"
        )
    if isinstance(value, int):
        if value < 0:
            raise _error(value, "a size cannot be negative")
        return value
    match = _SIZE_RE.fullmatch(value.lower())
    if match is None:
        raise _error(value)
    number = float(match["num"])
    unit = match["unit"]
    if match["sign"] == "-":
        raise _error(value, "a size cannot be negative")
    if not math.isfinite(number):  # pragma: no cover - the pattern admits digits only
        raise _error(value)
    if unit == "%":
        if percent_of is None:
            raise _error(value, "a percentage is only accepted for process thresholds")
        if not 0 < number <= 100:
            raise _error(value, "a percentage must be above 0% and at most 100%", "80%")
        return int(percent_of * number / 100)
    if unit in _AMBIGUOUS:
        shown = value.strip()[-len(unit) :]
        num = match["num"]
        raise _error(value, f"{shown!r} is ambiguous, MB or MiB?", f"{num}MB or {num}MiB")
    if not unit:
        num = match["num"]
        raise _error(value, "a size needs a unit", f"{num}MB or {num}MiB")
    if unit not in _UNITS:
        raise _error(value, f"unknown unit {value.strip()[-len(unit) :]!r}")
    return round(number * _UNITS[unit])


def format_size(n: int | float | None) -> str:
    """Format a number of bytes with IEC units: ``1536`` -> ``"1.5 KiB"``; ``None`` -> ``"-"``."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    size = float(abs(n))
    if size < 1024:
        return f"{sign}{int(size)} B"
    for unit in _IEC[1:]:
        size /= 1024
        if size < 1024 or unit == _IEC[-1]:
            return f"{sign}{size:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
