"""The engine's properties over generated workflows, driven through `Simulation`.

Every workflow is built by `workflowgen.workflows()` (every step kind, nested) and run in a
scripted world (`workflowgen.scenarios()`): outcomes, Retry-After, signals out of order,
suspension, cancel with `onCancel: compensate` or `abandon`, redrives. The properties compare
the engine with what can be seen from outside it: the commands it issued and the events it was
given, and the history a shell would have logged.

Time: the `ci` profile (tests/unit/conftest.py) is derandomized; EXAMPLES per property keeps
the file within a few tens of seconds on a loaded 2-core machine. `HYPOTHESIS_PROFILE=deep`
(bench/properties.sh) runs thousands.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from workflowgen import (
    Driven,
    Scenario,
    compensations_started,
    completions_seen_from_outside,
    drive,
    final_phase,
    in_flight_seen_from_outside,
    scenarios,
)

from baton.api.run import RunPhase, StepPhase, WorkflowRunStatus
from baton.engine import (
    ActivityHeartbeat,
    Command,
    Event,
    HistoryEntry,
    RedriveRequested,
    ResumeRequested,
    StartActivity,
    StartChildRun,
    State,
    SuspendRequested,
    decide,
    pending_commands,
    replay,
    state_from_status,
    state_to_status,
    status_of,
)

EXAMPLES = 50 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else None
"""Examples per property in CI; other profiles choose their own."""

PROPERTY = settings(max_examples=EXAMPLES) if EXAMPLES is not None else settings()


def _starts(commands: tuple[Command, ...] | list[Command]) -> list[Command]:
    return [c for c in commands if isinstance(c, StartActivity | StartChildRun)]


@PROPERTY
@given(scenarios())
def test_every_generated_run_reaches_a_final_phase(scenario: Scenario) -> None:
    driven = drive(scenario)
    state = driven.sim.state
    assert state.phase.finished
    assert final_phase(driven) == state.phase.value
    # Nothing is left running behind a finished run.
    assert _starts(pending_commands(scenario.definition, state)) == []


@PROPERTY
@given(scenarios())
def test_replaying_the_logged_history_rebuilds_the_same_state(scenario: Scenario) -> None:
    driven = drive(scenario)
    logged = [
        HistoryEntry.from_json(json.loads(json.dumps(e.to_json()))) for e in driven.sim.history
    ]
    assert replay(scenario.definition, logged) == driven.sim.state


@PROPERTY
@given(scenarios())
def test_every_event_delivered_twice_changes_nothing(scenario: Scenario) -> None:
    driven = drive(scenario)
    definition = scenario.definition
    state = replay(definition, [])
    for entry in driven.sim.history:
        once = decide(definition, state, entry.event, entry.at)
        twice = decide(definition, once.state, entry.event, entry.at)
        assert twice.state == once.state, entry
        assert _starts(twice.commands) == [], entry
        state = once.state


_LEVELS = (SuspendRequested, ResumeRequested, ActivityHeartbeat)
"""Events that are not idempotent when they arrive late: a suspension or resumption is the
user's latest word, and a heartbeat says the attempt is alive now."""


@PROPERTY
@given(scenarios(), st.data())
def test_a_late_copy_of_an_earlier_event_changes_nothing(
    scenario: Scenario, data: st.DataObject
) -> None:
    driven = drive(scenario)
    definition = scenario.definition
    history = driven.sim.history
    late = data.draw(st.integers(0, len(history) - 1), label="delivered again after entry")
    copies = [e for e in history[: late + 1] if not isinstance(e.event, _LEVELS)]
    copy = data.draw(st.sampled_from(copies), label="earlier event")
    state = replay(definition, history[: late + 1])
    again = decide(definition, state, copy.event, history[late].at)
    assert again.state == state
    assert _starts(again.commands) == []


@PROPERTY
@given(scenarios(), st.data())
def test_signals_handed_over_in_any_order_apply_in_index_order(
    scenario: Scenario, data: st.DataObject
) -> None:
    ordered = [(at, sorted(burst, key=lambda s: s.index)) for at, burst in scenario.signals]
    in_order = drive(scenario, signals=ordered)
    shuffled = drive(scenario, signals=[(at, data.draw(st.permutations(b))) for at, b in ordered])
    # Signals still held back when the run finished are never applied; which ones they are
    # depends on what arrived before the end, so they are left out.
    assert _applied(shuffled) == _applied(in_order)


def _applied(driven: Driven) -> State:
    state = driven.sim.state
    return replace(state, early=[]) if state.phase.finished else state


@PROPERTY
@given(scenarios(), st.data())
def test_a_crash_at_any_point_recovers_from_the_stored_status_to_the_same_end(
    scenario: Scenario, data: st.DataObject
) -> None:
    driven = drive(scenario)
    definition = scenario.definition
    history = driven.sim.history
    crash = data.draw(st.integers(0, len(history)), label="crash after entry")
    before = replay(definition, history[:crash])
    stored = json.loads(json.dumps(state_to_status(before)))
    restored = state_from_status(stored)
    assert restored == before
    # Recovery re-issues exactly what the outside saw started and not ended: no attempt is
    # forgotten, and none that ended is started again.
    pending = pending_commands(definition, restored)
    assert pending == pending_commands(definition, before)
    outside, abandoned = in_flight_seen_from_outside(_prefix(driven, crash))
    assert _attempts(pending) - abandoned == outside
    assert replay(definition, history[crash:], restored) == driven.sim.state


def commands_after(driven: Driven, events: int) -> list[Command]:
    """The commands issued from the delivery of event number `events` on."""
    return [c for c in driven.trace.log[len(_prefix(driven, events)) :] if isinstance(c, Command)]


def _prefix(driven: Driven, events: int) -> list[Event | Command]:
    seen = 0
    for i, item in enumerate(driven.trace.log):
        if not isinstance(item, Command):
            if seen == events:
                return driven.trace.log[:i]
            seen += 1
    return driven.trace.log


def _attempts(commands: list[Command]) -> set[tuple[str, int]]:
    return {(c.key, c.attempt) for c in _starts(commands)}  # type: ignore[attr-defined]


@PROPERTY
@given(scenarios(saga=True))
def test_compensations_run_once_each_in_reverse_of_the_completions_seen_from_outside(
    scenario: Scenario,
) -> None:
    driven = drive(scenario)
    started = compensations_started(driven.trace.log)
    phase = final_phase(driven)
    abandoned = phase == RunPhase.CANCELLED.value and scenario.effective_on_cancel == "abandon"
    # A run that continued as new did its work: like a success, nothing is compensated.
    handed_on = phase == RunPhase.CONTINUED_AS_NEW.value
    if phase == RunPhase.SUCCEEDED.value or abandoned or handed_on:
        assert started == []
        return
    completed = completions_seen_from_outside(driven.trace.log, scenario.workflow.shape)
    assert [key.split("/")[0] for key in started] == list(reversed(completed))
    assert len(set(started)) == len(started)


@PROPERTY
@given(scenarios())
def test_a_redrive_runs_no_step_that_had_succeeded_again(scenario: Scenario) -> None:
    driven = drive(scenario)
    shape = scenario.workflow.shape
    history = driven.sim.history
    redrives = [i for i, e in enumerate(history) if isinstance(e.event, RedriveRequested)]
    for at in redrives:
        before = replay(scenario.definition, history[:at])
        succeeded = {
            path
            for path, step in before.steps.items()
            if step.phase is StepPhase.SUCCEEDED
            and path.rsplit(".", 1)[-1] not in shape.under_repeat
        }
        restarted = {
            c.key
            for c in _starts(commands_after(driven, at))
            if not getattr(c, "compensation", False)
        }
        assert succeeded.isdisjoint(restarted)


@PROPERTY
@given(scenarios())
def test_every_status_along_the_way_validates_and_reads_back(scenario: Scenario) -> None:
    driven = drive(scenario)
    definition = scenario.definition
    state = replay(definition, [])
    for entry in driven.sim.history:
        state = decide(definition, state, entry.event, entry.at).state
        status = status_of(definition, state)
        WorkflowRunStatus.model_validate(status)
        assert state_from_status(status) == state
