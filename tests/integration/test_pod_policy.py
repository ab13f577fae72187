"""The operator's pod policy on the real control plane: a Job step may name only the
ServiceAccounts, and set only the pod annotation keys, that `baton operator` allows (the test
operator allows kwok.baton.dev/* and no ServiceAccount)."""

from __future__ import annotations

from typing import Any

from clusterkit import Runs
from operator_process import OperatorProcess
from runkit import run, wait_until, workflow

JOB = {"image": "registry.example/reports:1"}


def invalid(runs: Runs, name: str) -> dict[str, Any] | None:
    for found in runs.status(name).get("conditions") or []:
        if found.get("type") == "Invalid" and found.get("status") == "True":
            return dict(found)
    return None


def jobs(runs: Runs) -> list[str]:
    return runs.cluster.kubectl("get", "jobs", "-n", runs.namespace, "-o", "name").stdout.split()


def test_a_job_step_naming_a_service_account_not_allowed_keeps_the_run_from_starting(
    runs: Runs, operator: OperatorProcess
) -> None:
    steps = [
        {"name": "prepare", "job": JOB},
        {"name": "publish", "job": {**JOB, "serviceAccountName": "cluster-admin-bot"}},
    ]
    runs.apply([workflow("publish", steps), run("publish-1", "publish")])
    condition = wait_until("an Invalid condition", lambda: invalid(runs, "publish-1"), 60)
    assert condition["reason"] == "PolicyDenied"
    message = condition["message"]
    assert "step 'publish', field 'job.serviceAccountName'" in message
    assert "ServiceAccount 'cluster-admin-bot' is not allowed" in message
    assert "operator.podPolicy.serviceAccounts" in message
    assert runs.status("publish-1").get("phase") in (None, "Pending")
    assert jobs(runs) == []  # not even the allowed first step ran


def test_a_job_step_given_a_service_account_not_allowed_by_its_input_fails_the_run(
    runs: Runs, operator: OperatorProcess
) -> None:
    steps = [{"name": "publish", "job": {**JOB, "serviceAccountName": "${{ input.account }}"}}]
    runs.apply(
        [workflow("publish-as", steps), run("publish-as-1", "publish-as", {"account": "admin"})]
    )
    status = runs.wait("publish-as-1", timeout=60)
    assert status["phase"] == "Failed", status
    step = status["steps"]["publish"]
    assert step["attempts"] == 1  # not retried: the next attempt would ask the same
    assert status["error"]["type"] == "PolicyDenied"
    message = status["error"]["message"]
    assert message.startswith("job.serviceAccountName: ServiceAccount 'admin' is not allowed")
    assert "operator.podPolicy.serviceAccounts" in message
    assert jobs(runs) == []
