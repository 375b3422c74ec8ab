"""A memguard option's value in the space form is never taken for a test path."""

from __future__ import annotations

import pytest

PROJECT_INI = """
[pytest]
testpaths = tests
addopts = -m "not slow"
markers =
    slow: a slow test
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with a pytest.ini (testpaths, addopts, markers) and, outside it, a folder
    whose existing files are given as memguard's paths."""
    pytester.makefile(".ini", pytest=PROJECT_INI)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_a.py").write_text(
        "import pytest\n\ndef test_a(): pass\n\n@pytest.mark.slow\ndef test_slow(): pass\n"
    )
    elsewhere = pytester.path.parent / f"{pytester.path.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "out.json").write_text("{}")
    (elsewhere / "test_other.py").write_text("def test_other(): pass\n")
    return pytester


def _setup(result: pytest.RunResult) -> list[str]:
    return [
        line
        for line in result.stdout.lines
        if line.startswith(("rootdir:", "configfile:", "testpaths:", "collected"))
    ]


@pytest.mark.parametrize("option", ["--memguard-json", "--memguard-html", "--memguard-records"])
def test_a_path_outside_the_project_in_the_space_form_changes_nothing(
    project: pytest.Pytester, option: str
) -> None:
    elsewhere = project.path.parent / f"{project.path.name}-elsewhere"
    target = elsewhere / ("out.json" if option != "--memguard-records" else "records")
    plain = project.runpytest_subprocess("-p", "no:cacheprovider")
    spaced = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memguard", option, str(target)
    )
    joined = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memguard", f"{option}={target}"
    )
    assert _setup(spaced) == _setup(joined) == _setup(plain)
    assert f"rootdir: {project.path}" in _setup(spaced)
    for result in (plain, spaced, joined):
        result.assert_outcomes(passed=1, deselected=1)


def test_the_space_form_from_pytest_addopts_changes_nothing(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = project.path.parent / f"{project.path.name}-elsewhere"
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--memguard-json {elsewhere / 'out.json'}")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--memguard")
    assert f"rootdir: {project.path}" in _setup(result)
    result.assert_outcomes(passed=1, deselected=1)
