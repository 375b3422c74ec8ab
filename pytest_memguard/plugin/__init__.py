"""pytest-memguard's pytest entry module (``pytest11: memguard``).

Kept small, because pytest imports it on every run: when the guard is off nothing
beyond the option declarations and the marker line is loaded or started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .markers import MARKER_LINE
from .options import add_options, is_enabled

if TYPE_CHECKING:  # the import stays lazy at run time
    from .hooks import MemguardPlugin

__all__ = ["PLUGIN_KEY"]

PLUGIN_NAME = "memguard-plugin"
PLUGIN_KEY: pytest.StashKey[MemguardPlugin] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


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

    plugin = MemguardPlugin(config, settings)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if config.pluginmanager.hasplugin("xdist"):
        from . import xdist

        xdist.register(config, plugin)


def pytest_unconfigure(config: pytest.Config) -> None:
    if PLUGIN_KEY not in config.stash:
        return
    plugin = config.stash[PLUGIN_KEY]
    del config.stash[PLUGIN_KEY]
    if config.pluginmanager.hasplugin("memguard-xdist"):
        from . import xdist

        xdist.unregister(config)
    config.pluginmanager.unregister(plugin, PLUGIN_NAME)
    plugin.close()
