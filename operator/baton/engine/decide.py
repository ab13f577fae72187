"""The decision function: fold one event into a run's state and say what to do next.

`decide(definition, state, event, now)` is pure: it copies the state, has the core machine
(`baton.engine.machine`) apply the event and settle the run at `now` — handle every due time at
or before `now`, earliest first, and start every step that can start — and returns the new state
with the commands that differ between the two states. Commands are derived from the state, never
stored: `pending_commands` lists everything that should be in flight, which is what the shell
re-issues after a crash, and `next_wakeup` is the earliest due time, which is all the shell's
timer needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from baton.api.duration import format_duration
from baton.api.run import StepPhase
from baton.api.workflow import ParentClosePolicy
from baton.engine import memo
from baton.engine.commands import (
    CancelActivity,
    Command,
    ContinueAsNew,
    FinishRun,
    StartActivity,
    StartChildRun,
    TerminateChild,
    idempotency_key,
)
from baton.engine.definition import Definition
from baton.engine.errors import error_json
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ChildFinished,
    Event,
    HistoryEntry,
)
from baton.engine.kinds import KINDS, Deadline, child_run_name
from baton.engine.kinds.continue_as_new import SUCCESSOR_KEY
from baton.engine.locks import lock_commands, pending_locks
from baton.engine.machine import MAX_DUE_PER_DECISION, Machine, deadlines
from baton.engine.scope import ACTIVE, BAD, DONE, MAX_STEP_INSTANCES, step_def
from baton.engine.state import State, StepState, state_to_status, to_millis
from baton.engine.timing import timeouts_of
from baton.engine.values import MAX_OUTPUT_BYTES


@dataclass(frozen=True)
class Decision:
    """The state after an event and the commands the shell performs, in order."""

    state: State
    commands: tuple[Command, ...]


def initial_state() -> State:
    """The state of a run before its RunStarted event."""
    return State()


def decide(definition: Definition, state: State, event: Event, now: float) -> Decision:
    """Apply `event` at `now` (seconds since the epoch) to `state`; `state` is not modified."""
    machine = Machine(definition, state.copy(), to_millis(now))
    machine.apply(event)
    after = machine.state
    commands = (*_commands(definition, state, after, event), *machine.emitted)
    return Decision(state=after, commands=commands)


def replay(
    definition: Definition,
    history: Iterable[HistoryEntry | tuple[float, Event]],
    state: State | None = None,
) -> State:
    """The state after delivering every event of `history` at its recorded time, in order."""
    current = state if state is not None else initial_state()
    for entry in history:
        at, event = (entry.at, entry.event) if isinstance(entry, HistoryEntry) else entry
        current = decide(definition, current, event, at).state
    return current


def pending_commands(definition: Definition, state: State) -> list[Command]:
    """Everything that should be in flight for `state`: every running attempt (with
    `acknowledged` telling whether the shell confirmed it), and FinishRun for a finished run.
    All are idempotent; the shell re-issues them after a restart (and re-arms its timer at
    `next_wakeup`)."""
    commands: list[Command] = list(_in_flight(definition, state).values())
    commands.extend(pending_locks(state))
    if state.phase.finished:
        commands.append(_finish_command(state))
    return commands


def next_wakeup(definition: Definition, state: State) -> float | None:
    """The earliest due time of the run (seconds since the epoch), or None when nothing is due
    (finished, or waiting only on activities, signals or a resume)."""
    due = [d.due for d in deadlines(definition, state)]
    return min(due) / 1000 if due else None


def status_of(definition: Definition, state: State) -> dict[str, Any]:
    """The run's `.status`: `state_to_status` plus the display fields derived from it."""
    running = [
        path
        for path, step in state.steps.items()
        if step.phase in ACTIVE and not step_def(definition, path).kind.is_composite
    ]
    running.extend(c.key for c in state.compensations if c.run.phase in ACTIVE)
    done = sum(
        1
        for s in definition.steps
        if (inst := state.steps.get(s.name)) is not None and inst.phase in DONE | BAD
    )
    wake = next_wakeup(definition, state)
    counts: dict[str, dict[str, int]] = {}
    for path, step in state.steps.items():
        if step.items is not None:
            counts[path] = _item_counts(definition, state, path, step)
    status = state_to_status(
        state,
        current_step=",".join(running),
        progress=f"{done}/{len(definition.steps)}",
        next_wakeup_at=to_millis(wake) if wake is not None else None,
        item_counts=counts,
    )
    if state.started_at is not None and state.finished_at is not None:
        status["duration"] = format_duration((state.finished_at - state.started_at) / 1000)
    return status


# -- derived commands -------------------------------------------------------------------------


def _in_flight(definition: Definition, state: State) -> dict[tuple[str, int], Command]:
    """Start commands of every running attempt, keyed by (key, attempt), and the creation of
    the run this one continues as while it is due."""
    out: dict[tuple[str, int], Command] = {}
    for path, step in state.steps.items():
        if step.memo is not None and step.looking_up:  # most steps: one attribute read
            sd = step_def(definition, path)
            out[memo.lookup_slot(path, step)] = memo.lookup_command(state, sd, path, step)
            continue
        if not step.awaits_attempt or step.attempt == 0:
            continue
        sd = step_def(definition, path)
        command = KINDS[sd.kind].command(state, sd, path, step)
        if command is not None:
            out[(path, step.attempt)] = command
    for comp in state.compensations:
        run = comp.run
        if run.phase is not StepPhase.RUNNING:
            continue
        sd = step_def(definition, comp.path)
        assert sd.compensate is not None
        timeouts = timeouts_of(sd.compensate.timeouts, run.times)
        out[(comp.key, run.attempt)] = StartActivity(
            key=comp.key,
            step=sd.name,
            kind=sd.compensate.action.kind.value,
            spec=run.request,
            attempt=run.attempt,
            idempotency_key=idempotency_key(state.uid, comp.key, run.attempt),
            start_to_close=timeouts.start_to_close,
            heartbeat=timeouts.heartbeat,
            compensation=True,
            acknowledged=run.acknowledged,
        )
    successor = state.successor
    if (
        successor is not None
        and successor.ready
        and not successor.created
        and not state.phase.finished  # a run aborted meanwhile creates nothing more
    ):
        # A cancel changes the command (a new key), so the shell performs it again.
        out[(SUCCESSOR_KEY, int(successor.cancel))] = ContinueAsNew(
            name=successor.name,
            input=successor.input,
            lineage=state.lineage or state.run_name,
            number=state.continuation + 1,
            vars=successor.vars,
            iterations=successor.iterations,
            cancel=successor.cancel,
        )
    return out


def _commands(
    definition: Definition, before: State, after: State, event: Event
) -> Iterator[Command]:
    was = _in_flight(definition, before)
    now = _in_flight(definition, after)
    ended_itself = (
        (event.key, event.attempt)
        if isinstance(event, ActivityCompleted | ActivityFailed | ChildFinished)
        else None
    )
    for key, command in was.items():
        if key in now or key == ended_itself:
            continue
        if isinstance(command, StartChildRun):
            # An abandoned child outlives whatever stops waiting for it: the parent closing,
            # or its step being cancelled because a sibling failed.
            if command.parent_close_policy == ParentClosePolicy.ABANDON.value:
                continue
            yield TerminateChild(key=command.key, attempt=command.attempt, name=command.name)
        elif isinstance(command, StartActivity):
            yield CancelActivity(
                key=command.key,
                kind=command.kind,
                attempt=command.attempt,
                idempotency_key=command.idempotency_key,
            )
    for key, command in now.items():
        if key not in was:
            yield command
    yield from lock_commands(before, after)
    if after.phase.finished and not before.phase.finished:
        yield _finish_command(after)


def _finish_command(state: State) -> FinishRun:
    return FinishRun(phase=state.phase.value, output=state.output, error=error_json(state.error))


def _item_counts(
    definition: Definition, state: State, path: str, step: StepState
) -> dict[str, int]:
    sd = step_def(definition, path)
    assert sd.for_each is not None
    assert step.items is not None
    counts = {"total": len(step.items), "succeeded": 0, "failed": 0, "running": 0}
    for i in range(len(step.items)):
        item = state.steps.get(f"{path}[{i}].{sd.for_each.step.name}")
        if item is None:
            continue
        if item.phase in DONE:
            counts["succeeded"] += 1
        elif item.phase in BAD:
            counts["failed"] += 1
        elif item.phase in ACTIVE:
            counts["running"] += 1
    return counts


__all__ = [
    "MAX_DUE_PER_DECISION",
    "MAX_OUTPUT_BYTES",
    "MAX_STEP_INSTANCES",
    "Deadline",
    "Decision",
    "child_run_name",
    "deadlines",
    "decide",
    "initial_state",
    "next_wakeup",
    "pending_commands",
    "replay",
    "status_of",
]
