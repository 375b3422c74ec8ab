"""`make demo`: run pytest --memguard on the examples and explain what happened.

Exits 0 when the plugin did its job (the expected tests failed for memory, the rest
passed, the report names them), 1 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = {
    "test_budgets.py::test_small_allocation": "ok",
    "test_budgets.py::test_within_budget": "ok",
    "test_budgets.py::test_over_budget": "over_budget",
    "test_budgets.py::test_peak_and_cap": "ok",
    "test_runaway.py::test_runaway": "aborted",
    "test_runaway.py::test_runs_after_the_runaway": "ok",
    "test_leaks.py::test_warms_a_cache": "ok",
    "test_leaks.py::test_uses_the_cache": "ok",
    "test_leaks.py::test_fixture_memory_is_released": "ok",
    "test_leaks.py::test_keeps_growing_a_global": "leak",
    "test_leaks.py::test_keeps_a_little_by_design": "ok",
}


def main() -> int:
    report_path = Path(tempfile.mkdtemp(prefix="memguard-demo-")) / "memguard.json"
    page_path = report_path.with_suffix(".html")
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE),
        "--memguard",
        "--memguard-max=1GB",
        "--memguard-leaks",
        f"--memguard-json={report_path}",
        f"--memguard-html={page_path}",
        "-p",
        "no:cacheprovider",
        "-v",
    ]
    print(
        "$ pytest examples/ --memguard --memguard-max=1GB --memguard-leaks"
        " --memguard-json=... --memguard-html=... -v",
        flush=True,
    )
    code = subprocess.call(command, cwd=HERE)
    report = json.loads(report_path.read_text())
    statuses = {t["nodeid"].split("/")[-1]: t["status"] for t in report["tests"]}
    print("\n$ memguard show memguard.json --top 5 --format markdown", flush=True)
    subprocess.call(
        [
            sys.executable,
            "-m",
            "pytest_memguard.cli",
            "show",
            str(report_path),
            "--top",
            "5",
            "--format",
            "markdown",
        ]
    )
    print()
    if code == 1 and statuses == EXPECTED:
        print(
            "demo: as expected. test_over_budget failed over its budget, test_runaway was stopped"
        )
        print("demo: at its 500 MB cap, test_keeps_growing_a_global was caught leaking while the")
        print("demo: cache warm-up and the fixture's buffer were not, and every other test passed.")
        print(f"demo: the JSON report for CI is {report_path}")
        print(f"demo: open the HTML report in a browser: {page_path}")
        return 0
    print(f"demo: unexpected result (pytest exit code {code}); statuses: {statuses}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
