"""The version matrix: every Python and pytest pyproject.toml claims, with the oldest and
newest pytest-xdist it accepts, a session per cell (``make matrix``: the corners).

    nox -l                                   # the cells
    nox -s "plugin(3.10-pytest7.4-xdist-oldest)"
    nox -t corners                           # what CI runs

The whole suite runs in ``make test`` (Python 3.11, the newest pytest); a cell runs the
plugin's tests (tests/plugin, tests/unit/test_layers.py) in its own virtual environment
under .nox.  Interpreters are found on PATH or else among pyenv's builds (``pyenv root``);
a cell whose interpreter is missing fails with one line saying so, never passes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = []  # nothing by default: name a cell or a tag

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: pytest: the oldest accepted, the newest 8.x, the newest release.
PYTESTS = {"7.4": "pytest>=7.4,<7.5", "8": "pytest>=8,<9", "latest": "pytest"}
#: pytest-xdist: the oldest accepted (pyproject's floor) and the newest.
XDISTS = {"oldest": "pytest-xdist==3.5.0", "newest": "pytest-xdist"}
#: What pytest 7.4 can run of the neighbours (pytest-asyncio 0.24 needs pytest 8.2).
FOR_PYTEST_7 = ("pytest-asyncio<0.24",)
CORNERS = {("3.10", "7.4", "oldest"), ("3.13", "8", "newest"), ("3.13", "latest", "newest")}

CELLS = [
    nox.param(
        python,
        pytest,
        xdist,
        id=f"{python}-pytest{pytest}-xdist-{xdist}",
        tags=["corners"] if (python, pytest, xdist) in CORNERS else [],
    )
    for python in PYTHONS
    for pytest in PYTESTS
    for xdist in XDISTS
]


def _runs(candidate: str) -> bool:
    """Whether ``candidate`` is a Python that starts (a pyenv shim of a version that is
    not selected is on PATH but does not)."""
    try:
        return subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0
    except OSError:
        return False


def _interpreter(version: str) -> str | None:
    """``python3.X`` on PATH, else the newest pyenv build of it, else None."""
    name = f"python{version}"
    candidates = [found] if (found := shutil.which(name)) else []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True)
        versions = Path(root.stdout.strip(), "versions")
        candidates += [str(path) for path in sorted(versions.glob(f"{version}.*/bin/{name}"))[::-1]]
    except (OSError, subprocess.CalledProcessError):
        pass
    return next((candidate for candidate in candidates if _runs(candidate)), None)


@nox.session(python=False)
@nox.parametrize(("interpreter", "pytest", "xdist"), CELLS)
def plugin(session: nox.Session, interpreter: str, pytest: str, xdist: str) -> None:
    """The plugin's tests on one cell of the matrix."""
    found = _interpreter(interpreter)
    if found is None:
        session.error(f"Python {interpreter} is not installed here (not on PATH, not in pyenv)")
    venv = Path(".nox", f"plugin-{interpreter}-pytest{pytest}-xdist-{xdist}")
    python = str(venv / "bin" / "python")
    if not Path(python).exists():
        session.run(found, "-m", "venv", str(venv), external=True)
    pins = [PYTESTS[pytest], XDISTS[xdist], *(FOR_PYTEST_7 if pytest == "7.4" else ())]
    session.run(python, "-m", "pip", "install", "--quiet", "-e", ".[test]", *pins, external=True)
    session.run(python, "-m", "pytest", "--version", external=True)
    session.run(
        python,
        "-m",
        "pytest",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "-q",
        # A test of a busy 2-core machine that fails once is run once more, and the
        # summary says so ("1 rerun"): a flake shows without failing the whole matrix.
        "-p",
        "rerunfailures",
        "--reruns",
        "1",
        # The tests marked slow (whole suites in a real memory cgroup) run in make test,
        # on their own: beside the others they take the machine they measure.
        "-m",
        "not slow",
        "tests/plugin",
        "tests/unit/test_layers.py",
        *session.posargs,
        external=True,
    )
