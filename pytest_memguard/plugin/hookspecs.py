"""Hook specifications of pytest-memguard; implement them in a conftest.py or a plugin.

Every hook is called in the main thread with keyword arguments.  Values passed in are
frozen: read them, do not try to change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..core.guard import LevelEvent
    from ..core.levels import Level
    from ..reporting.results import Budget, TestMemory

hookspec = pytest.hookspec


@hookspec(firstresult=True)
def pytest_memguard_budget(item: pytest.Item, budget: Budget) -> Budget | None:
    """Decide the memory budget of ``item``; called at the start of its setup.

    :param item: the test about to run
    :param budget: the budget from its ``memory_budget`` marker and ``--memguard-budget``
    :return: the budget to apply, or None to leave the decision to the next
        implementation.  ``firstresult``: the first non-None answer wins; the plugin's own
        ``trylast`` implementation returns ``budget`` unchanged.
    """


@hookspec
def pytest_memguard_threshold_crossed(config: pytest.Config, event: LevelEvent) -> None:
    """The process's RSS rose past a threshold (warning, critical or the hard limit).

    Called after the test phase during which the watchdog saw the crossing, or at the
    end of the session for crossings outside any test.

    :param config: the pytest config
    :param event: the level reached, the RSS and the threshold (bytes), the running test
    """


@hookspec
def pytest_memguard_test_result(item: pytest.Item, result: TestMemory) -> None:
    """The memory result of ``item`` is known (called once, after its teardown).

    :param item: the test
    :param result: what was measured, its status and the message of a memory failure
    """


@hookspec
def pytest_memguard_pressure(config: pytest.Config, level: Level) -> int | None:
    """Memory is tight: free what you can, e.g. drop a conftest's caches.

    Called between two tests, in the main thread, when the process passed its critical
    threshold or the machine is at critical pressure, at most once a minute (the run's
    coordinator has a cooldown).  Then the process-wide pressure coordinator (if the code
    under test made one) and ``gc.collect()`` run; the report's ``pressure`` list says
    what each freed.

    :param config: the pytest config
    :param level: how tight it is (:attr:`Level.CRITICAL`)
    :return: the bytes freed, if known, or None
    """


@hookspec
def pytest_memguard_report(
    config: pytest.Config, report: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The JSON report is about to be written (also when there is no ``--memguard-json``).

    :param config: the pytest config
    :param report: the report, read-only
    :return: a mapping of extra fields, merged under the report's ``"extra"`` key, or None
    """
