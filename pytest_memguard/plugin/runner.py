"""pytest's own work of each phase, as memguard uses it.

pytest's ``runner`` plugin implements ``pytest_runtest_setup``, ``_call`` and
``_teardown``: it sets fixtures up, runs the test body and tears fixtures down.  The
guard interrupts only while that code runs (never pytest's reporting around it, nor
another plugin's wrapper), and a leak suspect is run again through it, with the
fixtures of every scope above the function still set up:

- :meth:`Runner.tear_down_function_scope` tears down only the function's own fixtures
  (the teardown as if the next test were a sibling of this one);
- :meth:`Runner.repeat_test` runs setup, body and that partial teardown once more, with
  nothing reported: what the rerun's body reports itself (unittest's ``subTest``,
  pytest's ``subtests`` fixture) goes to :class:`_Unreported`, not to pytest.

The real teardown (pytest's, with the real next test) comes after both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType
from typing import Any, NamedTuple

import pytest

from ..errors import MemoryLimitExceeded
from . import compat

__all__ = ["Runner", "find_runner"]

#: What ends the run, not the test: never caught here.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit)


class Runner(NamedTuple):
    """The runner plugin's implementation of each phase's hook (None: not found)."""

    setup: Callable[..., Any] | None
    call: Callable[..., Any] | None
    teardown: Callable[..., Any] | None

    @property
    def found(self) -> bool:
        """Whether every phase's implementation was found."""
        return None not in self

    def code(self) -> tuple[CodeType, ...]:
        """The code of the three implementations, for :meth:`Guard.arm`'s ``within`` (only
        one runs in a phase); empty when one is missing: the guard then interrupts
        anywhere in the phase."""
        codes = tuple(compat.code_of(impl) for impl in self)
        return codes if all(code is not None for code in codes) else ()  # type: ignore[return-value]

    def tear_down_function_scope(self, item: pytest.Item) -> BaseException | None:
        """Tear down the fixtures of ``item``'s function scope only; what it raised."""
        assert self.teardown is not None
        try:
            compat.tear_down_function_scope(self.teardown, item)
        except _PASS_THROUGH:
            raise
        except BaseException as error:  # pytest's outcomes are BaseExceptions
            return error
        return None

    def repeat_test(self, item: pytest.Item) -> str | None:
        """Run ``item``'s test once more (setup, body, function teardown); what went
        wrong, or None.

        Only pytest's runner takes part (fixtures and the body; the test's own plugins
        hook into the body, e.g. pytest-asyncio and anyio) and the fixtures above the
        function stay as they are.  Nothing of it is reported: a subtest that fails makes
        the rerun's error, as an exception would.  A stop by the guard is raised again
        once the function's fixtures are torn down.
        """
        assert self.setup is not None
        assert self.call is not None
        renewed = compat.renew_request(item)  # as pytest does for a rerun
        if not renewed and compat.doctest_globals(item) is None:
            # (a doctest's setup makes a new request)
            return f"memguard cannot run a {type(item).__name__} item again"
        error: str | None = None
        stop: MemoryLimitExceeded | None = None
        when = "setup"
        # pytest before 9 keeps a unittest test's failures (a subTest's too) on the item,
        # for the next report: the rerun's are taken back, as its own failures.
        kept = compat.unittest_failures(item)
        kept_before = len(kept) if kept is not None else 0
        with _unreported(item) as failures:
            try:
                self.setup(item=item)
                when = "call"
                self.call(item=item)
            except _PASS_THROUGH:
                raise
            except MemoryLimitExceeded as raised:
                stop = raised
            except BaseException as raised:  # pytest's outcomes are BaseExceptions
                error = f"{when}: {type(raised).__name__}: {raised}".strip()
            failed = self.tear_down_function_scope(item)
        kept = compat.unittest_failures(item)
        if kept is not None and len(kept) > kept_before:
            failures.extend(str(info.value) or info.typename for info in kept[kept_before:])
            del kept[kept_before:]
        if error is None and failures:
            error = f"call: a subtest failed: {failures[0]}"
        if stop is not None:
            raise stop
        if error is None and failed is not None:
            error = f"teardown: {type(failed).__name__}: {failed}".strip()
        return error


class _Unreported:
    """A hook relay that passes every call on to ``relay`` but the reporting of a report;
    a failed report's description goes to ``failures``."""

    def __init__(self, relay: Any, failures: list[str]) -> None:
        self._relay = relay
        self._failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._relay, name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self._failures.append(getattr(report, "head_line", None) or report.nodeid)

    def pytest_exception_interact(self, **kwargs: object) -> None:
        """Not reported: no debugger for a rerun."""


@contextmanager
def _unreported(item: pytest.Item) -> Iterator[list[str]]:
    """Within: the hooks of ``item``'s nodes report nothing.  Yields the descriptions of
    the failed reports."""
    failures: list[str] = []
    with compat.hooks_relayed(item.session, lambda relay: _Unreported(relay, failures)):
        yield failures


def find_runner(config: pytest.Config) -> Runner:
    """pytest's implementations of the three phases' hooks (those that can be found)."""
    return Runner(*compat.runner_phases(config))
