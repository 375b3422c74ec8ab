from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_memguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the MEMGUARD_* variables they need; the caller's must not leak in."""
    for name in list(os.environ):
        if name == "MEMGUARD" or name.startswith("MEMGUARD_"):
            monkeypatch.delenv(name)
