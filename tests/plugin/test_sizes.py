"""Size rules end to end: one page at least, 8 EiB at most, ASCII digits, hints that work.

The same rules hold for options, ini values, environment variables and markers; each
refused value is a usage error (exit code 4) naming its source, or an error of the marked
test only, and every value a message suggests is fed back and accepted.
"""

from __future__ import annotations

import re

import pytest

from pytest_memguard.core.sizes import PAGE_SIZE

from .conftest import InnerSession, run_bad_marker, settings

PAGE = f"{PAGE_SIZE // 1024}KiB"
SMALL = f"a limit must be at least one memory page, {PAGE} (expected e.g. 4GB or 3.5GiB)"
HUGE = (
    "more than 8 EiB (2**63-1 bytes), the largest size a 64-bit system can count"
    " (expected e.g. 4GB or 3.5GiB)"
)
ASCII = "only ASCII digits, units and spaces are accepted"


def hints(message: str) -> list[str]:
    """Every value ``message`` suggests: ``(expected e.g. A or B)`` and a page, ``4KiB``."""
    found = re.search(r"\(expected e\.g\. (.+)\)$", message)
    assert found is not None, message
    return [*found[1].split(" or "), *re.findall(r"memory page, (\S+) \(", message)]


# (layer, setting, value, message after "invalid size '<value>'")
REFUSED = [
    ("cli", "max", "0B", SMALL),
    ("cli", "max", "1B", SMALL),
    ("cli", "max", "0.0001B", SMALL),
    ("cli", "max", "0", f"a size needs a unit; {SMALL}"),
    ("cli", "max", "0%", "a percentage must be above 0% and at most 100% (expected e.g. 80%)"),
    ("cli", "max", "99999999999999999999TB", HUGE),
    ("cli", "max", "\uff15GB", f"{ASCII} (expected e.g. 5GB)"),
    ("ini", "max", "\uff15GB", f"{ASCII} (expected e.g. 5GB)"),
    ("env", "max", "\uff15GB", f"{ASCII} (expected e.g. 5GB)"),
    ("cli", "max", "\uff18\uff10%", f"{ASCII} (expected e.g. 80%)"),
    ("env", "budget", "0", f"a size needs a unit; {SMALL}"),
    ("cli", "budget", "\uff12\uff10\uff10 MB", f"{ASCII} (expected e.g. 200 MB)"),
    ("cli", "leak-budget", "0B", SMALL),
    ("env", "leak-budget", "0", f"a size needs a unit; {SMALL}"),
    ("ini", "min-free", "1B", SMALL),
    ("cli", "recycle", "0B", SMALL),
    ("cli", "worker-memory", "0B", SMALL),
    ("env", "aggregate", "0B", SMALL),
    ("ini", "aggregate", "99999999999999999999TB", HUGE),
]


def configure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, layer: str, name: str, value: str
) -> list[str]:
    """Give setting ``name`` the ``value`` on ``layer``; the command-line arguments to add."""
    key = name.replace("-", "_")
    if layer == "ini":
        pytester.makeini(f"[pytest]\nmemguard_{key} = {value}\n")
    elif layer == "env":
        monkeypatch.setenv(f"MEMGUARD_{key.upper()}", value)
    else:
        return [f"--memguard-{name}={value}"]
    return []


def source(layer: str, name: str) -> str:
    key = name.replace("-", "_")
    return {
        "cli": f"--memguard-{name}",
        "ini": f"memguard_{key} (ini)",
        "env": f"MEMGUARD_{key.upper()}",
    }[layer]


@pytest.mark.parametrize(("layer", "name", "value", "message"), REFUSED)
def test_refused_sizes_are_usage_errors_and_their_hints_are_accepted(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    layer: str,
    name: str,
    value: str,
    message: str,
) -> None:
    pytester.makepyfile("def test_never_runs(): raise AssertionError('ran')")
    args = configure(pytester, monkeypatch, layer, name, value)
    result = pytester.runpytest("--memguard", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = f"ERROR: {source(layer, name)}: invalid size {value!r}: {message}"
    assert line in result.stderr.lines
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    assert "test_never_runs" not in output
    suggested = hints(line)
    assert suggested
    for hint in suggested:  # each one, given the same way, is accepted
        args = configure(pytester, monkeypatch, layer, name, hint)
        settings(pytester, "--memguard", *args)


def test_one_page_is_the_smallest_limit(pytester: pytest.Pytester) -> None:
    resolved = settings(
        pytester, "--memguard", f"--memguard-max={PAGE}", f"--memguard-budget={PAGE}"
    )
    assert (resolved.thresholds.max, resolved.budget) == (PAGE_SIZE, PAGE_SIZE)


def test_a_fullwidth_top_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("--memguard", "--memguard-top=\uff15")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --memguard-top: invalid number '\uff15' (expected *)"])


# (marker arguments, the error of the marked test)
MARKERS = [
    ('"0B"', f"memory_budget(peak='0B'): invalid size '0B': {SMALL}"),
    ("leak=0", f"memory_budget(leak=0): invalid size 0: {SMALL}"),
    ('leak="0"', f"memory_budget(leak='0'): invalid size '0': a size needs a unit; {SMALL}"),
    ('heap="1B"', f"memory_budget(heap='1B'): invalid size '1B': {SMALL}"),
    (
        'peak="99999999999999999999TB"',
        f"memory_budget(peak='99999999999999999999TB'): invalid size '99999999999999999999TB':"
        f" {HUGE}",
    ),
    (
        'rss="\uff15GB"',
        f"memory_budget(rss='\uff15GB'): invalid size '\uff15GB': {ASCII} (expected e.g. 5GB)",
    ),
]


@pytest.mark.parametrize(("marker", "message"), MARKERS)
def test_refused_marker_sizes_error_only_their_test_and_their_hints_are_accepted(
    pytester: pytest.Pytester, run: InnerSession, marker: str, message: str
) -> None:
    result, _ = run_bad_marker(pytester, run, marker)
    assert message in result.stdout.lines
    kind = marker.split("=")[0] if "=" in marker else "peak"
    # Fed back as the same kind: report mode, so a tiny budget warns but errors nothing.
    # rss= is fed back as peak=: the same rules, and a tiny cap would stop the test.
    kind = "peak" if kind == "rss" else kind
    suggested = hints(message)
    pytester.makepyfile(
        "import pytest\n"
        + "".join(
            f"@pytest.mark.memory_budget({kind}={hint!r})\ndef test_hint_{i}():\n    pass\n"
            for i, hint in enumerate(suggested)
        )
    )
    result, _ = run("--memguard-mode=report", inprocess=True)
    result.assert_outcomes(passed=len(suggested))
