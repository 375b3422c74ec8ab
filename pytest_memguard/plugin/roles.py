"""What this process is in a guarded run, decided once when the guard starts: an xdist
worker, the controller, or the one process; and which of memguard's plugins it needs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

import pytest

__all__ = ["Roles"]


class Roles(NamedTuple):
    """What this process is in the run, and which of memguard's plugins it needs:
    decided once, when the guard starts."""

    #: An xdist worker (its controller writes the report).
    worker: bool
    #: The xdist controller (it runs no test).
    controller: bool
    #: pytest-html writes a report here: memguard's columns in it.
    html: bool
    #: ``--junitxml``: each test's figures as JUnit properties.
    junit: bool
    #: GitHub Actions: annotations and the job summary (never in a worker).
    github: bool

    @classmethod
    def of(cls, config: pytest.Config, environ: Mapping[str, str] = os.environ) -> Roles:
        worker = hasattr(config, "workerinput")
        has_xdist = config.pluginmanager.hasplugin("xdist")
        controller = not worker and has_xdist and getattr(config.option, "dist", "no") != "no"
        return cls(
            worker=worker and has_xdist,
            controller=controller,
            html=not worker
            and config.pluginmanager.hasplugin("html")
            and bool(config.getoption("htmlpath", None)),
            junit=bool(config.getoption("xmlpath", None)),
            github=not worker and environ.get("GITHUB_ACTIONS", "").strip().lower() == "true",
        )
