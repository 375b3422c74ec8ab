"""CI helpers: baseline gating, JUnit properties, GitHub Actions annotations and summary.

The baseline's growth check is a verdict the plugin asks for at the end of each test
(:meth:`Baseline.judge`); the other two are small plugins, made by :func:`ci_plugins`
only when they have work to do (``--junitxml`` is on, ``GITHUB_ACTIONS=true``), so a
run without them pays nothing per test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import pytest

from ..core.sizes import format_size
from .state import Verdict

if TYPE_CHECKING:
    from ..reporting.compare import Allowance, Figures, MetricChange
    from .context import RunContext
    from .roles import Roles
    from .settings import Settings
    from .state import TestState

#: The run's full report, built when first asked for (None when there is none).
ReportGetter = Callable[[], "dict[str, Any] | None"]

__all__ = [
    "Baseline",
    "GitHubActions",
    "JUnitProperties",
    "annotation",
    "ci_plugins",
    "load_baseline",
    "properties",
]

JUNIT_NAME: Final = "memguard-junit"
GITHUB_NAME: Final = "memguard-github"
#: Words for the compared figures in messages.
_WORDS: Final = {"peak": "peak growth", "heap": "Python heap peak", "leak": "retained memory"}
#: The test figures written as JUnit properties, by property name.
_PROPERTIES: Final = (
    ("memguard_peak_delta", "peak_delta"),
    ("memguard_rss_peak", "rss_peak"),
    ("memguard_heap_peak", "heap_peak"),
    ("memguard_leaked", "leaked"),
)


class Baseline(NamedTuple):
    """A loaded baseline: figures by node id, the allowance, and where it came from."""

    figures: Mapping[str, Figures]
    allowance: Allowance
    #: For messages: ``--memguard-baseline main.json``.
    label: str

    def judge(self, state: TestState) -> Verdict | None:
        """The verdict on a finished test whose figures grew past the allowance over the
        baseline's, or None (also for a test the baseline does not have)."""
        if state.verdict is not None:
            return None  # failed for memory already, or never ran its body
        old = self.figures.get(state.nodeid)
        if old is None:
            return None
        from ..reporting.compare import Figures, compare_figures

        new = Figures(state.peak_delta, state.heap_peak, state.leaked)
        change = compare_figures(state.nodeid, old, new, self.allowance)
        grown = [_growth(metric) for metric in change.metrics if metric.exceeded]
        if not grown:
            return None
        return Verdict(
            "baseline",
            f"memguard: {'; '.join(grown)} (allowed {self.allowance.describe()}, {self.label})",
        )


def _growth(metric: MetricChange) -> str:
    """``peak growth 286.1 MiB is 150% above the baseline's 114.4 MiB``."""
    percent = metric.percent
    above = "above" if percent is None else f"{percent:.0f}% above"
    return (
        f"{_WORDS[metric.metric]} {format_size(metric.new)} is {above} the baseline's"
        f" {format_size(metric.old)}"
    )


def load_baseline(settings: Settings) -> Baseline | None:
    """The baseline report of ``settings``, if any; ``UsageError`` naming the option and file."""
    path = settings.baseline
    if path is None:
        return None
    from ..reporting.compare import DEFAULT_ALLOWANCE, baseline_figures, parse_allowance
    from ..reporting.report import load_report

    source = settings.source("baseline")
    try:
        figures = baseline_figures(load_report(path))
    except ValueError as error:  # ReportError, and anything malformed inside
        raise pytest.UsageError(
            f"{source}: cannot use {str(path)!r} as the baseline: {error}"
            " (expected a report written by --memguard-json)"
        ) from None
    allowance = settings.max_increase or parse_allowance(DEFAULT_ALLOWANCE)
    return Baseline(figures, allowance, f"{source} {path}")


def ci_plugins(
    config: pytest.Config,
    context: RunContext,
    roles: Roles,
    report: ReportGetter,
    state_of: Callable[[str], TestState | None],
) -> list[tuple[str, object]]:
    """The CI plugins this run needs, with their names.

    :param state_of: the running test's measurements, by node id
    """
    plugins: list[tuple[str, object]] = []
    if roles.junit:
        plugins.append((JUNIT_NAME, JUnitProperties(state_of)))
    if roles.github:
        plugins.append((GITHUB_NAME, GitHubActions(context, config.rootpath, report, os.environ)))
    return plugins


# -- JUnit XML -----------------------------------------------------------------------


class JUnitProperties:
    """Adds each test's measured figures to its JUnit XML entry (``item.user_properties``)."""

    def __init__(self, state_of: Callable[[str], TestState | None]) -> None:
        self.state_of = state_of

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        if call.when == "teardown":
            state = self.state_of(item.nodeid)
            if state is not None:
                # Before the report is made: it copies the item's properties.
                item.user_properties.extend(properties(state))
        return (yield)


def properties(state: TestState) -> list[tuple[str, str]]:
    """The JUnit properties of a test: its measured figures (bytes) and its status."""
    found = [
        (name, str(value))
        for name, field in _PROPERTIES
        if (value := getattr(state, field)) is not None
    ]
    found.append(("memguard_status", state.status))
    return found


# -- GitHub Actions ------------------------------------------------------------------


class GitHubActions:
    """Memory failures as workflow annotations, and the report's table in the job summary."""

    def __init__(
        self,
        context: RunContext,
        rootpath: Path,
        report: ReportGetter,
        environ: Mapping[str, str],
    ) -> None:
        self.context = context
        #: pytest's root folder, that report locations are relative to.
        self.rootpath = rootpath
        self.report = report
        self.summary_path = environ.get("GITHUB_STEP_SUMMARY", "").strip() or None
        workspace = environ.get("GITHUB_WORKSPACE", "").strip()
        #: The repository root that annotation paths are relative to.
        self.root = Path(workspace) if workspace else rootpath
        #: node id -> (path relative to the rootdir, 0-based line or None).
        self.locations: dict[str, tuple[str, int | None]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.locations:
            path, line, _ = report.location
            self.locations[report.nodeid] = (path, line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report = self.report()
        if report is None or self.summary_path is None:
            return
        try:
            from ..core.files import append_text, reason_of
            from ..reporting.render import render_report

            # Appended, as GitHub asks; a FIFO or a device there is refused, not written.
            append_text(self.summary_path, render_report(report, "markdown") + "\n\n")
        except OSError as error:  # the path's problem, not memguard's
            self.context.log.notices.append(
                f"memguard: cannot write the GitHub job summary to {self.summary_path!r}"
                f" ({reason_of(error)})"
            )
        except Exception as error:
            self.context.log.error("writing the GitHub job summary", error)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.annotations():
            terminalreporter.write_line(line)

    def annotations(self) -> list[str]:
        """One ``::error`` (``::warning`` in report mode) line per memory failure."""
        from ..reporting.results import FAILING_STATUSES

        report = self.report()
        if report is None:
            return []
        lines = []
        for test in report.get("tests", []):
            if test.get("status") not in FAILING_STATUSES:
                continue
            level = "error" if test.get("outcome") in ("failed", "error") else "warning"
            where = self.locations.get(test["nodeid"])
            path, line = where if where is not None else (None, None)
            if path is not None:
                path = self._relative(path)
            message = test.get("message") or f"{test['nodeid']}: {test['status']}"
            lines.append(annotation(level, message, path, line, "memguard MEMORY"))
        return lines

    def _relative(self, path: str) -> str:
        """``path`` (relative to the rootdir) relative to the repository root, with ``/``."""
        full = os.path.normpath(self.rootpath / path)
        relative = os.path.relpath(full, os.path.normpath(self.root))
        if relative.startswith(".."):
            relative = path
        return relative.replace(os.sep, "/")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, path: str | None, line: int | None, title: str) -> str:
    """A GitHub workflow command, e.g. ``::error file=a.py,line=3,title=T::message``.

    ``line`` is 0-based, as in pytest's locations; GitHub's is 1-based.
    """
    props = []
    if path is not None:
        props.append(f"file={_escape_property(path)}")
        if line is not None:
            props.append(f"line={line + 1}")
    props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"
