"""The operator's pod policy: which ServiceAccounts and pod annotation keys a Job step may
ask for, checked on a definition when a run starts and on each rendered attempt."""

from __future__ import annotations

import asyncio
from typing import Any

from executorkit import RUN, Events, command, offline_kube

from baton.api.workflow import WorkflowSpec
from baton.engine import compile_definition
from baton.engine.events import ActivityFailed
from baton.executors.job import JobExecutor
from baton.executors.podpolicy import PodField, allows, definition_violations, violations
from baton.settings import OperatorSettings

NONE = OperatorSettings()
OPEN = OperatorSettings(
    pod_service_accounts=("ci-*", "reporter"), job_pod_annotations=("sidecar.istio.io/*",)
)


def test_nothing_is_allowed_by_default() -> None:
    spec = {"image": "i", "serviceAccountName": "default", "podAnnotations": {"a": "b"}}
    found = violations(spec, NONE)
    assert [(v.field, v.value) for v in found] == [
        (PodField.SERVICE_ACCOUNT, "default"),
        (PodField.ANNOTATIONS, "a"),
    ]
    assert violations({"image": "i"}, NONE) == []  # asking for nothing is always fine


def test_patterns_match_whole_names_case_sensitively() -> None:
    assert allows(OPEN.pod_service_accounts, "ci-build")
    assert allows(OPEN.pod_service_accounts, "reporter")
    assert not allows(OPEN.pod_service_accounts, "reporter-admin")
    assert not allows(OPEN.pod_service_accounts, "CI-build")
    assert allows(OPEN.job_pod_annotations, "sidecar.istio.io/inject")
    assert not allows(OPEN.job_pod_annotations, "evil.example/sidecar.istio.io/inject")


def test_the_message_names_the_value_what_is_allowed_and_the_chart_value() -> None:
    [violation] = violations({"serviceAccountName": "cluster-admin"}, OPEN)
    message = violation.message
    assert "ServiceAccount 'cluster-admin' is not allowed" in message
    assert "allowed: 'ci-*', 'reporter'" in message
    assert "operator.podPolicy.serviceAccounts" in message
    assert "--allow-service-account" in message
    [violation] = violations({"podAnnotations": {"backup.velero.io/x": "y"}}, NONE)
    assert "annotation key 'backup.velero.io/x'" in violation.message
    assert "allowed: none" in violation.message
    assert "operator.podPolicy.jobAnnotations" in violation.message


def definition(steps: list[dict[str, Any]]) -> Any:
    return compile_definition(WorkflowSpec.model_validate({"steps": steps}))


def test_a_definition_is_checked_in_nested_steps_and_compensations() -> None:
    steps = [
        {
            "name": "fan",
            "forEach": {
                "items": "[1]",
                "step": {
                    "name": "build",
                    "job": {"image": "i", "serviceAccountName": "ci-build"},
                    "compensate": {"job": {"image": "i", "podAnnotations": {"x.io/y": "1"}}},
                },
            },
        },
        {"name": "deploy", "job": {"image": "i", "serviceAccountName": "deployer"}},
    ]
    found = [
        (step, path, v.value) for step, path, v in definition_violations(definition(steps), OPEN)
    ]
    assert found == [
        ("build", "compensate.job.podAnnotations", "x.io/y"),
        ("deploy", "job.serviceAccountName", "deployer"),
    ]


def test_a_value_given_by_an_expression_is_left_to_the_attempt() -> None:
    steps = [
        {
            "name": "build",
            "job": {
                "image": "i",
                "serviceAccountName": "${{ input.account }}",
                "podAnnotations": {"sidecar.istio.io/inject": "${{ input.mesh }}"},
            },
        }
    ]
    assert list(definition_violations(definition(steps), OPEN)) == []
    assert [v.value for _, _, v in definition_violations(definition(steps), NONE)] == [
        "sidecar.istio.io/inject"  # keys are never expressions: known when the run starts
    ]


def test_an_attempt_asking_for_a_refused_account_fails_for_good_before_any_job_exists() -> None:
    async def scenario() -> ActivityFailed:
        events = Events()
        # An API server that does not exist: creating the Job would retry until the timeout.
        async with offline_kube() as kube:
            executor = JobExecutor(kube, OPEN)
            spec = {"image": "i", "serviceAccountName": "cluster-admin"}
            await executor.start(RUN, command("job", spec, key="build"), events)
            final = await events.final()
            await executor.close()
        assert events.types()[0] == "ActivityStarted"
        assert isinstance(final, ActivityFailed)
        return final

    error = asyncio.run(scenario()).error
    assert error["type"] == "PolicyDenied"
    assert error["message"].startswith("job.serviceAccountName: ServiceAccount 'cluster-admin'")
    assert error["details"] == {
        "field": "job.serviceAccountName",
        "value": "cluster-admin",
        "nonRetryable": True,
    }
