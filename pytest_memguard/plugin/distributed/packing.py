"""``--memguard-pack``: an xdist scheduler that sends tests to workers so that the
predicted peaks of the tests that may run at once fit the aggregate limit together.

How a worker runs its queue decides the model.  An xdist worker runs a test only once it
knows the test after it (its teardown depends on the next one) or is told to shut down:
of a worker's queue, every test but the last may run now; the last is *parked* until
another test is sent after it, or the worker is shut down.  So:

- a worker's *reservation* is its RSS outside tests (its *base*) plus the largest
  prediction among the tests it may run now: its tests run one after the other, so only
  the largest counts;
- sending a worker one more test lets its parked test run: that is allowed only when
  the reservations of all workers, with that test's prediction, stay within the limit.
  A test whose prediction fits nowhere stays parked (or pending) until tests end and
  their reservations go;
- when no worker may run anything, the next test may run whatever its prediction: a
  test too large for the limit even alone runs alone (it is named at the start).

With the ledger of guarded runs (``--memguard-ledger``, on with packing), a heavy test
(one that needs more than a worker's fair share) is let run only when it fits the limit
less what the other runs on the machine hold and reserve (``outside``, read when such a
decision is made).  The controller hears nothing when another run frees memory: the
worker's own gate (:mod:`..gate`) is what makes a heavy test wait; the scheduler only
prefers what fits, and sends a test anyway when nothing of its run runs.

Light tests still go out in batches, as xdist's ``load`` scheduler sends them, so a
suite of small tests keeps its throughput; a test that needs more than a worker's fair
share of the limit goes only to a worker with at most one test ahead of it, so that its
reservation is not held while a batch runs before it.  The predictions come from the
history of measured peaks (:mod:`pytest_memguard.reporting.history`); a test without one is
predicted at the history's median.

No import of xdist: the scheduler is duck-typed to its ``Scheduling`` protocol, and it
has every attribute xdist's ``LoadScheduling`` offers other plugins (``config``,
``numnodes``, ``node2collection``, ``log``, ``maxschedchunk``, ``check_schedule``...):
pytest-rerunfailures, for one, reads ``sched.config`` and calls
``sched.mark_test_pending`` when a worker crashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...core.sizes import format_size
from ...reporting.history import PeakHistory

if TYPE_CHECKING:
    import pytest

__all__ = ["PackScheduling"]

#: Workers are told to run tests in batches of at most this many at a time.
_MAX_BATCH = 512


def _worker_id(node: Any) -> str:
    return str(node.workerinput["workerid"])


class PackScheduling:
    """The scheduler of ``--memguard-pack`` (``--dist load`` only; see the module).

    :param config: the controller's config (plugins read ``sched.config`` in xdist's hooks);
        ``--maxschedchunk``, when given, bounds a batch as it bounds ``load``'s
    :param numnodes: how many workers take part (their collections are awaited)
    :param history: the measured peaks the predictions come from
    :param limit: bytes all workers may use together
    :param base: a worker's RSS outside tests, by worker id (0: not known yet)
    :param say: called with the lines that tell people how the tests were packed
    :param log: xdist's log producer (called with words, like print)
    :param outside: bytes other guarded runs on the machine hold and reserve (the ledger)
    """

    def __init__(
        self,
        config: pytest.Config,
        numnodes: int,
        history: PeakHistory,
        limit: int,
        base: Callable[[str], int],
        say: Callable[[str], None],
        log: Callable[..., None] | None = None,
        *,
        outside: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.numnodes = numnodes
        #: At most this many tests are sent to a worker at once (None: no bound but ours).
        self.maxschedchunk: int | None = config.getoption("maxschedchunk", None)
        self.history = history
        self.limit = limit
        self.base = base
        self.say = say
        self.log = log or (lambda *args: None)
        self.outside = outside
        #: What other runs held when this round of sending read it (None: not yet read).
        self._held_outside: int | None = None
        self.node2collection: dict[Any, list[str]] = {}
        self.node2pending: dict[Any, list[int]] = {}
        self.pending: list[int] = []
        self.collection: list[str] | None = None
        #: The predicted peak of each test of the collection, by index.
        self.predictions: list[int] = []
        self.default_estimate = history.default_estimate()
        self._index: dict[str, int] = {}

    # -- xdist's Scheduling protocol ------------------------------------------------------

    @property
    def nodes(self) -> list[Any]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.pending:
            return False
        # A worker with a parked test must first be let run it (shut down) by us.
        return all(not queue or node.shutting_down for node, queue in self.node2pending.items())

    @property
    def has_pending(self) -> bool:
        return bool(self.pending) or any(self.node2pending.values())

    def add_node(self, node: Any) -> None:
        self.node2pending[node] = []

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        if self.collection is not None and list(collection) != self.collection:
            self.log(f"{_worker_id(node)} collected other tests than the first workers")
            return
        self.node2collection[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        self.node2pending[node].remove(item_index)
        self._refill_all(first=node)

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        """Send tests where the limit allows, to ``node`` first (``load``'s name for it)."""
        self._refill_all(first=node)

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.pending.insert(0, self._index[item])
        self._refill_all()

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        """A worker gave tests back (xdist's answer to a steal, which this scheduler never
        sends): they are pending again, first."""
        queue = self.node2pending[node]
        returned = [index for index in indices if index in queue]
        for index in returned:
            queue.remove(index)
        self.pending[:0] = returned
        self._refill_all()

    def remove_node(self, node: Any) -> str | None:
        queue = self.node2pending.pop(node)
        if not queue:
            return None
        assert self.collection is not None
        crashed = self.collection[queue.pop(0)]
        self.pending[:0] = queue  # the tests queued behind it run next, elsewhere
        self._refill_all()
        return crashed

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            collections = list(self.node2collection.values())
            if any(other != collections[0] for other in collections[1:]):
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = collections[0]
            self.predictions = [self.predict(nodeid) for nodeid in self.collection]
            self._index = {nodeid: index for index, nodeid in enumerate(self.collection)}
            self.pending = list(range(len(self.collection)))
            self._announce()
        self._refill_all()

    # -- predictions ----------------------------------------------------------------------

    def predict(self, nodeid: str) -> int:
        """The predicted peak of a test: its history's, else the default estimate."""
        peak = self.history.get(nodeid)
        return peak.total if peak is not None else self.default_estimate

    def prediction_of(self, nodeid: str) -> int | None:
        """The prediction a collected test was scheduled with (None: not collected)."""
        index = self._index.get(nodeid)
        return self.predictions[index] if index is not None else None

    def expected(self, worker: str) -> int | None:
        """The RSS a worker is expected to have now: its base and the prediction of the
        test it runs (None: it is not one of ours)."""
        for node, queue in list(self.node2pending.items()):
            if _worker_id(node) == worker:
                running = queue[:1] if self._runnable(node, queue) else []
                return self.base(worker) + sum(self.predictions[i] for i in running)
        return None

    def _announce(self) -> None:
        collection = self.collection or []
        known = sum(1 for nodeid in collection if nodeid in self.history)
        bases = self._bases()
        lines = [
            f"memguard: pack: {known} of {len(collection)} test(s) have a measured peak"
            f" ({self.history.source or 'no history'}); without one:"
            f" {format_size(self.default_estimate)} (the median); limit"
            f" {format_size(self.limit)} for {len(self.node2pending)} worker(s)"
        ]
        by_size = sorted(range(len(collection)), key=lambda i: -self.predictions[i])
        if by_size and self.predictions[by_size[0]] > 0:
            named = ", ".join(
                f"{collection[i]} {format_size(self.predictions[i])}" for i in by_size[:3]
            )
            lines.append(f"memguard: pack: the largest predictions: {named}")
        for index in by_size:
            if bases + self.predictions[index] <= self.limit:
                break  # the rest are smaller
            lines.append(
                f"memguard: pack: {collection[index]} (predicted"
                f" {format_size(self.predictions[index])}) does not fit the limit"
                f" {format_size(self.limit)} beside the workers' own"
                f" {format_size(bases)}: it runs alone"
            )
        for line in lines:
            self.say(line)

    # -- sending tests ---------------------------------------------------------------------

    @staticmethod
    def _runnable(node: Any, queue: list[int]) -> list[int]:
        """The tests of a worker's queue that it may run now (all but the parked last,
        unless it was told to shut down)."""
        return queue if node.shutting_down else queue[:-1]

    def _bases(self) -> int:
        return sum(self.base(_worker_id(node)) for node in self.node2pending)

    def _reserved(self, node: Any) -> int:
        """What a worker's runnable tests may add to its base: the largest prediction."""
        runnable = self._runnable(node, self.node2pending[node])
        return max((self.predictions[i] for i in runnable), default=0)

    def _refill_all(self, first: Any = None) -> None:
        if self.collection is None:
            return
        self._held_outside = None  # read again, if a heavy test is to be decided
        nodes = self.nodes
        if first in self.node2pending:
            nodes.remove(first)
            nodes.insert(0, first)
        # Again while it moves: a worker given one test in a round gets its next (which
        # lets the first run) or is shut down in the next.
        while any([self._refill(node) for node in nodes]):
            pass

    def _refill(self, node: Any) -> bool:
        """Send a worker tests while it has few, and let its parked test run when the
        limit allows; whether anything was sent (or the worker shut down)."""
        if node.shutting_down:
            return False
        queue = self.node2pending[node]
        share = len(self.pending) // max(1, len(self.node2pending))
        if self.pending and len(queue) >= max(2, share // 4):
            return False  # enough to do: the common case, decided without adding anything up
        others = [other for other in self.node2pending if other is not node]
        elsewhere = sum(self.base(_worker_id(o)) + self._reserved(o) for o in others)
        busy_elsewhere = any(self._runnable(o, self.node2pending[o]) for o in others)
        base = self.base(_worker_id(node))
        reserved = self._reserved(node)
        fair = max(0, self.limit - self._bases()) // max(1, len(self.node2pending))

        def may_run(index: int) -> bool:
            if not busy_elsewhere and not self._runnable(node, queue):
                return True  # nothing runs anywhere: it runs, alone if it must
            need = elsewhere + base + max(reserved, self.predictions[index])
            if self.predictions[index] > fair:  # a heavy test: the other runs count
                need += self.held_outside()
            return need <= self.limit

        if not self.pending:
            if not queue or may_run(queue[-1]):
                node.shutdown()  # its parked test (if any) runs now
                return True
            return False
        if not queue and len(self.pending) < 2 * len(self.node2pending):
            wanted = 1  # few tests: one to each worker first, as xdist's load sends them
        else:
            wanted = max(2, min(self.maxschedchunk or _MAX_BATCH, _MAX_BATCH, share // 2))
        sent: list[int] = []
        while self.pending and len(queue) < wanted:
            if queue and not may_run(queue[-1]):
                break
            if queue:
                reserved = max(reserved, self.predictions[queue[-1]])
            pick = self._pick(may_run, heavy_ok=len(queue) <= 1, fair=fair)
            self.pending.remove(pick)
            queue.append(pick)
            sent.append(pick)
        if sent:
            node.send_runtest_some(sent)
        return bool(sent)

    def held_outside(self) -> int:
        """What the other guarded runs hold and reserve, read once a round (0 without
        the ledger)."""
        if self.outside is None:
            return 0
        if self._held_outside is None:
            self._held_outside = self.outside()
        return self._held_outside

    def _pick(self, may_run: Callable[[int], bool], heavy_ok: bool, fair: int) -> int:
        """The next test to send: the first pending one that may run where it is sent
        (a heavy one only to a worker with at most one test ahead of it), else the first
        pending one (it waits, parked, for room)."""
        for index in self.pending:
            if (heavy_ok or self.predictions[index] <= fair) and may_run(index):
                return index
        return self.pending[0]
