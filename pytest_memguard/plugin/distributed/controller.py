"""The xdist controller's side: no test runs here.

It watches every worker from outside (:class:`~.watch.WorkerWatch`), merges the results
that ride on the workers' teardown reports, names the test a dead worker was running,
with the reason, and writes the one report for the whole run.  A worker that ended on
purpose (``--memguard-recycle``) has its unstarted test put back in the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from ...core.sizes import format_size
from ...probe.system import Cgroup, find_memory_cgroup
from ...reporting.crashlog import last_rss
from ...reporting.results import TestMemory, merge_outcome, report_outcome
from ..compat import worker_id_of_report
from ..gate import WAITS_KEY, Waits
from ..state import NOT_FINISHED
from ..terminal import CAUSE_KEY
from .autocount import AUTO_KEY
from .wire import DIR_KEY, ENTRY_KEY, OUTPUT_KEY, RECYCLE_KEY, decode_result, encode_result

if TYPE_CHECKING:
    from ...library.ledger import Ledger
    from ...reporting.history import PeakHistory
    from ..context import RunLog
    from ..settings import Settings
    from .packing import PackScheduling
    from .watch import WorkerState, WorkerWatch

__all__ = ["Controller", "ran_beside"]

#: Seconds a reading of the ledger (what other runs hold) stands for.
OUTSIDE_EVERY: Final = 0.25

#: Distribution modes whose scheduler puts a crashed worker's unstarted test back.
RECYCLE_MODES: Final = frozenset({"load", "worksteal", "loadscope", "loadfile", "loadgroup"})


#: At most this many tests are named as having run beside a test.
BESIDE: Final = 3


def ran_beside(
    results: Sequence[TestMemory], times: dict[str, list[float]]
) -> dict[str, list[str]]:
    """Node id -> the tests that ran on other workers while it ran (as the controller
    heard them start and end), the largest peaks first, at most :data:`BESIDE`."""
    spans = []
    for result in results:
        heard = times.get(result.nodeid)
        if heard and len(heard) >= 2:
            growth = (result.peak_delta or 0) + (result.children_peak or 0)
            spans.append((heard[0], heard[-1], result.worker, result.nodeid, growth))
    spans.sort()
    beside: dict[str, list[tuple[int, str]]] = {}
    running: list[tuple[float, float, str, str, int]] = []
    for span in spans:
        start = span[0]
        running = [other for other in running if other[1] > start]
        for other in running:
            if other[2] != span[2]:
                beside.setdefault(span[3], []).append((other[4], other[3]))
                beside.setdefault(other[3], []).append((span[4], span[3]))
        running.append(span)
    return {
        nodeid: [name for _, name in sorted(found, key=lambda pair: -pair[0])[:BESIDE]]
        for nodeid, found in beside.items()
    }


def _worker_id(node: Any) -> str:
    return str(node.workerinput["workerid"])


class Controller:
    """On the controller: watches the workers and gathers the whole run's results (the
    run's :class:`~..context.ResultSource`).

    :param dist: pytest-xdist's distribution mode (``load``...)
    :param say: writes a line in the terminal as the run goes
    """

    def __init__(
        self,
        settings: Settings,
        log: RunLog,
        work_dir: Path,
        memory_total: int,
        *,
        dist: str,
        say: Callable[[str], None],
        history: PeakHistory | None = None,
    ) -> None:
        self.settings = settings
        self.log = log
        self.work_dir = work_dir
        self.memory_total = memory_total
        self.dist = dist
        self.say = say
        #: Appends a line to the run's crash-proof records (event, then fields).
        self.record: Callable[..., None] = lambda event, **fields: None
        #: The measured peaks ``--memguard-pack`` predicts from (None: not packing).
        self.history = history
        self.scheduler: PackScheduling | None = None
        #: worker id -> its RSS when its last test started (its RSS outside tests).
        self.bases: dict[str, int] = {}
        #: node id -> when the controller heard it start, and end (``beside``).
        self.times: dict[str, list[float]] = {}
        self.active = False
        self._collected: list[str] = []
        self._known: set[str] = set()
        #: node id -> result, in the order results arrive.
        self.entries: dict[str, TestMemory] = {}
        #: node id -> (worker, outcome so far, torn down) of tests whose entry did not
        #: arrive (yet).
        self.outcomes: dict[str, tuple[str, str, bool]] = {}
        self._watch: WorkerWatch | None = None
        #: Tests whose worker crashed and that another plugin runs again
        #: (pytest-rerunfailures): their next entry is theirs too.
        self.crash_reruns: set[str] = set()
        #: worker id -> why it ends after its current test (``--memguard-recycle``).
        self.recycling: dict[str, str] = {}
        #: The run's memory cgroup, and its count of OOM kills already accounted for.
        self._cgroup: Cgroup | None = None
        self._oom_kills: int | None = None
        #: The host-wide ledger of guarded runs (``--memguard-ledger``), its memory domain,
        #: and what other runs hold there as last read (when, what).
        self.ledger: Ledger | None = None
        self.domain = "host"
        self._outside: tuple[float, int] = (-1.0, 0)
        #: How long the workers' tests waited for other runs' memory.
        self.waits: Waits | None = None

    @property
    def watch(self) -> WorkerWatch:
        """The worker monitor, built when the first worker is set up."""
        if self._watch is None:
            from .watch import WorkerWatch

            settings = self.settings
            self._watch = WorkerWatch(
                self.work_dir,
                settings.thresholds,
                settings.aggregate,
                on_error=self.log.error,
            )
            if self.ledger is not None:
                self._watch.outside = self.outside
        return self._watch

    def close(self) -> None:
        """Stop the monitor thread."""
        if self._watch is not None:
            self._watch.close()

    # -- xdist's hooks -------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [config.stash[AUTO_KEY]] if AUTO_KEY in config.stash else []
        if self.ledger is not None:
            from ..gate import others_line

            try:
                others = self.ledger.others(self.run, self.domain)
            except Exception as error:
                self.log.error("reading the ledger of guarded runs", error)
                others = []
            counts = "packing counts it" if self.history is not None else "heavy tests wait"
            line = others_line(others, counts)
            if line is not None:
                lines.append(line)
        return lines

    @functools.cached_property
    def run(self) -> str:
        """This run's name in the ledger: the controller's ``"pid:start"``."""
        from ..gate import this_run

        return this_run()

    def outside(self) -> int:
        """Bytes the other guarded runs of this memory domain hold and reserve (the
        ledger read at most every :data:`OUTSIDE_EVERY` seconds; 0 without it)."""
        ledger = self.ledger
        if ledger is None:
            return 0
        read_at, held = self._outside
        now = time.monotonic()
        if now - read_at >= OUTSIDE_EVERY:
            try:
                held = sum(entry.held for entry in ledger.others(self.run, self.domain))
            except Exception as error:
                self.log.error("reading the ledger of guarded runs", error)
                self.ledger = None
                held = 0
            self._outside = (now, held)
        return held

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        line = self.waits.line() if self.waits is not None else None
        if line is not None:
            self.log.notices.append(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``--memguard-pack``: our scheduler instead of ``load``'s."""
        if self.history is None:
            return None
        from ..compat import xdist_worker_count
        from .packing import PackScheduling

        limit = self.settings.aggregate or self.memory_total
        self.scheduler = PackScheduling(
            config,
            xdist_worker_count(config),
            self.history,
            limit,
            self._base,
            self.say,
            log,
            outside=self.outside if self.ledger is not None else None,
        )
        self.watch.expected = self.scheduler.expected
        return self.scheduler

    def _base(self, worker: str) -> int:
        """A worker's RSS outside tests: when its last test started, else as sampled
        before its first, else the usual one of the history."""
        base = self.bases.get(worker)
        if base is None:
            state = self.watch.workers.get(worker)
            base = state.rss if state is not None and state.rss else None
        if base is None and self.history is not None:
            base = self.history.usual_start()
        return base or 0

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.times[nodeid] = [time.time()]

    def pytest_configure_node(self, node: Any) -> None:
        try:
            self.active = True
            node.workerinput[DIR_KEY] = str(self.work_dir)
            # A worker's own ``dist`` option is "no": it learns here whether it may recycle.
            node.workerinput[RECYCLE_KEY] = self.dist in RECYCLE_MODES
            if self.ledger is not None:
                from ..gate import RUN_KEY

                node.workerinput[RUN_KEY] = self.run
            if not self.watch.workers:  # the first worker: the kernel's kills so far
                self._cgroup = find_memory_cgroup()
                self._oom_kills = self._cgroup.oom_kills() if self._cgroup else None
            self.watch.add(_worker_id(node))
        except Exception as error:
            self.log.error("setting up a worker", error)

    def pytest_testnodeready(self, node: Any) -> None:
        try:
            self.watch.ready(_worker_id(node))
        except Exception as error:
            self.log.error("watching a worker", error)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        first = not self._collected
        for nodeid in ids:
            if nodeid not in self._known:
                self._known.add(nodeid)
                self._collected.append(nodeid)
        if first and self._collected:  # for memguard recover, should the run be killed
            try:
                self.record("collected", nodeids=self._collected)
            except Exception as error:
                self.log.error("recording the collection", error)

    def signal_workers(self, signum: int) -> None:
        """Pass a signal on to every worker still up (signal handler, main thread)."""
        if self._watch is None:
            return
        for state in list(self._watch.workers.values()):
            if state.pid is not None and not state.crashed:
                with contextlib.suppress(OSError):
                    os.kill(state.pid, signum)

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        try:
            worker = _worker_id(node)
            recycled = self.recycling.get(worker) if error is not None else None
            state = self.watch.down(worker, crashed=error is not None and recycled is None)
            if recycled is not None:
                self._recycled(worker, state, recycled)
                return
            output = getattr(node, "workeroutput", None)
            summary = output.get(OUTPUT_KEY) if isinstance(output, dict) else None
            if isinstance(summary, dict):
                state.peak_rss = max(state.peak_rss, int(summary.get("peak_rss") or 0))
                for text in summary.get("errors") or ():
                    self.log.errors.append(f"{worker}: {text}")
            if isinstance(output, dict) and isinstance(output.get(WAITS_KEY), dict):
                self._waited(output[WAITS_KEY])
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
                        evidence = self._memory_evidence(state)
                        state.oom = evidence is not None
                        state.death += (
                            f": the kernel's OOM killer ({evidence})"
                            if evidence is not None
                            else ": the kernel's OOM killer, or another process"
                        )
        except Exception as raised:
            self.log.error("a worker went down", raised)

    def _waited(self, data: dict[str, Any]) -> None:
        """A worker's waits for other runs' memory, and its ledger notices."""
        if self.waits is None:
            self.waits = Waits()
        self.waits.merge(data)
        for line in data.get("notices") or ():
            if line not in self.log.notices:
                self.log.notices.append(str(line))

    def _memory_evidence(self, state: WorkerState) -> str | None:
        """What says that the kernel killed a worker for memory: its cgroup's OOM kill
        count rose, or the worker's RSS was past the critical threshold; or None."""
        group, before = self._cgroup, self._oom_kills
        now = group.oom_kills() if group is not None else None
        if now is not None and before is not None and now > before:
            self._oom_kills = now
            return f"the memory cgroup's OOM kill count rose from {before} to {now}"
        critical = self.settings.thresholds.critical
        if critical is not None and state.test_peak >= critical:
            return (
                f"its RSS reached {format_size(state.test_peak)}, past the critical"
                f" threshold {format_size(critical)}"
            )
        return None

    def _recycled(self, worker: str, state: WorkerState, reason: str) -> None:
        """A worker ended on purpose between two tests (``--memguard-recycle``)."""
        state.recycled = reason
        records = self.watch.records(worker)
        if records is not None:
            state.peak_rss = max(state.peak_rss, records.peak_rss)
        self.log.notices.append(
            f"memguard: worker {worker} {reason}; xdist replaced it"
            " (each replacement counts toward --max-worker-restart)"
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        try:
            worker = worker_id_of_report(report) or ""
            reason = self.recycling.get(worker)
            if reason is not None:
                # Not started: the worker ended before it, on purpose.  The schedulers
                # that cannot take one test back (loadscope, loadfile) say so with a
                # RuntimeError subclass, and requeue the dead worker's scope anyway.
                with contextlib.suppress(RuntimeError):
                    sched.mark_test_pending(crashitem)
                report.outcome = "rerun"
                report.longrepr = f"worker {worker} {reason}; {crashitem} runs on another"
                setattr(report, RECYCLE_KEY, reason)
                return
            self._crashed(crashitem, report)
        except Exception as error:
            self.log.error(f"naming the test that crashed {crashitem}", error)

    def _crashed(self, crashitem: str, report: Any) -> None:
        worker = worker_id_of_report(report) or ""
        watch = self.watch
        state = watch.add(worker)
        records = watch.records(worker)
        pid = f" (pid {state.pid})" if state.pid is not None else ""
        ours = state.kill is not None or state.oom
        ours = ours or (records is not None and records.aborted is not None)
        if state.kill is not None:
            reason = f"memguard: worker {worker}{pid} was {state.kill}"
        else:
            reason = f"memguard: worker {worker}{pid} {state.death or 'died'}"
        seen = state.test_peak or None  # the controller's samples during the test
        result = records.unfinished(reason, seen) if records is not None else None
        if result is None or result.nodeid != crashitem:
            peak, words = last_rss(records.last_rss if records is not None else None, seen)
            running = records.running if records is not None else None
            culprit = f"; its records name {running}" if running and running != crashitem else ""
            result = TestMemory(
                crashitem,
                "failed",
                "killed",
                worker,
                0.0,
                rss_peak=peak,
                message=f"{reason}; {words}{culprit}",
            )
        if state.kill is not None and result.status != "killed":
            result = dataclasses.replace(result, status="killed")
        result = self._predicted(result)
        if result.prediction is not None and result.rss_peak is not None:
            result = dataclasses.replace(
                result,
                message=f"{result.message}; predicted {format_size(result.prediction)} over the"
                f" worker's {format_size(self._base(worker))}, it reached"
                f" {format_size(result.rss_peak)}",
            )
        report.longrepr = f"worker {worker!r} crashed while running {crashitem!r}\n{result.message}"
        setattr(report, ENTRY_KEY, encode_result(result))
        if ours:
            setattr(report, CAUSE_KEY, True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs for every report of every worker, in the one thread that handles them all:
        # a passing setup or call report (most of them) costs a lookup and a store.
        if not self.active:
            return
        try:
            fields = report.__dict__
            recycle = fields.get(RECYCLE_KEY)
            if recycle is not None:
                if report.when not in ("setup", "call", "teardown"):  # the stand-in
                    return
                sender = worker_id_of_report(report)
                if sender is not None:
                    self.recycling[sender] = str(recycle)
            worker = worker_id_of_report(report) or ""
            nodeid, when = report.nodeid, report.when
            if when == "teardown" and worker:
                self.watch.test_ended(worker)
                now = time.time()
                heard = self.times.get(nodeid)
                if heard is None:
                    self.times[nodeid] = [now, now]
                else:
                    heard.append(now)
            wired = fields.get(ENTRY_KEY)
            if isinstance(wired, str):
                self.outcomes.pop(nodeid, None)
                self._received(report, decode_result(wired), worker)
                return
            # No result (yet): the test's outcome so far, should its result never come.
            old = self.outcomes.get(nodeid)
            outcome = "passed" if old is None else old[1]
            if report.outcome != "passed" or when == "teardown" or "wasxfail" in fields:
                xfail = hasattr(report, "wasxfail")
                outcome = merge_outcome(outcome, report_outcome(report.outcome, when, xfail))
            self.outcomes[nodeid] = (worker, outcome, when == "teardown")
        except Exception as error:
            self.log.error(f"receiving the result of {report.nodeid}", error)

    def _received(self, report: pytest.TestReport, result: TestMemory, worker: str) -> None:
        """A test's result, from its worker (its outcome merged there) or from the crash
        of its worker (a stand-in report here)."""
        nodeid = report.nodeid
        # A crash another plugin runs again (pytest-rerunfailures): it failed.
        rerun = str(report.outcome) == "rerun"  # not one of pytest's own outcomes
        if rerun:
            result = dataclasses.replace(result, outcome="failed")
        if worker and result.rss_start is not None:
            self.bases[worker] = result.rss_start
        result = self._predicted(result)
        old = self.entries.get(nodeid)
        if old is not None and nodeid in self.crash_reruns:
            # The run after a crash: one result, with the runs counted and the crash said.
            self.crash_reruns.discard(nodeid)
            said = f"{result.message}; " if result.message else ""
            self.entries[nodeid] = dataclasses.replace(
                result,
                reruns=old.reruns + 1 + result.reruns,
                message=f"{said}an earlier run crashed: {old.message}",
            )
        elif old is not None and old.status == "killed":
            # Run again after its worker died (e.g. --dist loadscope): the kill stays.
            self.entries[nodeid] = dataclasses.replace(
                old, message=f"{old.message}; it ran again on {result.worker}: {result.outcome}"
            )
        else:
            self.entries[nodeid] = result
        if rerun:
            self.crash_reruns.add(nodeid)

    def _predicted(self, result: TestMemory) -> TestMemory:
        """``result`` with the prediction it was scheduled with (when packing)."""
        prediction = self.scheduler.prediction_of(result.nodeid) if self.scheduler else None
        if prediction is None:
            return result
        return dataclasses.replace(result, prediction=prediction)

    # -- the report ----------------------------------------------------------------------

    def results(self) -> list[TestMemory]:
        """Every test with a result: results, and tests whose result never came.  One
        that passed so far but never reached the end of its teardown was cut off (Ctrl-C):
        not run, as in a single process."""
        results = list(self.entries.values())
        for nodeid, (worker, outcome, torn_down) in self.outcomes.items():
            if nodeid in self.entries:
                continue
            if outcome == "passed" and not torn_down:
                result = TestMemory.not_run(nodeid, NOT_FINISHED, worker)
            else:
                result = TestMemory(nodeid, outcome, "ok", worker, 0.0)
            results.append(result)
        beside = ran_beside(results, self.times)
        if beside:
            results = [
                dataclasses.replace(result, beside=tuple(found))
                if (found := beside.get(result.nodeid))
                else result
                for result in results
            ]
        return results

    def result_of(self, nodeid: str) -> TestMemory | None:
        return self.entries.get(nodeid)

    def collected(self) -> Sequence[str]:
        return self._collected

    def alerts(self) -> list[dict[str, Any]]:
        """The workers' own alerts (from their records), the controller's and this
        process's."""
        alerts: list[dict[str, Any]] = list(self.log.alerts)
        if self._watch is not None:
            for worker in list(self._watch.workers):
                records = self._watch.records(worker)
                if records is not None:
                    alerts.extend(records.alerts)
            alerts.extend(self._watch.alerts)
        return sorted(alerts, key=lambda alert: float(alert.get("timestamp") or 0))

    def samples(self) -> dict[str, list[tuple[float, int]]]:
        """Each worker's RSS as the controller sampled it, for the report's timeline."""
        if self._watch is None:
            return {}
        return {worker: state.samples.samples() for worker, state in self._watch.workers.items()}

    def workers(self, reason: str = "") -> list[dict[str, Any]]:
        """The report's ``workers`` list."""
        if self._watch is None:
            return []
        return [state.to_json() for state in list(self._watch.workers.values())]

    def peak_rss(self) -> int:
        workers = self._watch.workers.values() if self._watch is not None else ()
        peaks = [state.peak_rss for state in list(workers)]
        peaks.extend(result.rss_peak for result in self.entries.values() if result.rss_peak)
        return max(peaks, default=0)

    def not_run_reason(self) -> str | None:
        """Why tests without a result did not run, when a worker's end says it (None:
        the run's own reason)."""
        states = list(self._watch.workers.values()) if self._watch else []
        crashed = [s.id for s in states if s.crashed]
        if not crashed and any(s.recycled for s in states):
            return (
                "not run: xdist stopped replacing recycled workers"
                " (raise --max-worker-restart; see --memguard-recycle)"
            )
        if crashed:
            return (
                f"not run: worker(s) {', '.join(crashed)} died and could not all be replaced"
                " (see --max-worker-restart)"
            )
        return None
