from __future__ import annotations

import pytest

from pytest_memguard import SizeError, format_size, parse_size

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
