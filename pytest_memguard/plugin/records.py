"""Where a guarded run keeps its crash-proof records (:mod:`..crashlog`), and their end.

The folder is ``--memguard-records DIR`` (ini ``memguard_records``, env
``MEMGUARD_RECORDS``); by default it is beside the JSON report and named after it
(``memguard.records`` for ``memguard.json``), so that a CI step finds it after a killed
job; without a JSON report, a temporary folder.  Records an earlier run left there are
removed when a run starts (as its stale report is).  A run that writes its report
removes its records; a run killed first leaves them for ``memguard recover DIR``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Final

import pytest

from .settings import Settings

__all__ = ["RECORDS_SUFFIX", "Records", "records_folder"]

#: The default folder's name: the JSON report's, with this suffix instead of its own.
RECORDS_SUFFIX: Final = ".records"


class Records:
    """The records folder of a run that owns it (a single process, the xdist controller)."""

    def __init__(self, folder: Path, temporary: bool) -> None:
        self.folder = folder
        #: True for a temporary folder, removed whole; a named one loses only our files.
        self.temporary = temporary

    def remove(self) -> None:
        """Remove the records (the report has them now, or there is nothing to keep)."""
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for path in self.folder.glob("*.jsonl"):
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when nothing else is in it


def records_folder(settings: Settings) -> Records:
    """The run's records folder, made and emptied of an earlier run's records;
    ``UsageError`` when it cannot be made."""
    folder = settings.records
    source = settings.source("records")
    if folder is None and settings.json_path is not None:
        folder = settings.json_path.with_suffix(RECORDS_SUFFIX)
        source = f"the records folder beside {settings.source('json')}"
    if folder is None:
        return Records(Path(tempfile.mkdtemp(prefix="pytest-memguard-")), temporary=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.jsonl"):
            stale.unlink()
    except OSError as error:
        raise pytest.UsageError(
            f"{source}: cannot keep the records in {str(folder)!r} ({error.strerror or error})"
        ) from None
    return Records(folder, temporary=False)
