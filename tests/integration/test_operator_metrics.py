"""The operator serves Prometheus metrics that move as runs progress."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cluster, Runs
from operator_process import OperatorProcess
from prometheus_client.parser import text_string_to_metric_families
from recorder import Recorder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_operator(
    crds: Cluster, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, int]]:
    port = free_port()
    process = OperatorProcess(
        crds.env, tmp_path / "operator.log", "--namespace", namespace, "--metrics-port", str(port)
    )
    process.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            scrape(port)
            break
        except OSError:
            if time.monotonic() > deadline or not process.alive:
                process.stop()
                pytest.fail(f"no /metrics on {port}:\n{process.log_tail()}")
            time.sleep(0.2)
    yield process, port
    process.stop()


def test_metrics_count_a_run_its_steps_and_its_api_writes(
    runs: Runs, recorder: Recorder, metrics_operator: tuple[OperatorProcess, int]
) -> None:
    _, port = metrics_operator
    before = scrape(port)
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
    waiting = scrape(port)
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
        after = scrape(port)
        if value(after, "baton_runs_active") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("baton_runs_started_total", workflow="observed") == 1
    assert moved("baton_runs_finished_total", workflow="observed", phase="Succeeded") == 1
    assert moved("baton_step_attempts_total", kind="http") == 1
    assert moved("baton_step_outcomes_total", kind="http", outcome="Succeeded") == 1
    assert moved("baton_step_outcomes_total", kind="waitForSignal", outcome="Succeeded") == 1
    assert moved("baton_signals_received_total", workflow="observed") == 1
    assert moved("baton_run_duration_seconds_count", workflow="observed", phase="Succeeded") == 1
    assert moved("baton_reconcile_latency_seconds_count") >= 3
    assert moved("baton_api_writes_total", verb="patch", resource="workflowruns/status") >= 3
    assert value(after, "baton_runs_active") == 0
    assert ("baton_api_conflicts_total", frozenset()) in after
