"""pytest-memguard's pytest entry module (``pytest11: memguard``).

Kept small, because pytest imports it on every run: when the guard is off nothing
beyond the option declarations and the marker line is loaded or started.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from .markers import MARKER_LINE
from .options import VALUE_OPTIONS, add_options, is_enabled, lookup, spaced_values

if TYPE_CHECKING:  # the import stays lazy at run time
    from .hooks import MemguardPlugin

__all__ = ["PLUGIN_KEY"]

PLUGIN_KEY: pytest.StashKey[MemguardPlugin] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """A memguard option's value in the space form is no test path (see :mod:`.rootdir`)."""
    if spaced_values(early_config.invocation_params.args, VALUE_OPTIONS) or os.environ.get(
        "PYTEST_ADDOPTS"
    ):
        from .rootdir import resettle

        resettle(early_config, args, VALUE_OPTIONS)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_LINE)
    if not is_enabled(config):
        return
    from .hooks import MemguardPlugin
    from .roles import Roles
    from .settings import resolve_settings

    settings = resolve_settings(config)
    baseline = None
    if settings.baseline is not None:
        from .ci import load_baseline

        baseline = load_baseline(settings)  # a bad one stops the run before the guard starts
    # Registers itself and the other plugin objects this process needs.
    config.stash[PLUGIN_KEY] = MemguardPlugin(config, settings, Roles.of(config), baseline)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(PLUGIN_KEY, None)
    if plugin is not None:
        del config.stash[PLUGIN_KEY]
        plugin.close()  # unregisters what it registered, in reverse


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto`` with ``--memguard-worker-memory`` or a history of measured peaks: no
    more workers than memory holds."""
    count = yield
    if not is_enabled(config):
        return count
    from .distributed.autocount import has_history, limit_workers

    if lookup(config, "worker-memory", os.environ)[0] is None and not has_history(config):
        return count
    return limit_workers(config, count)
