"""The plugin's objects and resources come and go together: what the guard set up when it
started is undone when the run ends, and when starting it fails midway."""

from __future__ import annotations

import signal
import threading

import pytest

from pytest_memguard.plugin import PLUGIN_KEY


def _memguard_threads() -> list[threading.Thread]:
    """memguard's threads (this suite runs under its own guard: compare with before)."""
    return [t for t in threading.enumerate() if "memguard" in t.name.lower()]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs SIGTERM")
def test_a_usage_error_while_the_guard_starts_leaves_nothing_behind(
    pytester: pytest.Pytester,
) -> None:
    """--memguard-pack refuses --dist loadfile after the records folder, the watchdog's
    readers and the signal handlers could have been set up: none of them is left."""
    pytester.makepyfile("def test_one():\n    pass\n")
    before = (signal.getsignal(signal.SIGTERM), _memguard_threads())
    result = pytester.runpytest_inprocess(
        "--memguard",
        "--memguard-json=m.json",
        "--memguard-pack",
        "-n",
        "2",
        "--dist",
        "loadfile",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memguard-pack schedules --dist load*"])
    assert not (pytester.path / "m.records").exists()
    assert (signal.getsignal(signal.SIGTERM), _memguard_threads()) == before


def test_the_end_of_a_run_unregisters_every_plugin_object(pytester: pytest.Pytester) -> None:
    before = _memguard_threads()
    config = pytester.parseconfigure("--memguard", "--junitxml=j.xml", "--memguard-json=m.json")
    manager = config.pluginmanager
    plugin = config.stash[PLUGIN_KEY]
    names = {"memguard-plugin", "memguard-report", "memguard-junit"}
    assert names <= {name for name, _ in manager.list_name_plugin()}
    config._ensure_unconfigure()
    assert not names & {name for name, _ in manager.list_name_plugin()}
    assert PLUGIN_KEY not in config.stash
    assert plugin.guard.max_rss > 0  # it ran; its thread is gone
    assert _memguard_threads() == before
