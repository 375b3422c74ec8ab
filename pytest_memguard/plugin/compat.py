"""What differs between the pytest and pytest-xdist versions memguard supports.

Each name here stands for one thing a version changed, with the versions it was
checked on (pytest 7.4, 8.x and 9.x; pytest-xdist 3.5 and 3.8); tests/plugin/test_compat.py
has a canary for each, run on every cell of the version matrix (noxfile.py), so that a
release that moves one fails loudly there rather than quietly in a user's run.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

__all__ = ["STATUS_MARKUP", "xdist_worker_count"]

#: pytest 8 shows a status word with its markup (``("MEMORY", {"red": True})``) in the
#: short test summary; pytest 7 prints the tuple as it is, so it gets the word alone.
STATUS_MARKUP: Final = pytest.version_tuple >= (8,)


def xdist_worker_count(config: pytest.Config) -> int:
    """How many workers xdist starts for this run (``-n N`` or ``--tx`` specs).

    xdist 3.6 renamed the function that reads them: ``parse_tx_spec_config``, before it
    ``parse_spec_config``.
    """
    from xdist import workermanage  # type: ignore[import-untyped]

    parse: Any = getattr(workermanage, "parse_tx_spec_config", None)
    if parse is None:  # xdist before 3.6
        parse = workermanage.parse_spec_config
    return len(parse(config))
