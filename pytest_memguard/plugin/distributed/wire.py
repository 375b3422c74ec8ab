"""What memguard sends between the xdist controller and its workers, and how.

One wire type for a test's result: :func:`encode_result`'s JSON text, on the test's
teardown report (a worker's) or on the stand-in report of a test whose worker crashed
(the controller's own).  One string crosses execnet faster than a dict of a score of
keys, which it would walk key by key; and the text is a positional array, not the
report's entry: the controller decodes one a test, for every test of the run, in the one
thread that handles every report of every worker, and an array of the fields in
:class:`TestMemory`'s own order is built into one with a single call, without a key
looked up a field.  Worker and controller run one memguard: the order needs no version.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ...core.sites import Site
from ...reporting.results import NO_BUDGET, Budget, TestMemory, to_microsecond

__all__ = [
    "DIR_KEY",
    "ENTRY_KEY",
    "OUTPUT_KEY",
    "RECYCLE_KEY",
    "decode_result",
    "encode_result",
]

#: ``node.workerinput`` key: the xdist controller's work folder, where workers log.
DIR_KEY: Final = "memguard_dir"
#: Report attribute: the test's result (:func:`encode_result`).
ENTRY_KEY: Final = "memguard"
#: ``config.workeroutput`` key: the worker's summary, sent on a clean finish.
OUTPUT_KEY: Final = "memguard"
#: ``node.workerinput`` key: whether a worker may recycle itself (its scheduler requeues);
#: and the report attribute that says why the worker ends after this test.
RECYCLE_KEY: Final = "memguard_recycle"

_encode: Final = json.JSONEncoder(separators=(",", ":")).encode
_decode: Final = json.JSONDecoder().decode


def encode_result(result: TestMemory) -> str:
    """``result`` as it travels on a report: its fields in :class:`TestMemory`'s order,
    rounded as the report writes them; the budget, the sites and ``beside`` as arrays
    (empty ones as ``null``)."""
    budget = result.budget
    sites = result.sites
    started = result.started
    return _encode(
        [
            result.nodeid,
            result.outcome,
            result.status,
            result.worker,
            to_microsecond(result.duration_s),
            result.rss_start,
            result.rss_end,
            result.rss_peak,
            result.peak_delta,
            result.heap_peak,
            result.leaked,
            [budget.peak, budget.leak, budget.heap, budget.rss] if budget else None,
            result.children_peak,
            result.prediction,
            list(result.beside) if result.beside else None,
            [[s.file, s.line, s.size, s.count] for s in sites] if sites else None,
            result.message,
            result.reruns,
            dict(result.leak_check) if result.leak_check is not None else None,
            None if started is None else int(started * 1000 + 0.5) / 1000,
        ]
    )


def decode_result(text: str) -> TestMemory:
    """The result :func:`encode_result` sent."""
    fields: list[Any] = _decode(text)
    budget, beside, sites = fields[11], fields[14], fields[15]
    fields[11] = NO_BUDGET if budget is None else Budget(*budget)
    fields[14] = () if beside is None else tuple(beside)
    fields[15] = () if sites is None else tuple(Site(*site) for site in sites)
    return TestMemory(*fields)
