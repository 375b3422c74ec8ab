"""``memguard status`` and ``memguard diagnostics``."""

from __future__ import annotations

import json

import pytest

from pytest_memguard.cli import main


def test_status_json_is_valid_and_names_its_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] in ("cgroup", "host")
    assert 0 <= data["available"] <= data["total"]
    assert data["used"] == data["total"] - data["available"]
    assert data["pressure"]["level"] in ("ok", "warning", "critical")
    assert data["psi"] is None or set(data["psi"]) == {
        "some_avg10",
        "some_avg60",
        "full_avg10",
        "full_avg60",
    }


def test_status_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("memory: ")
    assert " available of " in lines[0]
    assert lines[1].startswith("pressure: ")
    assert lines[2].startswith("PSI: ")


def test_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnostics", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["rss"] > 0
    assert data["profile"]["system"]["source"] in ("cgroup", "host")
    assert main(["diagnostics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("process: pid ")
    assert lines[1].startswith("memory: ")


def test_diagnostics_with_a_bad_threshold_in_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMGUARD_MAX", "4 apples")
    assert main(["diagnostics"]) == 2
    assert capsys.readouterr().err == (
        "memguard diagnostics: error: MEMGUARD_MAX: invalid size '4 apples': unknown unit "
        "'apples' (expected e.g. 4GB or 3.5GiB)\n"
    )
