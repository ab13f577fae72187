"""The shell's bookkeeping of update requests: the cursor over spec.updates, refusals kept in
status beside the engine's answers, and nothing answered twice."""

from __future__ import annotations

import yaml

from baton.api.workflow import WorkflowSpec
from baton.engine import compile_definition, decide, initial_state
from baton.engine.events import RunStarted, UpdateAccepted
from baton.engine.state import State
from baton.engine.updates import MAX_RESULTS
from baton.handlers.runs import split_status
from baton.handlers.updates import Answers, unanswered

DEFINITION = compile_definition(
    WorkflowSpec.model_validate(
        yaml.safe_load(
            """
            vars: {n: 0}
            steps: [{name: wait, waitForSignal: {name: go}}]
            updates:
              - {name: bump, validate: "update.payload > 0", set: {n: "${{ vars.n + 1 }}"}}
            """
        )
    )
)


def _started() -> State:
    event = RunStarted(input=None, run_name="r", namespace="ns", uid="uid")
    return decide(DEFINITION, initial_state(), event, 1000.0).state


def _spec(*payloads: int) -> dict[str, object]:
    return {
        "updates": [{"id": f"u{i}", "name": "bump", "payload": p} for i, p in enumerate(payloads)]
    }


def test_requests_are_taken_once_in_list_order() -> None:
    answers = Answers()
    assert [r.id for r in answers.requests(_spec(1, 2))] == ["u0", "u1"]
    assert [r.id for r in answers.requests(_spec(1, 2, 3))] == ["u2"]
    assert answers.seen == 3


def test_a_refusal_is_kept_by_the_shell_and_leaves_the_state_alone() -> None:
    state = _started()
    answers = Answers()
    (request,) = answers.requests(_spec(0))
    assert answers.answer(DEFINITION, state, request, 1001.0) is None
    assert answers.refused["u0"]["outcome"] == "Refused"
    assert answers.unwritten
    assert state == _started()


def test_an_accepted_request_becomes_its_event() -> None:
    answers = Answers()
    (request,) = answers.requests(_spec(1))
    assert answers.answer(DEFINITION, _started(), request, 1001.0) == UpdateAccepted(
        "u0", "bump", 1
    )


def test_a_request_taken_again_after_a_crash_is_not_answered_twice() -> None:
    state = decide(DEFINITION, _started(), UpdateAccepted("u0", "bump", 1), 1001.0).state
    answers = Answers()  # the cursor was lost with the status write
    (request,) = answers.requests(_spec(1))
    assert answers.answer(DEFINITION, state, request, 1002.0) is None
    assert not answers.refused


def test_the_status_splits_into_the_engines_answers_and_the_shells_refusals() -> None:
    state = decide(DEFINITION, _started(), UpdateAccepted("u0", "bump", 1), 1001.0).state
    answers = Answers()
    requests = answers.requests(_spec(1, 0))
    answers.answer(DEFINITION, state, requests[1], 1002.0)
    from baton.engine.state import state_to_status

    status = state_to_status(state)
    answers.publish(status)
    assert set(status["updates"]) == {"u0", "u1"}
    engine, _ = split_status(status)
    assert set(engine["updates"]) == {"u0"}
    assert "updatesSeen" not in engine
    again = Answers.from_status(status)
    assert again.seen == 2
    assert set(again.refused) == {"u1"}


def test_refusals_kept_are_bounded() -> None:
    answers = Answers()
    state = _started()
    for request in answers.requests(_spec(*[0] * (MAX_RESULTS + 5))):
        answers.answer(DEFINITION, state, request, 1001.0)
    assert len(answers.refused) == MAX_RESULTS
    assert next(iter(answers.refused)) == "u5"


def test_a_finished_run_with_a_request_not_answered_needs_a_loop() -> None:
    body = {"spec": _spec(1), "status": {"phase": "Succeeded", "updatesSeen": 0}}
    assert unanswered(body)
    body["status"] = {"phase": "Succeeded", "updatesSeen": 1}
    assert not unanswered(body)
