"""The Job executor's pure parts: the manifest of an attempt, and what a finished Job means."""

from __future__ import annotations

from typing import Any

import pytest
from executorkit import RUN, command

from baton.api.labels import ACTIVITY_KEY, ATTEMPT, PART, RUN_NAME, RUN_UID, STEP
from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.executors.attempts import AttemptId
from baton.executors.job import (
    JobExecutor,
    attempt_of,
    build_job,
    job_finished,
    job_name,
    job_outcome,
)
from baton.settings import UNCOMMITTED_JOB_TTL_SECONDS, OperatorSettings
from baton.store.kube import Kube
from baton.store.ref import RunRef

SETTINGS = OperatorSettings(job_ttl_seconds=300)

PAY = {
    "image": "registry.example/payments:1.4",
    "command": ["/bin/pay"],
    "args": ["charge", "--amount", 1250, "--meta", {"currency": "EUR"}, True],
    "env": [
        {"name": "MODE", "value": "live"},
        {"name": "RETRIES", "value": 3},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "payments", "key": "token"}}},
    ],
    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
    "serviceAccountName": "payments",
}


def manifest(spec: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return build_job(RUN, command("job", spec or PAY, key="pay", **kw), SETTINGS)


def test_the_job_is_named_after_run_step_and_attempt_and_owned_by_the_run() -> None:
    job = manifest(attempt=3)
    meta = job["metadata"]
    assert meta["name"] == job_name(RUN, "pay", 3)
    assert meta["name"].startswith("purchase-42-pay-")
    assert meta["name"].endswith("-3")
    assert meta["namespace"] == "shop"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "WorkflowRun",
            "name": "purchase-42",
            "uid": RUN.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]
    assert meta["labels"] == {
        RUN_UID: RUN.uid,
        RUN_NAME: "purchase-42",
        PART: "job",
        STEP: "pay",
    }
    assert meta["annotations"] == {ACTIVITY_KEY: "pay", ATTEMPT: "3"}
    template = job["spec"]["template"]["metadata"]
    assert template["labels"] == meta["labels"]
    assert template["annotations"] == meta["annotations"]


def test_a_long_key_still_gives_a_valid_deterministic_name() -> None:
    key = "charges[12].charge_the_customer_for_every_night_of_the_stay/compensate"
    first = build_job(RUN, command("job", PAY, key=key, attempt=7), SETTINGS)
    again = build_job(RUN, command("job", PAY, key=key, attempt=7), SETTINGS)
    name = first["metadata"]["name"]
    assert name == again["metadata"]["name"]
    assert len(name) <= 63
    assert name.endswith("-7")
    assert first["metadata"]["annotations"][ACTIVITY_KEY] == key


def test_baton_owns_retries_and_deadlines() -> None:
    spec = manifest(start_to_close=90.2)["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 91
    # The short TTL comes once the run has committed the outcome (`settle`): until then the
    # Job's pod, which holds the output, must outlive any operator outage.
    assert spec["ttlSecondsAfterFinished"] == UNCOMMITTED_JOB_TTL_SECONDS
    assert "activeDeadlineSeconds" not in manifest(start_to_close=None)["spec"]


def test_the_container_runs_what_the_step_says_with_rendered_values_as_strings() -> None:
    pod = manifest()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "main"
    assert container["image"] == "registry.example/payments:1.4"
    assert container["command"] == ["/bin/pay"]
    assert container["args"] == [
        "charge",
        "--amount",
        "1250",
        "--meta",
        '{"currency":"EUR"}',
        "true",
    ]
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}}
    assert pod["serviceAccountName"] == "payments"
    assert "automountServiceAccountToken" not in pod


def test_a_secret_env_var_stays_a_reference() -> None:
    env = manifest()["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[:3] == [
        {"name": "MODE", "value": "live"},
        {"name": "RETRIES", "value": "3"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "payments", "key": "token"}}},
    ]
    assert {"name": "BATON_IDEMPOTENCY_KEY", "value": f"{RUN.uid}/pay/1"} in env


def test_the_pod_is_restricted() -> None:
    pod = manifest({"image": "busybox"})["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod["automountServiceAccountToken"] is False
    assert "args" not in container
    assert "command" not in container


def test_pod_annotations_go_on_the_template_without_replacing_batons() -> None:
    spec = {
        "image": "busybox",
        "podAnnotations": {"kwok.baton.dev/exit-code": 3, ACTIVITY_KEY: "forged"},
    }
    annotations = manifest(spec)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kwok.baton.dev/exit-code": "3", ACTIVITY_KEY: "pay", ATTEMPT: "1"}


def test_extra_labels_of_the_settings_are_added() -> None:
    settings = OperatorSettings(extra_labels={"team": "payments", PART: "forged"})
    labels = build_job(RUN, command("job", PAY), settings)["metadata"]["labels"]
    assert labels["team"] == "payments"
    assert labels[PART] == "job"


# --- job_outcome -------------------------------------------------------------------------------


def job(*conditions: tuple[str, str], attempt: int = 2) -> dict[str, Any]:
    """A Job of attempt `attempt` of `pay` with conditions (type, reason) set to True."""
    built = manifest(attempt=attempt)
    built["metadata"]["uid"] = "job-uid"
    built["status"] = {
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "message": f"{reason} happened"}
            for kind, reason in conditions
        ]
    }
    return built


def pod(
    phase: str, exit_code: int, message: str = "", *, created: str = "2026-07-01T10:00:00Z"
) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
    }
    if message:
        terminated["message"] = message
    return {
        "metadata": {"name": f"pod-{created}", "creationTimestamp": created},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
        },
    }


def test_a_running_job_has_no_outcome() -> None:
    assert job_outcome(job(), []) is None
    assert job_outcome(job(("SuccessCriteriaMet", "")), []) is None
    assert not job_finished(job(("FailureTarget", "x")))


@pytest.mark.parametrize(
    ("message", "output"),
    [('{"id": "tx-42"}', {"id": "tx-42"}), ("charged", "charged"), ("", None), ("[1, 2]", [1, 2])],
)
def test_a_complete_job_outputs_its_termination_message(message: str, output: Any) -> None:
    event = job_outcome(job(("Complete", "")), [pod("Succeeded", 0, message)])
    assert event == ActivityCompleted(key="pay", attempt=2, output=output)


def test_a_failed_job_is_job_failed_with_the_exit_code() -> None:
    event = job_outcome(job(("Failed", "BackoffLimitExceeded")), [pod("Failed", 3)])
    assert isinstance(event, ActivityFailed)
    assert event.attempt == 2
    assert event.error["type"] == "JobFailed"
    assert event.error["details"] == {
        "job": job_name(RUN, "pay", 2),
        "exitCode": 3,
        "reason": "Error",
    }
    assert "exit code 3" in event.error["message"]


def test_the_latest_failed_pod_is_the_one_read() -> None:
    pods = [
        pod("Failed", 1, created="2026-07-01T10:00:00Z"),
        pod("Failed", 4, created="2026-07-01T10:05:00Z"),
    ]
    event = job_outcome(job(("Failed", "BackoffLimitExceeded")), pods)
    assert isinstance(event, ActivityFailed)
    assert event.error["details"]["exitCode"] == 4


def test_a_failing_job_can_name_its_error_type_in_the_termination_message() -> None:
    named = pod("Failed", 2, '{"error": "CardDeclined", "message": "card 4242 declined"}')
    event = job_outcome(job(("Failed", "BackoffLimitExceeded")), [named])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "CardDeclined"
    assert event.error["message"] == "card 4242 declined"
    assert event.error["details"]["exitCode"] == 2

    final = pod("Failed", 2, '{"error": {"type": "Fraud", "nonRetryable": true}}')
    event = job_outcome(job(("Failed", "BackoffLimitExceeded")), [final])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "Fraud"
    assert event.error["details"]["nonRetryable"] is True


def test_a_failure_message_that_names_no_error_is_kept_in_the_details() -> None:
    logs = "Traceback (most recent call last):\n  ...\nValueError: bad amount"
    event = job_outcome(job(("Failed", "BackoffLimitExceeded")), [pod("Failed", 1, logs)])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "JobFailed"
    assert event.error["details"]["terminationMessage"] == logs


def test_a_job_past_its_deadline_is_a_timeout() -> None:
    event = job_outcome(job(("Failed", "DeadlineExceeded")), [])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "Timeout"
    assert event.error["details"]["kind"] == "startToClose"


def test_a_failed_job_without_a_pod_still_fails() -> None:
    event = job_outcome(job(("Failed", "PodFailurePolicy")), [])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "JobFailed"
    assert event.error["details"]["exitCode"] is None
    assert event.error["details"]["reason"] == "PodFailurePolicy"


def test_a_complete_job_whose_pod_is_gone_is_lost() -> None:
    event = job_outcome(job(("Complete", "")), [])
    assert isinstance(event, ActivityFailed)
    assert event.error["type"] == "JobLost"


def test_a_job_that_is_not_batons_has_no_outcome() -> None:
    foreign = job(("Complete", ""))
    del foreign["metadata"]["annotations"][ACTIVITY_KEY]
    assert attempt_of(foreign) is None
    assert job_outcome(foreign, [pod("Succeeded", 0, "{}")]) is None


def test_the_attempt_of_a_job_comes_from_its_labels_and_annotations() -> None:
    assert attempt_of(job(attempt=5)) == AttemptId(RUN.uid, "pay", 5)


def test_the_job_name_comes_from_the_run_uid_not_only_its_name() -> None:
    namesake = RunRef(RUN.name, RUN.namespace, "0c1d2e3f-0000-4000-8000-000000000007")
    assert job_name(RUN, "pay", 1) != job_name(namesake, "pay", 1)


def test_a_job_listed_at_resume_under_an_old_name_is_created_and_deleted_under_it() -> None:
    executor = JobExecutor(Kube(None), SETTINGS)  # type: ignore[arg-type]
    old = {"metadata": {**job()["metadata"], "name": "purchase-42-pay-2"}}
    current = {"metadata": {**job()["metadata"], "name": job_name(RUN, "pay", 2)}}
    executor.adopt(RUN, [old, current])
    assert executor._names == {AttemptId(RUN.uid, "pay", 2): "purchase-42-pay-2"}
