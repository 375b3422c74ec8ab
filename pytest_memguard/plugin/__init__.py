"""pytest-memguard's pytest entry module (``pytest11: memguard``).

Kept small, because pytest imports it on every run: when the guard is off nothing
beyond the option declarations and the marker line is loaded or started.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from .markers import MARKER_LINE
from .options import VALUE_OPTIONS, add_options, is_enabled, lookup, spaced_values

if TYPE_CHECKING:  # the import stays lazy at run time
    from .hooks import MemguardPlugin

__all__ = ["PLUGIN_KEY"]

PLUGIN_NAME = "memguard-plugin"
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
    from .settings import resolve_settings

    settings = resolve_settings(config)
    baseline = None
    if settings.baseline is not None:
        from . import ci

        baseline = ci.load_baseline(settings)  # a bad one stops the run before the guard starts

    plugin = MemguardPlugin(config, settings)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if settings.min_free is not None:
        from . import preflight

        preflight.register(config, plugin.run, plugin.pressure.relieve)
    in_xdist = hasattr(config, "workerinput") or getattr(config.option, "dist", "no") != "no"
    if in_xdist and config.pluginmanager.hasplugin("xdist"):
        from . import distributed

        distributed.register(config, plugin.run, plugin.reader)
    elif settings.pack:
        plugin.run.notices.append(
            f"memguard: {settings.source('pack')} packs pytest-xdist workers: nothing to pack"
            " in one process (run with -n N)"
        )
    if (
        config.pluginmanager.hasplugin("html")
        and config.getoption("htmlpath", None)
        and not hasattr(config, "workerinput")  # the report is written by the controller
    ):
        from . import htmlresults

        htmlresults.register(config, plugin.run)
    in_github = os.environ.get("GITHUB_ACTIONS", "").strip().lower() == "true"
    if baseline is not None or config.getoption("xmlpath", None) or in_github:
        from . import ci

        ci.register(config, plugin.run, lambda: plugin.end.report, baseline)


def pytest_unconfigure(config: pytest.Config) -> None:
    if PLUGIN_KEY not in config.stash:
        return
    plugin = config.stash[PLUGIN_KEY]
    del config.stash[PLUGIN_KEY]
    if config.pluginmanager.hasplugin("memguard-preflight"):
        from . import preflight

        preflight.unregister(config)
    if config.pluginmanager.hasplugin("memguard-xdist"):
        from . import distributed

        distributed.unregister(config)
    if config.pluginmanager.hasplugin("memguard-html"):
        from . import htmlresults

        htmlresults.unregister(config)
    if "pytest_memguard.plugin.ci" in sys.modules:
        from . import ci

        ci.unregister(config)
    config.pluginmanager.unregister(plugin, PLUGIN_NAME)
    plugin.close()


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> Generator[None, int, int]:
    """``-n auto`` with ``--memguard-worker-memory``: no more workers than memory holds."""
    count = yield
    if lookup(config, "worker-memory", os.environ)[0] is None or not is_enabled(config):
        return count
    from .distributed.controller import limit_workers

    return limit_workers(config, count)
