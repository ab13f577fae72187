"""The deterministic engine: the workflow language's semantics as a pure fold over events.

Nothing here touches Kubernetes, the network or the clock; `now` is always an argument. The same
definition, state, event and `now` always give the same new state and commands, which is what
makes replay, crash recovery and time-skipping tests possible.

How a driver (the operator's shell, or the `baton test` runner) uses it:

    definition = compile_definition(workflow_spec)        # DefinitionError: one line, step+field
    state = initial_state()
    decision = decide(definition, state, RunStarted(input=..., run_name=..., namespace=...,
                                                    uid=...), now)
    loop:
        persist decision.state (status_of(definition, state) is the `.status`), append the
        event to the history, *then* perform decision.commands:
          StartActivity   -> run the http call / Job / worker task; report ActivityStarted, then
                             ActivityCompleted or ActivityFailed (and ActivityHeartbeat) with the
                             command's key and attempt
          StartChildRun   -> create the child run; report ChildFinished when it ends
          CancelActivity / TerminateChild -> stop it (best effort; late results are ignored)
          ContinueAsNew   -> create the successor run (idempotent on its name); report
                             SuccessorCreated
          FinishRun       -> publish the final phase
        next event: whichever comes first of an activity result, a user action (SignalReceived,
        CancelRequested, SuspendRequested/ResumeRequested, RedriveRequested) or the wake-up time
        (then deliver TimerFired() with now = that time).
        decision = decide(definition, decision.state, event, now)
    until decision.state.phase.finished

After a crash: state = state_from_status(status); perform pending_commands(definition, state)
(every command is idempotent) and re-arm the timer at next_wakeup(definition, state).
Timers are not commands: next_wakeup(definition, state) after each decision is the earliest due
time, and delivering TimerFired() at or after it is all any due time needs.
`replay(definition, history)` rebuilds the state from the history log alone.

`baton.engine.driver.Simulation` is that loop on a virtual clock, for tests.
"""

from baton.engine.commands import (
    CancelActivity,
    Command,
    ContinueAsNew,
    FinishRun,
    LookupMemo,
    StartActivity,
    StartChildRun,
    StoreMemo,
    TerminateChild,
)
from baton.engine.decide import (
    Deadline,
    Decision,
    child_run_name,
    deadlines,
    decide,
    initial_state,
    next_wakeup,
    pending_commands,
    replay,
    status_of,
)
from baton.engine.definition import Definition, DefinitionError, StepKind, compile_definition
from baton.engine.driver import Respond, Simulation
from baton.engine.errors import StepError
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Event,
    HistoryEntry,
    MemoResolved,
    RedriveRequested,
    ResumeRequested,
    RunAborted,
    RunStarted,
    SignalReceived,
    SuccessorCreated,
    SuspendRequested,
    TimerFired,
    event_from_json,
)
from baton.engine.kinds import KINDS, Kind, TimerPurpose
from baton.engine.state import Ending, State, StepState, state_from_status, state_to_status

__all__ = [
    "KINDS",
    "ActivityCompleted",
    "ActivityFailed",
    "ActivityHeartbeat",
    "ActivityStarted",
    "CancelActivity",
    "CancelRequested",
    "ChildFinished",
    "Command",
    "ContinueAsNew",
    "Deadline",
    "Decision",
    "Definition",
    "DefinitionError",
    "Ending",
    "Event",
    "FinishRun",
    "HistoryEntry",
    "Kind",
    "LookupMemo",
    "MemoResolved",
    "RedriveRequested",
    "Respond",
    "ResumeRequested",
    "RunAborted",
    "RunStarted",
    "SignalReceived",
    "Simulation",
    "StartActivity",
    "StartChildRun",
    "State",
    "StepError",
    "StepKind",
    "StepState",
    "StoreMemo",
    "SuccessorCreated",
    "SuspendRequested",
    "TerminateChild",
    "TimerFired",
    "TimerPurpose",
    "child_run_name",
    "compile_definition",
    "deadlines",
    "decide",
    "event_from_json",
    "initial_state",
    "next_wakeup",
    "pending_commands",
    "replay",
    "state_from_status",
    "state_to_status",
    "status_of",
]
