"""Cleanup on the real control plane: a run cancelled while a step is in flight compensates that
step (onInterrupt), runs its finally and its onExit steps for real, and ends Cancelled with the
cancel's reason; the API server refuses onInterrupt where nothing can be interrupted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from recorder import REPLY_NEVER, Recorder, Reply
from runkit import http, run, workflow

if TYPE_CHECKING:
    from conftest import Cluster, Runs
    from operator_process import OperatorProcess


def test_a_cancel_during_a_step_in_flight_runs_its_cleanup_and_on_exit_then_ends_cancelled(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/charge", Reply(body={"late": True}, delay=REPLY_NEVER))
    steps = [
        {
            "name": "reserve",
            "http": http(f"{recorder.url}/reserve"),
            "compensate": {"http": http(f"{recorder.url}/reserve/r-1", method="DELETE")},
        },
        {
            "name": "charge",
            "http": http(f"{recorder.url}/charge"),
            "compensate": {"http": http(f"{recorder.url}/refund"), "onInterrupt": True},
            "finally": [
                {
                    "name": "audit",
                    "http": http(f"{recorder.url}/audit", body={"charge": "${{ step.outcome }}"}),
                }
            ],
        },
    ]
    on_exit = [
        {
            "name": "notify",
            "http": http(
                f"{recorder.url}/notify",
                body={"outcome": "${{ run.outcome }}", "error": "${{ run.error }}"},
            ),
        }
    ]
    runs.apply([workflow("locked", steps, onExit=on_exit), run("locked-1", "locked")])
    recorder.wait_for_calls("/charge", 1)
    runs.cluster.kubectl(
        "patch", "workflowrun", "locked-1", "-n", runs.namespace, "--type", "merge",
        "-p", json.dumps({"spec": {"cancel": True}}),
    )  # fmt: skip
    status = runs.wait("locked-1")
    assert status["phase"] == "Cancelled", status
    assert status["error"] == {"type": "Cancelled", "message": "the run was cancelled"}
    assert status["exitOutcome"] == "Cancelled"
    assert status["steps"]["charge"]["phase"] == "Cancelled"
    assert status["steps"]["notify"]["phase"] == "Succeeded"
    assert [(c.method, c.path) for c in recorder.calls] == [
        ("POST", "/reserve"),
        ("POST", "/charge"),
        ("POST", "/audit"),
        ("POST", "/refund"),
        ("DELETE", "/reserve/r-1"),
        ("POST", "/notify"),
    ]
    (audit,) = recorder.calls_to("/audit")
    assert audit.body == {"charge": "Cancelled"}
    (notify,) = recorder.calls_to("/notify")
    assert notify.body == {
        "outcome": "Cancelled",
        "error": {"type": "Cancelled", "message": "the run was cancelled"},
    }
    assert [(c["step"], c["phase"]) for c in status["compensations"]] == [
        ("charge", "Succeeded"),
        ("reserve", "Succeeded"),
    ]


def test_on_interrupt_on_a_step_with_nothing_in_flight_is_refused_at_apply_time(
    crds: Cluster, namespace: str
) -> None:
    step = {
        "name": "pause",
        "sleep": {"duration": "1s"},
        "compensate": {"http": {"url": "http://x"}, "onInterrupt": True},
    }
    manifest = workflow("w", [step])
    result = crds.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert result.returncode != 0, result.stdout
    assert "step pause, field compensate.onInterrupt: only http, job, worker and workflow" in (
        result.stderr
    )
