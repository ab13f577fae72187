"""The operator serves Prometheus metrics that move as runs progress."""

from __future__ import annotations

import time

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import Recorder
from scrape import value


def test_metrics_count_a_run_its_steps_and_its_api_writes(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    before = operator.metrics()
    runs.apply(
        [
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "Workflow",
                "metadata": {"name": "observed"},
                "spec": {
                    "steps": [
                        {"name": "call", "http": {"method": "POST", "url": f"{recorder.url}/a"}},
                        {"name": "wait", "waitForSignal": {"name": "go"}},
                    ]
                },
            },
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "WorkflowRun",
                "metadata": {"name": "observed-1"},
                "spec": {"workflowRef": {"name": "observed"}},
            },
        ]
    )
    runs.wait("observed-1", step="wait", step_phase="Waiting")
    waiting = operator.metrics()
    assert value(waiting, "baton_runs_active") == 1
    runs.api.patch_namespaced_custom_object(
        "baton.dev",
        "v1alpha1",
        runs.namespace,
        "workflowruns",
        "observed-1",
        {"spec": {"signals": [{"name": "go"}]}},
    )
    status = runs.wait("observed-1")
    assert status["phase"] == "Succeeded", status

    deadline = time.monotonic() + 10
    while True:  # the commit that ends the run precedes the loop's exit by a moment
        after = operator.metrics()
        if value(after, "baton_runs_active") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    run = {"namespace": runs.namespace, "workflow": "observed"}
    call = {**run, "step": "call", "kind": "http"}
    wait = {**run, "step": "wait", "kind": "waitForSignal"}
    assert moved("baton_runs_started_total", **run) == 1
    assert moved("baton_runs_finished_total", **run, phase="Succeeded") == 1
    assert moved("baton_step_attempts_total", **call) == 1
    assert moved("baton_step_outcomes_total", **call, outcome="Succeeded") == 1
    assert moved("baton_step_outcomes_total", **wait, outcome="Succeeded") == 1
    assert moved("baton_step_duration_seconds_count", **wait, outcome="Succeeded") == 1
    assert moved("baton_signals_received_total", **run) == 1
    assert moved("baton_run_duration_seconds_count", **run, phase="Succeeded") == 1
    assert moved("baton_reconcile_latency_seconds_count") >= 3
    assert moved("baton_api_writes_total", verb="patch", resource="workflowruns/status") >= 3
    assert value(after, "baton_runs_active") == 0
    assert value(after, "baton_operator_active") == 1
    assert ("baton_api_conflicts_total", frozenset()) in after
