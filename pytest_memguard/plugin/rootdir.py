"""``--memguard-json PATH``, space form, settles the same root folder as ``--memguard-json=PATH``.

pytest settles its root folder and configuration file before it loads plugins from
their entry points, from the command line's free arguments.  Until memguard's options
are declared, the value of ``--memguard-json /elsewhere/out.json`` reads as a free
argument; when that file exists, the root folder becomes ``/elsewhere`` and the
project's ``pytest.ini`` (its ``addopts``, ``testpaths``, markers) is dropped.  pytest's
own options (``--junitxml PATH``) are declared early enough; a plugin's cannot be.

So, as soon as memguard is loaded (``pytest_load_initial_conftests``, before any
conftest), :func:`resettle` checks whether one of its options was given a value in the
space form and, only then, settles the root folder again as pytest would have with the
option known, and where that differs, puts the right one in place: root folder,
configuration file and its values, its ``addopts``, ``pythonpath`` and the folder
conftests are searched up to.  This needs pytest internals (:mod:`.compat`, with a canary
on every supported pytest); where they are missing, nothing is changed (the ``=`` form
always works).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable

import pytest

from . import compat
from .options import spaced_values

__all__ = ["resettle"]


def _seen_args(config: pytest.Config) -> list[str]:
    """The arguments pytest settled the root folder from (before any ini ``addopts``)."""
    args = list(config.invocation_params.args)
    env = os.environ.get("PYTEST_ADDOPTS", "")
    return [*shlex.split(env), *args] if env.strip() else args


def resettle(config: pytest.Config, args: list[str], options: Iterable[str]) -> bool:
    """Settle the root folder again when one of ``options`` took a value in the space
    form and pytest took that value for a path (see the module); ``args`` is pytest's
    argument list, changed in place.  True when something changed."""
    seen = _seen_args(config)
    if not spaced_values(seen, options):
        return False
    if not compat.can_resettle_root(config):
        return False
    settled = compat.root_setup(config, seen)
    if settled is None:
        return False
    if settled.rootpath == config.rootpath and settled.inipath == config.inipath:
        return False
    old_addopts = list(config.getini("addopts"))
    compat.put_root(config, settled)
    # The wrong file's addopts were put before the arguments; the right file's go there.
    if old_addopts and args[: len(old_addopts)] == old_addopts:
        del args[: len(old_addopts)]
    addopts = list(config.getini("addopts"))
    if addopts:
        args[:0] = addopts
        config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    inipath = settled.inipath
    compat.reparse_initial_args(
        config, args, inipath.parent if inipath is not None else settled.rootpath
    )
    return True
