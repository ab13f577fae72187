"""A lock kept in another namespace (`synchronization.namespace`) in the engine: the namespace
travels with the hold and its commands, and a refusal fails the holder with `LockRefused`."""

from __future__ import annotations

import pytest
from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.engine import replay, state_from_status, status_of
from baton.engine.commands import AcquireLock, ReleaseLock
from baton.engine.events import HistoryEntry, LockRefused, LockWaiting
from baton.engine.locks import RUN_KEY
from baton.engine.state import state_to_status

SHARED_MUTEX = """
steps:
  - name: pay
    synchronization: {mutex: "account-${{ input.id }}", namespace: shared}
    http: {url: "http://bank/pay"}
"""

REFUSAL = "namespace 'shared' does not let 'team-a' use its locks: add the key 'team-a'"


def test_the_lock_namespace_travels_with_the_ask_the_release_and_the_status() -> None:
    run = Run(SHARED_MUTEX, {"id": 7})
    [acquire] = run.of_type(AcquireLock)
    assert (acquire.name, acquire.namespace) == ("account-7", "shared")
    status = status_of(run.definition, run.sim.state)
    assert status["locks"]["pay"]["namespace"] == "shared"
    assert state_from_status(state_to_status(run.sim.state)) == run.sim.state
    run.deliver(LockRefused(key="pay", message=REFUSAL))
    [release] = run.of_type(ReleaseLock)
    assert release.namespace == "shared"


def test_a_refused_lock_fails_the_step_naming_the_field() -> None:
    run = Run(SHARED_MUTEX, {"id": 7})
    run.deliver(LockRefused(key="pay", message=REFUSAL))
    assert run.step_phase("pay") is StepPhase.FAILED
    error = run.step("pay").error
    assert error is not None
    assert (error.type, error.message) == ("LockRefused", REFUSAL)
    assert error.details == {"field": "synchronization.namespace", "namespace": "shared"}
    assert run.phase is RunPhase.FAILED
    assert run.started() == []


def test_a_refused_run_lock_fails_the_run() -> None:
    run = Run(
        "synchronization: {semaphore: {name: exports, limit: 2}, namespace: shared}\n"
        "steps: [{name: a, http: {url: http://x}}]"
    )
    run.deliver(LockRefused(key=RUN_KEY, message=REFUSAL))
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.steps == {}
    assert [c.key for c in run.of_type(ReleaseLock)] == [RUN_KEY]


def test_a_waiter_sees_holders_of_other_namespaces_with_their_namespace() -> None:
    run = Run(SHARED_MUTEX, {"id": 7})
    run.deliver(LockWaiting(key="pay", holders=["team-b/transfer-7"]))
    message = status_of(run.definition, run.sim.state)["locks"]["pay"]["message"]
    assert message == "waiting for mutex account-7 held by run team-b/transfer-7"


def test_a_refusal_replays_to_the_same_state() -> None:
    run = Run(SHARED_MUTEX, {"id": 7})
    run.deliver(LockRefused(key="pay", message=REFUSAL))
    logged = [HistoryEntry.from_json(entry.to_json()) for entry in run.sim.history]
    assert replay(run.definition, logged) == run.sim.state


def test_the_lock_namespace_must_be_a_namespace_name() -> None:
    with pytest.raises(ValueError, match="namespace"):
        definition(
            "steps: [{name: a, synchronization: {mutex: m, namespace: ../kube-system}, "
            "http: {url: http://x}}]"
        )
