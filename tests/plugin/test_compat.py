"""Canaries: one for each private pytest, pluggy and pytest-xdist internal memguard needs
(pytest_memguard/plugin/compat.py), checked on the versions at hand, so that a release
that removes or changes one fails here first (run on every cell of noxfile.py).  Each
failure message names the internal and what memguard loses without it."""

from __future__ import annotations

import inspect
from types import CodeType
from typing import Any

import pytest

from pytest_memguard.plugin import compat


def _gone(internal: str, loss: str) -> str:
    return f"pytest {pytest.__version__}: {internal} moved or changed; {loss}"


def test_the_status_word_is_shown_as_this_pytest_takes_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memory_budget("1 MB")
        def test_over():
            data = bytearray(30_000_000)
        """
    )
    result = pytester.runpytest_subprocess("--memguard", "-p", "no:cacheprovider", "-rf")
    result.stdout.fnmatch_lines(["MEMORY test_the_status*::test_over - *"])
    assert "('MEMORY'" not in result.stdout.str()
    assert compat.STATUS_MARKUP is (pytest.version_tuple >= (8,))


def test_pytests_runner_plugin_implements_each_phase(pytester: pytest.Pytester) -> None:
    phases = compat.runner_phases(pytester.parseconfigure())
    for name, function in zip(("setup", "call", "teardown"), phases, strict=True):
        assert inspect.isfunction(function), _gone(
            f"the runner plugin's pytest_runtest_{name} (HookImpl.function)",
            "the guard interrupts anywhere in a phase and leak suspects are not run again",
        )
        assert function.__module__ == "_pytest.runner"


def test_the_runners_phases_have_code_the_guard_can_recognise(pytester: pytest.Pytester) -> None:
    for function in compat.runner_phases(pytester.parseconfigure()):
        assert isinstance(compat.code_of(function), CodeType), _gone(
            "the runner's phase functions' __code__",
            "the guard interrupts anywhere in a phase",
        )
    assert compat.code_of(len) is None


def test_a_collector_as_next_item_tears_down_the_function_scope_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_memguard.plugin import compat

        torn_down = []

        @pytest.fixture(scope="module")
        def module_scoped():
            yield
            torn_down.append("module")

        @pytest.fixture
        def function_scoped():
            yield
            torn_down.append("function")

        def test_one(request, module_scoped, function_scoped):
            teardown = compat.runner_phases(request.config)[2]
            compat.tear_down_function_scope(teardown, request.node)
            assert torn_down == ["function"]

        def test_two(module_scoped):
            assert torn_down == ["function"]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, _gone(
        "SetupState.teardown_exact(nextitem) with a collector",
        "a leak suspect's function fixtures cannot be torn down alone",
    )
    result.assert_outcomes(passed=2)


def test_an_item_can_renew_its_fixture_request(pytester: pytest.Pytester) -> None:
    item = pytester.getitem("def test_func(): pass")
    assert compat.renew_request(item), _gone(
        "Function._initrequest", "a leak suspect cannot be run again"
    )


def test_a_unittest_item_keeps_its_failures_for_its_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import unittest

        class T(unittest.TestCase):
            def test_fails(self):
                self.fail("kept")
        """
    )
    seen: list[Any] = []

    class Recorder:
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(self, item: pytest.Item) -> Any:
            try:
                return (yield)
            finally:
                kept = compat.unittest_failures(item)
                seen.append([str(info.value) for info in kept] if kept is not None else None)

    pytester.inline_run("-p", "no:cacheprovider", plugins=[Recorder()])
    assert seen == [["kept"]], _gone(
        "TestCaseFunction._excinfo",
        "a unittest suspect's failures on its rerun reach the test's report",
    )


def test_a_doctest_item_has_the_namespace_its_run_clears(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        '''
        def double(n):
            """
            >>> double(2)
            4
            """
            return n * 2

        def test_plain():
            pass
        '''
    )
    items, _ = pytester.inline_genitems("--doctest-modules", "-p", "no:cacheprovider")
    found = {type(item).__name__: compat.doctest_globals(item) for item in items}
    assert isinstance(found["DoctestItem"], dict), _gone(
        "DoctestItem.dtest.globs", "a doctest suspect's reruns find its names gone"
    )
    assert found["Function"] is None


def test_a_session_hands_out_hook_relays_per_path(pytester: pytest.Pytester) -> None:
    item = pytester.getitem("def test_func(): pass")
    relay = item.ihook
    wrapped: list[Any] = []

    def wrap(inner: Any) -> Any:
        wrapped.append(inner)
        return "relayed"

    with compat.hooks_relayed(item.session, wrap):
        relayed: object = item.ihook
        assert relayed == "relayed", _gone(
            "Node.ihook through Session.gethookproxy", "a leak suspect's rerun is reported"
        )
    assert wrapped
    assert wrapped[0].pytest_runtest_logreport == relay.pytest_runtest_logreport
    assert "gethookproxy" not in vars(item.session)


def test_one_hook_implementation_is_called_with_the_arguments_it_names(
    pytester: pytest.Pytester,
) -> None:
    class Answers:
        def pytest_memguard_report(self, report: dict[str, Any]) -> dict[str, Any]:
            return {"seen": report["n"]}

    config = pytester.parseconfigure()
    config.pluginmanager.register(Answers(), "answers")
    (impl,) = [
        impl
        for impl in config.hook.pytest_memguard_report.get_hookimpls()
        if impl.plugin_name == "answers"
    ]
    answer = compat.call_hookimpl(impl, {"config": config, "report": {"n": 1}})
    assert answer == {"seen": 1}, "pluggy: HookImpl.function or .argnames moved or changed"


def test_pytests_log_capture_handlers_are_found_while_a_test_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import logging
        from pytest_memguard.plugin import compat

        def test_logs(caplog):
            logging.getLogger().warning("kept")
            handlers = compat.log_capture_handlers()
            assert caplog.handler in handlers
            assert all(["kept" in str(h.records) for h in handlers])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, _gone(
        "the log capture handlers (_pytest.logging, a records list)",
        "a leak check charges pytest's log records to the test",
    )


def test_the_capture_manager_reads_and_resets_the_global_capture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import sys
        from pytest_memguard.plugin import compat

        def test_prints(request):
            read = compat.global_capture_reader(request.config)
            print("first")
            sys.stderr.write("error")
            out, err = read()
            assert "first" in out and "error" in err
            assert read() == ("", "")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, _gone(
        "CaptureManager.read_global_capture",
        "a leak suspect's rerun output reaches the test's report",
    )


def test_xdist_tells_how_many_workers_it_starts(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    config = pytester.parseconfig("--tx", "3*popen")
    assert compat.xdist_worker_count(config) == 3, (
        "pytest-xdist: parse_tx_spec_config moved or changed; -n auto and packing are wrong"
    )


def test_xdist_names_the_worker_of_a_crashed_tests_report(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(
        """
        from pytest_memguard.plugin import compat

        def pytest_handlecrashitem(crashitem, report, sched):
            with open("crashed-on", "w") as out:
                out.write(str(compat.worker_id_of_report(report)))
        """
    )
    pytester.makepyfile(
        """
        import os

        def test_crashes():
            os._exit(1)
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")
    crashed_on = pytester.path / "crashed-on"
    assert crashed_on.exists(), "pytest-xdist: pytest_handlecrashitem was not called"
    assert crashed_on.read_text() == "gw0", (
        "pytest-xdist: report.node.workerinput moved or changed; a crash is not"
        " matched with its worker"
    )
    local = pytest.TestReport("t.py::t", ("t.py", 0, "t"), {}, "passed", None, "call")
    assert compat.worker_id_of_report(local) is None


def test_the_config_keeps_its_root_folder_where_memguard_looks(
    pytester: pytest.Pytester,
) -> None:
    config = pytester.parseconfig()
    assert compat.can_resettle_root(config), _gone(
        f"one of the config's {', '.join(compat.ROOT_ATTRIBUTES)}",
        "--memguard-json PATH (space form) may settle the wrong root folder",
    )
    assert hasattr(config, "_inicfg") or hasattr(config, "inicfg")


def test_the_root_folder_is_settled_by_determine_setup(pytester: pytest.Pytester) -> None:
    elsewhere = pytester.mkdir("elsewhere")
    (elsewhere / "pytest.ini").write_text("[pytest]\naddopts = -q\n")
    config = pytester.parseconfig()
    setup = compat.root_setup(config, [str(elsewhere)])
    assert setup is not None, _gone(
        "_pytest.config.findpaths.determine_setup",
        "--memguard-json PATH (space form) may settle the wrong root folder",
    )
    assert (setup.rootpath, setup.inipath) == (elsewhere, elsewhere / "pytest.ini")


def test_a_settled_root_folder_is_put_in_place(pytester: pytest.Pytester) -> None:
    elsewhere = pytester.mkdir("elsewhere")
    (elsewhere / "pytest.ini").write_text("[pytest]\naddopts = -q\n")
    config = pytester.parseconfig()
    setup = compat.root_setup(config, [str(elsewhere)])
    assert setup is not None
    compat.put_root(config, setup)
    compat.reparse_initial_args(config, ["--co"], elsewhere)
    found = (config.rootpath, config.inipath, config.getini("addopts"))
    assert found == (elsewhere, elsewhere / "pytest.ini", ["-q"]), _gone(
        "the config's root folder attributes", "--memguard-json PATH may not be followed"
    )
    namespace = config.known_args_namespace
    assert (namespace.collectonly, namespace.confcutdir) == (True, str(elsewhere))
