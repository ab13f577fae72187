"""Updates in the engine: the validator's refusals (which change nothing), the accepting
decision (vars assigned, result answered), and their limits."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from enginekit import Run, definition

from baton.api.run import RunPhase
from baton.engine import DefinitionError
from baton.engine.events import CancelRequested, UpdateAccepted, UpdateRequested
from baton.engine.state import UpdateOutcome, state_from_status, state_to_status
from baton.engine.updates import MAX_PAYLOAD_BYTES, MAX_RESULTS, MAX_RUNNING, refusal

CART = """
vars: {items: [], limit: 2}
steps:
  - {name: shop, waitForSignal: {name: checkout}}
updates:
  - name: addItem
    validate: "size(vars.items) < vars.limit && update.payload.quantity > 0"
    message: "cannot add ${{ update.payload.sku }}: ${{ size(vars.items) }} items already"
    set:
      items: "${{ vars.items + [update.payload.sku] }}"
    output: {count: "${{ size(vars.items) }}", id: "${{ update.id }}"}
  - name: clear
    set: {items: []}
"""


def _send(run: Run, id: str, name: str, payload: Any = None) -> str | None:
    """Validate and, when accepted, fold the update as the shell does; the refusal or None."""
    request = UpdateRequested(id, name, payload)
    reason = refusal(run.definition, run.sim.state, request, run.now)
    if reason is None:
        run.deliver(request.accepted())
    return reason


def test_an_accepted_update_assigns_vars_and_answers_with_the_output_after_them() -> None:
    run = Run(CART)
    assert _send(run, "u1", "addItem", {"sku": "a", "quantity": 1}) is None
    assert run.sim.state.vars["items"] == ["a"]
    answer = run.sim.state.updates["u1"]
    assert answer.outcome is UpdateOutcome.COMPLETED
    assert answer.output == {"count": 1, "id": "u1"}


def test_a_refused_update_answers_with_the_rendered_message_and_changes_nothing() -> None:
    run = Run(CART)
    _send(run, "u1", "addItem", {"sku": "a", "quantity": 1})
    _send(run, "u2", "addItem", {"sku": "b", "quantity": 1})
    before = copy.deepcopy(run.sim.state)
    reason = _send(run, "u3", "addItem", {"sku": "c", "quantity": 1})
    assert reason == "cannot add c: 2 items already"
    assert run.sim.state == before


def test_a_validator_that_is_not_a_boolean_refuses_saying_so() -> None:
    run = Run(CART.replace("size(vars.items) < vars.limit && ", "").replace(" > 0", ""))
    reason = _send(run, "u1", "addItem", {"sku": "a", "quantity": 3})
    assert reason == "validate must be true or false, got a number: 3"


def test_a_validator_that_fails_to_evaluate_refuses_with_the_error() -> None:
    run = Run(CART)
    reason = _send(run, "u1", "addItem", {"sku": "a"})
    assert reason is not None
    assert reason.startswith("validate failed: ")
    assert run.sim.state.vars["items"] == []


def test_an_update_without_a_validator_is_accepted() -> None:
    run = Run(CART)
    _send(run, "u1", "addItem", {"sku": "a", "quantity": 1})
    assert _send(run, "u2", "clear") is None
    assert run.sim.state.vars["items"] == []
    assert run.sim.state.updates["u2"].output is None


def test_an_update_of_an_unknown_name_is_refused_naming_the_handlers() -> None:
    run = Run(CART)
    reason = _send(run, "u1", "addToCart", {})
    assert reason == "no update handler is named 'addToCart' (the workflow has: addItem, clear)"


def test_an_update_to_a_finished_run_is_refused() -> None:
    run = Run(CART)
    run.signal(0, "checkout")
    assert run.phase is RunPhase.SUCCEEDED
    reason = _send(run, "u1", "clear")
    assert reason == "the run has finished (Succeeded); it takes no more updates"


def test_an_update_to_a_cancelled_run_that_is_still_ending_is_refused() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: "http://pay"}
            compensate: {http: {url: "http://refund"}}
          - {name: shop, waitForSignal: {name: checkout}}
        updates: [{name: clear, set: {items: []}}]
        """
    )
    run.complete("pay")
    run.deliver(CancelRequested())
    assert run.phase is RunPhase.COMPENSATING
    reason = _send(run, "u1", "clear")
    assert reason is not None
    assert "it takes no more updates" in reason


def test_a_payload_over_the_limit_is_refused() -> None:
    run = Run(CART)
    reason = _send(run, "u1", "addItem", {"sku": "x" * MAX_PAYLOAD_BYTES, "quantity": 1})
    assert reason is not None
    assert reason.startswith("payload: ")
    assert f"over the {MAX_PAYLOAD_BYTES}" in reason


def test_a_validator_over_the_evaluation_budget_on_the_payload_is_refused() -> None:
    run = Run(
        """
        steps: [{name: wait, waitForSignal: {name: go}}]
        updates:
          - name: heavy
            validate: "update.payload.all(x, update.payload.all(y, update.payload.all(z, true)))"
        """
    )
    reason = _send(run, "u1", "heavy", list(range(1000)))
    assert reason is not None
    assert "over the evaluation budget" in reason


def test_a_handler_whose_set_fails_answers_failed_and_assigns_nothing() -> None:
    run = Run(
        """
        vars: {a: 1, b: 1}
        steps: [{name: wait, waitForSignal: {name: go}}]
        updates:
          - name: both
            set: {a: "${{ update.payload.a }}", b: "${{ update.payload.missing.x }}"}
        """
    )
    assert _send(run, "u1", "both", {"a": 2}) is None
    answer = run.sim.state.updates["u1"]
    assert answer.outcome is UpdateOutcome.FAILED
    assert answer.error is not None
    assert answer.error.type == "ExpressionError"
    assert run.sim.state.vars == {"a": 1, "b": 1}


def test_an_update_delivered_twice_is_applied_once() -> None:
    run = Run(CART)
    event = UpdateAccepted("u1", "addItem", {"sku": "a", "quantity": 1})
    run.deliver(event)
    run.deliver(event)
    assert run.sim.state.vars["items"] == ["a"]


def test_answers_kept_are_bounded_oldest_first() -> None:
    run = Run(CART)
    for i in range(MAX_RESULTS + 3):
        run.deliver(UpdateAccepted(f"u{i}", "clear"))
    kept = list(run.sim.state.updates)
    assert len(kept) == MAX_RESULTS
    assert kept[0] == "u3"


def test_an_update_unblocks_what_waits_on_vars() -> None:
    run = Run(
        """
        vars: {approved: false}
        steps:
          - name: poll
            set: {seen: "${{ vars.approved }}"}
            repeat: {until: "vars.approved", interval: 1m}
          - {name: after, http: {url: "http://after"}}
        updates:
          - {name: approve, set: {approved: true}, output: "ok"}
        """
    )
    assert run.step_phase("after") is None
    run.deliver(UpdateAccepted("u1", "approve"))
    run.fire()
    assert run.started() == ["after"]


def test_answers_round_trip_through_the_status() -> None:
    run = Run(CART)
    _send(run, "u1", "addItem", {"sku": "a", "quantity": 1})
    status = state_to_status(run.sim.state)
    assert status["updates"]["u1"]["outcome"] == "Completed"
    assert state_from_status(status) == run.sim.state


def test_update_is_unknown_outside_update_handlers() -> None:
    with pytest.raises(DefinitionError, match="known only in an update handler"):
        definition(
            """
            steps: [{name: a, set: {x: "${{ update.payload }}"}}]
            """
        )


def test_two_update_handlers_of_one_name_are_refused() -> None:
    with pytest.raises(DefinitionError, match="declared twice"):
        definition(
            """
            steps: [{name: a, waitForSignal: {name: go}}]
            updates: [{name: u, set: {x: 1}}, {name: u, set: {x: 2}}]
            """
        )


def test_a_broken_validator_is_refused_at_apply_time_naming_the_field() -> None:
    with pytest.raises(DefinitionError, match=r"updates\[0\]\.validate"):
        definition(
            """
            steps: [{name: a, waitForSignal: {name: go}}]
            updates: [{name: u, validate: "inputs.x > 1"}]
            """
        )


RESERVE = """
vars: {reserved: []}
steps:
  - {name: shop, waitForSignal: {name: checkout}}
updates:
  - name: reserve
    set: {reserved: "${{ vars.reserved + [update.payload.sku] }}"}
    steps:
      - name: hold
        http: {url: "http://stock/hold/${{ update.payload.sku }}"}
        retry: {maxAttempts: 2, initialInterval: 1s}
      - {name: note, set: {held: "${{ steps.hold.output.ref }}"}}
    output: {ref: "${{ steps.hold.output.ref }}", sku: "${{ update.payload.sku }}"}
"""


def test_an_update_with_steps_runs_them_and_answers_once_they_succeed() -> None:
    run = Run(RESERVE)
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    assert run.sim.state.updates["r1"].outcome is UpdateOutcome.RUNNING
    assert run.sim.state.vars["reserved"] == ["A-1"]
    assert run.start_of("@r1.hold").spec["url"] == "http://stock/hold/A-1"
    run.complete("@r1.hold", {"ref": "h-7"})
    answer = run.sim.state.updates["r1"]
    assert answer.outcome is UpdateOutcome.COMPLETED
    assert answer.output == {"ref": "h-7", "sku": "A-1"}
    assert not [p for p in run.sim.state.steps if p.startswith("@r1.")]


def test_an_update_whose_step_fails_for_good_answers_failed_and_the_run_goes_on() -> None:
    run = Run(RESERVE)
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    run.fail("@r1.hold", "OutOfStock")
    run.fire()
    run.fail("@r1.hold", "OutOfStock")
    answer = run.sim.state.updates["r1"]
    assert answer.outcome is UpdateOutcome.FAILED
    assert answer.error is not None
    assert answer.error.type == "OutOfStock"
    assert run.phase is RunPhase.RUNNING


def test_the_run_waits_for_the_steps_of_its_updates_before_it_succeeds() -> None:
    run = Run(RESERVE)
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    run.signal(0, "checkout")
    assert run.phase is RunPhase.RUNNING
    run.complete("@r1.hold", {"ref": "h-7"})
    assert run.phase is RunPhase.SUCCEEDED


def test_cancelling_the_run_cancels_the_steps_of_its_updates_and_answers_them_failed() -> None:
    run = Run(RESERVE)
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    run.deliver(CancelRequested())
    assert run.phase is RunPhase.CANCELLED
    assert [c.key for c in run.commands if hasattr(c, "idempotency_key")] == ["@r1.hold"]
    answer = run.sim.state.updates["r1"]
    assert answer.outcome is UpdateOutcome.FAILED


def test_a_running_update_round_trips_through_the_status() -> None:
    run = Run(RESERVE)
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    status = state_to_status(run.sim.state)
    assert status["updates"]["r1"] == {
        "name": "reserve",
        "outcome": "Running",
        "payload": {"sku": "A-1"},
        "at": status["updates"]["r1"]["at"],
    }
    assert state_from_status(status) == run.sim.state


def test_updates_running_their_steps_are_bounded() -> None:
    run = Run(RESERVE)
    for i in range(MAX_RUNNING):
        run.deliver(UpdateAccepted(f"r{i}", "reserve", {"sku": f"S-{i}"}))
    reason = _send(run, "r-more", "reserve", {"sku": "X"})
    assert reason is not None
    assert reason.startswith(f"{MAX_RUNNING} updates are running their steps already")


def test_a_handler_step_that_does_not_validate_is_refused_naming_it() -> None:
    with pytest.raises(DefinitionError, match=r"updates\[0\]\.steps\[0\]\.htpp"):
        definition(
            """
            steps: [{name: a, waitForSignal: {name: go}}]
            updates: [{name: u, steps: [{name: s, htpp: {url: "http://x"}}]}]
            """
        )


def test_a_failing_run_compensates_the_completed_steps_of_its_updates() -> None:
    run = Run(
        """
        steps:
          - {name: shop, waitForSignal: {name: checkout}}
          - {name: pay, http: {url: "http://pay"}, retry: {maxAttempts: 1}}
        updates:
          - name: reserve
            steps:
              - name: hold
                http: {url: "http://stock/hold"}
                compensate: {http: {url: "http://stock/release/${{ steps.hold.output.id }}"}}
        """
    )
    run.deliver(UpdateAccepted("r1", "reserve", {"sku": "A-1"}))
    run.complete("@r1.hold", {"id": "h-7"})
    run.signal(0, "checkout")
    run.fail("pay", "CardDeclined")
    assert run.phase is RunPhase.COMPENSATING
    assert run.start_of("@r1.hold/compensate").spec["url"] == "http://stock/release/h-7"
    run.complete("@r1.hold/compensate")
    assert run.phase is RunPhase.COMPENSATED
