"""Options, ini values and environment variables: precedence, errors, off means off."""

from __future__ import annotations

import pytest

from pytest_memguard.plugin import PLUGIN_KEY

from .conftest import settings

MB = 1_000_000


def test_help_lists_the_memguard_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "memory guard (pytest-memguard):",
            "*--memguard *Guard and measure the memory of every test*",
            "*--memguard-budget=SIZE*",
            "*--memguard-warn=SIZE|PCT*",
            "*--memguard-critical=SIZE|PCT*",
            "*--memguard-max=SIZE|PCT*",
            "*Hard limit: a test that takes the process past it is*",
            "*--memguard-mode=enforce|report*",
            "*--memguard-leaks*Fail tests that keep memory after their teardown*",
            "*--memguard-leak-budget=SIZE*",
            "*--memguard-json=PATH*Write the JSON report to PATH*",
            "*--memguard-top=N*",
            "*memguard_max (string):*",
        ]
    )


@pytest.mark.parametrize(
    ("ini", "env", "cli", "expected", "source"),
    [
        (None, None, None, None, "default"),
        ("100MB", None, None, 100 * MB, "memguard_budget (ini)"),
        ("100MB", "200MB", None, 200 * MB, "MEMGUARD_BUDGET"),
        ("100MB", "200MB", "300MB", 300 * MB, "--memguard-budget"),
        (None, None, "300MB", 300 * MB, "--memguard-budget"),
    ],
)
def test_precedence_cli_env_ini_default(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    env: str | None,
    cli: str | None,
    expected: int | None,
    source: str,
) -> None:
    if ini is not None:
        pytester.makeini(f"[pytest]\nmemguard_budget = {ini}\n")
    if env is not None:
        monkeypatch.setenv("MEMGUARD_BUDGET", env)
    args = ["--memguard"] + ([f"--memguard-budget={cli}"] if cli else [])
    resolved = settings(pytester, *args)
    assert resolved.budget == expected
    assert resolved.source("budget") == source


def test_leak_settings_from_every_layer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not settings(pytester, "--memguard").leaks
    pytester.makeini("[pytest]\nmemguard_leaks = true\nmemguard_leak_budget = 2MiB\n")
    resolved = settings(pytester, "--memguard")
    assert (resolved.leaks, resolved.leak_budget) == (True, 2 * 2**20)
    assert resolved.source("leak_budget") == "memguard_leak_budget (ini)"
    monkeypatch.setenv("MEMGUARD_LEAKS", "0")
    monkeypatch.setenv("MEMGUARD_LEAK_BUDGET", "3MB")
    resolved = settings(pytester, "--memguard", "--memguard-leak-budget=4MB")
    assert (resolved.leaks, resolved.leak_budget) == (False, 4 * MB)
    assert resolved.source("leaks") == "MEMGUARD_LEAKS"
    assert settings(pytester, "--memguard", "--memguard-leaks").leaks


def test_thresholds_from_every_layer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nmemguard = true\nmemguard_warn = 1GB\nmemguard_critical = 2GB\n")
    monkeypatch.setenv("MEMGUARD_CRITICAL", "3GB")
    resolved = settings(pytester, "--memguard-max=4GB")
    t = resolved.thresholds
    assert (t.warning, t.critical, t.max) == (1000 * MB, 3000 * MB, 4000 * MB)
    assert t.sources == {
        "warning": "memguard_warn (ini)",
        "critical": "MEMGUARD_CRITICAL",
        "max": "--memguard-max",
    }


def test_default_thresholds_are_shares_of_usable_memory(pytester: pytest.Pytester) -> None:
    from pytest_memguard import read_system_memory

    total = read_system_memory().total
    t = settings(pytester, "--memguard").thresholds
    assert t.max is not None
    assert t.critical is not None
    assert t.warning is not None
    assert abs(t.max - total * 0.9) < 2**20
    assert abs(t.critical - total * 0.8) < 2**20
    assert abs(t.warning - total * 0.7) < 2**20
    assert t.sources["max"] == "default 90%"


def test_a_given_max_drops_the_defaults_below_it(pytester: pytest.Pytester) -> None:
    t = settings(pytester, "--memguard", "--memguard-max=700MB").thresholds
    assert (t.warning, t.critical, t.max) == (None, None, 700 * MB)
    t = settings(pytester, "--memguard", "--memguard-max=50%", "--memguard-warn=1GB").thresholds
    assert (t.warning, t.critical) == (1000 * MB, None)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            {},
            ["--memguard-max=12 apples"],
            "ERROR: --memguard-max: invalid size '12 apples': unknown unit 'apples'"
            " (expected e.g. 4GB or 3.5GiB)",
        ),
        (
            {"env": ("MEMGUARD_MAX", "2G")},
            [],
            "ERROR: MEMGUARD_MAX: invalid size '2G': 'G' is ambiguous, MB or MiB?"
            " (expected e.g. 2MB or 2MiB)",
        ),
        (
            {"ini": "memguard_budget = 5 apples"},
            [],
            "ERROR: memguard_budget (ini): invalid size '5 apples': unknown unit 'apples'"
            " (expected e.g. 4GB or 3.5GiB)",
        ),
        (
            {},
            ["--memguard-warn=3GB", "--memguard-max=1GB"],
            "ERROR: --memguard-warn '3GB' (2.8 GiB) is above --memguard-max '1GB' (953.7 MiB)"
            " (expected warning <= critical <= max, e.g. 2GB, 3GB, 4GB)",
        ),
        (
            {"ini": "memguard_leak_budget = 1 M"},
            [],
            "ERROR: memguard_leak_budget (ini): invalid size '1 M': 'M' is ambiguous, MB or MiB?"
            " (expected e.g. 1MB or 1MiB)",
        ),
        (
            {"env": ("MEMGUARD_LEAKS", "sometimes")},
            [],
            "ERROR: MEMGUARD_LEAKS: invalid value 'sometimes' (expected true or false, 1 or 0)",
        ),
        (
            {},
            ["--memguard-mode=strict"],
            "ERROR: --memguard-mode: invalid mode 'strict' (expected enforce or report)",
        ),
        (
            {},
            ["--memguard-top=-3"],
            "ERROR: --memguard-top: invalid number '-3' (expected a whole number >= 0, e.g. 10)",
        ),
        (
            {"env": ("MEMGUARD", "maybe")},
            [],
            "ERROR: MEMGUARD: invalid value 'maybe' (expected true or false, 1 or 0)",
        ),
        (
            {},
            ["--memguard-budget=80%"],
            "ERROR: --memguard-budget: invalid size '80%': a percentage is only accepted"
            " for process thresholds (expected e.g. 4GB or 3.5GiB)",
        ),
    ],
)
def test_bad_settings_are_usage_errors_before_any_test(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    setup: dict[str, object],
    args: list[str],
    message: str,
) -> None:
    if "env" in setup:
        env = setup["env"]
        assert isinstance(env, tuple)
        monkeypatch.setenv(str(env[0]), str(env[1]))
    if "ini" in setup:
        pytester.makeini(f"[pytest]\n{setup['ini']}\n")
    pytester.makepyfile("def test_never_runs(): raise AssertionError('ran')")
    switch = [] if setup.get("env", ("",))[0] == "MEMGUARD" else ["--memguard"]  # type: ignore[index]
    result = pytester.runpytest(*switch, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "test_never_runs" not in result.stdout.str()


def test_an_unwritable_report_path_is_reported_at_start(pytester: pytest.Pytester) -> None:
    blocker = pytester.path / "file.txt"
    blocker.write_text("not a folder")
    pytester.makepyfile("def test_never_runs(): raise AssertionError('ran')")
    result = pytester.runpytest("--memguard", f"--memguard-json={blocker}/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --memguard-json: cannot write the report to '{blocker}/report.json' (*)"]
    )


def test_report_path_folders_are_created(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--memguard", "--memguard-json=out/deep/r.json")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out" / "deep" / "r.json").exists()


@pytest.mark.parametrize(
    ("ini", "env", "on"),
    [
        ("true", None, True),
        (None, "1", True),
        (None, "yes", True),
        ("true", "0", False),
        ("false", "1", True),
        (None, None, False),
    ],
)
def test_turning_it_on_from_ini_or_environment(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    env: str | None,
    on: bool,
) -> None:
    if ini is not None:
        pytester.makeini(f"[pytest]\nmemguard = {ini}\n")
    if env is not None:
        monkeypatch.setenv("MEMGUARD", env)
    config = pytester.parseconfigure()
    try:
        assert (PLUGIN_KEY in config.stash) is on
        assert (config.pluginmanager.get_plugin("memguard-plugin") is not None) is on
    finally:
        config._ensure_unconfigure()


OFF_CHECK = """
import signal, threading
import pytest

SIGNAL_BEFORE = signal.getsignal(signal.SIGUSR1)

@pytest.mark.memory_budget("1 KB", rss="1 MB")
def test_nothing_runs(request):
    assert request.config.pluginmanager.get_plugin("memguard-plugin") is None
    assert not [t for t in threading.enumerate() if t.name.startswith("memguard")]
    assert signal.getsignal(signal.SIGUSR1) == SIGNAL_BEFORE
    big = bytearray(5_000_000)
"""


def test_off_means_off_but_the_marker_stays_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(OFF_CHECK)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "memguard:" not in result.stdout.str()
    assert not list(pytester.path.glob("*.json"))


def test_markers_listing_shows_the_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.memory_budget(peak=None, *, leak=None, heap=None, rss=None):*"]
    )


def test_no_memguard_disables_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("-p", "no:memguard")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:memguard", "--memguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --memguard*"])


def test_the_guard_is_cleaned_up_after_the_run(pytester: pytest.Pytester) -> None:
    import signal
    import threading

    handler_before = signal.getsignal(signal.SIGUSR1)
    threads_before = set(threading.enumerate())
    pytester.makepyfile(
        """
        import threading
        def test_watchdog_runs():
            assert [t for t in threading.enumerate() if t.name == "memguard-watchdog"]
        """
    )
    result = pytester.runpytest("--memguard")
    result.assert_outcomes(passed=1)
    assert signal.getsignal(signal.SIGUSR1) == handler_before
    # Other plugins may leave threads of their own (pytest-rerunfailures' status server).
    ours = {t for t in threading.enumerate() if t.name.startswith("memguard")}
    assert ours <= threads_before
