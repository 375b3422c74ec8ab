"""BoundedList, BoundedDict, MetricsCollector and SingletonMeta."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from pytest_memguard.errors import MemguardError
from pytest_memguard.library.bounded import (
    BoundedDict,
    BoundedError,
    BoundedList,
    MetricsCollector,
    SingletonMeta,
)
from pytest_memguard.library.singletons import AgentSingleton


def _hammer(worker: Any, threads: int = 8) -> None:
    """Run ``worker(index)`` in ``threads`` threads started together; re-raise failures."""
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            worker(index)
        except BaseException as error:
            failures.append(error)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not failures, failures


@pytest.mark.parametrize("maxlen", [0, -1, 1.5, True, "3"])
def test_a_bound_must_be_a_positive_int(maxlen: Any) -> None:
    with pytest.raises(BoundedError, match="maxlen must be a positive int") as info:
        BoundedList(maxlen)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MemguardError)
    with pytest.raises(BoundedError):
        BoundedDict(maxlen)
    with pytest.raises(BoundedError):
        MetricsCollector(maxlen)


def test_bounded_list_drops_the_oldest_past_maxlen() -> None:
    items = BoundedList[int](3)
    for value in range(5):
        items.append(value)
    assert list(items) == [2, 3, 4]
    assert items == [2, 3, 4]
    assert len(items) == 3
    assert items[0] == 2
    assert items[-1] == 4
    assert items[1:] == [3, 4]
    assert items.dropped == 2
    assert items.maxlen == 3


def test_bounded_list_behaves_like_a_list() -> None:
    items = BoundedList(4, [1, 2, 3])
    items[0] = 10
    del items[1]
    assert items == [10, 3]
    items.insert(1, 7)
    assert items == [10, 7, 3]
    items.extend([8, 9])
    assert items == [7, 3, 8, 9]
    assert 8 in items
    assert items.index(8) == 2
    assert items.pop() == 9
    items.remove(3)
    assert items == [7, 8]
    items[0:1] = [1, 2, 3, 4]
    assert items == [2, 3, 4, 8]
    del items[:2]
    assert items == [4, 8]
    items.clear()
    assert items == []
    assert repr(BoundedList(2, "ab")) == "BoundedList(2, ['a', 'b'])"


def test_inserting_into_a_full_list_drops_index_zero() -> None:
    items = BoundedList(3, [1, 2, 3])
    items.insert(2, 99)
    assert items == [2, 99, 3]
    assert items.dropped == 1


def test_bounded_list_iteration_is_a_copy() -> None:
    items = BoundedList(5, [1, 2, 3])
    iterator: Iterator[int] = iter(items)
    items.append(4)
    assert list(iterator) == [1, 2, 3]


def test_bounded_list_holds_its_bound_under_threads() -> None:
    items = BoundedList[int](100)

    def work(index: int) -> None:
        for n in range(2_000):
            items.append(index * 10_000 + n)

    _hammer(work)
    assert len(items) == 100
    assert items.dropped == 8 * 2_000 - 100


def test_bounded_dict_drops_the_oldest_inserted_key() -> None:
    data = BoundedDict[str, int](2)
    data["a"] = 1
    data["b"] = 2
    data["a"] = 10  # an update keeps its place
    data["c"] = 3
    assert dict(data) == {"b": 2, "c": 3}
    assert "a" not in data
    assert data.dropped == 1
    assert data == {"b": 2, "c": 3}
    assert data.get("a") is None
    with pytest.raises(KeyError):
        data["a"]


def test_bounded_dict_behaves_like_a_dict() -> None:
    data = BoundedDict(3, [("x", 1), ("y", 2)])
    assert data.pop("x") == 1
    data.update(z=3, w=4)
    assert list(data) == ["y", "z", "w"]
    del data["y"]
    assert len(data) == 2
    data.setdefault("v", 5)
    assert list(data.items()) == [("z", 3), ("w", 4), ("v", 5)]
    data.clear()
    assert len(data) == 0
    assert repr(BoundedDict(1, [("k", 1)])) == "BoundedDict(1, {'k': 1})"


def test_bounded_dict_holds_its_bound_under_threads() -> None:
    data = BoundedDict[int, int](64)

    def work(index: int) -> None:
        for n in range(2_000):
            data[index * 10_000 + n] = n
            data.get(index * 10_000 + n - 1)

    _hammer(work)
    assert len(data) == 64
    assert data.dropped == 8 * 2_000 - 64


def test_metrics_summary_covers_the_kept_window() -> None:
    metrics = MetricsCollector(maxlen=3)
    for value in [100, 1, 2, 3]:
        metrics.record("latency", value)
    assert metrics.summary("latency") == {
        "count": 3,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
        "last": 3.0,
    }
    assert metrics.values("latency") == [1.0, 2.0, 3.0]
    assert metrics.summary("never") == {
        "count": 0,
        "min": None,
        "max": None,
        "mean": None,
        "last": None,
    }


def test_metrics_names_are_bounded_too() -> None:
    metrics = MetricsCollector(maxlen=2, max_names=2)
    metrics.record("a", 1)
    metrics.record("b", 1)
    metrics.record("a", 2)  # "a" is now the most recent
    metrics.record("c", 1)
    assert metrics.names() == ["a", "c"]
    assert set(metrics.summaries()) == {"a", "c"}
    metrics.clear("a")
    assert metrics.names() == ["c"]
    metrics.clear()
    assert metrics.names() == []


def test_metrics_collector_counts_right_under_threads() -> None:
    metrics = MetricsCollector(maxlen=10_000)

    def work(index: int) -> None:
        for _ in range(1_000):
            metrics.record("n", 1.0)

    _hammer(work)
    summary = metrics.summary("n")
    assert summary["count"] == 8_000
    assert summary["mean"] == 1.0


class _Settings(metaclass=SingletonMeta):
    created = 0

    def __init__(self, value: int = 0) -> None:
        type(self).created += 1
        for _ in range(20):
            time.sleep(0)  # yield the GIL: without the lock, racing threads would build more
        self.value = value


class _Child(_Settings):
    pass


@pytest.fixture
def fresh_singletons() -> Iterator[None]:
    SingletonMeta.reset(_Settings)
    SingletonMeta.reset(_Child)
    _Settings.created = 0
    yield
    SingletonMeta.reset(_Settings)
    SingletonMeta.reset(_Child)


@pytest.mark.usefixtures("fresh_singletons")
def test_a_singleton_class_has_one_instance() -> None:
    first = _Settings(1)
    second = _Settings(2)
    assert first is second
    assert second.value == 1
    assert _Settings.created == 1
    assert _Child() is not first
    assert _Child() is _Child()


@pytest.mark.usefixtures("fresh_singletons")
def test_reset_forgets_the_instance() -> None:
    first = _Settings(1)
    assert SingletonMeta.has_instance(_Settings)
    SingletonMeta.reset(_Settings)
    assert not SingletonMeta.has_instance(_Settings)
    second = _Settings(2)
    assert second is not first
    assert second.value == 2


@pytest.mark.usefixtures("fresh_singletons")
def test_singleton_creation_is_thread_safe() -> None:
    seen: list[_Settings] = []
    lock = threading.Lock()

    def make(index: int) -> None:
        instance = _Settings(index)
        with lock:
            seen.append(instance)

    _hammer(make)
    assert len(seen) == 8
    assert len({id(instance) for instance in seen}) == 1
    assert _Settings.created == 1


@pytest.mark.usefixtures("fresh_singletons")
def test_reset_all_forgets_every_instance() -> None:
    settings, child = _Settings(1), _Child()
    SingletonMeta.reset_all()
    assert not SingletonMeta.has_instance(_Settings)
    assert not SingletonMeta.has_instance(_Child)
    assert _Settings(2) is not settings
    assert _Settings(3).value == 2
    assert _Child() is not child


def test_maxlen_is_the_bound_given() -> None:
    assert BoundedList(3).maxlen == 3
    assert BoundedDict(4).maxlen == 4
    collector = MetricsCollector(5)
    assert collector.maxlen == 5
    for n in range(7):
        collector.record("x", n)
    assert len(collector.values("x")) == collector.maxlen
    assert MetricsCollector().maxlen == 1000


class _Model(AgentSingleton):
    setups: ClassVar[int] = 0

    def _setup(self, size: int = 1) -> None:
        type(self).setups += 1
        self.size = size


class _Tokenizer(_Model):
    pass


@pytest.fixture
def fresh_agents() -> Iterator[None]:
    for cls in (_Model, _Tokenizer):
        SingletonMeta.reset(cls)
        cls.setups = 0
    yield
    for cls in (_Model, _Tokenizer):
        SingletonMeta.reset(cls)


@pytest.mark.usefixtures("fresh_agents")
def test_agent_singleton_sets_up_once_per_class_with_statistics() -> None:
    results: list[_Model] = []
    _hammer(lambda index: results.append(_Model(index + 10)))
    assert len({id(model) for model in results}) == 1
    assert _Model.setups == 1
    assert _Model(99).size == results[0].size  # later arguments are ignored
    tokenizer = _Tokenizer(2)
    assert tokenizer is not results[0]
    assert (tokenizer.size, _Tokenizer.setups) == (2, 1)
    stats = AgentSingleton.instance_stats()
    model = stats["classes"][f"{__name__}._Model"]
    assert model["calls"] >= 9  # eight threads and one more call, since the module loaded
    assert model["setup_seconds"] >= 0
    assert model["created_at"] > 1_700_000_000
    assert stats["classes"][f"{__name__}._Tokenizer"]["calls"] >= 1
    assert stats["instances"] >= 2
    SingletonMeta.reset(_Tokenizer)
    assert f"{__name__}._Tokenizer" not in AgentSingleton.instance_stats()["classes"]
