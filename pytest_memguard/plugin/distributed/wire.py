"""What memguard sends between the xdist controller and its workers, and how.

One wire type for a test's result: :func:`encode_result`'s JSON text of the report
entry, on the test's teardown report (a worker's) or on the stand-in report of a test
whose worker crashed (the controller's own).  One string crosses execnet faster than a
dict of a score of keys, which it would walk key by key.
"""

from __future__ import annotations

import json
from typing import Final

from ...reporting.results import TestMemory

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


def encode_result(result: TestMemory) -> str:
    """``result`` as it travels on a report."""
    return json.dumps(result.to_json())


def decode_result(text: str) -> TestMemory:
    """The result :func:`encode_result` sent."""
    return TestMemory.from_json(json.loads(text))
