from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pytest_memguard import SizeError, format_size, parse_size
from pytest_memguard.core.sizes import MAX_SIZE, PAGE_SIZE, format_limit, parse_limit

PAGE = f"{PAGE_SIZE // 1024}KiB"
LIMIT = f"a limit must be at least one memory page, {PAGE}"
TOO_LARGE = "more than 8 EiB (2**63-1 bytes), the largest size a 64-bit system can count"

GOOD = [
    (0, 0),
    (1024, 1024),
    ("1B", 1),
    ("200 MB", 200_000_000),
    ("200mb", 200_000_000),
    ("1.5GiB", 1_610_612_736),
    ("1.5 gib", 1_610_612_736),
    ("  3 KiB ", 3072),
    (".5GB", 500_000_000),
    ("2TB", 2 * 10**12),
    ("1 TiB", 2**40),
    ("10 kb", 10_000),
    ("+5MiB", 5 * 2**20),
    ("0B", 0),
    ("0.0001 B", 0),
    ("1.5B", 2),
    ("1.1MB", 1_100_000),
    (MAX_SIZE, MAX_SIZE),
    ("9223372036854775807B", MAX_SIZE),
    ("8388607.999999TiB", 9_223_372_036_853_676_296),
]


@pytest.mark.parametrize(("value", "expected"), GOOD)
def test_parse_size_accepts(value: int | str, expected: int) -> None:
    assert parse_size(value) == expected


BAD = [
    ("12 apples", "invalid size '12 apples': unknown unit 'apples' (expected e.g. 4GB or 3.5GiB)"),
    ("512M", "invalid size '512M': 'M' is ambiguous, MB or MiB? (expected e.g. 512MB or 512MiB)"),
    ("4g", "invalid size '4g': 'g' is ambiguous, MB or MiB? (expected e.g. 4MB or 4MiB)"),
    (
        "1.5 Gi",
        "invalid size '1.5 Gi': 'Gi' is ambiguous, MB or MiB? (expected e.g. 1.5MB or 1.5MiB)",
    ),
    ("512", "invalid size '512': a size needs a unit (expected e.g. 512MB or 512MiB)"),
    ("-5MB", "invalid size '-5MB': a size cannot be negative (expected e.g. 4GB or 3.5GiB)"),
    (-1, "invalid size -1: a size cannot be negative (expected e.g. 4GB or 3.5GiB)"),
    ("", "invalid size '' (expected e.g. 4GB or 3.5GiB)"),
    ("nan MB", "invalid size 'nan MB' (expected e.g. 4GB or 3.5GiB)"),
    ("inf GB", "invalid size 'inf GB' (expected e.g. 4GB or 3.5GiB)"),
    ("1e3MB", "invalid size '1e3MB' (expected e.g. 4GB or 3.5GiB)"),
    ("5 MB extra", "invalid size '5 MB extra' (expected e.g. 4GB or 3.5GiB)"),
    ("2 PB", "invalid size '2 PB': unknown unit 'PB' (expected e.g. 4GB or 3.5GiB)"),
    (
        "80%",
        "invalid size '80%': a percentage is only accepted for process thresholds"
        " (expected e.g. 4GB or 3.5GiB)",
    ),
    (1.5, "invalid size 1.5: expected an int of bytes or a string (e.g. 4GB or 3.5GiB)"),
    (True, "invalid size True: expected an int of bytes or a string (e.g. 4GB or 3.5GiB)"),
    (None, "invalid size None: expected an int of bytes or a string (e.g. 4GB or 3.5GiB)"),
    (
        "99999999999999999999TB",
        f"invalid size '99999999999999999999TB': {TOO_LARGE} (expected e.g. 4GB or 3.5GiB)",
    ),
    ("8388608TiB", f"invalid size '8388608TiB': {TOO_LARGE} (expected e.g. 4GB or 3.5GiB)"),
    (MAX_SIZE + 1, f"invalid size {MAX_SIZE + 1}: {TOO_LARGE} (expected e.g. 4GB or 3.5GiB)"),
    (
        "1" * 41 + "B",
        f"invalid size '{'1' * 41}B': more than 40 digits (expected e.g. 4GB or 3.5GiB)",
    ),
    (
        "\uff15GB",
        "invalid size '\uff15GB': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 5GB)",
    ),
    (
        "\uff15\uff27\uff22",
        "invalid size '\uff15\uff27\uff22': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 5GB)",
    ),
    (
        "5\u00a0MB",
        "invalid size '5\\xa0MB': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 5 MB)",
    ),
    (
        "\u0663MB",
        "invalid size '\u0663MB': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 4GB or 3.5GiB)",
    ),
    (
        "5\u212aB",
        "invalid size '5\u212aB': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 5KB)",
    ),
]


@pytest.mark.parametrize(("value", "message"), BAD)
def test_parse_size_refuses_with_a_message_that_quotes_the_input(
    value: object, message: str
) -> None:
    with pytest.raises(SizeError) as excinfo:
        parse_size(value)  # type: ignore[arg-type]
    assert str(excinfo.value) == message
    assert isinstance(excinfo.value, ValueError)


def test_percentages_of_a_total() -> None:
    assert parse_size("80%", percent_of=1000) == 800
    assert parse_size("12.5 %", percent_of=800) == 100
    assert parse_size("100%", percent_of=1000) == 1000


@pytest.mark.parametrize("value", ["0%", "150%", "-5%"])
def test_percentages_out_of_range(value: str) -> None:
    with pytest.raises(SizeError, match=r"percentage must be above 0% and at most 100%|negative"):
        parse_size(value, percent_of=1000)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (250 * 2**20, "250.0 MiB"),
        (int(1.5 * 2**30), "1.5 GiB"),
        (3 * 2**40, "3.0 TiB"),
        (2**60, "1024.0 PiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_format_size_uses_iec_units(n: int | None, text: str) -> None:
    assert format_size(n) == text


def test_round_trip_of_formatted_sizes() -> None:
    for n in (1024, 5 * 2**20, 3 * 2**30):
        assert parse_size(format_size(n).replace(" ", "")) == n


LIMIT_BAD = [
    ("0B", f"invalid size '0B': {LIMIT} (expected e.g. 4GB or 3.5GiB)"),
    ("0.0001B", f"invalid size '0.0001B': {LIMIT} (expected e.g. 4GB or 3.5GiB)"),
    ("1B", f"invalid size '1B': {LIMIT} (expected e.g. 4GB or 3.5GiB)"),
    (
        f"{PAGE_SIZE - 1}B",
        f"invalid size '{PAGE_SIZE - 1}B': {LIMIT} (expected e.g. 4GB or 3.5GiB)",
    ),
    (0, f"invalid size 0: {LIMIT} (expected e.g. 4GB or 3.5GiB)"),
    ("0", f"invalid size '0': a size needs a unit; {LIMIT} (expected e.g. 4GB or 3.5GiB)"),
    (
        "0M",
        f"invalid size '0M': 'M' is ambiguous, MB or MiB?; {LIMIT} (expected e.g. 4GB or 3.5GiB)",
    ),
    ("512", "invalid size '512': a size needs a unit (expected e.g. 512MB or 512MiB)"),
    (
        "\uff10B",
        "invalid size '\uff10B': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 4GB or 3.5GiB)",
    ),
    (
        "\uff15GB",
        "invalid size '\uff15GB': only ASCII digits, units and spaces are accepted"
        " (expected e.g. 5GB)",
    ),
    (
        "99999999999999999999TB",
        f"invalid size '99999999999999999999TB': {TOO_LARGE} (expected e.g. 4GB or 3.5GiB)",
    ),
]


@pytest.mark.parametrize(("value", "message"), LIMIT_BAD)
def test_parse_limit_refuses_zero_less_than_a_page_and_the_rest(
    value: int | str, message: str
) -> None:
    with pytest.raises(SizeError) as excinfo:
        parse_limit(value)
    assert str(excinfo.value) == message


@pytest.mark.parametrize("value", [PAGE_SIZE, f"{PAGE_SIZE}B", PAGE, "4GB", "1.5GiB", MAX_SIZE])
def test_parse_limit_accepts_one_page_and_more(value: int | str) -> None:
    assert parse_limit(value) == parse_size(value)


def test_a_percentage_limit_is_at_least_one_page_of_its_total() -> None:
    assert parse_limit("50%", percent_of=2 * PAGE_SIZE) == PAGE_SIZE
    with pytest.raises(SizeError, match=re.escape(LIMIT)):
        parse_limit("0.0001%", percent_of=2**30)
    with pytest.raises(SizeError, match=r"above 0% and at most 100% \(expected e.g. 80%\)"):
        parse_limit("0%", percent_of=2**30)


def _hints(message: str) -> list[str]:
    """The values a message suggests: ``(expected e.g. A or B)`` -> ``["A", "B"]``."""
    found = re.search(r"\((?:expected )?e\.g\. (.+)\)$", message)
    assert found is not None, message
    hints = found[1].split(" or ")
    return hints + re.findall(r"at least one memory page, (\S+?) \(", message)


@pytest.mark.parametrize(
    ("parse", "value", "percent_of"),
    [(parse_size, value, None) for value, _ in BAD if isinstance(value, (int, str))]
    + [(parse_limit, value, None) for value, _ in LIMIT_BAD]
    + [(parse_limit, value, 2**30) for value in ("0%", "150%", "0", "0B", "2G", "\uff18\uff10%")],
)
def test_every_hint_is_itself_accepted(
    parse: Callable[..., int], value: int | str, percent_of: int | None
) -> None:
    with pytest.raises(SizeError) as excinfo:
        parse(value, percent_of=percent_of)
    hints = _hints(str(excinfo.value))
    assert hints
    for hint in hints:
        parse(hint, percent_of=percent_of)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (100 * 10**6, "100 MB (95.4 MiB)"),
        (3 * 10**9, "3 GB (2.8 GiB)"),
        (1500 * 10**6, "1500 MB (1.4 GiB)"),
        (2**30, "1.0 GiB"),
        (1536 * 2**20, "1.5 GiB"),
        (1000, "1 KB (1000 B)"),
        (512, "512 B"),
        (None, "-"),
    ],
)
def test_a_limit_is_said_as_it_was_most_likely_written(size: int | None, shown: str) -> None:
    assert format_limit(size) == shown
