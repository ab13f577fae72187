"""Signals sent as a user sends them (`kubectl patch`, `baton signal`), signal handlers, and
queries read with `kubectl get -o jsonpath`."""

from __future__ import annotations

import time
from datetime import datetime

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import (
    baton,
    http,
    jsonpath,
    readme_command,
    run,
    send_signal,
    wait_until,
    workflow,
)


def test_seven_day_signal_wait_is_answered_by_a_kubectl_json_patch(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "approve",
                [
                    {
                        "name": "approval",
                        "waitForSignal": {"name": "manualApproval", "timeout": "7d"},
                    },
                    {
                        "name": "transfer",
                        "http": http(
                            f"{recorder.url}/transfer",
                            body={"by": "${{ steps.approval.output.by }}"},
                        ),
                    },
                ],
            ),
            run("approve-1", "approve", signals=[]),
        ]
    )
    status = runs.wait("approve-1", step="approval", step_phase="Waiting")
    wake_at = datetime.fromisoformat(status["steps"]["approval"]["wakeAt"]).timestamp()
    assert abs(wake_at - time.time() - 7 * 86400) < 120
    assert recorder.calls == []
    send_signal(
        runs.cluster, runs.namespace, "approve-1", "manualApproval", {"ok": True, "by": "ada"}
    )
    status = runs.wait("approve-1")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["approval"]["output"] == {"ok": True, "by": "ada"}
    assert recorder.calls_to("/transfer")[0].body == {"by": "ada"}


def test_the_readmes_kubectl_patch_signals_a_run_created_without_signals(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "property-purchase",
                [{"name": "approval", "waitForSignal": {"name": "manualApproval"}}],
            ),
            run("purchase-42", "property-purchase"),
        ]
    )
    runs.wait("purchase-42", step="approval", step_phase="Waiting")
    command = readme_command("kubectl patch workflowrun purchase-42 --type json")
    runs.cluster.kubectl(*command[1:], "-n", runs.namespace)
    status = runs.wait("purchase-42")
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["approval"]["output"] == {"ok": True}


def test_signal_handler_updates_vars_and_the_query_shows_it_through_kubectl_jsonpath(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "ticket",
                [{"name": "closed", "waitForSignal": {"name": "close"}}],
                vars={"priority": "normal"},
                signalHandlers=[
                    {"signal": "updatePriority", "set": {"priority": "${{ signal.payload.level }}"}}
                ],
                queries={"priority": "vars.priority", "urgent": "vars.priority == 'high'"},
            ),
            run("ticket-1", "ticket", signals=[]),
        ]
    )
    runs.wait("ticket-1", step="closed", step_phase="Waiting")

    def query(name: str) -> str:
        return jsonpath(
            runs.cluster, runs.namespace, "workflowrun", "ticket-1", f"{{.status.queries.{name}}}"
        )

    assert query("priority") == "normal"
    assert query("urgent") == "false"
    send_signal(runs.cluster, runs.namespace, "ticket-1", "updatePriority", {"level": "high"})
    wait_until("query priority is high", lambda: query("priority") == "high")
    assert query("urgent") == "true"
    assert runs.status("ticket-1")["vars"] == {"priority": "high"}
    baton(runs.cluster, "signal", "ticket-1", "close", "-n", runs.namespace)
    status = runs.wait("ticket-1")
    assert status["phase"] == "Succeeded", status


def test_signal_sent_before_its_wait_starts_is_kept_until_the_wait_takes_it(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "early",
                [
                    {"name": "nap", "sleep": {"duration": "2s"}},
                    {"name": "go", "waitForSignal": {"name": "go", "timeout": "1m"}},
                ],
                output="${{ steps.go.output }}",
            ),
            run("early-1", "early", signals=[{"name": "go", "payload": {"n": 1}}]),
        ]
    )
    status = runs.wait("early-1")
    assert status["phase"] == "Succeeded", status
    assert status["output"] == {"n": 1}


def test_signal_wait_that_times_out_fails_the_step_with_a_timeout_error(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "expire", [{"name": "approval", "waitForSignal": {"name": "ok", "timeout": "1s"}}]
            ),
            run("expire-1", "expire"),
        ]
    )
    status = runs.wait("expire-1")
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "signal"
