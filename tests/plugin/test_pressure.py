"""When the process passes its critical threshold, the run frees memory between tests."""

from __future__ import annotations

import pytest

from .conftest import InnerSession


def test_critical_runs_the_pressure_hook_the_services_and_gc(
    pytester: pytest.Pytester, run: InnerSession
) -> None:
    pytester.makeconftest(
        """
        CACHE = {}

        def pytest_memguard_pressure(config, level):
            freed = sum(len(value) for value in CACHE.values())
            CACHE.clear()
            print(f"pressure hook at {level}")
            return freed
        """
    )
    pytester.makepyfile(
        """
        import conftest
        from pytest_memguard import BoundedCache, get_cache_manager

        def test_fills_caches():
            conftest.CACHE["big"] = bytearray(60_000_000)
            cache = get_cache_manager().create_cache("service", max_memory="200 MB")
            for i in range(20):
                cache.set(i, bytes(1_000_000))

        def test_after():
            assert conftest.CACHE == {}, "the hook dropped the conftest's cache"
            cache = get_cache_manager().get_cache("service")
            assert len(cache) <= 5, "the library's caches were told to shed entries"
        """
    )
    # Critical just above the start of the run: the first test passes it.
    result, report = run(
        "--memguard-warn=1MB", "--memguard-critical=2MB", "--memguard-max=4GB", "-s"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*pressure hook at critical*",
            "memguard: memory is tight (the process passed its critical threshold); freed *"
            " after test_critical_runs_the_pressure_hook_the_services_and_gc.py::test_fills_caches"
            " (pytest_memguard_pressure 57.2 MiB, services *, gc *)",
        ]
    )
    (event,) = report["pressure"]
    assert event["trigger"] == "the process passed its critical threshold"
    assert event["freed"]["pytest_memguard_pressure"] == 60_000_000
    assert event["freed"]["services"] > 0
    assert set(event["freed"]) == {"pytest_memguard_pressure", "services", "gc"}


def test_no_pressure_no_cleanup(pytester: pytest.Pytester, run: InnerSession) -> None:
    pytester.makeconftest(
        """
        def pytest_memguard_pressure(config, level):
            raise AssertionError("called without pressure")
        """
    )
    pytester.makepyfile("def test_small(): pass")
    result, report = run()
    result.assert_outcomes(passed=1)
    assert "pressure" not in report
