"""Hostile expressions and schemas on the real control plane: refused by the API server or with
an Invalid condition when they are applied, or ending their own run with a message, while the
operator goes on serving every other run."""

from __future__ import annotations

from typing import Any

import pytest
from clusterkit import KubectlError, Runs
from operator_process import OperatorProcess
from recorder import Recorder
from runkit import http, run, send_signal, wait_until, workflow

from baton.api.workflow import MAX_EXPRESSION_LENGTH


def invalid_condition(runs: Runs, kind: str, name: str) -> dict[str, Any] | None:
    obj = runs.api.get_namespaced_custom_object("baton.dev", "v1alpha1", runs.namespace, kind, name)
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found["type"] == "Invalid" and found["status"] == "True":
            return dict(found)
    return None


def test_a_hostile_when_fails_its_run_with_a_message_while_another_run_goes_on(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    # A run in flight, waiting for a signal, before the hostile one arrives.
    runs.apply(
        [
            workflow(
                "patient",
                [
                    {"name": "gate", "waitForSignal": {"name": "go"}},
                    {"name": "call", "http": http(f"{recorder.url}/after")},
                ],
            ),
            run("patient-1", "patient"),
        ]
    )
    runs.wait("patient-1", step="gate", step_phase="Waiting")
    # Lists of lists built by nested `map`: on 300 items this ran for hours on the only
    # event loop (and grew by hundreds of MB); it must be refused before it starts.
    hostile_when = "input.l.map(a, input.l.map(b, input.l)).size() > 0"
    runs.apply(
        [
            workflow(
                "hostile",
                [{"name": "check", "when": hostile_when, "http": http(f"{recorder.url}/never")}],
            ),
            run("hostile-1", "hostile", {"l": list(range(300))}),
        ]
    )
    status = runs.wait("hostile-1")
    assert status["phase"] == "Failed", status
    error = status["steps"]["check"]["error"]
    assert error["type"] == "ExpressionError", error
    assert "over the evaluation budget" in error["message"], error
    assert recorder.calls_to("/never") == []

    send_signal(runs.cluster, runs.namespace, "patient-1", "go")
    assert runs.wait("patient-1")["phase"] == "Succeeded"
    assert len(recorder.calls_to("/after")) == 1
    assert operator.alive


def test_a_workflow_with_a_schema_referring_to_itself_is_invalid_naming_the_field(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply(workflow("selfish", [{"name": "s", "set": {"a": 1}}], inputSchema={"$ref": "#"}))
    found = wait_until(
        "Workflow selfish has an Invalid condition",
        lambda: invalid_condition(runs, "workflows", "selfish"),
    )
    assert "field 'inputSchema'" in found["message"], found
    assert "without descending into the input" in found["message"], found


def test_a_workflow_nesting_four_loops_is_invalid_naming_the_step_and_field(
    runs: Runs, operator: OperatorProcess
) -> None:
    when = "input.l.map(a,input.l.map(b,input.l.map(c,input.l.map(d,a+b)))).size() > 0"
    runs.apply(workflow("loops", [{"name": "check", "when": when, "set": {"a": 1}}]))
    found = wait_until(
        "Workflow loops has an Invalid condition",
        lambda: invalid_condition(runs, "workflows", "loops"),
    )
    assert "step 'check', field 'when'" in found["message"], found
    assert "comprehensions nested 4 deep" in found["message"], found


def test_the_api_server_refuses_a_when_longer_than_the_limit(runs: Runs) -> None:
    when = " || ".join(["input.a == 1"] * 400)
    assert len(when) > MAX_EXPRESSION_LENGTH
    with pytest.raises(KubectlError, match="4096"):
        runs.apply(workflow("long", [{"name": "check", "when": when, "set": {"a": 1}}]))
