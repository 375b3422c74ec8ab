"""What the POST routes of ``memory_app`` accept: token, body size, JSON, keys, bounds.

``cleanup`` takes ``{"force": bool}``.  ``configure`` keeps the forms it took (a size or
null for ``alert_threshold``, JSON numbers for the fractions ``warning`` and ``critical``,
seconds for ``cooldown`` (>= 0) and ``interval`` (> 0), a bool for ``auto_cleanup``,
``headers``) and refuses values nothing could act on, by the rules of the plugin's own
thresholds: a fraction, like a percentage there, is in (0, 1]; a size is at least one page
(RSS grows by pages); and since a threshold is compared with the memory this process can
use (the cgroup's limit when there is one), a fraction must come to at least one page of
it and a size to at most all of it; seconds are at most a day.  Numbers beyond a float's
range (``1e400``) are refused, as ``NaN`` and ``Infinity`` are, and so is an integer of
any length out of its key's range.
"""

from __future__ import annotations

import hmac
import json
import math
import mmap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..core.sizes import format_size, parse_size
from .asgi import Message, Receive, Scope

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..probe.system import SystemMemory

__all__ = [
    "MAX_SECONDS",
    "PAGE",
    "SETTINGS",
    "Refused",
    "Response",
    "authorize",
    "check_cleanup",
    "check_settings",
    "error",
    "invalid",
    "parse_body",
    "read_asgi_body",
    "read_wsgi_body",
    "refuse_unknown",
]

#: The smallest size a limit may have: one page of memory, in bytes.
PAGE: Final = mmap.PAGESIZE
#: The keys ``POST /configure`` accepts.
SETTINGS: Final = (
    "alert_threshold",
    "auto_cleanup",
    "cooldown",
    "critical",
    "headers",
    "interval",
    "warning",
)
#: The longest ``cooldown`` or ``interval`` (seconds): a day.  A thread's wait has a
#: platform maximum (``threading.TIMEOUT_MAX``, 49 days on Windows) that a larger one passes.
MAX_SECONDS: Final = 86_400
#: The keys ``POST /cleanup`` accepts.
CLEANUP: Final = ("force",)
_FRACTION: Final = "expected a fraction in (0, 1], e.g. 0.7"

#: ``(status, JSON payload, extra headers)``.
Response = tuple[int, Any, list[tuple[bytes, bytes]]]


def error(
    status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None, **fields: Any
) -> Response:
    """A JSON error: ``{"error": message, **fields}``."""
    return status, {"error": message, **fields}, headers or []


class Refused(Exception):
    """A request refused with a response (raised inside the app only)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[1].get("error"))
        self.response = response


def invalid(key: str, value: object, why: str, kind: str = "value") -> Refused:
    """A 400 naming ``key`` and its ``value``: ``key: invalid value 'x': why``."""
    message = f"{key}: invalid {kind} {value!r}: {why}"
    return Refused(error(400, message, key=key, value=value))


def authorize(token: bytes | None, given: bytes) -> None:
    """Check an ``Authorization`` value against ``token``: 403 with no token, 401 if wrong."""
    if token is None:
        raise Refused(error(403, "POST routes are off: memory_app() was built with no token"))
    scheme, _, credentials = given.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), token):
        message = "missing or wrong 'Authorization: Bearer <token>'"
        raise Refused(error(401, message, [(b"www-authenticate", b"Bearer")]))


def _too_large(max_body: int) -> Refused:
    return Refused(error(413, f"request body larger than {max_body} bytes"))


def _declared(value: bytes, max_body: int) -> int:
    """A ``Content-Length`` in bytes; 400 if it is no number, 413 above ``max_body``."""
    if not value.strip().isdigit():
        raise Refused(error(400, f"bad Content-Length {value!r}"))
    if int(value) > max_body:
        raise _too_large(max_body)
    return int(value)


async def read_asgi_body(scope: Scope, receive: Receive, max_body: int) -> bytes:
    """The request body, at most ``max_body`` bytes (413 above, declared or counted)."""
    for name, value in scope.get("headers", ()):
        if bytes(name).lower() == b"content-length":
            _declared(bytes(value), max_body)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(error(400, "client disconnected"))
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > max_body:
            raise _too_large(max_body)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def read_wsgi_body(environ: WSGIEnvironment, max_body: int) -> bytes:
    """``CONTENT_LENGTH`` bytes of ``wsgi.input``; with none, only a body the server ends."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        return bytes(
            environ["wsgi.input"].read(_declared(declared.encode("latin-1", "replace"), max_body))
        )
    if not environ.get("wsgi.input_terminated"):
        return b""  # PEP 3333: reading past the end of the body could block
    body = bytes(environ["wsgi.input"].read(max_body + 1))
    if len(body) > max_body:
        raise _too_large(max_body)
    return body


def refuse_unknown(data: dict[str, Any], known: tuple[str, ...]) -> None:
    """400 naming the first key of ``data`` not in ``known``."""
    for key in data:
        if key not in known:
            expected = ", ".join(known) or "no keys"
            message = f"unknown key {key!r} (expected {expected})"
            raise Refused(error(400, message, key=key, value=data[key]))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is out of range (expected a finite number)")
    return number


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body`` (``{}`` when empty); 400 for anything else."""
    if not body.strip():
        return {}
    try:
        data = json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite
        )
    except (ValueError, RecursionError) as failure:
        raise Refused(error(400, f"malformed JSON: {failure}")) from None
    if not isinstance(data, dict):
        raise Refused(error(400, f"expected a JSON object, got {type(data).__name__}"))
    return data


def check_cleanup(data: dict[str, Any]) -> bool:
    """``force`` of a ``cleanup`` body (False when absent); 400 naming a bad key or value."""
    refuse_unknown(data, CLEANUP)
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise invalid("force", force, "expected true or false")
    return force


def _seconds(key: str, value: Any, *, zero: bool) -> float:
    """A number of seconds above 0 (or at it when ``zero``), at most :data:`MAX_SECONDS`."""
    bound = f"{'>= 0' if zero else '> 0'} and <= {MAX_SECONDS}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # compared before any float(): a JSON integer of 400 digits overflows a float
    if not number or not 0 <= value <= MAX_SECONDS or (value == 0 and not zero):
        raise invalid(key, value, f"expected seconds {bound}, e.g. {300 if zero else 60}")
    return float(value)


def check_settings(
    data: dict[str, Any], *, recorder: bool, memory: Callable[[], SystemMemory]
) -> dict[str, Any]:
    """The settings of a ``configure`` body, checked; 400 naming the first bad one.

    ``recorder`` says whether a middleware takes ``alert_threshold`` and ``headers``;
    ``memory`` is read once, if a value needs it.  The coordinator checks that
    ``warning`` is not above ``critical``.
    """
    refuse_unknown(data, SETTINGS)
    for key in ("alert_threshold", "headers"):
        if key in data and not recorder:
            raise invalid(key, data[key], "memory_app() was given no middleware to configure")
    readings: list[SystemMemory] = []

    def usable() -> SystemMemory:
        if not readings:
            readings.append(memory())
        return readings[0]

    checked: dict[str, Any] = {}
    if "alert_threshold" in data:
        value = data["alert_threshold"]
        checked["alert_threshold"] = None if value is None else _size(value, usable)
    for key in ("headers", "auto_cleanup"):
        if key in data:
            if not isinstance(data[key], bool):
                raise invalid(key, data[key], "expected true or false")
            checked[key] = data[key]
    if "cooldown" in data:
        checked["cooldown"] = _seconds("cooldown", data["cooldown"], zero=True)
    if "interval" in data:
        checked["interval"] = _seconds("interval", data["interval"], zero=False)
    for key in ("warning", "critical"):
        if key in data:
            checked[key] = _fraction(key, data[key], usable)
    return checked


def _size(value: Any, usable: Callable[[], SystemMemory]) -> int:
    """``alert_threshold`` in bytes: from one page to the memory this process can use."""
    key, hint = "alert_threshold", "(expected e.g. 20MB, or null for no alerts)"
    try:
        size = parse_size(value)
    except ValueError as failure:
        raise Refused(error(400, f"{key}: {failure}", key=key, value=value)) from None
    if size < PAGE:
        raise invalid(key, value, f"below one page ({format_size(PAGE)}) {hint}", "size")
    system = usable()
    if size > system.total:
        usable_here = f"the {format_size(system.total)} this process can use ({system.source})"
        raise invalid(key, value, f"more than {usable_here} {hint}", "size")
    return size


def _fraction(key: str, value: Any, usable: Callable[[], SystemMemory]) -> float:
    """A fraction of the memory this process can use; the coordinator checks (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(key, value, _FRACTION)
    if 0 < value <= 1:
        system = usable()
        if value * system.total < PAGE:
            share = f"{value!r} of the {format_size(system.total)} this process can use"
            raise invalid(
                key, value, f"{share} is below one page ({format_size(PAGE)}) ({_FRACTION})"
            )
    return value
