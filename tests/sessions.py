"""The inner pytest sessions the tests run: run with the guard on, and checked.

memguard swallows its own errors so that a user's run goes on: it prints them at the end
(``memguard: internal error, the guard went on: ...``) and lists them under the JSON
report's ``errors``, beside what a conftest's memguard hook did wrong (``memguard: error:
...``).  Its tests must not go on: every inner session a test runs fails the test when it
prints one of those (or pytest's ``INTERNALERROR``), or when a JSON report it wrote lists
``errors``, unless the test is marked ``memguard_errors`` (or asks :func:`guarded_run` for
``errors=True``).

tests/conftest.py installs the check on pytester for the whole session: every in-process
run goes through :meth:`pytest.Pytester.inline_run` and every subprocess through
:meth:`pytest.Pytester.run`, whichever method the test called.  A test that starts
``python -m pytest`` with :mod:`subprocess` itself passes the output to
:func:`check_session` (tests/plugin/conftest.py's ``finish`` does).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_memguard.reporting.report import load_schema

#: The marker of a test whose inner sessions may show memguard's internal errors.
MARKER = "memguard_errors"
#: How an inner session's output shows an error inside memguard or pytest, or one of a
#: memguard hook's implementations (line starts).
SIGNS = ("memguard: internal error", "memguard: error:", "INTERNALERROR")
#: A guarded run and its JSON report (tests/plugin/conftest.py's ``run`` fixture).
InnerSession = Callable[..., tuple[pytest.RunResult, dict[str, Any]]]

_expected: ContextVar[bool] = ContextVar("memguard_errors_expected", default=False)


@contextmanager
def expecting(errors: bool = True) -> Iterator[None]:
    """Inner sessions run in this block may show errors, if ``errors``."""
    token = _expected.set(_expected.get() or errors)
    try:
        yield
    finally:
        _expected.reset(token)


def _words(command: object) -> list[str]:
    """The words of a command line (a sequence of them, or one)."""
    words = command if isinstance(command, (list, tuple)) else [command]
    return [str(os.fspath(word)) if isinstance(word, os.PathLike) else str(word) for word in words]


def _report_paths(command: object) -> list[Path]:
    """The JSON reports the command line (and ``PYTEST_ADDOPTS``) asks for, relative to
    the cwd."""
    texts = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *_words(command)]
    found = [text.split("=", 1)[1] for text in texts if text.startswith("--memguard-json=")]
    found += [after for text, after in pairwise(texts) if text == "--memguard-json"]
    return [Path(str(path)) for path in found]


def _report_errors(path: Path) -> list[str]:
    """The ``errors`` of the JSON report at ``path``, if the session wrote one there."""
    if not path.is_file():
        return []
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # the test checks the report it expects; this only looks for errors
    errors = report.get("errors", []) if isinstance(report, dict) else []
    return [str(error) for error in errors]


def check_session(output: str, command: object) -> None:
    """Fail the running test if the inner session run by ``command``, which printed
    ``output``, shows an internal error, or a JSON report it wrote lists ``errors``
    (unless the test expects them)."""
    if _expected.get():
        return
    shown = [line for line in output.splitlines() if line.startswith(SIGNS)]
    for path in _report_paths(command):
        shown += [f"{path.name} errors: {error}" for error in _report_errors(path)]
    if shown:
        lines = "\n".join(f"  {line}" for line in shown)
        pytest.fail(
            "an inner pytest session had errors inside memguard (the guard went on; mark"
            f" the test @pytest.mark.{MARKER} if it expects them):\n{lines}",
            pytrace=False,
        )


def runs_pytest(command: object) -> bool:
    """Whether ``command`` starts pytest (``python -m pytest``, ``-mpytest``, ``pytest``)."""
    texts = _words(command)
    return (
        "-mpytest" in texts
        or any(a == "-m" and b == "pytest" for a, b in pairwise(texts))
        or any(Path(text).name in ("pytest", "py.test") for text in texts)
    )


class _Terminal:
    """A copy of the lines an in-process session's terminal reporter writes, and its
    internal errors (a plugin of that session)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.copying = False

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        self.copying = True
        write_line = reporter.write_line

        def copied(line: str | bytes, **markup: bool) -> None:
            self.lines.append(line if isinstance(line, str) else line.decode())
            write_line(line, **markup)

        reporter.write_line = copied

    def pytest_internalerror(self, excrepr: object) -> None:
        if self.copying:
            return  # the reporter writes it
        self.lines += [f"INTERNALERROR> {line}" for line in str(excrepr).splitlines()]


def install(patch: pytest.MonkeyPatch) -> None:
    """Check every session pytester runs: in process (``runpytest``,
    ``runpytest_inprocess``, ``inline_run``) and in a subprocess (``runpytest_subprocess``,
    ``run`` of a pytest command)."""
    inline_run = pytest.Pytester.inline_run
    run = pytest.Pytester.run

    def checked_inline_run(
        self: pytest.Pytester, *args: Any, plugins: Sequence[Any] = (), **kwargs: Any
    ) -> Any:
        terminal = _Terminal()
        recorder = inline_run(self, *args, plugins=[*plugins, terminal], **kwargs)
        check_session("\n".join(terminal.lines), args)
        return recorder

    def checked_run(self: pytest.Pytester, *command: Any, **kwargs: Any) -> pytest.RunResult:
        result = run(self, *command, **kwargs)
        if runs_pytest(command):
            check_session("\n".join([*result.outlines, *result.errlines]), command)
        return result

    patch.setattr(pytest.Pytester, "inline_run", checked_inline_run)
    patch.setattr(pytest.Pytester, "run", checked_run)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(report: dict[str, Any]) -> None:
    """Check ``report`` against the shipped JSON Schema."""
    _validator().validate(report)


def guarded_run(
    pytester: pytest.Pytester,
    *args: str,
    inprocess: bool = False,
    errors: bool = False,
    report: str = "memguard.json",
    cache: bool = False,
    timeout: float | None = None,
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest with the guard on and a JSON report; returns the result and the report.

    The one helper that runs a guarded session for a test: the report is validated against
    the shipped JSON Schema every time, and the session may show no internal error and its
    report no ``errors`` unless ``errors`` says the test expects some.  Runs are in a
    subprocess by default, because real RSS, threads and signals matter (``timeout``
    applies there); pytest's cache is off unless ``cache``.
    """
    path = pytester.path / report
    argv: tuple[str, ...] = ("--memguard", f"--memguard-json={path}")
    argv += () if cache else ("-p", "no:cacheprovider")
    with expecting(errors):
        if inprocess:
            result = pytester.runpytest(*argv, *args)
        else:
            result = pytester.runpytest_subprocess(*argv, *args, timeout=timeout)
    assert path.exists(), "the JSON report was not written"
    written: dict[str, Any] = json.loads(path.read_text())
    validate(written)
    return result, written
