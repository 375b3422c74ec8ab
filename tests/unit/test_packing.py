"""The packing scheduler against workers that run their queues as xdist's do: a test
runs once the next one is known or the worker was told to shut down."""

from __future__ import annotations

import inspect
import random
from typing import Any

import pytest

from pytest_memguard.plugin.distributed.packing import PackScheduling
from pytest_memguard.reporting.history import Peak, PeakHistory

MB = 1024 * 1024
BASE = 50 * MB


class Worker:
    """A stand-in for xdist's WorkerController."""

    def __init__(self, number: int) -> None:
        self.workerinput = {"workerid": f"gw{number}"}
        self.shutting_down = False
        self.sent: list[int] = []
        self.batches: list[list[int]] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)
        self.batches.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


class Config:
    """A stand-in for the controller's pytest.Config: the options the scheduler reads."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


def fake_config(**options: Any) -> Any:
    """A :class:`Config` where the scheduler takes a pytest.Config."""
    return Config(**options)


def simulate(
    peaks: dict[str, int],
    workers: int,
    limit: int,
    seed: int = 0,
    config: Any = None,
    outside: Any = None,
) -> tuple[PackScheduling, list[list[str]], list[str]]:
    """Run ``peaks``' tests (node id -> peak) through the scheduler to the end; the sets
    of tests that ran at once at each step, and what the scheduler said."""
    config = config or fake_config()
    history = PeakHistory({nodeid: Peak(peak) for nodeid, peak in peaks.items()}, "test")
    said: list[str] = []
    sched = PackScheduling(
        config, workers, history, limit, lambda worker: BASE, said.append, outside=outside
    )
    nodes = [Worker(i) for i in range(workers)]
    collection = list(peaks)
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    done: list[int] = []
    at_once: list[list[str]] = []
    rng = random.Random(seed)
    for _ in range(10 * len(collection) + 10):
        running = [
            node
            for node in nodes
            if node in sched.node2pending
            and sched.node2pending[node]
            and (node.shutting_down or len(sched.node2pending[node]) >= 2)
        ]
        if not running:
            break
        at_once.append([collection[sched.node2pending[node][0]] for node in running])
        node = rng.choice(running)
        index = sched.node2pending[node][0]
        done.append(index)
        sched.mark_test_complete(node, index)
    assert sched.tests_finished, "every test was let run"
    assert sorted(done) == list(range(len(collection))), "each test ran once"
    return sched, at_once, said


def mixed(heavy: int, light: int, size: int = 400 * MB) -> dict[str, int]:
    peaks = {f"test_light[{i}]": MB for i in range(light)}
    for i in range(heavy):  # spread among the light ones, as a suite has them
        peaks[f"test_heavy[{i}]"] = size
    keys = list(peaks)
    random.Random(1).shuffle(keys)
    return {key: peaks[key] for key in keys}


@pytest.mark.parametrize("seed", range(5))
def test_tests_that_run_at_once_fit_the_limit(seed: int) -> None:
    limit = 4 * BASE + 2 * 400 * MB + 100 * MB  # two heavy tests at once, not three
    _, at_once, _ = simulate(mixed(6, 40), 4, limit, seed)
    heavy_at_once = [sum("heavy" in name for name in names) for names in at_once]
    assert max(heavy_at_once) == 2, "two heavy tests run at once, never three"
    assert max(len(names) for names in at_once) == 4, "light tests keep all workers busy"


def test_a_suite_of_light_tests_goes_out_in_batches() -> None:
    sched, at_once, _ = simulate({f"test_{i}": MB for i in range(400)}, 4, 10**12)
    assert all(len(names) == 4 for names in at_once[:300])
    assert len([n for n in sched.node2collection if n.sent]) == 4


def test_a_test_too_large_for_the_limit_runs_alone_and_is_named() -> None:
    peaks = {**{f"test_light[{i}]": MB for i in range(10)}, "test_huge": 2000 * MB}
    _, at_once, said = simulate(peaks, 2, 2 * BASE + 1000 * MB)
    assert [names for names in at_once if "test_huge" in names] == [["test_huge"]]
    assert any("test_huge" in line and "runs alone" in line for line in said)


def test_few_tests_go_one_to_each_worker() -> None:
    _, at_once, _ = simulate({"test_a": MB, "test_b": MB}, 2, 10**12)
    assert sorted(at_once[0]) == ["test_a", "test_b"]


def test_a_dead_workers_queue_runs_on_the_others() -> None:
    history = PeakHistory({}, "none")
    sched = PackScheduling(fake_config(), 2, history, 10**12, lambda worker: 0, lambda line: None)
    one, two = Worker(0), Worker(1)
    collection = [f"test_{i}" for i in range(20)]
    for node in (one, two):
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    queued = list(sched.node2pending[one])
    assert sched.remove_node(one) == collection[queued[0]]
    assert set(queued[1:]) <= set(sched.pending) | set(sched.node2pending[two])


def test_predictions_are_the_history_or_its_median() -> None:
    history = PeakHistory({"a": Peak(10 * MB), "b": Peak(30 * MB, children=20 * MB)}, "x")
    sched = PackScheduling(fake_config(), 1, history, 10**12, lambda worker: 0, lambda line: None)
    assert sched.predict("b") == 50 * MB
    assert sched.predict("new") == 30 * MB  # the median of 10 and 50
    assert sched.prediction_of("a") is None  # nothing collected yet


def test_tests_a_worker_gives_back_are_pending_again_first() -> None:
    history = PeakHistory({}, "none")
    sched = PackScheduling(fake_config(), 1, history, 10**12, lambda worker: 0, lambda line: None)
    node = Worker(0)
    collection = [f"test_{i}" for i in range(40)]
    sched.add_node(node)
    sched.add_node_collection(node, collection)
    sched.schedule()
    given_back = sched.node2pending[node][-2:]
    sched.remove_pending_tests_from_node(node, given_back)
    assert sched.pending[:2] == given_back, "they run next"
    assert not set(given_back) & set(sched.node2pending[node])


def test_the_scheduler_has_what_xdists_load_scheduler_offers_other_plugins() -> None:
    """pytest-rerunfailures reads ``sched.config`` and calls ``sched.mark_test_pending``
    when a worker crashes; any name xdist's own scheduler has, ours has too."""
    from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

    config = fake_config(tx=["2*popen"], maxschedchunk=None)
    config.getvalue = config.getoption
    load = LoadScheduling(config)
    history = PeakHistory({}, "none")
    sched = PackScheduling(config, 2, history, 10**12, lambda worker: 0, lambda line: None)
    for name in [name for name in dir(load) if not name.startswith("_")]:
        assert hasattr(sched, name), f"PackScheduling has no {name!r}"
        theirs = getattr(load, name)
        assert callable(getattr(sched, name)) == callable(theirs), name
        if inspect.ismethod(theirs):  # not ``log``, a callable producer
            ours = inspect.signature(getattr(sched, name)).parameters
            assert list(ours) == list(inspect.signature(theirs).parameters), name
    assert sched.config is config
    assert (sched.numnodes, sched.maxschedchunk, sched.collection) == (2, None, None)
    assert (sched.node2pending, sched.node2collection) == ({}, {})
    assert (sched.pending, sched.nodes) == ([], [])
    assert (sched.collection_is_completed, sched.tests_finished) == (False, False)
    assert sched.has_pending is False
    assert callable(sched.log)
    one, two = Worker(0), Worker(1)
    collection = [f"test_{i}" for i in range(20)]
    for node in (one, two):
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    assert (sched.nodes, sched.collection_is_completed) == ([one, two], True)
    sched.schedule()
    assert sched.collection == collection
    assert (sched.has_pending, sched.tests_finished) == (True, False)
    assert isinstance(sched.node2pending[one], list)
    sched.check_schedule(one)
    assert isinstance(sched.pending, list)


def test_maxschedchunk_bounds_a_batch_as_it_does_loads() -> None:
    peaks = {f"test_{i}": MB for i in range(400)}
    sched, _, _ = simulate(peaks, 2, 10**12, config=fake_config(maxschedchunk=5))
    assert sched.maxschedchunk == 5
    assert max(len(batch) for node in sched.node2collection for batch in node.batches) <= 5
    unbounded, _, _ = simulate(peaks, 2, 10**12)
    assert max(len(batch) for node in unbounded.node2collection for batch in node.batches) > 5


@pytest.mark.parametrize(("outside", "most"), [(None, 2), (400 * MB, 1)])
def test_a_heavy_test_is_held_back_while_other_runs_hold_the_room(
    outside: int | None, most: int
) -> None:
    """With the ledger, a heavy decision counts what other runs hold (read then only)."""
    reads: list[int] = []

    def held() -> int:
        assert outside is not None
        reads.append(outside)
        return outside

    limit = 4 * BASE + 2 * 400 * MB + 100 * MB  # two heavy tests alone, one beside 400 MiB
    _, at_once, _ = simulate(mixed(6, 40), 4, limit, outside=None if outside is None else held)
    heavy_at_once = [sum("heavy" in name for name in names) for names in at_once]
    assert max(heavy_at_once) == most
    assert max(len(names) for names in at_once) == 4, "light tests keep all workers busy"
    if outside is not None:
        assert 0 < len(reads) < len(at_once), "read for heavy decisions only"
