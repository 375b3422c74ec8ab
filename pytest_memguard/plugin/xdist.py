"""pytest-xdist support, registered only when pytest-xdist is loaded (and imports none of it).

Worker side: every test runs under the same guard as in a single process; its report
entry travels to the controller with the test's teardown report (a crashed worker never
sends its final output), and its crash-proof records go to the controller's work folder.

Controller side: no test runs there.  It watches every worker from outside
(:class:`~.workers.WorkerWatch`), names the test a dead worker was running, with the
reason, and writes the one merged report.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final

import pytest

from ..core.sizes import format_size
from ..results import TestMemory

if TYPE_CHECKING:
    from .hooks import MemguardPlugin
    from .workers import WorkerWatch

__all__ = ["DIR_KEY", "ENTRY_KEY", "Controller", "WorkerSide", "register"]

PLUGIN_NAME: Final = "memguard-xdist"
#: ``node.workerinput`` key: the controller's work folder, where workers write records.
DIR_KEY: Final = "memguard_dir"
#: Serialized-report key (and report attribute on the controller): the test's entry.
ENTRY_KEY: Final = "memguard"
#: ``config.workeroutput`` key: the worker's summary, sent on a clean finish.
OUTPUT_KEY: Final = "memguard"


def register(config: pytest.Config, plugin: MemguardPlugin) -> None:
    """Register the worker or controller side (called only when xdist is loaded)."""
    side: WorkerSide | Controller
    if hasattr(config, "workerinput"):
        side = WorkerSide(plugin)
    elif getattr(config.option, "dist", "no") != "no":
        side = plugin.controller = Controller(plugin)
    else:  # xdist is installed but this run is not distributed: nothing to do
        return
    config.pluginmanager.register(side, PLUGIN_NAME)


def unregister(config: pytest.Config) -> None:
    """Undo :func:`register`."""
    side = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if side is not None:
        config.pluginmanager.unregister(side, PLUGIN_NAME)


def _worker_id(node: Any) -> str:
    return str(node.workerinput["workerid"])


class WorkerSide:
    """In a worker: results ride on the reports, the summary on ``workeroutput``."""

    def __init__(self, plugin: MemguardPlugin) -> None:
        self.plugin = plugin

    @pytest.hookimpl(wrapper=True)
    def pytest_report_to_serializable(
        self, config: pytest.Config, report: Any
    ) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
        data = yield
        # memguard's own logreport (tryfirst) has finished the test before xdist's
        # (plain) logreport serializes the teardown report.
        try:
            results = self.plugin.results
            if (
                data is not None
                and isinstance(report, pytest.TestReport)
                and report.when == "teardown"
                and results
                and results[-1].nodeid == report.nodeid
            ):
                data[ENTRY_KEY] = results[-1].entry(self.plugin.worker)
        except Exception as error:
            self.plugin._internal(f"sending the result of {report.nodeid}", error)
        return data

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if isinstance(output, dict):
            output[OUTPUT_KEY] = {
                "peak_rss": self.plugin.guard.max_rss,
                "errors": list(self.plugin.errors),
            }


class Controller:
    """On the controller: watches the workers and gathers the whole run's results."""

    def __init__(self, plugin: MemguardPlugin) -> None:
        self.plugin = plugin
        self.active = False
        self.collected: list[str] = []
        self._known: set[str] = set()
        #: node id -> report entry, in the order results arrive.
        self.entries: dict[str, dict[str, Any]] = {}
        #: node id -> (worker, outcome so far) of tests whose entry did not arrive.
        self.outcomes: dict[str, tuple[str, str]] = {}
        self._watch: WorkerWatch | None = None

    @property
    def watch(self) -> WorkerWatch:
        """The worker monitor, built when the first worker is set up."""
        if self._watch is None:
            from .workers import WorkerWatch

            settings = self.plugin.settings
            self._watch = WorkerWatch(
                self.plugin.work_dir,
                settings.thresholds,
                settings.aggregate,
                on_error=self.plugin._internal,
            )
        return self._watch

    def close(self) -> None:
        """Stop the monitor thread."""
        if self._watch is not None:
            self._watch.close()

    # -- xdist's hooks -------------------------------------------------------------------

    def pytest_configure_node(self, node: Any) -> None:
        try:
            self.active = True
            node.workerinput[DIR_KEY] = str(self.plugin.work_dir)
            self.watch.add(_worker_id(node))
        except Exception as error:
            self.plugin._internal("setting up a worker", error)

    def pytest_testnodeready(self, node: Any) -> None:
        try:
            self.watch.ready(_worker_id(node))
        except Exception as error:
            self.plugin._internal("watching a worker", error)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        for nodeid in ids:
            if nodeid not in self._known:
                self._known.add(nodeid)
                self.collected.append(nodeid)

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        try:
            worker = _worker_id(node)
            state = self.watch.down(worker, crashed=error is not None)
            output = getattr(node, "workeroutput", None)
            summary = output.get(OUTPUT_KEY) if isinstance(output, dict) else None
            if isinstance(summary, dict):
                state.peak_rss = max(state.peak_rss, int(summary.get("peak_rss") or 0))
                for text in summary.get("errors") or ():
                    self.plugin.errors.append(f"{worker}: {text}")
            if error is None:
                return
            records = self.watch.records(worker)
            if records is not None:
                state.peak_rss = max(state.peak_rss, records.peak_rss)
            if state.kill is None:
                how = state.death or "exit status unknown"
                if records is not None and records.aborted is not None:
                    state.death = f"ended by its own guard: {records.aborted.get('message')}"
                else:
                    state.death = f"died ({how})"
                    if how.endswith("(SIGKILL)"):
                        state.death += ": the kernel's OOM killer, or another process"
        except Exception as raised:
            self.plugin._internal("a worker went down", raised)

    @pytest.hookimpl(tryfirst=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        try:
            self._crashed(crashitem, report)
        except Exception as error:
            self.plugin._internal(f"naming the test that crashed {crashitem}", error)

    def _crashed(self, crashitem: str, report: Any) -> None:
        worker = _worker_id(report.node)
        watch = self.watch
        state = watch.add(worker)
        records = watch.records(worker)
        pid = f" (pid {state.pid})" if state.pid is not None else ""
        ours = state.kill is not None or (records is not None and records.aborted is not None)
        if state.kill is not None:
            reason = f"memguard: worker {worker}{pid} was {state.kill}"
        else:
            reason = f"memguard: worker {worker}{pid} {state.death or 'died'}"
        result = records.unfinished(reason) if records is not None else None
        if result is None or result.nodeid != crashitem:
            last = records.last_rss if records is not None else None
            running = records.running if records is not None else None
            culprit = f"; its records name {running}" if running and running != crashitem else ""
            result = TestMemory(
                crashitem,
                "failed",
                "killed",
                worker,
                0.0,
                rss_peak=last,
                message=f"{reason}; last known RSS {format_size(last)}{culprit}",
            )
        if state.kill is not None and result.status != "killed":
            result = TestMemory.from_json({**result.to_json(), "status": "killed"})
        entry = result.to_json()
        report.longrepr = (
            f"worker {worker!r} crashed while running {crashitem!r}\n{entry['message']}"
        )
        setattr(report, ENTRY_KEY, entry)
        if ours:
            report.memguard_cause = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.active:
            return
        try:
            entry = report.__dict__.get(ENTRY_KEY)
            if report.__dict__.get("memguard_cause"):
                self.plugin._show_letter()
            if isinstance(entry, dict):
                old = self.entries.get(report.nodeid)
                if old is not None and old["status"] == "killed":
                    # Run again after its worker died (e.g. --dist loadscope): the kill stays.
                    old["message"] += f"; it ran again on {entry['worker']}: {entry['outcome']}"
                else:
                    self.entries[report.nodeid] = entry
                self.outcomes.pop(report.nodeid, None)
            elif report.nodeid not in self.entries:
                node = report.__dict__.get("node")
                worker = _worker_id(node) if node is not None else ""
                _, outcome = self.outcomes.get(report.nodeid, (worker, "passed"))
                if report.outcome != "passed" and outcome != "failed":
                    outcome = report.outcome
                self.outcomes[report.nodeid] = (worker, outcome)
        except Exception as error:
            self.plugin._internal(f"receiving the result of {report.nodeid}", error)

    # -- the report ----------------------------------------------------------------------

    def tests(self) -> list[dict[str, Any]]:
        """Every test with a result: entries, and tests whose entry never came."""
        tests = list(self.entries.values())
        for nodeid, (worker, outcome) in self.outcomes.items():
            if nodeid not in self.entries:
                tests.append(TestMemory(nodeid, outcome, "ok", worker, 0.0).to_json())
        return tests

    def alerts(self) -> list[dict[str, Any]]:
        """The workers' own alerts (from their records) and the controller's."""
        if self._watch is None:
            return []
        alerts: list[dict[str, Any]] = []
        for worker in list(self._watch.workers):
            records = self._watch.records(worker)
            if records is not None:
                alerts.extend(records.alerts)
        alerts.extend(self._watch.alerts)
        return sorted(alerts, key=lambda alert: float(alert.get("timestamp") or 0))

    def workers(self) -> list[dict[str, Any]]:
        """The report's ``workers`` list."""
        if self._watch is None:
            return []
        return [state.to_json() for state in list(self._watch.workers.values())]

    def not_run_reason(self) -> str:
        """Why tests without a result did not run."""
        crashed = [s.id for s in self._watch.workers.values() if s.crashed] if self._watch else []
        if crashed:
            return (
                f"not run: worker(s) {', '.join(crashed)} died and could not all be replaced"
                " (see --max-worker-restart)"
            )
        return "not run"
