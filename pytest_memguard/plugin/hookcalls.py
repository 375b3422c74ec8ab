"""Calls of memguard's own hooks whose answers are checked: a conftest or plugin that
answers with the wrong type is named, with the hook and what it returned, and the run
goes on (the report is still written, a test with a bad budget errors at its setup)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from .compat import call_hookimpl

__all__ = ["describe_impl", "report_extras", "wrong_budget"]


def describe_impl(impl: Any, rootpath: Path | None = None) -> str:
    """Who implements a hook, as people know it: a conftest's path (relative to the
    root folder), else the plugin's name."""
    path = getattr(impl.plugin, "__file__", None)
    if path:
        found = Path(path)
        if rootpath is not None and found.is_relative_to(rootpath):
            return str(found.relative_to(rootpath))
        return str(found)
    return str(impl.plugin_name)


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def report_extras(
    config: pytest.Config, report: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The extra fields the ``pytest_memguard_report`` implementations answer, merged,
    and an error for each answer that is not a JSON-writable mapping (or that raised)."""
    hook = config.hook.pytest_memguard_report
    extras: dict[str, Any] = {}
    errors: list[str] = []
    for impl in reversed(hook.get_hookimpls()):  # pluggy's order: the last registered first
        if getattr(impl, "wrapper", False) or getattr(impl, "hookwrapper", False):
            continue  # a wrapper answers nothing of its own
        where = f"pytest_memguard_report in {describe_impl(impl, config.rootpath)}"
        try:
            answer = call_hookimpl(impl, {"config": config, "report": report})
        except Exception as error:
            errors.append(f"{where} raised {type(error).__name__}: {error}")
            continue
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            errors.append(
                f"{where} returned {_shown(answer)}, expected a mapping of extra fields or"
                " None; the report is written without it"
            )
            continue
        try:
            json.dumps(dict(answer))
        except (TypeError, ValueError) as error:
            errors.append(
                f"{where} returned fields that JSON cannot hold ({error}); the report is"
                " written without them"
            )
            continue
        extras.update(answer)
    return extras, errors


def wrong_budget(config: pytest.Config, answer: object, owner: object) -> str:
    """The error of a test whose ``pytest_memguard_budget`` answer is not a ``Budget``."""
    impls = [
        impl
        for impl in config.hook.pytest_memguard_budget.get_hookimpls()
        if impl.plugin is not owner
    ]
    names = [describe_impl(impl, config.rootpath) for impl in impls]
    where = names[0] if len(names) == 1 else f"one of {', '.join(names)}"
    return (
        f"memguard: pytest_memguard_budget in {where} returned {_shown(answer)} for this"
        " test, expected a pytest_memguard.Budget or None"
    )
