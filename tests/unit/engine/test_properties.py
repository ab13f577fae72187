"""Properties over random histories: replay, idempotence, saga order, termination, status.

A run of a workflow using most of the language is driven on a virtual clock; hypothesis picks
every activity's outcome (success, retryable or fatal failure, silence until a timeout), delays,
acknowledgements, heartbeats, signals, suspensions and a cancel.
"""

from __future__ import annotations

import copy
import os
from typing import Any

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
    defaults:
      retry: {maxAttempts: 3, initialInterval: 1s, maxInterval: 10s, jitter: 0.5}
      # scheduleToClose bounds worker tasks never acknowledged: stuck in their pool's queue.
      timeout: {startToClose: 1m, scheduleToClose: 1d}
    vars: {prio: 0}
    signalHandlers: [{signal: prio, set: {prio: "${{ signal.payload }}"}}]
    queries: {prio: "vars.prio", reserve: "steps.reserve.output.id"}
    steps:
      - name: reserve
        http: {url: "http://r"}
        compensate: {http: {url: "http://undo-r"}}
      - name: fan
        forEach:
          items: "[1, 2, 3]"
          concurrency: 2
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
      - {name: pause, sleep: {duration: 5m}}
      - name: finalize
        job: {image: x, args: ["${{ vars.prio }}"]}
        timeout: {heartbeat: 20s}
        compensate: {job: {image: undo}}
    """
)

OUTCOMES = st.sampled_from(["ok", "ok", "ok", "flaky", "fatal", "silent"])
DELAYS = st.sampled_from([0.0, 0.5, 5.0, 30.0, 90.0])


def simulate(data: st.DataObject) -> TracedSimulation:
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

    sim = traced(WORKFLOW, respond)
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


@PROPERTY
@given(st.data())
def test_a_run_always_reaches_a_finished_phase(data: st.DataObject) -> None:
    sim = simulate(data)
    assert sim.state.phase.finished


@PROPERTY
@given(st.data())
def test_replaying_the_history_rebuilds_the_same_state(data: st.DataObject) -> None:
    sim = simulate(data)
    logged = [HistoryEntry.from_json(entry.to_json()) for entry in sim.history]
    assert replay(WORKFLOW, logged) == sim.state


@PROPERTY
@given(st.data())
def test_deciding_never_changes_the_state_it_was_given(data: st.DataObject) -> None:
    # decide copies only the state's containers and shares its JSON values: this pins that
    # nothing, JSON values included, is changed in place.
    sim = simulate(data)
    state = replay(WORKFLOW, [])
    for entry in sim.history:
        given, untouched = state, copy.deepcopy(state)
        state = decide(WORKFLOW, given, entry.event, entry.at).state
        assert given == untouched


@PROPERTY
@given(st.data())
def test_delivering_any_event_twice_changes_nothing(data: st.DataObject) -> None:
    sim = simulate(data)
    state = replay(WORKFLOW, [])
    for entry in sim.history:
        once = decide(WORKFLOW, state, entry.event, entry.at)
        twice = decide(WORKFLOW, once.state, entry.event, entry.at)
        assert twice.state == once.state
        assert not [c for c in twice.commands if isinstance(c, StartActivity | StartChildRun)]
        state = once.state


COMPENSATED = Shape(compensated={"reserve", "charge", "finalize"})
"""The steps of WORKFLOW with a `compensate`, for the outside view of their completions."""


@PROPERTY
@given(st.data())
def test_compensations_run_once_each_in_reverse_completion_order(data: st.DataObject) -> None:
    # The order is the one seen from outside (commands issued, results delivered), not the
    # engine's own record of completions: recording them backwards must fail this.
    sim = simulate(data)
    started = compensations_started(sim.trace.log)
    if sim.state.phase is RunPhase.SUCCEEDED:
        assert started == []
        return
    completed = completions_seen_from_outside(sim.trace.log, COMPENSATED)
    assert [key.split("/")[0] for key in started] == list(reversed(completed))
    assert len(set(started)) == len(started)


@PROPERTY
@given(st.data())
def test_a_crash_at_any_point_recovers_from_status_to_the_same_end(data: st.DataObject) -> None:
    sim = simulate(data)
    crash = data.draw(st.integers(0, len(sim.history)), label="crash after")
    before = replay(WORKFLOW, sim.history[:crash])
    restored = state_from_status(state_to_status(before))
    assert restored == before
    assert pending_commands(WORKFLOW, restored) == pending_commands(WORKFLOW, before)
    assert replay(WORKFLOW, sim.history[crash:], restored) == sim.state


@PROPERTY
@given(st.data())
def test_every_status_along_the_way_validates_against_the_status_model(
    data: st.DataObject,
) -> None:
    sim = simulate(data)
    state = replay(WORKFLOW, [])
    for entry in sim.history:
        state = decide(WORKFLOW, state, entry.event, entry.at).state
        status: dict[str, Any] = status_of(WORKFLOW, state)
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
