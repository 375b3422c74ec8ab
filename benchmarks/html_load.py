"""How fast the HTML report opens and answers in headless Chromium, at 100 to 20,000 tests.

For each size, a report of that many trivial tests is generated (a few warnings, budget
failures and leaks among them, pytest outcomes mixed, two xdist workers, the timeline
``build_timeline`` writes) and rendered with ``memguard show --format html``: by this
source tree, and with ``--other SRC`` also by another checkout's package (e.g. the last
release: ``git archive v1.2.0 pytest_memguard | tar -x -C ../old``), from the same JSON
file.  Each page is served on a loopback port with a small measuring script appended;
Debian's ``chromium --headless`` opens it, and the script posts back the page's first
contentful paint and DOMContentLoaded (Navigation and Paint Timing, from the start of
the navigation), then clicks the "Peak growth" heading (a sort) and types into the
filter (a query matching a tenth of the tests), each timed up to the layout it forces.
The median of ``--runs`` openings of each page (the pages in turn, after one opening to
warm up), each with a fresh browser profile, is printed.

    python benchmarks/html_load.py [--tests 100 2000 20000] [--runs 3] [--other SRC]

Needs ``chromium`` (or ``chromium-browser``) on PATH; no Python package beyond the project.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_memguard.reporting.report import build_report  # noqa: E402
from pytest_memguard.reporting.results import Budget, TestMemory  # noqa: E402
from pytest_memguard.reporting.timeline import build_timeline  # noqa: E402

MiB = 2**20
#: Appended to the page as it is served: the figures, posted back to the loopback server.
MEASURE = """<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var nav = performance.getEntriesByType("navigation")[0];
    var paint = performance.getEntriesByName("first-contentful-paint")[0];
    function timed(action) {
      var start = performance.now();
      action();
      void document.body.offsetHeight;  // the layout the change forces
      return performance.now() - start;
    }
    var head = document.querySelector('#tests th[data-key="peak"]');
    var box = document.getElementById("filter");
    var sort = timed(function () { head.click(); });
    var filter = timed(function () {
      box.value = "QUERY"; box.dispatchEvent(new Event("input"));
    });
    var figures = {
      paint: paint ? paint.startTime : null,
      dcl: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd,
      sort: sort,
      filter: filter,
      shown: document.getElementById("shown").textContent,
      error: document.documentElement.getAttribute("data-js-error")
    };
    fetch("/result", {method: "POST", body: JSON.stringify(figures)});
  }, 200);
});
</script>"""


def generate(count: int) -> dict[str, Any]:
    """The report of ``count`` trivial tests on two workers, as a guarded run writes it."""
    tests = []
    clock = 1_000_000.0
    statuses = ("ok",) * 996 + ("warning", "warning", "over_budget", "leak")
    outcomes = ("passed",) * 90 + ("failed",) * 4 + ("skipped",) * 4 + ("xfailed", "error")
    for index in range(count):
        status = statuses[index * 7 % len(statuses)]
        outcome = outcomes[index * 13 % len(outcomes)]
        if status in ("over_budget", "leak"):
            outcome = "failed"
        growth = (index * 7919 % 5000) * 1024
        duration = 0.0005 + (index % 17) / 10_000
        tests.append(
            TestMemory(
                f"tests/test_module_{index // 500:03d}.py::test_case[{index}]",
                outcome,
                status,  # type: ignore[arg-type]
                f"gw{index % 2}",
                duration,
                rss_start=60 * MiB,
                rss_end=60 * MiB + growth // 8,
                rss_peak=60 * MiB + growth,
                peak_delta=growth,
                leaked=2 * MiB if status == "leak" else None,
                budget=Budget(peak=4 * MiB) if status == "over_budget" else Budget(),
                message=f"{status} at test {index}" if status != "ok" else None,
                started=clock,
            )
        )
        clock += duration / 2 + 0.0002
    report = build_report(
        tests=tests,
        environment={"python": "3.11", "pytest": "9.2", "platform": "Linux"},
        config={"mode": "enforce", "max": 2**30, "warning": 512 * MiB, "sources": {}},
        started=1_000_000.0,
        duration_s=clock - 1_000_000.0,
        interrupted=False,
    )
    report["workers"] = [{"id": "gw0", "pid": 1}, {"id": "gw1", "pid": 2}]
    report["timeline"] = build_timeline(tests=tests)
    return report


def render(source: Path, report: Path, page: Path) -> None:
    """``memguard show --format html`` of the package under ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "pytest_memguard.cli", "show", str(report)]
    with page.open("w") as out:
        # From its folder: ``-m`` puts the working directory first on the path.
        subprocess.run([*command, "--format", "html"], stdout=out, env=env, cwd=source, check=True)


class _Pages(BaseHTTPRequestHandler):
    folder: Path
    query: str
    results: list[dict[str, Any]]
    arrived: threading.Event

    def do_GET(self) -> None:
        path = self.folder / self.path.lstrip("/")
        if not path.is_file():  # the browser's favicon.ico
            self.send_error(404)
            return
        text = path.read_text()
        at = text.rindex("</body>")
        body = (text[:at] + MEASURE.replace("QUERY", self.query) + text[at:]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.results.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()
        self.arrived.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def measure(browser: str, server: ThreadingHTTPServer, name: str) -> dict[str, Any]:
    """One opening of the page ``name`` in a fresh headless Chromium: its posted figures."""
    handler: type[_Pages] = server.RequestHandlerClass  # type: ignore[assignment]
    handler.arrived.clear()
    before = len(handler.results)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        port = server.server_address[1]
        command = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            f"http://127.0.0.1:{port}/{name}",
        ]
        chromium = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes too, ended with it
        )
        try:
            if not handler.arrived.wait(timeout=180):
                raise SystemExit(f"{name}: no figures from the page in 180 s")
        finally:
            os.killpg(chromium.pid, signal.SIGTERM)
            chromium.wait(timeout=30)
    return handler.results[before]


FIGURES = ("paint", "dcl", "load", "sort", "filter")


def _median(runs: list[dict[str, Any]], key: str) -> str:
    values = [run[key] for run in runs if run[key] is not None]
    return f"{statistics.median(values):.0f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[100, 2000, 20000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--other", type=Path, help="another checkout's folder of pytest_memguard")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    sources = [("this tree", ROOT)] + ([("other", args.other.resolve())] if args.other else [])
    with tempfile.TemporaryDirectory() as folder:
        _Pages.folder = Path(folder)
        _Pages.query = "7]"  # a tenth of the tests: test_case[...7]
        _Pages.results = []
        _Pages.arrived = threading.Event()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
        threading.Thread(target=server.serve_forever, name="pages", daemon=True).start()
        rows = []
        for count in args.tests:
            report = Path(folder) / f"report-{count}.json"
            report.write_text(json.dumps(generate(count)))
            names = [f"page-{count}-{index}.html" for index in range(len(sources))]
            for name, (_, source) in zip(names, sources, strict=True):
                render(source, report, Path(folder) / name)
            measure(browser, server, names[0])  # a first opening warms the machine up
            # The pages in turn, run after run: a busy minute slows each of them alike.
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for _ in range(args.runs):
                for name in names:
                    runs[name].append(measure(browser, server, name))
            for name, (label, _) in zip(names, sources, strict=True):
                size = (Path(folder) / name).stat().st_size
                errors = {run["error"] for run in runs[name] if run["error"]}
                rows.append(
                    (
                        f"{count:,}",
                        label,
                        f"{size / 2**20:.2f}",
                        *(_median(runs[name], key) for key in FIGURES),
                        runs[name][0]["shown"] + (f" JS ERROR {errors}" if errors else ""),
                    )
                )
        server.shutdown()
    heads = ("tests", "page", "MiB", "FCP ms", "DCL ms", "load ms", "sort ms", "filter ms", "shown")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    print("  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
