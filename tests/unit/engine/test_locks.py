"""Mutexes and semaphores in the engine: a holder waits for its grant, releases when it ends."""

from __future__ import annotations

import pytest
from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.engine import (
    CancelRequested,
    DefinitionError,
    RedriveRequested,
    ResumeRequested,
    SuspendRequested,
    pending_commands,
    replay,
    state_from_status,
    status_of,
)
from baton.engine.commands import AcquireLock, Command, ReleaseLock
from baton.engine.events import HistoryEntry, LockAcquired, LockWaiting, TimerFired
from baton.engine.locks import LOCK_WAITING, RUN_KEY
from baton.engine.state import state_to_status

STEP_MUTEX = """
steps:
  - name: pay
    synchronization: {mutex: "account-${{ input.id }}"}
    http: {url: "http://bank/pay"}
  - name: after
    http: {url: "http://bank/after"}
"""

RUN_SEMAPHORE = """
synchronization:
  semaphore: {name: deploys, limit: 2}
steps:
  - name: deploy
    http: {url: "http://deploy"}
"""


def test_a_step_with_a_mutex_asks_for_it_and_waits_before_running() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    [acquire] = run.of_type(AcquireLock)
    assert (acquire.key, acquire.kind, acquire.name, acquire.limit) == (
        "pay",
        "mutex",
        "account-7",
        1,
    )
    assert acquire.holder == "uid/pay"
    assert run.step_phase("pay") is StepPhase.WAITING
    assert run.started() == []


def test_a_granted_step_runs_and_releases_its_mutex_when_it_succeeds() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(LockAcquired(key="pay"))
    assert run.started() == ["pay"]
    run.complete("pay")
    [release] = run.of_type(ReleaseLock)
    assert (release.key, release.name, release.holder) == ("pay", "account-7", "uid/pay")
    assert run.started() == ["after"]
    assert run.sim.state.locks == {}


def test_a_step_keeps_its_lock_across_retries_and_releases_it_when_it_fails() -> None:
    run = Run(
        STEP_MUTEX.replace(
            'http: {url: "http://bank/pay"}',
            'http: {url: "http://b"}\n    retry: {maxAttempts: 2, initialInterval: 1s}',
        ),
        {"id": 1},
    )
    run.deliver(LockAcquired(key="pay"))
    run.fail("pay")
    assert run.of_type(ReleaseLock) == []
    run.fire()
    assert run.started() == ["pay"]
    assert run.of_type(AcquireLock) == []
    run.fail("pay")
    assert [c.key for c in run.of_type(ReleaseLock)] == ["pay"]
    assert run.phase is RunPhase.FAILED


def test_cancelling_a_run_waiting_for_a_lock_leaves_the_queue() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(CancelRequested())
    assert [c.holder for c in run.of_type(ReleaseLock)] == ["uid/pay"]
    assert run.phase is RunPhase.CANCELLED
    assert run.step_phase("pay") is StepPhase.CANCELLED


def test_a_grant_arriving_after_the_wait_ended_changes_nothing() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(CancelRequested())
    before = run.sim.state
    decision = run.deliver(LockAcquired(key="pay"))
    assert decision.state == before
    assert decision.commands == ()


def test_the_wait_shows_who_holds_the_mutex() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(LockWaiting(key="pay", holders=["other-run"]))
    status = status_of(run.definition, run.sim.state)
    assert status["locks"]["pay"]["message"] == "waiting for mutex account-7 held by run other-run"
    [condition] = [c for c in status["conditions"] if c["type"] == LOCK_WAITING]
    assert condition["status"] == "True"
    assert condition["message"] == "waiting for mutex account-7 held by run other-run"
    run.deliver(LockAcquired(key="pay"))
    status = status_of(run.definition, run.sim.state)
    assert status["locks"]["pay"]["message"] == "holds mutex account-7"
    [condition] = [c for c in status["conditions"] if c["type"] == LOCK_WAITING]
    assert condition["status"] == "False"


def test_a_semaphore_wait_counts_its_holders() -> None:
    run = Run(RUN_SEMAPHORE)
    run.deliver(LockWaiting(key=RUN_KEY, holders=["a", "b"]))
    message = status_of(run.definition, run.sim.state)["locks"][RUN_KEY]["message"]
    assert message == "waiting for semaphore deploys: 2/2 held by a, b"


def test_a_run_lock_is_taken_before_the_first_step_and_released_when_the_run_ends() -> None:
    run = Run(RUN_SEMAPHORE)
    [acquire] = run.of_type(AcquireLock)
    assert (acquire.key, acquire.kind, acquire.limit) == (RUN_KEY, "semaphore", 2)
    assert run.sim.state.steps == {}
    run.deliver(LockAcquired(key=RUN_KEY))
    assert run.started() == ["deploy"]
    run.complete("deploy")
    assert run.phase is RunPhase.SUCCEEDED
    assert [c.key for c in run.of_type(ReleaseLock)] == [RUN_KEY]


def test_a_run_waiting_for_its_lock_can_be_cancelled() -> None:
    run = Run(RUN_SEMAPHORE)
    run.deliver(CancelRequested())
    assert run.phase is RunPhase.CANCELLED
    assert [c.key for c in run.of_type(ReleaseLock)] == [RUN_KEY]


def test_a_run_waiting_for_its_lock_times_out() -> None:
    run = Run(RUN_SEMAPHORE.replace("steps:", "timeout: 10s\nsteps:"))
    run.deliver(TimerFired(), run.now + 11)
    assert run.phase is RunPhase.TIMED_OUT
    assert [c.key for c in run.of_type(ReleaseLock)] == [RUN_KEY]


def test_a_waiting_lock_is_requested_again_after_a_restart_and_a_held_one_is_not() -> None:
    run = Run(
        STEP_MUTEX.replace(
            "  - name: after\n", '  - name: after\n    synchronization: {mutex: "x"}\n'
        ),
        {"id": 7},
    )
    state = state_from_status(state_to_status(run.sim.state))
    assert state == run.sim.state
    assert _acquires(pending_commands(run.definition, state)) == ["pay"]
    run.deliver(LockAcquired(key="pay"))
    assert _acquires(pending_commands(run.definition, run.sim.state)) == []


def _acquires(commands: list[Command]) -> list[str]:
    return [c.key for c in commands if isinstance(c, AcquireLock)]


def test_the_history_replays_to_the_same_holds() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(LockWaiting(key="pay", holders=["x"]))
    run.deliver(LockAcquired(key="pay"))
    logged = [HistoryEntry.from_json(entry.to_json()) for entry in run.sim.history]
    assert replay(run.definition, logged) == run.sim.state


def test_a_lock_name_that_does_not_render_fails_the_step() -> None:
    run = Run(STEP_MUTEX, {})
    assert run.step_phase("pay") is StepPhase.FAILED
    error = run.step("pay").error
    assert error is not None
    assert error.details == {"field": "synchronization.mutex"}
    assert run.of_type(AcquireLock) == []


def test_a_semaphore_needs_exactly_one_limit() -> None:
    with pytest.raises(ValueError, match="exactly one of limit"):
        definition(
            "steps: [{name: a, synchronization: {semaphore: {name: s}}, http: {url: http://x}}]"
        )


def test_a_lock_name_naming_an_unknown_step_is_refused_at_apply_time() -> None:
    with pytest.raises(DefinitionError, match=r"steps\.nope"):
        definition(
            'steps: [{name: a, synchronization: {mutex: "${{ steps.nope.output }}"}, '
            "http: {url: http://x}}]"
        )


def test_a_suspended_run_does_not_start_a_granted_step_until_resumed() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(SuspendRequested())
    run.deliver(LockAcquired(key="pay"))
    assert run.started() == []
    run.deliver(ResumeRequested())
    assert run.started() == ["pay"]


def test_each_item_of_a_fan_out_asks_for_its_own_lock() -> None:
    run = Run(
        """
steps:
  - name: each
    forEach:
      items: "[1, 2]"
      step:
        name: pay
        synchronization: {mutex: "account-${{ item }}"}
        http: {url: "http://bank/pay"}
"""
    )
    asked = sorted((c.key, c.name) for c in run.of_type(AcquireLock))
    assert asked == [("each[0].pay", "account-1"), ("each[1].pay", "account-2")]


def test_a_repeated_step_keeps_its_lock_between_iterations() -> None:
    run = Run(
        """
steps:
  - name: poll
    synchronization: {mutex: m}
    http: {url: "http://x"}
    repeat: {until: "steps.poll.output.done", interval: 10s, maxIterations: 3}
"""
    )
    run.deliver(LockAcquired(key="poll"))
    run.complete("poll", {"done": False})
    assert run.of_type(ReleaseLock) == []
    run.fire()
    assert run.started() == ["poll"]
    assert run.of_type(AcquireLock) == []
    run.complete("poll", {"done": True})
    assert [c.key for c in run.of_type(ReleaseLock)] == ["poll"]


def test_a_redriven_step_asks_for_its_lock_again() -> None:
    run = Run(STEP_MUTEX, {"id": 7})
    run.deliver(LockAcquired(key="pay"))
    run.fail("pay", "HttpError", details={"status": 400})
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(1))
    assert [c.key for c in run.of_type(AcquireLock)] == ["pay"]
    assert run.step_phase("pay") is StepPhase.WAITING


def test_a_step_releases_its_lock_before_its_finally_steps_run() -> None:
    run = Run(
        """
steps:
  - name: deploy
    synchronization: {mutex: env}
    http: {url: "http://x"}
    finally:
      - name: purge
        http: {url: "http://cdn"}
"""
    )
    run.deliver(LockAcquired(key="deploy"))
    run.complete("deploy")
    assert [c.key for c in run.of_type(ReleaseLock)] == ["deploy"]
    assert run.started() == ["purge"]
