"""The ``memguard`` entry point: usage errors, help, version, layering."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from pytest_memguard.cli import main


def test_the_console_script_is_main() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "memguard"]
    assert script.value == "pytest_memguard.cli:main"
    assert script.load() is main


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: memguard")
    assert err.endswith("memguard: error: the following arguments are required: COMMAND\n")


def test_unknown_command_quotes_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shwo"]) == 2
    assert "argument COMMAND: invalid choice: 'shwo'" in capsys.readouterr().err


def test_help_lists_the_commands_and_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("show", "diff", "run", "status", "diagnostics"):
        assert f"    {command}" in out
    assert main(["run", "--help"]) == 0
    assert "--max SIZE|PCT" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("memguard 0.")


def test_options_are_not_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "a.json", "b.json", "--max", "20%"]) == 2
    assert "unrecognized arguments: --max 20%" in capsys.readouterr().err


def test_the_cli_imports_no_pytest_and_runs_as_a_module() -> None:
    code = (
        "import sys, pytest_memguard.cli, pytest_memguard.reporting.compare;"
        "import pytest_memguard.reporting.render;"
        "pytest_memguard.cli.build_parser();"
        "from pytest_memguard.cli import machine, reports, run;"
        "assert 'pytest' not in sys.modules and '_pytest' not in sys.modules, 'pytest imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_memguard.cli", "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"source"' in done.stdout
