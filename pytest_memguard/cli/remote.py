"""``memguard profile|cleanup|configure --url URL``: a client of a running service's
memory endpoints (``memory_app``), over the standard library's ``urllib``.

``URL`` is where the endpoints are mounted, e.g. ``http://127.0.0.1:8000/memory``.  The
token comes from ``--token`` or the ``MEMGUARD_TOKEN`` environment variable.  Exit
status: 0 done; 1 a cleanup that did not run (the cooldown; ``--force`` bypasses it);
2 a usage error, a refused token, an unreachable URL or an answer that is not the
endpoints' JSON, each said in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Final

from ..core.sizes import format_size
from .common import CommandError, seconds

__all__ = ["TOKEN_VARIABLE", "add_parsers", "call"]

#: The environment variable read when ``--token`` is not given.
TOKEN_VARIABLE: Final = "MEMGUARD_TOKEN"
#: Exit status of a cleanup that did not run.
EXIT_NOT_RUN: Final = 1


def _fraction(value: str) -> float:
    try:
        number = float(value) if value.isascii() and "_" not in value else -1.0
    except ValueError:
        number = -1.0
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(
            f"invalid fraction {value!r} (expected a number in (0, 1], e.g. 0.7)"
        )
    return number


def _url(value: str) -> str:
    """An http(s) URL with a host and, if any, a numeric port in range."""
    import urllib.parse  # here: every memguard command builds this parser

    text = value.strip()
    try:  # urlsplit refuses "http://[::1"; .port refuses "http://h:abc" and "http://h:99999"
        parts = urllib.parse.urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        usable = False
    if not usable or not text.isprintable() or " " in text:
        raise argparse.ArgumentTypeError(
            f"invalid URL {value!r} (expected where the endpoints are mounted, "
            "e.g. http://127.0.0.1:8000/memory)"
        )
    return text.rstrip("/")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        required=True,
        type=_url,
        help="Where the service mounts its memory endpoints, e.g. http://127.0.0.1:8000/memory",
    )
    parser.add_argument("--token", help=f"The service's bearer token (default: ${TOKEN_VARIABLE})")
    parser.add_argument("--json", action="store_true", help="Print the service's JSON answer")
    parser.add_argument(
        "--timeout",
        type=seconds(0, inclusive=False),
        default=10.0,
        metavar="SECONDS",
        help="Seconds to wait for the answer (default 10)",
    )


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``profile``, ``cleanup`` and ``configure``."""
    profile = commands.add_parser(
        "profile",
        help="Memory profile of a running service (GET URL/profile)",
        description="Show a running service's memory profile: RSS and its level, system "
        "memory, caches, pressure level (GET URL/profile).",
        allow_abbrev=False,
    )
    _common(profile)
    profile.set_defaults(handler=_profile)
    cleanup = commands.add_parser(
        "cleanup",
        help="Run a running service's emergency cleanup (POST URL/cleanup)",
        description="Run a running service's emergency cleanup: its pressure handlers at "
        "their strongest (caches emptied), gc.collect(), heap trim (POST URL/cleanup). "
        "Exits 1 when the service's cooldown kept it from running.",
        allow_abbrev=False,
    )
    _common(cleanup)
    cleanup.add_argument("--force", action="store_true", help="Bypass the service's cooldown")
    cleanup.set_defaults(handler=_cleanup)
    configure = commands.add_parser(
        "configure",
        help="Change a running service's memory settings (POST URL/configure)",
        description="Change a running service's pressure levels, cooldown and automatic "
        "mode (POST URL/configure). Every value is checked by the service first: a bad "
        "one changes nothing.",
        allow_abbrev=False,
    )
    _common(configure)
    configure.add_argument(
        "--warning",
        type=_fraction,
        metavar="FRACTION",
        help="Share of memory in use at which pressure is WARNING",
    )
    configure.add_argument(
        "--critical",
        type=_fraction,
        metavar="FRACTION",
        help="Share of memory in use at which pressure is CRITICAL",
    )
    configure.add_argument(
        "--cooldown",
        type=seconds(0, inclusive=True),
        metavar="SECONDS",
        help="Seconds between two cleanups",
    )
    configure.add_argument(
        "--interval",
        type=seconds(0, inclusive=False),
        metavar="SECONDS",
        help="Seconds between two profiles of the automatic mode",
    )
    auto = configure.add_mutually_exclusive_group()
    auto.add_argument(
        "--auto-cleanup",
        dest="auto_cleanup",
        action="store_true",
        default=None,
        help="Clean up automatically past the threshold (starts the automatic mode)",
    )
    auto.add_argument(
        "--no-auto-cleanup",
        dest="auto_cleanup",
        action="store_false",
        help="Stop cleaning up automatically",
    )
    configure.set_defaults(handler=_configure)  # fmt: skip


def call(
    url: str,
    method: str,
    token: str | None,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    accept: tuple[int, ...] = (200,),
) -> tuple[int, dict[str, Any]]:
    """One request to the endpoints: the status and the JSON object answered.

    :raises CommandError: one line for a refused token (401/403), an unreachable URL, an
        answer that is not a JSON object, or a status not in ``accept``
    """
    import urllib.error
    import urllib.request  # here: every memguard command (show, diff...) imports this module

    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(f"cannot reach {url}: {reason}") from None
    answer = _parse(url, status, raw)
    if status in (401, 403):
        raise CommandError(_refused(url, status, token, answer))
    if status not in accept:
        said = answer.get("error") or f"unexpected answer {json.dumps(answer)[:200]}"
        raise CommandError(f"{url} answered {status}: {said}")
    return status, answer


def _parse(url: str, status: int, raw: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        shown = raw[:60].decode("utf-8", "replace").strip() or "an empty body"
        raise CommandError(
            f"bad answer from {url} (status {status}): not JSON: {shown!r}; is --url where "
            "the memory endpoints are mounted?"
        ) from None
    if not isinstance(answer, dict):
        raise CommandError(
            f"bad answer from {url} (status {status}): expected a JSON object, "
            f"got {type(answer).__name__}"
        )
    return answer


def _refused(url: str, status: int, token: str | None, answer: dict[str, Any]) -> str:
    if status == 403:
        return f"the token was refused by {url} (403): {answer.get('error', 'forbidden')}"
    if not token:
        return (
            f"the token was refused by {url} (401): none was given "
            f"(pass --token or set {TOKEN_VARIABLE})"
        )
    return f"the token was refused by {url} (401): it is not the service's token"


def _token(args: argparse.Namespace) -> str | None:
    token: str | None = args.token or os.environ.get(TOKEN_VARIABLE) or None
    return token


def _expect(url: str, answer: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in answer]
    if missing:
        raise CommandError(
            f"bad answer from {url}: no {', '.join(map(repr, missing))} in it; is --url "
            "where the memory endpoints are mounted?"
        )


def _print(text: str) -> None:
    print(text, file=sys.stdout)


def _profile(args: argparse.Namespace) -> int:
    url = f"{args.url}/profile"
    _, answer = call(url, "GET", _token(args), timeout=args.timeout)
    _expect(url, answer, ("rss", "system", "pressure", "caches"))
    if args.json:
        _print(json.dumps(answer, indent=2))
        return 0
    system = answer["system"]
    lines = [
        f"process: pid {answer.get('pid')}, RSS {format_size(answer['rss'])} "
        f"({answer.get('rss_level', 'ok')})",
        f"memory: {format_size(system['available'])} available of "
        f"{format_size(system['total'])} ({system['source']}), "
        f"{system['fraction_used']:.1%} used",
        f"pressure: {answer['pressure']['level']}",
        f"caches: {len(answer['caches'])}, holding {format_size(answer.get('cache_bytes', 0))}",
    ]
    for name, cache in answer["caches"].items():
        lines.append(
            f"  {name}: {cache['size']} entries, {format_size(cache['memory_bytes'])} of "
            f"{format_size(cache['max_memory_bytes'])}, hit rate {cache['hit_rate']:.0%}"
        )
    _print("\n".join(lines))
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    url = f"{args.url}/cleanup"
    body = {"force": True} if args.force else {}
    _, answer = call(url, "POST", _token(args), body, timeout=args.timeout, accept=(200, 429))
    _expect(url, answer, ("ran",))
    if args.json:
        _print(json.dumps(answer, indent=2))
    if not answer["ran"]:
        retry = answer.get("retry_in")
        when = "" if retry is None else f", retry in {retry:.0f} s"
        print(
            f"memguard cleanup: did not run ({answer.get('reason')}{when}); --force bypasses "
            "the cooldown",
            file=sys.stderr,
        )
        return EXIT_NOT_RUN
    if args.json:
        return 0
    _expect(url, answer, ("freed", "rss_before", "rss_after", "rss_freed"))
    forced = " (forced)" if answer.get("forced") else ""
    lines = [
        f"cleanup ran{forced}: handlers freed {format_size(answer['freed'])}; RSS "
        f"{format_size(answer['rss_before'])} -> {format_size(answer['rss_after'])} "
        f"({format_size(answer['rss_freed'])} returned)",
        *(f"  {name}: {format_size(freed)}" for name, freed in answer.get("handlers", {}).items()),
        *(f"  {action}" for action in answer.get("actions", [])),
    ]
    _print("\n".join(lines))
    return 0


def _configure(args: argparse.Namespace) -> int:
    names = ("warning", "critical", "cooldown", "interval", "auto_cleanup")
    body = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if not body:
        raise CommandError(
            "nothing to configure (give --warning, --critical, --cooldown, --interval, "
            "--auto-cleanup or --no-auto-cleanup)"
        )
    url = f"{args.url}/configure"
    _, answer = call(url, "POST", _token(args), body, timeout=args.timeout)
    _expect(url, answer, ("configured", "warning", "critical", "cooldown"))
    if args.json:
        _print(json.dumps(answer, indent=2))
        return 0
    auto = answer.get("auto_cleanup")
    running = "running" if answer.get("automatic") else "not running"
    _print(
        f"configured {', '.join(answer['configured'])}: warning {answer['warning']:g}, "
        f"critical {answer['critical']:g}, cooldown {answer['cooldown']:g} s, "
        f"interval {answer.get('interval', 0):g} s, auto cleanup "
        f"{'on' if auto else 'off'} (automatic mode {running})"
    )
    return 0
