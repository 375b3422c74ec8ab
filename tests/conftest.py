from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .sessions import MARKER, expecting, install


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the inner pytest sessions of this test may show memguard's internal"
        " errors (or list errors in their JSON report); without it they fail the test",
    )
    config.addinivalue_line(
        "markers",
        "slow: runs whole suites in a real memory cgroup for tens of seconds"
        " (deselect with -m 'not slow')",
    )


@pytest.fixture(scope="session", autouse=True)
def _checked_sessions() -> Iterator[None]:
    """Every inner pytest session pytester runs is checked for errors inside memguard."""
    with pytest.MonkeyPatch.context() as patch:
        install(patch)
        yield


@pytest.fixture(autouse=True)
def _expected_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked ``memguard_errors`` expects its inner sessions to show some."""
    with expecting(request.node.get_closest_marker(MARKER) is not None):
        yield


@pytest.fixture(autouse=True)
def _clean_memguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the MEMGUARD_* variables they need; the caller's must not leak in."""
    for name in list(os.environ):
        if name == "MEMGUARD" or name.startswith("MEMGUARD_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _own_ledger(
    _clean_memguard_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Each test's inner runs (and their subprocesses) count one another in a ledger of
    their own: never the other tests' (the suite runs under xdist) nor the developer's."""
    folder = tmp_path_factory.mktemp("ledger")
    monkeypatch.setenv("MEMGUARD_LEDGER_FILE", str(folder / "ledger.json"))


#: The plugins of the test extra that inner sessions load only when a test asks for them
#: (``@pytest.mark.neighbours``): together they add over a second to every pytest start.
NEIGHBOURS = ("asyncio", "anyio", "hypothesispytest", "rerunfailures", "timeout")
#: pytest-html and the plugin it brings, and pytest-split, loaded by inner sessions only
#: when a test says so (``-p html``: tests/plugin/test_pytest_html.py; ``-p pytest-split``:
#: tests/plugin/test_split.py). pytest-split in an inner session beside
#: pytest-rerunfailures made a crashed worker's run seconds slower.
ASKED_FOR = ("html", "html_fixtures", "metadata", "pytest-split")


@pytest.fixture(autouse=True)
def _inner_plugins(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest sessions (pytester) run without the neighbour plugins, unless the test
    is marked ``neighbours``; with them, pytest-asyncio's loop scope is set, or it warns
    at every start.  (pytester clears PYTEST_ADDOPTS as it starts, so this runs after it.)"""
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")
    neighbours = request.node.get_closest_marker("neighbours") is not None
    blocked = ASKED_FOR if neighbours else (*NEIGHBOURS, *ASKED_FOR)
    options = " ".join(f"-p no:{name}" for name in blocked)
    if neighbours:
        options += " -o asyncio_default_fixture_loop_scope=function"
    monkeypatch.setenv("PYTEST_ADDOPTS", options)
