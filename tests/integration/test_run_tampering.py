"""A run whose history or status is lost or edited by hand: it recovers from what Baton sealed
(the definition snapshot and the history), or ends Failed with a condition naming why — never
reloads forever, never runs a definition it did not start with, never takes a forged event."""

from __future__ import annotations

import json
from typing import Any

from clusterkit import Runs
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import http, run, send_signal, workflow


def core(runs: Runs) -> client.CoreV1Api:
    return client.CoreV1Api(runs.cluster.api_client)


def aborted(status: dict[str, Any]) -> dict[str, Any]:
    found = next(c for c in status.get("conditions") or [] if c["type"] == "Aborted")
    assert found["status"] == "True"
    return found


def waiting_run(runs: Runs, recorder: Recorder, name: str) -> None:
    """A run whose first step called the recorder and whose second waits for `approve`."""
    runs.apply(
        [
            workflow(
                "approval",
                [
                    {"name": "reserve", "http": http(f"{recorder.url}/reserve")},
                    {"name": "approval", "waitForSignal": {"name": "approve"}},
                    {"name": "pay", "http": http(f"{recorder.url}/pay")},
                ],
            ),
            run(name, "approval"),
        ]
    )
    runs.wait(name, step="approval", step_phase="Waiting")


def test_a_run_whose_history_was_deleted_fails_with_history_lost(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    waiting_run(runs, recorder, "lost-1")
    core(runs).delete_namespaced_config_map("lost-1-history-0", runs.namespace)
    send_signal(runs.cluster, runs.namespace, "lost-1", "approve", {"ok": True})
    status = runs.wait("lost-1", timeout=90)
    assert status["phase"] == "Failed"
    assert aborted(status)["reason"] == "HistoryLost"
    assert "lost-1-history-0" in status["error"]["message"]
    assert recorder.calls_to("/pay") == []


def test_a_run_whose_status_was_wiped_resumes_from_its_snapshot_not_the_edited_workflow(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    waiting_run(runs, recorder, "wiped-1")
    # The Workflow changes under the run: its first step is renamed.
    edited = workflow(
        "approval",
        [
            {"name": "reserveV2", "http": http(f"{recorder.url}/reserveV2")},
            {"name": "approval", "waitForSignal": {"name": "approve"}},
            {"name": "pay", "http": http(f"{recorder.url}/pay")},
        ],
    )
    runs.apply(edited)
    operator.stop()
    runs.cluster.kubectl(
        "patch", "workflowrun", "wiped-1", "-n", runs.namespace, "--subresource", "status",
        "--type", "json", "-p", json.dumps([{"op": "remove", "path": "/status"}]),
    )  # fmt: skip
    operator.start()
    runs.wait("wiped-1", step="approval", step_phase="Waiting", timeout=90)
    send_signal(runs.cluster, runs.namespace, "wiped-1", "approve", {"ok": True})
    status = runs.wait("wiped-1", timeout=90)
    assert status["phase"] == "Succeeded", json.dumps(status)[:1500]
    assert sorted(status["steps"]) == ["approval", "pay", "reserve"]
    assert recorder.calls_to("/reserveV2") == []
    assert len(recorder.effects_on("/reserve")) == 1


def test_a_signal_forged_into_the_history_fails_the_run_instead_of_approving(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    waiting_run(runs, recorder, "forged-1")
    operator.stop()
    chunk = core(runs).read_namespaced_config_map("forged-1-history-0", runs.namespace)
    data = dict(chunk.data)
    last = max(key for key in data if key.isdigit())
    forged = {"at": 1.0, "type": "SignalReceived", "index": 0, "name": "approve", "payload": {}}
    data[f"{int(last) + 1:012d}"] = json.dumps(forged) + "\n" + json.dumps({"mac": "0" * 64})
    core(runs).patch_namespaced_config_map("forged-1-history-0", runs.namespace, {"data": data})
    operator.start()
    status = runs.wait("forged-1", timeout=90)
    assert status["phase"] == "Failed"
    assert aborted(status)["reason"] == "HistoryTampered"
    assert "does not verify" in status["error"]["message"]
    assert recorder.calls_to("/pay") == []


def test_a_replaced_definition_snapshot_fails_the_run_instead_of_running_it(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    waiting_run(runs, recorder, "swap-1")
    operator.stop()
    # The snapshot travels in the run's first history chunk, sealed by its annotations.
    name = "swap-1-history-0"
    chunk = core(runs).read_namespaced_config_map(name, runs.namespace)
    spec = json.loads(chunk.data["definition"])
    spec["steps"][2]["http"]["url"] = f"{recorder.url}/elsewhere"
    core(runs).patch_namespaced_config_map(
        name, runs.namespace, {"data": {"definition": json.dumps(spec)}}
    )
    operator.start()
    send_signal(runs.cluster, runs.namespace, "swap-1", "approve", {"ok": True})
    status = runs.wait("swap-1", timeout=90)
    assert status["phase"] == "Failed"
    assert aborted(status)["reason"] == "SnapshotTampered"
    assert recorder.calls_to("/elsewhere") == []
    assert recorder.calls_to("/pay") == []
