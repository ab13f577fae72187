"""Properties of cleanup over random histories: `onExit` and `finally` run once per ending
whatever the outcome, under crashes and duplicated delivery, and replay rebuilds the same run.

Hypothesis picks every activity's outcome (success, retryable or fatal failure, silence until a
timeout), delays, acknowledgements, a cancel at any time, and the run timeout may strike.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from enginekit import definition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.api.run import RunPhase, StepPhase, WorkflowRunStatus
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Command,
    Event,
    HistoryEntry,
    RunStarted,
    Simulation,
    StartActivity,
    StartChildRun,
    decide,
    pending_commands,
    replay,
    state_from_status,
    state_to_status,
    status_of,
)

WORKFLOW = definition(
    """
    timeout: 2h
    defaults:
      retry: {maxAttempts: 2, initialInterval: 1s}
      # scheduleToClose bounds calls never acknowledged: a cleanup step must end on its own.
      timeout: {startToClose: 1m, scheduleToClose: 1d}
    steps:
      - name: reserve
        http: {url: "http://r"}
        compensate: {http: {url: "http://undo-r"}}
        finally: [{name: audit, http: {url: "http://audit", body: "${{ step.outcome }}"}}]
      - name: fan
        parallel:
          branches:
            - name: left
              steps:
                - name: charge
                  worker: {pool: p, activity: charge}
                  compensate: {worker: {pool: p, activity: refund}, onInterrupt: true}
            - name: right
              steps:
                - name: pause
                  sleep: {duration: 30m}
                  finally: [{name: tidy, http: {url: "http://tidy"}}]
      - name: each
        forEach:
          items: "[1, 2]"
          concurrency: 2
          step:
            name: item
            http: {url: "http://i/${{ item }}"}
            finally: [{name: log, http: {url: "http://log/${{ item }}"}}]
      - name: child
        workflow: {workflowRef: sub}
        compensate: {http: {url: "http://unchild"}, onInterrupt: true}
    onExit:
      - {name: notify, http: {url: "http://n", body: "${{ run.outcome }}"}}
      - {name: unlock, needs: [], http: {url: "http://u"}}
    """
)

OUTCOMES = st.sampled_from(["ok", "ok", "ok", "flaky", "fatal", "silent"])
DELAYS = st.sampled_from([0.0, 0.5, 5.0, 30.0, 90.0])
ON_EXIT = ("notify", "unlock")
FINALLY = {"reserve": "audit", "pause": "tidy", "item": "log"}


def simulate(data: st.DataObject) -> Simulation:
    def respond(command: Command, now: float) -> list[tuple[float, Event]]:
        events: list[tuple[float, Event]] = []
        if isinstance(command, StartActivity | StartChildRun) and data.draw(
            st.booleans(), label="ack"
        ):
            events.append((0.0, ActivityStarted(key=command.key, attempt=command.attempt)))
        if isinstance(command, StartActivity):
            outcome = data.draw(OUTCOMES, label=f"{command.key}#{command.attempt}")
            delay = data.draw(DELAYS, label="delay")
            if outcome == "ok":
                events.append((delay, ActivityCompleted(command.key, command.attempt, {"id": 1})))
            elif outcome in ("flaky", "fatal"):
                error = {"type": "Flaky" if outcome == "flaky" else "Fatal", "message": "x"}
                events.append((delay, ActivityFailed(command.key, command.attempt, error)))
        elif isinstance(command, StartChildRun):
            phase = data.draw(st.sampled_from(["Succeeded", "Failed"]), label="child")
            delay = data.draw(st.sampled_from([1.0, 600.0, 9000.0]), label="child delay")
            events.append((delay, ChildFinished(command.key, command.attempt, phase, {"v": 1})))
        return events

    sim = Simulation(WORKFLOW, respond=respond, now=1_000_000.0)
    if data.draw(st.booleans(), label="cancel?"):
        at = sim.now + data.draw(st.floats(0, 7200), label="cancel at")
        sim.schedule(CancelRequested(), at)
    sim.deliver(RunStarted(input={}, run_name="run", namespace="ns", uid="uid-1"))
    sim.run(max_events=5_000)
    return sim


def first_attempts(sim: Simulation) -> Counter[str]:
    """How many times the first attempt of each activity key was started."""
    return Counter(c.key for c in sim.issued if isinstance(c, StartActivity) and c.attempt == 1)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data())
def test_on_exit_runs_once_after_everything_else_and_the_run_keeps_its_outcome(
    data: st.DataObject,
) -> None:
    sim = simulate(data)
    state = sim.state
    assert state.phase.finished
    assert state.exit_outcome is not None
    started = first_attempts(sim)
    assert [started[name] for name in ON_EXIT] == [1, 1]
    # Nothing but the onExit steps starts once they started.
    first_exit = next(
        i for i, c in enumerate(sim.issued) if isinstance(c, StartActivity) and c.key in ON_EXIT
    )
    assert all(
        c.key in ON_EXIT
        for c in sim.issued[first_exit:]
        if isinstance(c, StartActivity | StartChildRun)
    )
    cleanup_failed = any(c["type"] == "CleanupFailed" for c in state.conditions)
    if state.exit_outcome is RunPhase.SUCCEEDED and cleanup_failed:
        assert state.phase is RunPhase.FAILED
    else:
        assert state.phase is state.exit_outcome


@PROPERTY
@given(st.data())
def test_finally_runs_once_for_every_step_that_started(data: st.DataObject) -> None:
    sim = simulate(data)
    started = first_attempts(sim)
    for path, step in sim.state.steps.items():
        owner = path.rsplit(".", 1)[-1]
        if owner not in FINALLY:
            continue
        cleanup = path[: len(path) - len(owner)] + FINALLY[owner]
        ran = step.phase not in (StepPhase.PENDING, StepPhase.SKIPPED)
        assert started[cleanup] == (1 if ran else 0), (path, step.phase)
        if ran:
            assert step.outcome is not None


@PROPERTY
@given(st.data())
def test_replaying_a_run_with_cleanup_rebuilds_the_same_state(data: st.DataObject) -> None:
    sim = simulate(data)
    logged = [HistoryEntry.from_json(entry.to_json()) for entry in sim.history]
    assert replay(WORKFLOW, logged) == sim.state


@PROPERTY
@given(st.data())
def test_a_crash_at_any_point_of_a_run_with_cleanup_recovers_to_the_same_end(
    data: st.DataObject,
) -> None:
    sim = simulate(data)
    crash = data.draw(st.integers(0, len(sim.history)), label="crash after")
    before = replay(WORKFLOW, sim.history[:crash])
    status: dict[str, Any] = status_of(WORKFLOW, before)
    WorkflowRunStatus.model_validate(status)
    restored = state_from_status(state_to_status(before))
    assert restored == before
    assert pending_commands(WORKFLOW, restored) == pending_commands(WORKFLOW, before)
    assert replay(WORKFLOW, sim.history[crash:], restored) == sim.state


@PROPERTY
@given(st.data())
def test_delivering_any_event_of_a_run_with_cleanup_twice_changes_nothing(
    data: st.DataObject,
) -> None:
    sim = simulate(data)
    state = replay(WORKFLOW, [])
    for entry in sim.history:
        once = decide(WORKFLOW, state, entry.event, entry.at)
        twice = decide(WORKFLOW, once.state, entry.event, entry.at)
        assert twice.state == once.state
        assert not [c for c in twice.commands if isinstance(c, StartActivity | StartChildRun)]
        state = once.state
