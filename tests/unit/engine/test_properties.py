"""Properties over random histories: replay, idempotence, saga order, termination, status.

A run of a workflow using most of the language (and one of failure control: continueOn,
depends, failFast off, a race, tolerated forEach failures) is driven on a virtual clock;
hypothesis picks every activity's outcome (success, retryable or fatal failure, silence until
a timeout), delays, acknowledgements, heartbeats, signals, suspensions and a cancel.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from enginekit import definition
from hypothesis import given, settings
from hypothesis import strategies as st
from workflowgen import (
    Shape,
    TracedSimulation,
    compensations_started,
    completions_seen_from_outside,
    traced,
)

from baton.api.run import RunPhase, WorkflowRunStatus
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Command,
    Definition,
    Event,
    HistoryEntry,
    ResumeRequested,
    RunStarted,
    SignalReceived,
    StartActivity,
    StartChildRun,
    SuspendRequested,
    decide,
    event_from_json,
    pending_commands,
    replay,
    state_from_status,
    state_to_status,
    status_of,
)

WORKFLOW = definition(
    """
    timeout: 30d
    parallelism: 2
    defaults:
      retry: {maxAttempts: 3, initialInterval: 1s, maxInterval: 10s, jitter: 0.5}
      # scheduleToClose bounds worker tasks never acknowledged: stuck in their pool's queue.
      timeout: {startToClose: 1m, scheduleToClose: 1d}
    vars: {prio: 0}
    signalHandlers: [{signal: prio, set: {prio: "${{ signal.payload }}"}}]
    queries: {prio: "vars.prio", reserve: "steps.reserve.output.id", clock: "string(now)"}
    steps:
      - name: reserve
        http: {url: "http://r"}
        retry:
          rules:
            - {errors: [Flaky], when: "error.message == 'x'", maxAttempts: 2,
               initialInterval: "${{ string(vars.prio + 1) + 's' }}"}
            - {errors: [Fatal], maxAttempts: 2}
        compensate: {http: {url: "http://undo-r"}}
      - name: fan
        forEach:
          items: "[1, 2, 3]"
          step:
            name: charge
            worker: {pool: p, activity: charge, input: "${{ item }}"}
            compensate: {worker: {pool: p, activity: refund, input: "${{ item }}"}}
      - name: branches
        parallel:
          branches:
            - name: left
              steps:
                - name: lookup
                  http: {url: "http://l"}
                  catch: [{errors: [Fatal], output: fallback}]
            - name: right
              steps:
                - name: approval
                  waitForSignal: {name: approve, timeout: 1h}
                  catch: [{errors: [Timeout], output: "no"}]
                - name: child
                  workflow: {workflowRef: sub}
      - name: poll
        http: {url: "http://poll"}
        repeat: {until: "steps.poll.attempts >= 2", interval: 10m, maxIterations: 3}
      - {name: pause, sleep: {until: "${{ now + duration('5m') }}"}}
      - name: finalize
        job: {image: x, args: ["${{ vars.prio }}"]}
        timeout: {heartbeat: 20s, startToClose: "${{ vars.prio > 1 ? '2m' : '1m' }}"}
        compensate: {job: {image: undo}}
    """
)

FAILURE_CONTROL = definition(
    """
    timeout: 30d
    failFast: false
    defaults:
      retry: {maxAttempts: 2, initialInterval: 1s, maxInterval: 10s}
      timeout: {startToClose: 1m, scheduleToClose: 1d}
    steps:
      - name: reserve
        http: {url: "http://r"}
        compensate: {http: {url: "http://undo-r"}}
      - name: optional
        needs: []
        continueOn: {failed: true}
        http: {url: "http://o"}
        compensate: {http: {url: "http://undo-o"}}
      - name: fallback
        depends: "reserve.Failed || optional.Failed"
        http: {url: "http://f"}
      - name: fan
        needs: [reserve]
        forEach:
          items: "[1, 2, 3, 4]"
          concurrency: 2
          toleratedFailureCount: 1
          step:
            name: charge
            worker: {pool: p, activity: charge, input: "${{ item }}"}
            compensate: {worker: {pool: p, activity: refund, input: "${{ item }}"}}
      - name: race
        depends: "fan && (optional || fallback)"
        parallel:
          mode: race
          branches:
            - name: slow
              steps: [{name: nap, sleep: {duration: 2m}}]
            - name: call
              steps:
                - {name: quote, http: {url: "http://q"}, compensate: {http: {url: "http://uq"}}}
                - {name: child, workflow: {workflowRef: sub}}
      - name: strict
        needs: [fan]
        parallel:
          branches:
            - name: a
              steps: [{name: left, job: {image: x}, compensate: {job: {image: undo}}}]
            - name: b
              steps: [{name: approval, waitForSignal: {name: approve, timeout: 1h}}]
            - name: c
              steps: [{name: right, http: {url: "http://right"}}]
    """
)

WORKFLOWS = pytest.mark.parametrize(
    "workflow",
    [pytest.param(WORKFLOW, id="language"), pytest.param(FAILURE_CONTROL, id="failure-control")],
)


OUTCOMES = st.sampled_from(["ok", "ok", "ok", "flaky", "fatal", "silent"])
DELAYS = st.sampled_from([0.0, 0.5, 5.0, 30.0, 90.0])


def simulate(workflow: Definition, data: st.DataObject) -> TracedSimulation:
    def respond(command: Command, now: float) -> list[tuple[float, Event]]:
        events: list[tuple[float, Event]] = []
        if isinstance(command, StartActivity | StartChildRun) and data.draw(
            st.booleans(), label="ack"
        ):
            events.append((0.0, ActivityStarted(key=command.key, attempt=command.attempt)))
        if isinstance(command, StartActivity):
            outcome = data.draw(OUTCOMES, label=f"{command.key}#{command.attempt}")
            delay = data.draw(DELAYS, label="delay")
            if data.draw(st.booleans(), label="heartbeat"):
                events.append((delay / 2, ActivityHeartbeat(command.key, command.attempt)))
            if outcome == "ok":
                events.append((delay, ActivityCompleted(command.key, command.attempt, {"id": 1})))
            elif outcome in ("flaky", "fatal"):
                error = {"type": "Flaky" if outcome == "flaky" else "Fatal", "message": "x"}
                events.append((delay, ActivityFailed(command.key, command.attempt, error)))
        elif isinstance(command, StartChildRun):
            phase = data.draw(st.sampled_from(["Succeeded", "Failed"]), label="child")
            delay = data.draw(DELAYS, label="delay")
            events.append((delay, ChildFinished(command.key, command.attempt, phase, {"v": 1})))
        return events

    sim = traced(workflow, respond)
    start = sim.now
    for index in range(data.draw(st.integers(0, 3), label="signals")):
        name = data.draw(st.sampled_from(["approve", "prio"]), label="signal")
        at = start + data.draw(st.floats(0, 7200), label="at")
        sim.schedule(SignalReceived(index=index, name=name, payload=index), at)
    if data.draw(st.booleans(), label="suspend"):
        at = start + data.draw(st.floats(0, 3600), label="at")
        sim.schedule(SuspendRequested(), at)
        sim.schedule(ResumeRequested(), at + data.draw(st.floats(1, 3600), label="for"))
    if data.draw(st.integers(0, 4), label="cancel?") == 0:
        sim.schedule(CancelRequested(), start + data.draw(st.floats(0, 7200), label="at"))
    sim.deliver(RunStarted(input={}, run_name="run", namespace="ns", uid="uid-1"))
    sim.run(max_events=5_000)
    return sim


# 40 examples in CI (the `ci` profile, tests/unit/conftest.py); other profiles choose their own.
PROPERTY = (
    settings(max_examples=40) if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings()
)


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_a_run_always_reaches_a_finished_phase(workflow: Definition, data: st.DataObject) -> None:
    sim = simulate(workflow, data)
    assert sim.state.phase.finished


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_replaying_the_history_rebuilds_the_same_state(
    workflow: Definition, data: st.DataObject
) -> None:
    sim = simulate(workflow, data)
    logged = [HistoryEntry.from_json(entry.to_json()) for entry in sim.history]
    assert replay(workflow, logged) == sim.state


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_deciding_never_changes_the_state_it_was_given(
    workflow: Definition, data: st.DataObject
) -> None:
    # decide copies only the state's containers and shares its JSON values: this pins that
    # nothing, JSON values included, is changed in place.
    sim = simulate(workflow, data)
    state = replay(workflow, [])
    for entry in sim.history:
        given, untouched = state, copy.deepcopy(state)
        state = decide(workflow, given, entry.event, entry.at).state
        assert given == untouched


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_delivering_any_event_twice_changes_nothing(
    workflow: Definition, data: st.DataObject
) -> None:
    sim = simulate(workflow, data)
    state = replay(workflow, [])
    for entry in sim.history:
        once = decide(workflow, state, entry.event, entry.at)
        twice = decide(workflow, once.state, entry.event, entry.at)
        assert twice.state == once.state
        assert not [c for c in twice.commands if isinstance(c, StartActivity | StartChildRun)]
        state = once.state


def compensated_steps(workflow: Definition) -> Shape:
    """The steps of `workflow` with a `compensate`, for the outside view of their completions."""
    return Shape(compensated={name for name, sd in workflow.index.items() if sd.compensate})


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_compensations_run_once_each_in_reverse_completion_order(
    workflow: Definition, data: st.DataObject
) -> None:
    # The order is the one seen from outside (commands issued, results delivered), not the
    # engine's own record of completions: recording them backwards must fail this.
    sim = simulate(workflow, data)
    started = compensations_started(sim.trace.log)
    if sim.state.phase is RunPhase.SUCCEEDED:
        assert started == []
        return
    completed = completions_seen_from_outside(sim.trace.log, compensated_steps(workflow))
    assert [key.split("/")[0] for key in started] == list(reversed(completed))
    assert len(set(started)) == len(started)


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_a_crash_at_any_point_recovers_from_status_to_the_same_end(
    workflow: Definition, data: st.DataObject
) -> None:
    sim = simulate(workflow, data)
    crash = data.draw(st.integers(0, len(sim.history)), label="crash after")
    before = replay(workflow, sim.history[:crash])
    restored = state_from_status(state_to_status(before))
    assert restored == before
    assert pending_commands(workflow, restored) == pending_commands(workflow, before)
    assert replay(workflow, sim.history[crash:], restored) == sim.state


@WORKFLOWS
@PROPERTY
@given(st.data())
def test_every_status_along_the_way_validates_against_the_status_model(
    workflow: Definition, data: st.DataObject
) -> None:
    sim = simulate(workflow, data)
    state = replay(workflow, [])
    for entry in sim.history:
        state = decide(workflow, state, entry.event, entry.at).state
        status: dict[str, Any] = status_of(workflow, state)
        WorkflowRunStatus.model_validate(status)
        assert state_from_status(status) == state


def test_events_round_trip_through_their_json_form() -> None:
    events: list[Event] = [
        RunStarted(input={"a": 1}, run_name="r", namespace="n", uid="u", generation=3),
        ActivityFailed("k", 2, {"type": "HttpError", "details": {"status": 429}}, 3.5),
        SignalReceived(0, "go", [1, 2]),
        ChildFinished("k", 1, "Failed", None, {"type": "X"}),
        CancelRequested(),
    ]
    assert [event_from_json(e.to_json()) for e in events] == events
    assert events[1].to_json()["retryAfter"] == 3.5
