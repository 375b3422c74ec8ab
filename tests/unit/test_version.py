"""The version is written once, in pyproject.toml; the package and the changelog follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

import pytest_memguard

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_reports_the_version_of_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project.get("dynamic", [])
    assert pytest_memguard.__version__ == project["version"]


def test_the_changelog_opens_with_the_packaged_version() -> None:
    """A version bump that forgets the changelog fails here."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = [line.removeprefix("## ") for line in text.splitlines() if line.startswith("## ")]
    assert headings, "CHANGELOG.md has no release heading"
    assert headings[0].split()[0] == pytest_memguard.__version__, headings[0]
