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
conftests are searched up to.  This needs pytest internals, checked by name here and by
a canary test on every supported pytest (tests/plugin/test_rootdir.py); where they are
missing, nothing is changed (the ``=`` form always works).
"""

from __future__ import annotations

import copy
import inspect
import os
import shlex
from collections.abc import Iterable
from typing import Any

import pytest

from .options import spaced_values

__all__ = ["resettle"]


def _seen_args(config: pytest.Config) -> list[str]:
    """The arguments pytest settled the root folder from (before any ini ``addopts``)."""
    args = list(config.invocation_params.args)
    env = os.environ.get("PYTEST_ADDOPTS", "")
    return [*shlex.split(env), *args] if env.strip() else args


def _settle(config: pytest.Config, args: list[str]) -> tuple[Any, ...] | None:
    """What pytest's ``determine_setup`` says for ``args`` with every option known:
    (rootpath, inipath, inicfg[, ignored files]); None where pytest has no such function."""
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    parser = config._parser
    namespace, unknown = parser.parse_known_and_unknown_args(args)
    params = inspect.signature(determine_setup).parameters
    free = list(namespace.file_or_dir)
    if "invocation_dir" not in params:  # pytest 7: unknown arguments counted too
        free += unknown
    given = {
        "inifile": namespace.inifilename,
        "args": free,
        "rootdir_cmd_arg": namespace.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
        "override_ini": namespace.override_ini,
        "config": config,
    }
    result = determine_setup(**{name: given[name] for name in params if name in given})
    return tuple(result)


def resettle(config: pytest.Config, args: list[str], options: Iterable[str]) -> bool:
    """Settle the root folder again when one of ``options`` took a value in the space
    form and pytest took that value for a path (see the module); ``args`` is pytest's
    argument list, changed in place.  True when something changed."""
    seen = _seen_args(config)
    if not spaced_values(seen, options):
        return False
    needed = ("_rootpath", "_inipath", "_inicache", "_parser", "known_args_namespace")
    if not all(hasattr(config, name) for name in needed):
        return False
    settled = _settle(config, seen)
    if settled is None:
        return False
    rootpath, inipath, inicfg = settled[:3]
    if rootpath == config.rootpath and inipath == config.inipath:
        return False
    old_addopts = list(config.getini("addopts"))
    config._rootpath = rootpath
    config._inipath = inipath
    if hasattr(config, "_inicfg"):
        config._inicfg = inicfg
    else:  # pytest 7 and 8: a plain attribute there
        setattr(config, "inicfg", inicfg)  # noqa: B010
    if len(settled) > 3 and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = settled[3]
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(rootpath)
    config._parser.extra_info["inifile"] = str(inipath)
    # The wrong file's addopts were put before the arguments; the right file's go there.
    if old_addopts and args[: len(old_addopts)] == old_addopts:
        del args[: len(old_addopts)]
    addopts = list(config.getini("addopts"))
    if addopts:
        args[:0] = addopts
        config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    namespace = config._parser.parse_known_args(args, namespace=copy.copy(config.option))
    given_confcutdir = namespace.confcutdir
    if given_confcutdir is None:
        namespace.confcutdir = str(inipath.parent if inipath is not None else rootpath)
    config.known_args_namespace = namespace
    if hasattr(config, "_configure_python_path"):  # pytest 9 applied it before plugins
        config._configure_python_path()
    return True
