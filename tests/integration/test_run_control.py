"""A user steering runs: cancel (with and without compensation), suspend and resume, redrive."""

from __future__ import annotations

import json
import time

from conftest import Runs
from operator_process import OperatorProcess
from recorder import REPLY_NEVER, Recorder, Reply
from runkit import baton, http, kwok, run, send_signal, wait_created, workflow


def merge_patch(runs: Runs, run_name: str, spec: dict[str, object]) -> None:
    runs.cluster.kubectl(
        "patch", "workflowrun", run_name, "-n", runs.namespace, "--type", "merge",
        "-p", json.dumps({"spec": spec}),
    )  # fmt: skip


def reserve_then_wait(recorder: Recorder) -> list[dict[str, object]]:
    """A reservation with an undo, then a wait for a signal that never comes."""
    return [
        {
            "name": "reserve",
            "http": http(f"{recorder.url}/reserve"),
            "compensate": {"http": http(f"{recorder.url}/reserve/r-1", method="DELETE")},
        },
        {"name": "approval", "waitForSignal": {"name": "approve"}},
    ]


def test_cancel_compensates_completed_steps_when_on_cancel_is_compensate(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([workflow("hold", reserve_then_wait(recorder)), run("hold-1", "hold")])
    runs.wait("hold-1", step="approval", step_phase="Waiting")
    merge_patch(runs, "hold-1", {"cancel": True})
    status = runs.wait("hold-1")
    assert status["phase"] == "Cancelled", status
    assert status["steps"]["approval"]["phase"] == "Cancelled"
    assert [(c.method, c.path) for c in recorder.calls] == [
        ("POST", "/reserve"),
        ("DELETE", "/reserve/r-1"),
    ]
    assert [(c["step"], c["phase"]) for c in status["compensations"]] == [("reserve", "Succeeded")]


def test_cancel_runs_no_compensation_when_on_cancel_is_abandon(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [workflow("hold", reserve_then_wait(recorder)), run("hold-1", "hold", onCancel="abandon")]
    )
    runs.wait("hold-1", step="approval", step_phase="Waiting")
    baton(runs.cluster, "cancel", "hold-1", "-n", runs.namespace)
    status = runs.wait("hold-1")
    assert status["phase"] == "Cancelled", status
    assert [c.method for c in recorder.calls] == ["POST"]
    assert status.get("compensations", []) == []


def test_cancel_stops_a_running_activity(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/slow", Reply(body={"late": True}, delay=REPLY_NEVER))
    runs.apply(
        [
            workflow(
                "slow",
                [
                    {"name": "call", "http": http(f"{recorder.url}/slow")},
                    {"name": "after", "http": http(f"{recorder.url}/after")},
                ],
            ),
            run("slow-1", "slow"),
        ]
    )
    recorder.wait_for_calls("/slow", 1)
    merge_patch(runs, "slow-1", {"cancel": True})
    status = runs.wait("slow-1")
    assert status["phase"] == "Cancelled", status
    assert status["steps"]["call"]["phase"] == "Cancelled"
    assert recorder.calls_to("/after") == []


def test_suspended_run_starts_no_new_step_until_it_is_resumed(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "pausable",
                [
                    {"name": "gate", "waitForSignal": {"name": "go"}},
                    {"name": "second", "http": http(f"{recorder.url}/second")},
                ],
            ),
            run("pausable-1", "pausable"),
        ]
    )
    runs.wait("pausable-1", step="gate", step_phase="Waiting")
    baton(runs.cluster, "suspend", "pausable-1", "-n", runs.namespace)
    runs.wait("pausable-1", {"Suspended"})
    # The waiting step still takes its signal and ends; the next one must not start.
    send_signal(runs.cluster, runs.namespace, "pausable-1", "go")
    status = runs.wait("pausable-1", step="gate", step_phase="Succeeded")
    assert status["phase"] == "Suspended", status
    assert status["steps"].get("second", {}).get("phase", "Pending") == "Pending", status
    held_since = time.monotonic()
    while time.monotonic() - held_since < 2.0:  # an observation window, not synchronisation
        assert recorder.calls_to("/second") == []
        time.sleep(0.1)
    assert runs.status("pausable-1")["phase"] == "Suspended"
    baton(runs.cluster, "resume", "pausable-1", "-n", runs.namespace)
    status = runs.wait("pausable-1")
    assert status["phase"] == "Succeeded", status
    assert len(recorder.calls_to("/second")) == 1


def test_redrive_of_a_failed_run_reruns_only_the_failed_step_with_a_fresh_attempt_key(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/charge", Reply(500), Reply(body={"charged": True}))
    runs.apply(
        [
            workflow(
                "order",
                [
                    {"name": "reserve", "http": http(f"{recorder.url}/reserve")},
                    {
                        "name": "charge",
                        "http": http(f"{recorder.url}/charge"),
                        "retry": {"maxAttempts": 1},
                    },
                ],
                output="${{ steps.charge.output }}",
            ),
            run("order-1", "order"),
        ]
    )
    status = runs.wait("order-1")
    assert status["phase"] == "Failed", status
    merge_patch(runs, "order-1", {"redrive": 1})
    status = runs.wait("order-1", {"Succeeded"}, timeout=30)
    assert status["output"] == {"charged": True}
    assert status["redrive"] == 1
    uid = runs.get("order-1")["metadata"]["uid"]
    assert [c.key for c in recorder.calls_to("/reserve")] == [f"{uid}/reserve/1"]
    assert [c.key for c in recorder.calls_to("/charge")] == [f"{uid}/charge/1", f"{uid}/charge/2"]


def test_cancel_deletes_the_job_of_a_running_job_step(
    runs: Runs, operator: OperatorProcess
) -> None:
    job = {"image": "registry.example/builder:1", "podAnnotations": kwok(duration="10m")}
    runs.apply([workflow("build", [{"name": "build", "job": job}]), run("build-1", "build")])
    name = runs.owned_name("build-1", "build")
    wait_created(runs.cluster, runs.namespace, "job", name)
    runs.wait("build-1", step="build", step_phase="Running")
    merge_patch(runs, "build-1", {"cancel": True})
    assert runs.wait("build-1")["phase"] == "Cancelled"
    runs.cluster.kubectl(
        "wait", "-n", runs.namespace, "--for=delete", f"job/{name}", "--timeout=30s"
    )
