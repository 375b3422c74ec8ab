"""Which CI system runs us, and its commit, branch, job and URL, from the usual variables.

No pytest import here: :func:`pytest_memguard.reporting.report.environment` records the result as
the report's ``environment.ci`` (null outside CI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import quote

__all__ = ["CI_FIELDS", "detect_ci"]

#: The keys of a detected CI entry; a value is None when the system does not say.
CI_FIELDS: Final = ("system", "commit", "branch", "job", "build", "url")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})

Environ = Mapping[str, str]


def _get(environ: Environ, name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _true(environ: Environ, name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def _entry(
    system: str,
    commit: str | None = None,
    branch: str | None = None,
    job: str | None = None,
    build: str | None = None,
    url: str | None = None,
) -> dict[str, str | None]:
    return dict(zip(CI_FIELDS, (system, commit, branch, job, build, url), strict=True))


def _github(env: Environ) -> dict[str, str | None] | None:
    if not _true(env, "GITHUB_ACTIONS"):
        return None
    workflow, job = _get(env, "GITHUB_WORKFLOW"), _get(env, "GITHUB_JOB")
    run_id, repository = _get(env, "GITHUB_RUN_ID"), _get(env, "GITHUB_REPOSITORY")
    server = _get(env, "GITHUB_SERVER_URL") or "https://github.com"
    url = (
        f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
        if run_id and repository
        else None
    )
    return _entry(
        "github-actions",
        _get(env, "GITHUB_SHA"),
        _get(env, "GITHUB_HEAD_REF") or _get(env, "GITHUB_REF_NAME"),
        "/".join(part for part in (workflow, job) if part) or None,
        run_id,
        url,
    )


def _gitlab(env: Environ) -> dict[str, str | None] | None:
    if not _true(env, "GITLAB_CI"):
        return None
    return _entry(
        "gitlab-ci",
        _get(env, "CI_COMMIT_SHA"),
        _get(env, "CI_COMMIT_REF_NAME"),
        _get(env, "CI_JOB_NAME"),
        _get(env, "CI_JOB_ID"),
        _get(env, "CI_JOB_URL"),
    )


def _circleci(env: Environ) -> dict[str, str | None] | None:
    if not _true(env, "CIRCLECI"):
        return None
    return _entry(
        "circleci",
        _get(env, "CIRCLE_SHA1"),
        _get(env, "CIRCLE_BRANCH"),
        _get(env, "CIRCLE_JOB"),
        _get(env, "CIRCLE_BUILD_NUM"),
        _get(env, "CIRCLE_BUILD_URL"),
    )


def _buildkite(env: Environ) -> dict[str, str | None] | None:
    if not _true(env, "BUILDKITE"):
        return None
    url, job_id = _get(env, "BUILDKITE_BUILD_URL"), _get(env, "BUILDKITE_JOB_ID")
    return _entry(
        "buildkite",
        _get(env, "BUILDKITE_COMMIT"),
        _get(env, "BUILDKITE_BRANCH"),
        _get(env, "BUILDKITE_LABEL") or _get(env, "BUILDKITE_PIPELINE_SLUG"),
        _get(env, "BUILDKITE_BUILD_NUMBER"),
        f"{url}#{job_id}" if url and job_id else url,
    )


def _azure(env: Environ) -> dict[str, str | None] | None:
    if not _true(env, "TF_BUILD"):
        return None
    collection = _get(env, "SYSTEM_COLLECTIONURI") or _get(
        env, "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"
    )
    project, build_id = _get(env, "SYSTEM_TEAMPROJECT"), _get(env, "BUILD_BUILDID")
    url = None
    if collection and project and build_id:
        url = f"{collection.rstrip('/')}/{quote(project)}/_build/results?buildId={build_id}"
    return _entry(
        "azure-pipelines",
        _get(env, "BUILD_SOURCEVERSION"),
        _get(env, "BUILD_SOURCEBRANCHNAME"),
        _get(env, "SYSTEM_JOBDISPLAYNAME") or _get(env, "AGENT_JOBNAME"),
        build_id,
        url,
    )


def _jenkins(env: Environ) -> dict[str, str | None] | None:
    if not (_get(env, "JENKINS_URL") or _get(env, "JENKINS_HOME")):
        return None
    return _entry(
        "jenkins",
        _get(env, "GIT_COMMIT"),
        _get(env, "BRANCH_NAME") or _get(env, "GIT_BRANCH"),
        _get(env, "JOB_NAME"),
        _get(env, "BUILD_NUMBER"),
        _get(env, "BUILD_URL"),
    )


_SYSTEMS: Final[tuple[Callable[[Environ], dict[str, str | None] | None], ...]] = (
    _github,
    _gitlab,
    _circleci,
    _buildkite,
    _azure,
    _jenkins,
)


def detect_ci(environ: Mapping[str, str]) -> dict[str, str | None] | None:
    """The CI system running this process and what it says of the build, or None.

    Keys are :data:`CI_FIELDS`; ``system`` is e.g. ``github-actions``, ``gitlab-ci``,
    ``jenkins``, or ``unknown`` when only the generic ``CI=true`` is set.
    """
    for system in _SYSTEMS:
        found = system(environ)
        if found is not None:
            return found
    if _true(environ, "CI"):
        return _entry("unknown")
    return None
