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

from typing import Final

import pytest

from ..context import Run

__all__ = ["check_packable", "register", "unregister"]

PLUGIN_NAME: Final = "memguard-xdist"


def register(config: pytest.Config, run: Run, reader: object) -> None:
    """Register the worker or the controller side (called only when xdist is loaded).

    :param reader: the plugin's RSS reader (a callable returning bytes)
    """
    manager = config.pluginmanager
    if hasattr(config, "workerinput"):
        from .worker import RECYCLE_KEY, RECYCLER_NAME, Recycler, WorkerSide

        manager.register(WorkerSide(run), PLUGIN_NAME)
        recycle = run.settings.recycle
        if recycle is not None and config.workerinput.get(RECYCLE_KEY):
            assert callable(reader)
            recycler = Recycler(run, reader, recycle, run.settings.source("recycle"))
            manager.register(recycler, RECYCLER_NAME)
    elif getattr(config.option, "dist", "no") != "no":
        from .controller import Controller

        packer = None
        if run.settings.pack:
            from ..peakcache import load_history

            check_packable(config)
            packer = load_history(config, run.settings, run.notices)
        run.controller = Controller(run, packer)
        manager.register(run.controller, PLUGIN_NAME)


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


def unregister(config: pytest.Config) -> None:
    """Undo :func:`register`."""
    from .controller import RECYCLED_STATUS_NAME
    from .worker import RECYCLER_NAME

    for name in (PLUGIN_NAME, RECYCLER_NAME, RECYCLED_STATUS_NAME):
        side = config.pluginmanager.get_plugin(name)
        if side is not None:
            config.pluginmanager.unregister(side, name)
