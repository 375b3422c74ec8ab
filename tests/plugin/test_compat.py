"""Canaries: each thing memguard needs of pytest and pytest-xdist that versions differ in
(pytest_memguard/plugin/compat.py) or that is not public, checked on the versions at
hand, so that a release that moves one fails here first (run on every cell of noxfile.py)."""

from __future__ import annotations

import inspect

import pytest

from pytest_memguard.plugin import compat
from pytest_memguard.plugin.runner import find_runner


def test_the_status_word_is_shown_as_this_pytest_takes_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memory_budget("1 MB")
        def test_over():
            data = bytearray(30_000_000)
        """
    )
    result = pytester.runpytest_subprocess("--memguard", "-p", "no:cacheprovider", "-rf")
    result.stdout.fnmatch_lines(["MEMORY test_the_status*::test_over - *"])
    assert "('MEMORY'" not in result.stdout.str()
    assert compat.STATUS_MARKUP is (pytest.version_tuple >= (8,))


def test_xdist_tells_how_many_workers_it_starts(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    config = pytester.parseconfig("--tx", "3*popen")
    assert compat.xdist_worker_count(config) == 3


def test_pytests_runner_implements_each_phase(pytester: pytest.Pytester) -> None:
    """A leak suspect runs again through the runner plugin's own phase functions."""
    config = pytester.parseconfigure()
    runner = find_runner(config)
    assert runner.found
    assert all(inspect.isfunction(function) for function in runner)


def test_an_item_can_set_up_its_request_again() -> None:
    """``Function._initrequest`` (what pytest itself calls to run an item again)."""
    assert callable(getattr(pytest.Function, "_initrequest", None))


def test_a_session_hands_out_hook_relays_per_path(pytester: pytest.Pytester) -> None:
    """A rerun reports nothing: memguard replaces ``Session.gethookproxy`` meanwhile."""
    assert callable(getattr(pytest.Session, "gethookproxy", None))


def test_the_root_folder_is_settled_by_determine_setup(pytester: pytest.Pytester) -> None:
    """--memguard-json PATH (the space form) settles the root folder again through it."""
    from _pytest.config.findpaths import determine_setup

    names = set(inspect.signature(determine_setup).parameters)
    assert {"inifile", "args", "rootdir_cmd_arg"} <= names
    config = pytester.parseconfig()
    for name in ("_rootpath", "_inipath", "_inicache", "_parser", "known_args_namespace"):
        assert hasattr(config, name), name
    assert hasattr(config, "_inicfg") or hasattr(config, "inicfg")


def test_pytests_log_capture_handlers_keep_records_in_a_list(pytester: pytest.Pytester) -> None:
    """Leak checks let go of the records pytest's capture kept (found by shape)."""
    from _pytest.logging import LogCaptureHandler

    handler = LogCaptureHandler()
    assert isinstance(handler.records, list)
    assert type(handler).__module__.startswith("_pytest.")


def test_the_capture_manager_reads_and_resets_the_global_capture(
    pytester: pytest.Pytester,
) -> None:
    config = pytester.parseconfigure()
    capman = config.pluginmanager.getplugin("capturemanager")
    assert callable(getattr(capman, "read_global_capture", None))
