"""CI detection from environment variables: which system, commit, branch, job and URL."""

from __future__ import annotations

import pytest

from pytest_memguard.reporting.ci_env import CI_FIELDS, detect_ci


def test_outside_ci_there_is_nothing() -> None:
    assert detect_ci({}) is None
    assert detect_ci({"CI": "false", "GITHUB_ACTIONS": "false"}) is None


def test_github_actions() -> None:
    found = detect_ci(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": "abc123",
            "GITHUB_REF_NAME": "main",
            "GITHUB_WORKFLOW": "tests",
            "GITHUB_JOB": "linux",
            "GITHUB_RUN_ID": "42",
            "GITHUB_REPOSITORY": "acme/app",
            "GITHUB_SERVER_URL": "https://github.example",
        }
    )
    assert found == {
        "system": "github-actions",
        "commit": "abc123",
        "branch": "main",
        "job": "tests/linux",
        "build": "42",
        "url": "https://github.example/acme/app/actions/runs/42",
    }


def test_github_pull_request_branch_and_default_server() -> None:
    found = detect_ci(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_HEAD_REF": "feature",
            "GITHUB_REF_NAME": "7/merge",
            "GITHUB_RUN_ID": "9",
            "GITHUB_REPOSITORY": "acme/app",
        }
    )
    assert found is not None
    assert found["branch"] == "feature"
    assert found["url"] == "https://github.com/acme/app/actions/runs/9"
    assert found["commit"] is None
    assert found["job"] is None


def test_gitlab_ci() -> None:
    found = detect_ci(
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": "def456",
            "CI_COMMIT_REF_NAME": "dev",
            "CI_JOB_NAME": "pytest",
            "CI_JOB_ID": "77",
            "CI_JOB_URL": "https://gitlab.example/acme/app/-/jobs/77",
        }
    )
    assert found == {
        "system": "gitlab-ci",
        "commit": "def456",
        "branch": "dev",
        "job": "pytest",
        "build": "77",
        "url": "https://gitlab.example/acme/app/-/jobs/77",
    }


def test_jenkins() -> None:
    found = detect_ci(
        {
            "JENKINS_URL": "https://jenkins.example/",
            "GIT_COMMIT": "0a1b",
            "GIT_BRANCH": "origin/main",
            "JOB_NAME": "app/main",
            "BUILD_NUMBER": "12",
            "BUILD_URL": "https://jenkins.example/job/app/12/",
        }
    )
    assert found == {
        "system": "jenkins",
        "commit": "0a1b",
        "branch": "origin/main",
        "job": "app/main",
        "build": "12",
        "url": "https://jenkins.example/job/app/12/",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {
                "CIRCLECI": "true",
                "CIRCLE_SHA1": "c1",
                "CIRCLE_BRANCH": "b",
                "CIRCLE_JOB": "test",
                "CIRCLE_BUILD_NUM": "5",
                "CIRCLE_BUILD_URL": "https://circleci.example/5",
            },
            ("circleci", "c1", "b", "test", "5", "https://circleci.example/5"),
        ),
        (
            {
                "BUILDKITE": "true",
                "BUILDKITE_COMMIT": "c2",
                "BUILDKITE_BRANCH": "b",
                "BUILDKITE_LABEL": ":pytest: tests",
                "BUILDKITE_BUILD_NUMBER": "6",
                "BUILDKITE_BUILD_URL": "https://buildkite.example/6",
                "BUILDKITE_JOB_ID": "j1",
            },
            ("buildkite", "c2", "b", ":pytest: tests", "6", "https://buildkite.example/6#j1"),
        ),
        (
            {
                "TF_BUILD": "True",
                "BUILD_SOURCEVERSION": "c3",
                "BUILD_SOURCEBRANCHNAME": "b",
                "SYSTEM_JOBDISPLAYNAME": "Linux tests",
                "BUILD_BUILDID": "7",
                "SYSTEM_COLLECTIONURI": "https://dev.azure.example/acme/",
                "SYSTEM_TEAMPROJECT": "My App",
            },
            (
                "azure-pipelines",
                "c3",
                "b",
                "Linux tests",
                "7",
                "https://dev.azure.example/acme/My%20App/_build/results?buildId=7",
            ),
        ),
        ({"CI": "1"}, ("unknown", None, None, None, None, None)),
    ],
)
def test_other_systems(environ: dict[str, str], expected: tuple[str | None, ...]) -> None:
    assert detect_ci(environ) == dict(zip(CI_FIELDS, expected, strict=True))


def test_empty_values_read_as_unknown() -> None:
    found = detect_ci({"GITLAB_CI": "true", "CI_COMMIT_SHA": "  ", "CI_JOB_NAME": ""})
    assert found is not None
    assert (found["commit"], found["job"]) == (None, None)
