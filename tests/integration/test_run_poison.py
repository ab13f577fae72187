"""Runs that used to be accepted and then restarted forever, every 30 s, with nothing shown to
the user: each is now refused by the API server naming the field, refused by the operator with
an `Invalid` condition, or ends in a phase with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import KubectlError, Runs
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import http, run, wait_until, workflow


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


def wait_invalid(runs: Runs, name: str) -> dict[str, Any]:
    """The run's `Invalid` condition, once the operator set it."""
    found: dict[str, Any] = wait_until(
        f"run {name} Invalid", lambda: condition(runs.status(name), "Invalid"), timeout=60
    )
    return found


def create(runs: Runs, body: dict[str, Any]) -> None:
    """Create through the API (kubectl would choke on some of these bodies first)."""
    runs.api.create_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", body
    )


def test_a_sleep_of_99999999_days_makes_the_run_invalid_naming_the_limit(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow("nap", [{"name": "nap", "sleep": {"duration": "99999999d"}}]),
            run("nap-1", "nap"),
        ]
    )
    invalid = wait_invalid(runs, "nap-1")
    assert invalid["reason"] == "InvalidWorkflow"
    assert "steps[0].sleep.duration" in invalid["message"] or "sleep.duration" in invalid["message"]
    assert "36500d" in invalid["message"]


def test_a_duration_of_400_digits_is_refused_by_the_api_server(runs: Runs) -> None:
    with pytest.raises(KubectlError, match=r"spec\.steps\[0\]\.sleep\.duration"):
        runs.apply(workflow("nines", [{"name": "nap", "sleep": {"duration": "9" * 400 + "s"}}]))


def test_a_run_name_over_200_characters_is_refused_by_the_api_server(runs: Runs) -> None:
    runs.apply(workflow("short", [{"name": "s", "set": {"x": 1}}]))
    with pytest.raises(ApiException) as refused:
        create(runs, run("r" * 243, "short"))
    assert refused.value.status == 422
    assert "metadata.name" in str(refused.value.body)
    assert "200" in str(refused.value.body)


def test_a_ttl_of_3000000_days_makes_the_run_invalid(runs: Runs, operator: OperatorProcess) -> None:
    runs.apply(
        [
            workflow("quick", [{"name": "s", "set": {"x": 1}}]),
            run("ttl-1", "quick", ttlAfterFinished="3000000d"),
        ]
    )
    invalid = wait_invalid(runs, "ttl-1")
    assert invalid["reason"] == "InvalidSpec"
    assert "ttlAfterFinished" in invalid["message"]


def test_a_set_step_producing_infinity_fails_the_step_with_a_reason(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow("inf", [{"name": "s", "set": {"x": "${{ 1.0 / 0.0 }}"}}]),
            run("inf-1", "inf"),
        ]
    )
    status = runs.wait("inf-1")
    assert status["phase"] == "Failed"
    assert status["steps"]["s"]["error"]["type"] == "ExpressionError"
    assert "JSON cannot hold" in status["steps"]["s"]["error"]["message"]


def test_an_input_nested_500_deep_makes_the_run_invalid(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(workflow("deep", [{"name": "s", "set": {"x": 1}}]))
    value: Any = 1
    for _ in range(500):
        value = {"a": value}
    # kubectl, since the Python client's serializer recurses once per level and gives up.
    runs.cluster.kubectl(
        "create", "-n", runs.namespace, "-f", "-", input=json.dumps(run("deep-1", "deep", value))
    )
    invalid = wait_invalid(runs, "deep-1")
    assert invalid["reason"] == "InvalidInput"
    assert "more than 64 levels deep" in invalid["message"]


def test_an_800_kb_input_makes_the_run_invalid_naming_the_limit(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(workflow("big", [{"name": "s", "set": {"x": 1}}]))
    create(runs, run("big-1", "big", {"blob": "x" * 800_000}))
    invalid = wait_invalid(runs, "big-1")
    assert invalid["reason"] == "InvalidInput"
    assert "over the 262144" in invalid["message"]


def test_a_repeat_without_interval_runs_past_500_iterations_to_its_limit(
    runs: Runs, operator: OperatorProcess
) -> None:
    repeat = {"until": "false", "maxIterations": 1500}
    runs.apply(
        [
            workflow("spin", [{"name": "s", "set": {"x": 1}, "repeat": repeat}]),
            run("spin-1", "spin"),
        ]
    )
    status = runs.wait("spin-1", timeout=120)
    assert status["phase"] == "Failed"
    assert status["steps"]["s"]["iterations"] == 1500
    assert status["steps"]["s"]["error"]["type"] == "MaxIterations"


def test_an_800_kb_non_ascii_response_is_kept_by_reference_and_the_run_succeeds(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    body = "é" * 400_000  # 800 KB of UTF-8; 2.4 MB once JSON escapes it
    recorder.script("/big", Reply(body=body))
    runs.apply(
        [
            workflow(
                "wide",
                [{"name": "fetch", "http": http(f"{recorder.url}/big", "GET")}],
                output="${{ steps.fetch.output.endsWith('é') }}",
            ),
            run("wide-1", "wide"),
        ]
    )
    status = runs.wait("wide-1", timeout=120)
    assert status["phase"] == "Succeeded", json.dumps(status)[:1000]
    assert status["output"] is True
    core = client.CoreV1Api(runs.cluster.api_client)
    names = [cm.metadata.name for cm in core.list_namespaced_config_map(runs.namespace).items]
    assert any(name.startswith("wide-1-event-") for name in names), names


def test_nested_for_each_over_the_instance_limit_fails_the_run_with_too_many_items(
    runs: Runs, operator: OperatorProcess
) -> None:
    inner = {
        "name": "inner",
        "forEach": {
            "items": "input",
            "concurrency": 200,
            "step": {"name": "nap", "sleep": {"duration": "1h"}},
        },
    }
    runs.apply(
        [
            workflow(
                "fan",
                [
                    {
                        "name": "outer",
                        "forEach": {"items": "input", "concurrency": 200, "step": inner},
                    }
                ],
            ),
            run("fan-1", "fan", list(range(200))),
        ]
    )
    status = runs.wait("fan-1", timeout=120)
    assert status["phase"] == "Failed"
    assert status["error"]["type"] == "TooManyItems"
    assert len(status["steps"]) <= 2000


@pytest.mark.timeout(600)  # waits up to 180 s for the run
def test_signals_too_large_for_the_status_end_the_run_failed_instead_of_restarting(
    runs: Runs, operator: OperatorProcess
) -> None:
    """Each signal's latest payload is kept in the status: four of 300 KB fit the run's spec
    but not its status too. The status write is refused every time; the run ends Failed."""
    runs.apply(
        [
            workflow("mail", [{"name": "w", "waitForSignal": {"name": "never"}}]),
            run("mail-1", "mail"),
        ]
    )
    runs.wait("mail-1", {"Running"})
    signals = [{"name": f"s{i}", "payload": "x" * 300_000} for i in range(4)]
    runs.api.patch_namespaced_custom_object(
        "baton.dev",
        "v1alpha1",
        runs.namespace,
        "workflowruns",
        "mail-1",
        {"spec": {"signals": signals}},
    )
    status = runs.wait("mail-1", timeout=180)
    assert status["phase"] == "Failed"
    aborted = condition(status, "Aborted")
    assert aborted is not None
    assert aborted["reason"] == "RepeatedFault"
    assert status["error"]["type"] == "RepeatedFault"
