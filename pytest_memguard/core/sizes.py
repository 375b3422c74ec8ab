"""Size strings: ``parse_size("1.5 GiB") -> int`` and ``format_size(n) -> "1.5 GiB"``.

Rules: an ``int`` is bytes; a string needs a unit, ``B``, ``KB``/``MB``/``GB``/``TB``
(powers of 1000) or ``KiB``/``MiB``/``GiB``/``TiB`` (powers of 1024), case-insensitive,
with an optional space and decimals.  A bare ``K``/``M``/``G``/``T`` is refused with a
hint, because nobody can tell whether it meant MB or MiB.  Process thresholds also take
a percentage of the memory the process can really use (``"80%"``).

Digits, units and spaces are ASCII: ``5GB`` written with a fullwidth digit is refused,
whatever it came from, with the ASCII spelling as the hint.  No size is above
:data:`MAX_SIZE`, the largest byte count a signed 64-bit integer holds (8 EiB): past it
a number describes no machine.  A limit, threshold or budget (:func:`parse_limit`) is at
least one memory page, :data:`PAGE_SIZE`: the OS counts memory in pages, so a smaller
limit cannot be measured, and 0 would stop or fail everything.  Numbers are exact
decimals, never floats.  Every hint a message shows is itself accepted.
"""

from __future__ import annotations

import os
import re
from typing import Final

from ..errors import SizeError

__all__ = [
    "EXAMPLE",
    "MAX_SIZE",
    "PAGE_SIZE",
    "format_limit",
    "format_size",
    "parse_limit",
    "parse_size",
]

EXAMPLE: Final = "4GB or 3.5GiB"
#: The largest size accepted, in bytes: 2**63-1, the most a signed 64-bit count holds.
MAX_SIZE: Final = 2**63 - 1
_TOO_LARGE: Final = "more than 8 EiB (2**63-1 bytes), the largest size a 64-bit system can count"


def _page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return 4096


#: The memory page of this machine in bytes (usually 4096): the smallest limit accepted.
PAGE_SIZE: Final = _page_size()

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
# ASCII only: without re.ASCII, \d and \s match other scripts' digits and spaces.
_SIZE_RE: Final = re.compile(
    r"\s*(?P<sign>[-+]?)(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[a-z]*|%)\s*",
    re.ASCII | re.IGNORECASE,
)
#: Longer numbers are refused before any arithmetic (no size needs them).
_MAX_DIGITS: Final = 40
_IEC: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _error(value: object, why: str = "", example: str = EXAMPLE) -> SizeError:
    detail = f": {why}" if why else ""
    return SizeError(f"invalid size {value!r}{detail} (expected e.g. {example})")


def _shown(size: int) -> str:
    """``4096`` -> ``"4KiB"``: a size as a value the parser accepts back."""
    return f"{size // 1024}KiB" if size % 1024 == 0 else f"{size}B"


def parse_size(value: int | str, *, percent_of: int | None = None) -> int:
    """Return ``value`` in bytes, from 0 to :data:`MAX_SIZE`.

    :param value: an ``int`` of bytes, or a string such as ``"200 MB"`` or ``"1.5GiB"``
    :param percent_of: when given, ``"80%"`` is also accepted and means that share of
        ``percent_of`` bytes (the memory the process can use, for process thresholds)
    :raises SizeError: (a ``ValueError``) on anything else, quoting the input
    """
    return _parse(value, percent_of, 0)


def parse_limit(value: int | str, *, percent_of: int | None = None) -> int:
    """Return the limit, threshold or budget ``value`` in bytes, at least :data:`PAGE_SIZE`.

    As :func:`parse_size`, and a value below one memory page (0 among them) is refused.

    :param value: an ``int`` of bytes, or a string such as ``"200 MB"`` or ``"1.5GiB"``
    :param percent_of: when given, ``"80%"`` is also accepted (see :func:`parse_size`)
    :raises SizeError: (a ``ValueError``) quoting the input, with a hint that is accepted
    """
    return _parse(value, percent_of, PAGE_SIZE)


def _parse(value: int | str, percent_of: int | None, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SizeError(
            f"invalid size {value!r}: expected an int of bytes or a string (e.g. {EXAMPLE})"
        )
    if isinstance(value, int):
        if value < 0:
            raise _error(value, "a size cannot be negative")
        return _bounded(value, value, minimum)
    if not value.isascii():
        hint = _ascii_hint(value, percent_of, minimum)
        raise _error(value, "only ASCII digits, units and spaces are accepted", hint)
    match = _SIZE_RE.fullmatch(value)
    if match is None:
        raise _error(value)
    num, unit = match["num"], match["unit"].lower()
    if match["sign"] == "-":
        raise _error(value, "a size cannot be negative")
    if len(num) > _MAX_DIGITS:
        raise _error(value, f"more than {_MAX_DIGITS} digits")
    if unit == "%":
        if percent_of is None:
            raise _error(value, "a percentage is only accepted for process thresholds")
        numerator, denominator = _fraction(num)
        if not 0 < numerator <= 100 * denominator:
            raise _error(value, "a percentage must be above 0% and at most 100%", "80%")
        return _bounded(value, numerator * percent_of // (100 * denominator), minimum)
    if unit in _AMBIGUOUS or not unit:
        shown = value.strip()[-len(unit) :]
        why = f"{shown!r} is ambiguous, MB or MiB?" if unit else "a size needs a unit"
        if _scaled(num, _UNITS["mib"]) < minimum:  # "0": a unit alone would not do
            why += f"; a limit must be at least one memory page, {_shown(minimum)}"
        raise _error(value, why, _unit_hint(num, minimum))
    if unit not in _UNITS:
        raise _error(value, f"unknown unit {value.strip()[-len(unit) :]!r}")
    return _bounded(value, _scaled(num, _UNITS[unit]), minimum)


def _bounded(value: int | str, size: int, minimum: int) -> int:
    if size > MAX_SIZE:
        raise _error(value, _TOO_LARGE)
    if size < minimum:
        raise _error(value, f"a limit must be at least one memory page, {_shown(minimum)}")
    return size


def _fraction(num: str) -> tuple[int, int]:
    """``"1.25"`` -> ``(125, 100)``: a decimal of ASCII digits as an exact fraction."""
    whole, _, decimals = num.partition(".")
    return int(whole + decimals or "0"), 10 ** len(decimals)


def _scaled(num: str, factor: int) -> int:
    """``num`` times ``factor``, rounded half to even, exactly (no float to lose bytes)."""
    numerator, denominator = _fraction(num)
    quotient, remainder = divmod(numerator * factor, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def _unit_hint(num: str, minimum: int) -> str:
    """``"512MB or 512MiB"`` for a number without a clear unit, when both are accepted."""
    if all(minimum <= _scaled(num, _UNITS[u]) <= MAX_SIZE for u in ("mb", "mib")):
        return f"{num}MB or {num}MiB"
    return EXAMPLE


def _ascii_hint(value: str, percent_of: int | None, minimum: int) -> str:
    """The ASCII spelling (NFKC) of ``value``, e.g. of a fullwidth digit, when it is accepted."""
    import unicodedata

    spelled = unicodedata.normalize("NFKC", value).strip()
    if spelled.isascii():
        try:
            _parse(spelled, percent_of, minimum)
        except SizeError:
            pass
        else:
            return spelled
    return EXAMPLE


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


_SI: Final = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))


def format_limit(n: int | None) -> str:
    """A budget or limit as the user most likely wrote it: a whole number of decimal
    units first, its IEC figure beside (``100_000_000`` -> ``"100 MB (95.4 MiB)"``);
    other sizes as :func:`format_size` writes them."""
    if n is None or n <= 0:
        return format_size(n)
    binary = format_size(n)
    if not binary.endswith(" B") and float(binary.split()[0]).is_integer():
        return binary  # 1.0 GiB: written in binary units
    for unit, factor in _SI:
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit} ({binary})"
    return binary
