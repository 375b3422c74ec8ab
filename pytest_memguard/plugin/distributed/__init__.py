"""pytest-xdist support, registered only when pytest-xdist is loaded (it imports none of it).

Split by role, as pytest-xdist splits its own:

- :mod:`.worker`: in a worker, every test runs under the same guard as in one process
  (:mod:`..hooks`); each result rides on its test's teardown report, the worker's summary
  on ``workeroutput``, and :class:`.worker.Recycler` replaces a worker grown too large;
- :mod:`.controller`: on the controller, no test runs; it merges the workers' results,
  names the test a dead worker was running, and writes the one report;
- :mod:`.watch`: the controller's thread that watches every worker's RSS from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from ..context import RunContext, RunLog
    from ..settings import Settings
    from .controller import Controller

__all__ = ["CONTROLLER_NAME", "check_packable", "make_controller", "worker_sides"]

CONTROLLER_NAME: Final = "memguard-xdist"
WORKER_NAME: Final = "memguard-xdist-worker"
RECYCLER_NAME: Final = "memguard-recycle"


def worker_sides(
    config: pytest.Config, context: RunContext, reader: Callable[[], int]
) -> list[tuple[str, object]]:
    """The plugin objects of an xdist worker (with their names).

    :param reader: the plugin's RSS reader
    """
    from .wire import RECYCLE_KEY
    from .worker import Recycler, WorkerSide

    sides: list[tuple[str, object]] = [(WORKER_NAME, WorkerSide(context))]
    recycle = context.settings.recycle
    if recycle is not None and getattr(config, "workerinput", {}).get(RECYCLE_KEY):
        source = context.settings.source("recycle")
        sides.append((RECYCLER_NAME, Recycler(context.log, reader, recycle, source)))
    return sides


def make_controller(
    config: pytest.Config,
    settings: Settings,
    log: RunLog,
    work_dir: Path,
    memory_total: int,
    say: Callable[[str], None],
) -> Controller:
    """The xdist controller's side (``--memguard-pack``: a usage error when the run
    cannot be packed; the history read)."""
    from .controller import Controller

    history = None
    if settings.pack:
        from ..peakcache import load_history

        check_packable(config)
        history = load_history(config, settings, log.notices)
    controller = Controller(
        settings,
        log,
        work_dir,
        memory_total,
        dist=str(getattr(config.option, "dist", "no")),
        say=say,
        history=history,
    )
    if settings.ledger:
        from ...probe.system import read_system_memory
        from ..gate import memory_domain, open_ledger

        controller.ledger = open_ledger(log)
        controller.domain = memory_domain(read_system_memory())
    return controller


def check_packable(config: pytest.Config) -> None:
    """``--memguard-pack`` packs local workers of ``--dist load``: a usage error else."""
    mode = config.option.dist
    if mode != "load":
        raise pytest.UsageError(
            f"--memguard-pack schedules --dist load (the default of -n), not --dist {mode}:"
            " the other modes send tests by group, not one by one"
        )
    import execnet

    specs = config.getoption("tx") or ()
    remote = [spec for spec in specs if not execnet.XSpec(spec.split("*", 1)[-1]).popen]
    if remote:
        raise pytest.UsageError(
            f"--memguard-pack packs local workers only (-n N or --tx popen), not {remote[0]!r}"
        )
