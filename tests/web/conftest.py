"""Fixtures of the web tests: a uvicorn server in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``tests.web.app:app`` under uvicorn in a subprocess, stopped after the module."""
    log = tmp_path_factory.mktemp("uvicorn") / "stderr.log"
    served = start_server("tests.web.app:app", log)
    try:
        yield served
    finally:
        served.stop()
