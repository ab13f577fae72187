"""Updates sent as a user sends them (`baton update`, `kubectl patch`): refused by a validator
with the run untouched, accepted with the handler's result printed, refused once the run
finished, and a crash between accepting an update and publishing its answer."""

from __future__ import annotations

import json
from typing import Any

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import baton, history, http, run, send_signal, workflow

CART = workflow(
    "cart",
    [
        {"name": "shop", "waitForSignal": {"name": "checkout"}},
    ],
    vars={"items": []},
    updates=[
        {
            "name": "addItem",
            "validate": "update.payload.quantity > 0",
            "message": "quantity must be positive, got ${{ update.payload.quantity }}",
            "set": {"items": "${{ vars.items + [update.payload.sku] }}"},
            "output": {"count": "${{ size(vars.items) }}"},
        }
    ],
    output={"items": "${{ vars.items }}"},
)


def _update(runs: Runs, name: str, *args: str) -> Any:
    return baton(runs.cluster, "update", name, *args, "-n", runs.namespace, check=False)


def test_an_update_refused_by_its_validator_leaves_the_run_untouched(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([CART, run("cart-1", "cart")])
    before = runs.wait("cart-1", step="shop", step_phase="Waiting")
    result = _update(runs, "cart-1", "addItem", "--payload", '{"sku": "a", "quantity": 0}')
    assert result.returncode == 1, result
    assert "update refused: quantity must be positive, got 0" in result.stderr
    after = runs.status("cart-1")
    assert after["vars"] == before["vars"] == {"items": []}
    assert after["steps"] == before["steps"]
    (answer,) = after["updates"].values()
    assert answer["outcome"] == "Refused"
    assert [e["type"] for e in history(runs.cluster, runs.namespace, "cart-1")] == ["RunStarted"]


def test_an_accepted_update_changes_vars_and_baton_update_prints_its_result(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([CART, run("cart-2", "cart")])
    runs.wait("cart-2", step="shop", step_phase="Waiting")
    result = _update(
        runs, "cart-2", "addItem", "--payload", '{"sku": "a", "quantity": 2}', "--id", "first"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"count": 1}
    assert "waiting for its answer in status.updates.first" in result.stderr
    status = runs.status("cart-2")
    assert status["vars"] == {"items": ["a"]}
    assert status["updates"]["first"]["outcome"] == "Completed"
    events = history(runs.cluster, runs.namespace, "cart-2")
    assert [e["type"] for e in events] == ["RunStarted", "UpdateAccepted"]
    assert events[1]["id"] == "first"
    send_signal(runs.cluster, runs.namespace, "cart-2", "checkout")
    assert runs.wait("cart-2")["output"] == {"items": ["a"]}


def test_an_update_sent_after_the_run_finished_is_refused(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([CART, run("cart-3", "cart", signals=[{"name": "checkout"}])])
    assert runs.wait("cart-3")["phase"] == "Succeeded"
    result = _update(runs, "cart-3", "addItem", "--payload", '{"sku": "a", "quantity": 1}')
    assert result.returncode == 1, result
    assert "update refused: the run has finished (Succeeded)" in result.stderr
    assert runs.status("cart-3")["vars"] == {"items": []}


def test_an_update_with_an_http_step_answers_with_the_steps_output(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/hold", Reply(body={"id": "h-7"}))
    spec = workflow(
        "holds",
        [{"name": "shop", "waitForSignal": {"name": "checkout"}}],
        updates=[
            {
                "name": "reserve",
                "steps": [
                    {
                        "name": "hold",
                        "http": http(f"{recorder.url}/hold", body="${{ update.payload }}"),
                    }
                ],
                "output": {"hold": "${{ steps.hold.output.id }}"},
            }
        ],
    )
    runs.apply([spec, run("holds-1", "holds")])
    runs.wait("holds-1", step="shop", step_phase="Waiting")
    result = _update(runs, "holds-1", "reserve", "--payload", '{"sku": "A-1"}', "--id", "r1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hold": "h-7"}
    assert [call.body for call in recorder.calls_to("/hold")] == [{"sku": "A-1"}]
    events = [(e["type"], e.get("key")) for e in history(runs.cluster, runs.namespace, "holds-1")]
    assert ("UpdateAccepted", None) in events
    assert ("ActivityCompleted", "@r1.hold") in events
