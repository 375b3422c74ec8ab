"""Leak mode on tests that log and print: what pytest keeps of them is never the test's."""

from __future__ import annotations

import pytest

from .conftest import InnerSession, entry

LOGGING = """
import io
import logging

import pytest

log = logging.getLogger("cases")


class KeepsEverything(logging.Handler):
    def __init__(self):
        super().__init__()
        self.kept = []

    def emit(self, record):
        self.kept.append(bytearray(20_000))


def test_twenty_thousand_warnings():
    for i in range(20_000):
        log.warning("message %d of a test that logs a lot", i)


def test_prints_a_lot():
    for i in range(20_000):
        print(f"line {i} of a test that prints a lot")


def test_caplog_checked_and_cleared(caplog):
    for round in range(5):
        for i in range(2_000):
            log.warning("round %d message %d", round, i)
        assert len(caplog.records) == 2_000
        caplog.clear()


def test_info_records(caplog):
    caplog.set_level(logging.INFO)
    for i in range(10_000):
        log.info("info %d", i)
    assert len(caplog.records) == 10_000


def test_handler_added_and_removed():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        for i in range(10_000):
            log.warning("to my own handler %d", i)
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue()


def test_handler_never_removed():
    logging.getLogger("cases.leaky").addHandler(KeepsEverything())
    for i in range(100):
        logging.getLogger("cases.leaky").warning("kept %d", i)
"""

LEAK_LINE = "self.kept.append(bytearray(20_000))"


@pytest.fixture
def logging_cases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_logging=LOGGING)


def _leak_line(pytester: pytest.Pytester) -> int:
    lines = (pytester.path / "test_logging.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if LEAK_LINE in line)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-o", "log_level=INFO"),
        ("-o", "log_cli=true", "-o", "log_cli_level=INFO"),
        ("-n", "2"),
    ],
    ids=["default", "log_level-INFO", "log_cli", "xdist"],
)
def test_only_the_handler_that_keeps_everything_leaks(
    logging_cases: None, pytester: pytest.Pytester, run: InnerSession, args: tuple[str, ...]
) -> None:
    result, report = run("--memguard-leaks", *args)
    result.assert_outcomes(passed=6, errors=1)
    statuses = {t["nodeid"].split("::")[-1]: t["status"] for t in report["tests"]}
    assert statuses.pop("test_handler_never_removed") == "leak"
    assert set(statuses.values()) == {"ok"}, report["tests"]
    leaky = entry(report, "test_handler_never_removed")
    assert leaky["sites"][0] == {
        **leaky["sites"][0],
        "file": "test_logging.py",
        "line": _leak_line(pytester),
    }
    assert 1.5 * 2**20 < leaky["leaked"] < 8 * 2**20  # 100 x 20 kB a run, and its records
    # Nothing pytest kept made a suspect: none of them was run again.
    for name in statuses:
        assert "leak_check" not in entry(report, name), entry(report, name)["message"]
