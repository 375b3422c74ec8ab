"""Every private pytest, pluggy and pytest-xdist internal memguard needs, and what differs
between the versions it supports.

Nothing else in the plugin reaches for a private name: each one is used here, behind a
small function or constant that says what it is for, checked on pytest 7.4, 8.x and 9.x,
pytest-xdist 3.5 and 3.8.  tests/plugin/test_compat.py has a canary for each, run on every
cell of the version matrix (noxfile.py), so that a release that moves one fails loudly
there rather than quietly in a user's run.  Where an internal may be missing, its function
says so (None or False) and the caller does without the feature.  In order: pytest's
terminal, its runner plugin (the guard's phases, a leak suspect's rerun), pluggy, pytest's
capture, pytest-xdist, pytest's root folder.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any, Final, NamedTuple

import pytest

__all__ = [
    "ROOT_ATTRIBUTES",
    "STATUS_MARKUP",
    "RootSetup",
    "call_hookimpl",
    "can_resettle_root",
    "code_of",
    "doctest_globals",
    "global_capture_reader",
    "hooks_relayed",
    "log_capture_handlers",
    "put_root",
    "renew_request",
    "reparse_initial_args",
    "root_setup",
    "runner_phases",
    "tear_down_function_scope",
    "unittest_failures",
    "worker_id_of_report",
    "xdist_worker_count",
]

#: pytest 8 shows a status word with its markup (``("MEMORY", {"red": True})``) in the
#: short test summary; pytest 7 prints the tuple as it is, so it gets the word alone.
STATUS_MARKUP: Final = pytest.version_tuple >= (8,)


def runner_phases(
    config: pytest.Config,
) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None, Callable[..., Any] | None]:
    """The functions of pytest's ``runner`` plugin that implement ``pytest_runtest_setup``,
    ``_call`` and ``_teardown`` (None for one not found).

    Read from pluggy's ``HookImpl.function`` of the implementation registered as
    ``runner`` that is not a wrapper.
    """

    def implementation(phase: str) -> Callable[..., Any] | None:
        hook = getattr(config.hook, f"pytest_runtest_{phase}")
        for impl in hook.get_hookimpls():
            if impl.plugin_name == "runner" and not impl.wrapper and not impl.hookwrapper:
                return impl.function  # type: ignore[no-any-return]
        return None

    return implementation("setup"), implementation("call"), implementation("teardown")


def code_of(function: Callable[..., Any] | None) -> CodeType | None:
    """A plain function's code object (``__code__``), the guard's mark of pytest's own work
    in a phase; None for anything else."""
    code = getattr(function, "__code__", None)
    return code if isinstance(code, CodeType) else None


def tear_down_function_scope(teardown: Callable[..., Any], item: pytest.Item) -> None:
    """Tear down only the fixtures of ``item``'s function scope through the runner's
    ``teardown`` (:func:`runner_phases`).

    pytest's ``SetupState.teardown_exact(nextitem)`` keeps set up every node the next item
    descends from; given ``item``'s parent collector as the next item, it keeps every scope
    above the function, as if the next test were a sibling of this one.
    """
    teardown(item=item, nextitem=item.parent)


def renew_request(item: pytest.Item) -> bool:
    """Give ``item`` a new fixture request, as pytest's runner does to run an item again
    (``_initrequest``); False where the item has none."""
    renew = getattr(item, "_initrequest", None)
    if not callable(renew):
        return False
    renew()
    return True


def unittest_failures(item: pytest.Item) -> list[Any] | None:
    """The failures a unittest item keeps for its next report (its subTests' too): the
    live list of ``ExceptionInfo`` in ``_excinfo`` (which the unittest plugin's
    ``pytest_runtest_makereport`` takes from), or None while it has none."""
    kept = item.__dict__.get("_excinfo")
    return kept if isinstance(kept, list) else None


def doctest_globals(item: pytest.Item) -> dict[str, Any] | None:
    """The live namespace of a doctest item (``item.dtest.globs``, which its run clears as it
    ends); None for any other item."""
    globs = getattr(getattr(item, "dtest", None), "globs", None)
    return globs if isinstance(globs, dict) else None


@contextmanager
def hooks_relayed(session: pytest.Session, wrap: Callable[[Any], Any]) -> Iterator[None]:
    """Within: each node's ``ihook`` (which asks ``Session.gethookproxy`` for the relay of
    its path at every use) is ``wrap(relay)``; the session's own method again after."""
    relay_of = session.gethookproxy

    def wrapped(fspath: Any) -> Any:
        return wrap(relay_of(fspath))

    session.gethookproxy = wrapped  # type: ignore[method-assign]
    try:
        yield
    finally:
        del session.gethookproxy  # the method again


def call_hookimpl(impl: Any, arguments: Mapping[str, Any]) -> Any:
    """Call one implementation of a hook alone (pluggy's ``HookImpl.function``), with the
    arguments it names (``HookImpl.argnames``) taken from ``arguments``."""
    return impl.function(**{name: arguments[name] for name in impl.argnames})


def log_capture_handlers() -> list[logging.Handler]:
    """pytest's log capture handlers on the root logger now (the running phase's ``caplog``
    handler and report handler): defined in a module of ``_pytest``, with a ``records``
    list.  Found by shape, without importing pytest's private module."""
    return [
        handler
        for handler in logging.getLogger().handlers
        if type(handler).__module__.startswith("_pytest.")  # not a handler of the test's
        and isinstance(getattr(handler, "records", None), list)
    ]


def global_capture_reader(config: pytest.Config) -> Callable[[], tuple[str, str]] | None:
    """The capture manager's ``read_global_capture``: reads and resets what the running
    phase's global capture holds, as (out, err); None where there is none."""
    capman = config.pluginmanager.getplugin("capturemanager")
    read = getattr(capman, "read_global_capture", None)
    return read if callable(read) else None


def xdist_worker_count(config: pytest.Config) -> int:
    """How many workers xdist starts for this run (``-n N`` or ``--tx`` specs).

    xdist 3.6 renamed the function that reads them: ``parse_tx_spec_config``, before it
    ``parse_spec_config``.
    """
    from xdist import workermanage  # type: ignore[import-untyped]

    parse: Any = getattr(workermanage, "parse_tx_spec_config", None)
    if parse is None:  # xdist before 3.6
        parse = workermanage.parse_spec_config
    return len(parse(config))


def worker_id_of_report(report: Any) -> str | None:
    """On the controller: the id (``gw0``) of the worker a report came from; None for a
    report no worker sent.

    xdist puts the worker's node on the reports it relays (``report.node``), the stand-in
    report of ``pytest_handlecrashitem`` included; the id is on its ``workerinput``.
    """
    node = report.__dict__.get("node")
    return None if node is None else str(node.workerinput["workerid"])


#: The config attributes :func:`put_root` and :func:`reparse_initial_args` set (pytest
#: keeps the ini values in ``_inicfg`` from 9, in ``inicfg`` before).
ROOT_ATTRIBUTES: Final = ("_rootpath", "_inipath", "_inicache", "_parser", "known_args_namespace")


class RootSetup(NamedTuple):
    """What pytest settles before it loads plugins: the root folder, the configuration file
    and its values, and (pytest 9) the configuration files it ignored."""

    rootpath: Path
    inipath: Path | None
    inicfg: Any
    ignored: Any = None


def can_resettle_root(config: pytest.Config) -> bool:
    """Whether this pytest's config has every attribute the root folder is kept in."""
    return all(hasattr(config, name) for name in ROOT_ATTRIBUTES)


def root_setup(config: pytest.Config, args: list[str]) -> RootSetup | None:
    """What pytest's ``determine_setup`` settles for ``args`` with every option known (the
    plugins' too); None where this pytest has no such function.

    Its parameters differ by version: pytest 7 counts the unknown arguments as paths and
    takes no ``invocation_dir``; pytest 9 takes the ``config`` and returns the ignored
    files too."""
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    namespace, unknown = config._parser.parse_known_and_unknown_args(args)
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
    result: tuple[Any, ...] = tuple(
        determine_setup(**{name: given[name] for name in params if name in given})
    )
    return RootSetup(*result[:4])


def put_root(config: pytest.Config, setup: RootSetup) -> None:
    """Make ``setup`` the config's root folder and configuration file, its ini values read
    anew from it."""
    config._rootpath = setup.rootpath
    config._inipath = setup.inipath
    if hasattr(config, "_inicfg"):
        config._inicfg = setup.inicfg
    else:  # pytest 7 and 8: a plain attribute there
        setattr(config, "inicfg", setup.inicfg)  # noqa: B010
    if setup.ignored is not None and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = setup.ignored
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(setup.rootpath)
    config._parser.extra_info["inifile"] = str(setup.inipath)


def reparse_initial_args(config: pytest.Config, args: list[str], confcutdir: Path) -> None:
    """Parse ``args`` again into the arguments pytest knows before its conftests
    (``known_args_namespace``), conftests searched up to ``confcutdir`` unless given, and
    (pytest 9, which applies ``pythonpath`` before plugins load) the ini's ``pythonpath``
    applied again."""
    namespace = config._parser.parse_known_args(args, namespace=copy.copy(config.option))
    if namespace.confcutdir is None:
        namespace.confcutdir = str(confcutdir)
    config.known_args_namespace = namespace
    if hasattr(config, "_configure_python_path"):  # pytest 9 applied it before plugins
        config._configure_python_path()
