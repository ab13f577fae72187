"""The decision function: fold one event into a run's state and say what to do next.

`decide(definition, state, event, now)` is pure: it copies the state, applies the event, then
settles the run at `now` — handles every due time at or before `now` (earliest first: backoffs,
sleeps, signal timeouts, activity timeouts, repeat intervals, the run's timeout) and starts every
step that can start — and returns the new state with the commands that differ between the two
states. Commands are derived from the state, never stored: `pending_commands` lists everything
that should be in flight, which is what the shell re-issues after a crash, and `next_wakeup` is
the earliest due time, which is all the shell's timer heap needs.

Semantics decided here (and recorded in docs/architecture.md, "Engine"):
- A composite (the run, a parallel step, a forEach step, a list of catch steps) whose child
  fails fatally (`outcomes.is_fatal`) stops starting new children, cancels everything in flight
  in it at once (`_cancel_subtree`) and fails with that error in the same decision; without
  fail-fast it goes on with what does not depend on the failure and fails at the end. A run
  fails the same way, then compensates. A race's first branch to end decides; the others are
  cancelled the same way.
- Cancel and the run timeout stop at once: running activities are cancelled too.
- Retries apply to activities and child runs; sleep, waitForSignal, set, fail and composites fail
  at once (a `catch` can still recover them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from baton.api.conditions import ConditionStatus, set_condition
from baton.api.duration import format_duration
from baton.api.labels import object_name
from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import OnCancel, ParentClosePolicy
from baton.engine.commands import (
    CancelActivity,
    CancelTimer,
    Command,
    FinishRun,
    StartActivity,
    StartChildRun,
    StartTimer,
    TerminateChild,
)
from baton.engine.definition import Definition, RetryPolicy, StepDef, StepKind, Timeouts
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Event,
    HistoryEntry,
    RedriveRequested,
    ResumeRequested,
    RunAborted,
    RunStarted,
    SignalReceived,
    SuspendRequested,
    TimerFired,
)
from baton.engine.limits import value_problem
from baton.engine.outcomes import (
    failed_items,
    is_fatal,
    is_settled,
    race_output,
    readiness,
    tolerance_error,
    tolerant_output,
)
from baton.engine.retry import backoff_delay, is_retryable
from baton.engine.state import (
    CompensationState,
    Completion,
    Millis,
    SignalRecord,
    State,
    StepState,
    rfc3339,
    state_to_status,
    to_millis,
)
from baton.expr import EvaluationError, Expression, as_text

ACTIVE = frozenset({StepPhase.RUNNING, StepPhase.BACKOFF, StepPhase.WAITING})
DONE = frozenset({StepPhase.SUCCEEDED, StepPhase.SKIPPED})
BAD = frozenset({StepPhase.FAILED, StepPhase.CANCELLED})

RUN_TIMER = "run/timeout"
ABORTED = "Aborted"
"""Condition of a run the shell ended with RunAborted."""
_MAX_PASSES = 10_000
"""Guard against a bug turning settling into an endless loop; never reached by a correct run."""
MAX_DUE_PER_DECISION = 250
"""Due times one decision handles at most (repeat iterations of a `set` without an interval,
say); a decision is a commit of the shell, and one must not hold the event loop for long:
250 iterations of a `set` take about 4 ms, 1,000 took 16 ms, which a loaded machine stretched
past the 100 ms the operator's loop may be blocked."""
MAX_OUTPUT_BYTES = 1_000_000
"""Largest output (compact JSON) a step or the run may have: the shell stores one in a single
ConfigMap, and Kubernetes caps an object at 1 MiB. Activities cannot return more (their
executors cap responses); this catches what a forEach, parallel, `set` or `output` assembles."""
MAX_STEP_INSTANCES = 2_000
"""Step instances one run may hold (a forEach item is one per step it contains). Every instance
is kept in the run's status, an object etcd stores whole: at about 270 bytes per finished
instance plus its output, 2,000 stay well under etcd's 1.5 MiB request limit."""


@dataclass(frozen=True)
class Decision:
    """The state after an event and the commands the shell performs, in order."""

    state: State
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Deadline:
    """A due time derived from the state: a timer the shell should have armed."""

    due: Millis
    timer_id: str
    target: str
    purpose: str


# -- public API -------------------------------------------------------------------------------


def initial_state() -> State:
    """The state of a run before its RunStarted event."""
    return State()


def decide(definition: Definition, state: State, event: Event, now: float) -> Decision:
    """Apply `event` at `now` (seconds since the epoch) to `state`; `state` is not modified."""
    machine = _Machine(definition, state.copy(), to_millis(now))
    machine.apply(event)
    after = machine.state
    return Decision(state=after, commands=tuple(_commands(definition, state, after, event)))


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
    `acknowledged` telling whether the shell confirmed it), every armed timer, and FinishRun
    for a finished run. All are idempotent; the shell re-issues them after a restart."""
    commands: list[Command] = list(_in_flight(definition, state).values())
    commands.extend(
        StartTimer(timer_id=d.timer_id, due_at=d.due / 1000) for d in deadlines(definition, state)
    )
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
        if step.phase in ACTIVE and not _step_def(definition, path).kind.is_composite
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


def deadlines(definition: Definition, state: State) -> list[Deadline]:
    """Every due time of the run, earliest first. While suspended, the due times that would
    start something (a retry, the next repeat iteration) are left out: resuming starts them."""
    if state.phase is RunPhase.PENDING or state.phase.finished:
        return []
    found: list[Deadline] = []
    if state.deadline is not None and state.ending is None:
        found.append(Deadline(state.deadline, RUN_TIMER, "", "run"))
    for path, step in state.steps.items():
        if step.phase not in _TIMED:
            continue  # most steps of a large forEach: no due time, no lookup
        sd = _step_def(definition, path)
        found.extend(_step_deadlines(path, step, sd.kind, sd.timeouts, state.suspended))
    for comp in state.compensations:
        sd = _step_def(definition, comp.path)
        assert sd.compensate is not None
        found.extend(
            _step_deadlines(
                comp.key,
                comp.run,
                sd.compensate.action.kind,
                sd.compensate.timeouts,
                state.suspended,
            )
        )
    found.sort(key=lambda d: (d.due, d.timer_id))
    return found


def child_run_name(run_name: str, key: str, attempt: int) -> str:
    """The deterministic name of the child run started for `key` at `attempt`."""
    return object_name(run_name, key, attempt)


# -- derived commands -------------------------------------------------------------------------


def _subtree_size(sd: StepDef) -> int:
    """Step instances one execution of `sd` creates, counting a forEach in it as one instance:
    its items are counted when it expands (`_Machine._instances_with`)."""
    size = 1
    for branch in sd.branches:
        size += sum(_subtree_size(inner) for inner in branch.steps)
    for clause in sd.catch:
        size += sum(_subtree_size(inner) for inner in clause.steps or ())
    return size


@functools.lru_cache(maxsize=64)
def _item_paths(path: str, name: str, count: int) -> tuple[str, ...]:
    """The paths of a forEach's item steps (`charges[3].charge`), the same on every pass."""
    return tuple(f"{path}[{i}].{name}" for i in range(count))


_TIMED = frozenset({StepPhase.RUNNING, StepPhase.BACKOFF, StepPhase.WAITING})
"""The phases in which a step can have a due time (see `_step_deadlines`)."""


def _step_deadlines(
    key: str, step: StepState, kind: StepKind, timeouts: Timeouts, suspended: bool
) -> Iterator[Deadline]:
    tag = f"{key}#{step.attempt}"
    if step.phase is StepPhase.RUNNING and (kind.is_activity or kind is StepKind.WORKFLOW):
        started = step.attempt_started_at
        assert started is not None
        # A worker task or HTTP call waits for a slot (its pool's, the operator's HTTP
        # limits): only scheduleToClose bounds that wait; startToClose and heartbeat count
        # from when it was sent.
        queued = kind.queues_before_start and not step.acknowledged
        if timeouts.start_to_close is not None and not queued:
            due = started + to_millis(timeouts.start_to_close)
            yield Deadline(due, f"{tag}/startToClose", key, "startToClose")
        if timeouts.heartbeat is not None and kind.is_activity and not queued:
            last = step.heartbeat_at if step.heartbeat_at is not None else started
            yield Deadline(
                last + to_millis(timeouts.heartbeat), f"{tag}/heartbeat", key, "heartbeat"
            )
        if timeouts.schedule_to_close is not None and step.scheduled_at is not None:
            due = step.scheduled_at + to_millis(timeouts.schedule_to_close)
            yield Deadline(due, f"{tag}/scheduleToClose", key, "scheduleToClose")
    elif step.phase is StepPhase.BACKOFF and not suspended:
        assert step.next_attempt_at is not None
        yield Deadline(step.next_attempt_at, f"{tag}/retry", key, "retry")
    elif step.phase is StepPhase.WAITING:
        if step.wake_at is not None:
            purpose = "sleep" if kind is StepKind.SLEEP else "signalTimeout"
            yield Deadline(step.wake_at, f"{tag}/{purpose}", key, purpose)
        if step.next_attempt_at is not None and not suspended:
            yield Deadline(step.next_attempt_at, f"{tag}/repeat", key, "repeat")


def _in_flight(definition: Definition, state: State) -> dict[tuple[str, int], Command]:
    """Start commands of every running attempt, keyed by (key, attempt)."""
    out: dict[tuple[str, int], Command] = {}
    for path, step in state.steps.items():
        if step.phase is not StepPhase.RUNNING or step.attempt == 0:
            continue
        sd = _step_def(definition, path)
        if sd.kind.is_activity:
            out[(path, step.attempt)] = StartActivity(
                key=path,
                step=sd.name,
                kind=sd.kind.value,
                spec=step.request,
                attempt=step.attempt,
                idempotency_key=f"{state.uid}/{path}/{step.attempt}",
                start_to_close=sd.timeouts.start_to_close,
                heartbeat=sd.timeouts.heartbeat,
                acknowledged=step.acknowledged,
                heartbeat_details=step.heartbeat_details,
            )
        elif sd.child is not None:
            out[(path, step.attempt)] = StartChildRun(
                key=path,
                step=sd.name,
                attempt=step.attempt,
                name=child_run_name(state.run_name, path, step.attempt),
                workflow_ref=sd.child.workflow_ref,
                input=step.request,
                parent_close_policy=sd.child.parent_close_policy.value,
                acknowledged=step.acknowledged,
            )
    for comp in state.compensations:
        run = comp.run
        if run.phase is not StepPhase.RUNNING:
            continue
        sd = _step_def(definition, comp.path)
        assert sd.compensate is not None
        out[(comp.key, run.attempt)] = StartActivity(
            key=comp.key,
            step=sd.name,
            kind=sd.compensate.action.kind.value,
            spec=run.request,
            attempt=run.attempt,
            idempotency_key=f"{state.uid}/{comp.key}/{run.attempt}",
            start_to_close=sd.compensate.timeouts.start_to_close,
            heartbeat=sd.compensate.timeouts.heartbeat,
            compensation=True,
            acknowledged=run.acknowledged,
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
    armed = {d.timer_id: d.due for d in deadlines(definition, before)}
    arming = {d.timer_id: d.due for d in deadlines(definition, after)}
    for timer_id in armed:
        if timer_id not in arming:
            yield CancelTimer(timer_id=timer_id)
    for timer_id, due in arming.items():
        if armed.get(timer_id) != due:
            yield StartTimer(timer_id=timer_id, due_at=due / 1000)
    if after.phase.finished and not before.phase.finished:
        yield _finish_command(after)


def _finish_command(state: State) -> FinishRun:
    return FinishRun(phase=state.phase.value, output=state.output, error=state.error)


def _step_def(definition: Definition, path: str) -> StepDef:
    return definition.index[path.rsplit(".", 1)[-1]]


def _item_counts(
    definition: Definition, state: State, path: str, step: StepState
) -> dict[str, int]:
    sd = _step_def(definition, path)
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


# -- the machine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Where a step instance lives: the path prefixes of its forEach frames, root first, and
    the innermost frame's item and index."""

    prefixes: tuple[str, ...] = ("",)
    item: Any = None
    index: int | None = None

    @property
    def prefix(self) -> str:
        return self.prefixes[-1]

    def enter(self, for_each_path: str, index: int, item: Any) -> _Scope:
        return _Scope((*self.prefixes, f"{for_each_path}[{index}]."), item, index)


_ROOT = _Scope()


class _Machine:
    """One decision: a private copy of the state, mutated in place, at one instant."""

    def __init__(self, definition: Definition, state: State, now: Millis) -> None:
        self.d = definition
        self.state = state
        self.now = now

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        s = self.state
        if isinstance(event, RunStarted):
            if s.phase is not RunPhase.PENDING:
                return
            self._start_run(event)
        elif isinstance(event, RunAborted):
            if not s.phase.finished:
                self._abort_run(event)
            return
        elif s.phase is RunPhase.PENDING:
            return
        elif isinstance(event, RedriveRequested):
            if event.n <= s.redrive:
                return
            s.redrive = event.n
            if s.phase is RunPhase.FAILED and not self._aborted:
                self._redrive()
        elif s.phase.finished:
            return
        elif isinstance(event, ActivityStarted):
            self._acknowledge(event.key, event.attempt)
        elif isinstance(event, ActivityHeartbeat):
            target = self._running(event.key, event.attempt)
            if target is not None:
                target[1].heartbeat_at = self.now
                if event.details is not None:
                    # Kept across attempts (a new attempt does not clear it): the next
                    # attempt resumes from the last progress any attempt reported.
                    target[1].heartbeat_details = event.details
        elif isinstance(event, ActivityCompleted):
            self._activity_completed(event.key, event.attempt, event.output)
        elif isinstance(event, ActivityFailed):
            self._activity_failed(event.key, event.attempt, event.error, event.retry_after)
        elif isinstance(event, ChildFinished):
            self._child_finished(event)
        elif isinstance(event, SignalReceived):
            self._signal(event)
        elif isinstance(event, CancelRequested):
            self._abort("cancelled", {"type": "Cancelled", "message": "the run was cancelled"})
        elif isinstance(event, SuspendRequested):
            s.suspended = True
        elif isinstance(event, ResumeRequested):
            s.suspended = False
        else:
            assert isinstance(event, TimerFired), f"unhandled event {event!r}"
        if s.phase is not RunPhase.PENDING:
            self._settle()
            self._publish()

    def _start_run(self, event: RunStarted) -> None:
        s = self.state
        s.phase = RunPhase.RUNNING
        s.input = event.input
        s.run_name, s.namespace, s.uid = event.run_name, event.namespace, event.uid
        s.generation = event.generation
        s.started_at = self.now
        s.on_cancel = event.on_cancel
        timeout = event.timeout if event.timeout is not None else self.d.timeout
        s.deadline = self.now + to_millis(timeout) if timeout is not None else None
        context = self._context(_ROOT)
        for name, template in self.d.vars:
            try:
                s.vars[name] = _render(template, context)
            except EvaluationError as exc:
                self._unwind("failed", _expression_error(str(exc), None, f"vars.{name}"))
                return

    def _running(self, key: str, attempt: int) -> tuple[StepDef, StepState] | None:
        """The step or compensation running `attempt` under `key`, if that is current."""
        comp = self._compensation(key)
        if comp is not None:
            run = comp.run
            if run.phase is StepPhase.RUNNING and run.attempt == attempt:
                return _step_def(self.d, comp.path), run
            return None
        step = self.state.steps.get(key)
        if step is None or step.phase is not StepPhase.RUNNING or step.attempt != attempt:
            return None
        sd = _step_def(self.d, key)
        if not (sd.kind.is_activity or sd.kind is StepKind.WORKFLOW):
            return None
        return sd, step

    def _compensation(self, key: str) -> CompensationState | None:
        if "/" not in key:
            return None
        return next((c for c in self.state.compensations if c.key == key), None)

    def _acknowledge(self, key: str, attempt: int) -> None:
        target = self._running(key, attempt)
        if target is None or target[1].acknowledged:
            return
        sd, step = target
        step.acknowledged = True
        comp = self._compensation(key)
        kind = sd.compensate.action.kind if comp is not None and sd.compensate else sd.kind
        if kind.queues_before_start:
            # Acknowledged when it was sent: the attempt's clock starts now.
            step.attempt_started_at = self.now

    def _activity_completed(self, key: str, attempt: int, output: Any) -> None:
        target = self._running(key, attempt)
        if target is None or (target[0].kind is StepKind.WORKFLOW and "/" not in key):
            return
        sd, step = target
        step.request = None
        comp = self._compensation(key)
        if comp is not None:
            self._finish(step, StepPhase.SUCCEEDED, output=output)
        else:
            self._execution_succeeded(sd, self._scope_of(key), key, step, output, own=True)

    def _activity_failed(
        self, key: str, attempt: int, error: dict[str, Any], retry_after: float | None
    ) -> None:
        target = self._running(key, attempt)
        if target is None or (target[0].kind is StepKind.WORKFLOW and "/" not in key):
            return
        sd, step = target
        self._attempt_failed(sd, key, step, _normalise(error, sd.name), retry_after)

    def _child_finished(self, event: ChildFinished) -> None:
        target = self._running(event.key, event.attempt)
        if (
            target is None
            or target[0].kind is not StepKind.WORKFLOW
            or self._compensation(event.key) is not None
        ):
            return
        sd, step = target
        step.request = None
        if event.phase == RunPhase.SUCCEEDED.value:
            self._execution_succeeded(
                sd, self._scope_of(event.key), event.key, step, event.output, own=True
            )
            return
        error = {
            "type": "ChildFailed",
            "message": f"child run {child_run_name(self.state.run_name, event.key, event.attempt)}"
            f" ended {event.phase}",
            "step": sd.name,
            "details": {"phase": event.phase, "error": event.error},
        }
        self._attempt_failed(sd, event.key, step, error, None)

    # -- signals -----------------------------------------------------------------------------

    def _signal(self, event: SignalReceived) -> None:
        s = self.state
        if event.index < s.signals_received or any(e.index == event.index for e in s.early):
            return
        record = SignalRecord(event.index, event.name, event.payload)
        if event.index > s.signals_received:
            # Held until the signals before it arrive, so every signal applies in index order.
            s.early.append(record)
            s.early.sort(key=lambda r: r.index)
            return
        self._deliver(record)
        while s.early and s.early[0].index == s.signals_received:
            self._deliver(s.early.pop(0))

    def _deliver(self, record: SignalRecord) -> None:
        s = self.state
        s.signals_received += 1
        s.signals[record.name] = record.payload
        for handler in self.d.signal_handlers:
            if handler.signal != record.name:
                continue
            context = self._context(_ROOT)
            context["signal"] = {"name": record.name, "payload": record.payload}
            try:
                values = {var: _render(t, context) for var, t in handler.assignments}
            except EvaluationError as exc:
                self._condition(
                    "SignalHandlerFailed",
                    ConditionStatus.TRUE,
                    "EvaluationError",
                    f"signal {record.name!r} #{record.index}: {exc}",
                )
                continue
            s.vars.update(values)
        if record.name not in self.d.waited_signals:
            return
        waiting = [
            (step.started_at or 0, i, path)
            for i, (path, step) in enumerate(s.steps.items())
            if step.phase is StepPhase.WAITING
            and (wait := _step_def(self.d, path).wait) is not None
            and wait.name == record.name
        ]
        if not waiting:
            s.unclaimed.append(record)
            return
        path = min(waiting)[2]
        self._claim(path, s.steps[path], record)

    def _claim(self, path: str, step: StepState, record: SignalRecord) -> None:
        step.signal = record.index
        step.wake_at = None
        self._execution_succeeded(
            _step_def(self.d, path), self._scope_of(path), path, step, record.payload, own=True
        )

    # -- settling ----------------------------------------------------------------------------

    def _settle(self) -> None:
        """Start what can start and handle what is due, until nothing changes, or until
        MAX_DUE_PER_DECISION due times were handled: the rest stays due, so `next_wakeup` is
        `now` and the driver's next TimerFired goes on from there, after committing this much."""
        for _ in range(MAX_DUE_PER_DECISION):
            self._progress()
            if self.state.phase.finished:
                return
            due = [d for d in deadlines(self.d, self.state) if d.due <= self.now]
            if not due:
                return
            self._expire(due[0])
        self._progress()

    def _progress(self) -> None:
        previous = None
        for _ in range(_MAX_PASSES):
            mark = self._fingerprint()
            if mark == previous:
                return
            previous = mark
            self._pass()
        raise AssertionError("the engine did not settle; this is a bug")

    def _fingerprint(self) -> tuple[Any, ...]:
        s = self.state
        return (
            s.phase,
            s.ending,
            tuple(
                (p, st.phase, st.attempt, st.iterations, st.recovering) for p, st in s.steps.items()
            ),
            tuple((c.run.phase, c.run.attempt) for c in s.compensations),
        )

    def _pass(self) -> None:
        s = self.state
        if s.phase.finished:
            return
        if s.compensations:
            self._drive_compensations()
            return
        result, error = self._drive_block(
            self.d.steps, _ROOT, halting=s.ending is not None, fail_fast=self.d.fail_fast
        )
        if result == "succeeded":
            self._succeed_run()
        elif result in ("failed", "halted"):
            kind = s.ending or "failed"
            if error is None or kind != "failed":
                error = s.error or {"type": "Cancelled", "message": "a step was cancelled"}
            self._unwind(kind, error)

    @property
    def _can_start(self) -> bool:
        return not self.state.suspended and self.state.ending is None

    def _drive_block(
        self, steps: tuple[StepDef, ...], scope: _Scope, *, halting: bool, fail_fast: bool = True
    ) -> tuple[str, dict[str, Any] | None]:
        """Drive one list of steps; returns (running|succeeded|failed|halted, first error).

        A step whose failure is fatal (see `outcomes.is_fatal`) halts a fail-fast list: nothing
        new starts and everything in flight in it is cancelled at once, so the list fails in
        the same decision. Without fail-fast, the list goes on with what does not depend on the
        failed step, and fails once nothing more can run."""
        s = self.state
        prefix = scope.prefix
        fatal = any(
            (x := s.steps.get(prefix + sd.name)) is not None and is_fatal(sd, x) for sd in steps
        )
        halt = halting or (fail_fast and fatal)
        if halt:
            self._cancel_block(steps, scope)
        for sd in steps:
            path = prefix + sd.name
            step = s.steps.get(path)
            if step is None or step.phase is StepPhase.PENDING:
                if halt or not self._can_start:
                    continue
                ready = readiness(sd, prefix, s.steps, self.d.index)
                if ready is None:
                    continue
                step = self._start_step(sd, scope, path) if ready else self._skip_step(path)
            elif step.phase in ACTIVE:
                self._drive_step(sd, scope, path, step, halt)
            if not halt and fail_fast and step is not None and is_fatal(sd, step):
                halt = True
                self._cancel_block(steps, scope)
        instances = [(sd, s.steps.get(prefix + sd.name)) for sd in steps]
        if any(i is not None and i.phase in ACTIVE for _, i in instances):
            return "running", None
        failed = [i for sd, i in instances if i is not None and is_fatal(sd, i)]
        # Without fail-fast a pending step that can still start (or be skipped) keeps the list
        # going: the next pass starts it.
        if (
            failed
            and not halt
            and self._can_start
            and any(
                (i is None or i.phase is StepPhase.PENDING)
                and readiness(sd, prefix, s.steps, self.d.index) is not None
                for sd, i in instances
            )
        ):
            return "running", None
        if failed:
            first = min(
                failed,
                key=lambda i: (i.phase is not StepPhase.FAILED, i.finished_at or 0),
            )
            return "failed", first.error
        if all(i is not None and is_settled(sd, i) for sd, i in instances):
            return "succeeded", None
        return ("halted" if halt else "running"), None

    def _skip_step(self, path: str) -> StepState:
        """Skip a pending step whose dependencies can never be met."""
        step = self.state.steps.get(path)
        if step is None:
            step = self.state.steps[path] = StepState()
        step.started_at = self.now
        step.error = None
        self._finish(step, StepPhase.SKIPPED)
        return step

    # -- cancelling a subtree ----------------------------------------------------------------

    def _cancel_block(self, steps: tuple[StepDef, ...], scope: _Scope) -> None:
        """Cancel everything in flight in a list of steps, nested steps included."""
        for sd in steps:
            step = self.state.steps.get(scope.prefix + sd.name)
            if step is not None and step.phase in ACTIVE:
                self._cancel_subtree(sd, scope, scope.prefix + sd.name, step)

    def _cancel_subtree(self, sd: StepDef, scope: _Scope, path: str, step: StepState) -> None:
        """Cancel the active step instance at `path` and everything in flight under it: its
        branches, its forEach items, its catch clause's steps. Only the state changes; the
        commands follow from the difference (CancelActivity for a running attempt,
        TerminateChild per the child's parentClosePolicy, CancelTimer for its due times)."""
        if step.recovering is not None:
            clause_steps = sd.catch[step.recovering].steps
            assert clause_steps is not None
            self._cancel_block(clause_steps, scope)
        for branch in sd.branches:
            self._cancel_block(branch.steps, scope)
        if sd.for_each is not None and step.items is not None:
            inner = sd.for_each.step
            for i, path_i in enumerate(_item_paths(path, inner.name, len(step.items))):
                item = self.state.steps.get(path_i)
                if item is not None and item.phase in ACTIVE:
                    self._cancel_subtree(inner, scope.enter(path, i, step.items[i]), path_i, item)
        self._cancel(step)

    def _drive_step(
        self, sd: StepDef, scope: _Scope, path: str, step: StepState, halt: bool
    ) -> None:
        waits = step.phase in (StepPhase.BACKOFF, StepPhase.WAITING) or (
            sd.kind is StepKind.WORKFLOW and step.phase is StepPhase.RUNNING
        )
        if halt and waits:
            self._cancel(step)
            return
        if step.phase is not StepPhase.RUNNING:
            return
        if step.recovering is not None:
            clause = sd.catch[step.recovering]
            assert clause.steps is not None
            result, error = self._drive_block(clause.steps, scope, halting=halt)
            if result == "succeeded":
                # A recovery ends the step: no further repeat iteration follows it.
                self._finish(
                    step, StepPhase.SUCCEEDED, output=self._last_output(clause.steps, scope)
                )
            elif result == "failed":
                self._finish(step, StepPhase.FAILED, error=error)
            elif result == "halted":
                self._cancel(step)
        elif sd.kind is StepKind.PARALLEL:
            self._drive_parallel(sd, scope, path, step, halt)
        elif sd.kind is StepKind.FOR_EACH:
            self._drive_for_each(sd, scope, path, step, halt)

    def _drive_parallel(
        self, sd: StepDef, scope: _Scope, path: str, step: StepState, halt: bool
    ) -> None:
        if sd.is_race:
            self._drive_race(sd, scope, path, step, halt)
            return
        results = []
        for branch in sd.branches:
            result = self._drive_block(branch.steps, scope, halting=halt, fail_fast=sd.fail_fast)
            results.append(result)
            if result[0] == "failed" and sd.fail_fast and not halt:
                # A branch failed for good: the others are cancelled at once, so the step fails
                # (and its catch or the run's compensation starts) in this decision.
                halt = True
                for other in sd.branches:
                    self._cancel_block(other.steps, scope)
        if halt:
            results = [
                self._drive_block(b.steps, scope, halting=True, fail_fast=sd.fail_fast)
                for b in sd.branches
            ]
        if all(r == "succeeded" for r, _ in results):
            output = {b.name: self._last_output(b.steps, scope) for b in sd.branches}
            self._execution_succeeded(sd, scope, path, step, output, own=True)
        elif not any(r == "running" for r, _ in results):
            errors = [e for r, e in results if r == "failed"]
            if errors:
                self._step_failed(sd, scope, path, step, self._first_error(sd, scope, errors))
            else:
                self._cancel(step)

    def _drive_race(
        self, sd: StepDef, scope: _Scope, path: str, step: StepState, halt: bool
    ) -> None:
        """A race: the first branch to end (in list order within one decision) decides; the
        others are cancelled at once."""
        results = [self._drive_block(b.steps, scope, halting=halt) for b in sd.branches]
        winner = next((i for i, (r, _) in enumerate(results) if r in ("succeeded", "failed")), None)
        if winner is None:
            if not any(r == "running" for r, _ in results):
                self._cancel(step)
            return
        for branch in sd.branches:
            self._cancel_block(branch.steps, scope)
        branch = sd.branches[winner]
        result, error = results[winner]
        if result == "succeeded":
            output = race_output(branch.name, self._last_output(branch.steps, scope))
            self._execution_succeeded(sd, scope, path, step, output, own=True)
        else:
            self._step_failed(sd, scope, path, step, self._first_error(sd, scope, [error]))

    def _first_error(
        self, sd: StepDef, scope: _Scope, errors: list[dict[str, Any] | None]
    ) -> dict[str, Any]:
        known = [e for e in errors if e is not None]
        if known:
            return known[0]
        return {"type": "Cancelled", "message": "a nested step was cancelled", "step": sd.name}

    def _drive_for_each(
        self, sd: StepDef, scope: _Scope, path: str, step: StepState, halt: bool
    ) -> None:
        s = self.state
        each = sd.for_each
        assert each is not None
        assert step.items is not None
        values = step.items
        inner = each.step
        paths = _item_paths(path, inner.name, len(values))
        total = len(paths)
        # Item states are changed in place, never replaced, so this list stays current.
        items = [s.steps.get(p) for p in paths]

        def exceeded() -> bool:
            cancelled = any(x is not None and x.phase is StepPhase.CANCELLED for x in items)
            return cancelled or each.exceeded(len(failed_items(inner, items)), total)

        def stop() -> None:
            # Past what the forEach tolerates: the items in flight are cancelled at once.
            for i, x in enumerate(items):
                if x is not None and x.phase in ACTIVE:
                    self._cancel_subtree(inner, scope.enter(path, i, values[i]), paths[i], x)

        halt = halt or exceeded()
        if halt:
            stop()
        for i, item in enumerate(items):
            if item is not None and item.phase in ACTIVE:
                self._drive_step(inner, scope.enter(path, i, step.items[i]), paths[i], item, halt)
                if not halt and item.phase in BAD and exceeded():
                    halt = True
                    stop()
        active = sum(1 for x in items if x is not None and x.phase in ACTIVE)
        for i, item in enumerate(items):
            if halt or not self._can_start or active >= each.concurrency:
                break
            if item is None or item.phase is StepPhase.PENDING:
                started = items[i] = self._start_step(
                    inner, scope.enter(path, i, step.items[i]), paths[i]
                )
                if started.phase in ACTIVE:
                    active += 1
                elif started.phase in BAD and exceeded():
                    halt = True
                    stop()
        if any(i is not None and i.phase in ACTIVE for i in items):
            return
        failed = failed_items(inner, items)
        if not exceeded():
            if all(
                i is not None and (is_settled(inner, i) or i.phase is StepPhase.FAILED)
                for i in items
            ):
                output: Any = (
                    tolerant_output(items, failed)
                    if each.tolerates_failures
                    else [i.output for i in items if i is not None]
                )
                self._execution_succeeded(sd, scope, path, step, output, own=True)
            elif halt:
                self._cancel(step)
            return
        if each.tolerates_failures and each.exceeded(len(failed), total):
            self._step_failed(sd, scope, path, step, tolerance_error(each, sd.name, failed, total))
            return
        bad = [i for i in items if i is not None and is_fatal(inner, i)]
        first = min(bad, key=lambda i: (i.phase is not StepPhase.FAILED, i.finished_at or 0))
        self._step_failed(sd, scope, path, step, self._first_error(sd, scope, [first.error]))

    def _last_output(self, steps: tuple[StepDef, ...], scope: _Scope) -> Any:
        last = self.state.steps.get(scope.prefix + steps[-1].name)
        return last.output if last is not None else None

    # -- starting ----------------------------------------------------------------------------

    def _start_step(self, sd: StepDef, scope: _Scope, path: str) -> StepState:
        s = self.state
        step = s.steps.get(path)
        if step is None:
            step = s.steps[path] = StepState()
        step.started_at = self.now
        step.finished_at = None
        step.error = None
        if sd.when is not None:
            try:
                go = sd.when.evaluate(self._context(scope, sd.name))
            except EvaluationError as exc:
                self._step_failed(
                    sd, scope, path, step, _expression_error(str(exc), sd.name, "when")
                )
                return step
            if not isinstance(go, bool):
                error = _expression_error(
                    f"`when` must be true or false, got {_describe(go)}", sd.name, "when"
                )
                self._step_failed(sd, scope, path, step, error)
                return step
            if not go:
                self._finish(step, StepPhase.SKIPPED)
                return step
        self._execute(sd, scope, path, step)
        return step

    def _execute(self, sd: StepDef, scope: _Scope, path: str, step: StepState) -> None:
        """Run one execution (one repeat iteration) of a step from the start."""
        step.attempt_base = step.attempt
        step.scheduled_at = self.now
        step.recovering = None
        step.signal = None
        step.items = None
        step.next_attempt_at = None
        step.wake_at = None
        kind = sd.kind
        if kind.is_activity or kind is StepKind.WORKFLOW:
            self._begin_attempt(sd, scope, path, step)
        elif kind is StepKind.SLEEP:
            assert sd.sleep is not None
            step.phase = StepPhase.WAITING
            step.wake_at = self.now + to_millis(sd.sleep)
        elif kind is StepKind.WAIT_FOR_SIGNAL:
            assert sd.wait is not None
            step.phase = StepPhase.WAITING
            if sd.wait.timeout is not None:
                step.wake_at = self.now + to_millis(sd.wait.timeout)
            s = self.state
            # Signals are buffered: one that arrived before this step waited still counts.
            record = next((r for r in s.unclaimed if r.name == sd.wait.name), None)
            if record is not None:
                s.unclaimed.remove(record)
                self._claim(path, step, record)
        elif kind is StepKind.PARALLEL:
            self._reset_nested(sd, scope)
            step.phase = StepPhase.RUNNING
        elif kind is StepKind.FOR_EACH:
            assert sd.for_each is not None
            self._reset_nested(sd, scope)
            try:
                items = _checked(sd.for_each.items.evaluate(self._context(scope, sd.name)))
            except EvaluationError as exc:
                error = _expression_error(str(exc), sd.name, "forEach.items")
                self._step_failed(sd, scope, path, step, error)
                return
            if not isinstance(items, list):
                error = _expression_error(
                    f"`forEach.items` must be a list, got {_describe(items)}",
                    sd.name,
                    "forEach.items",
                )
                self._step_failed(sd, scope, path, step, error)
                return
            instances = self._instances_with(path, len(items) * _subtree_size(sd.for_each.step))
            if instances > MAX_STEP_INSTANCES:
                error = _expression_error(
                    f"{len(items)} items would give the run {instances} step instances, over "
                    f"the {MAX_STEP_INSTANCES} its status can hold; fan out through child runs "
                    "instead: a forEach over batches of items whose step is a `workflow` step, "
                    "each child run running a forEach over its batch",
                    sd.name,
                    "forEach.items",
                )
                error["type"] = "TooManyItems"
                self._step_failed(sd, scope, path, step, error)
                return
            step.items = items
            step.phase = StepPhase.RUNNING
        elif kind is StepKind.SET:
            context = self._context(scope, sd.name)
            try:
                values = {name: _render(t, context) for name, t in sd.assignments}
            except EvaluationError as exc:
                self._step_failed(
                    sd, scope, path, step, _expression_error(str(exc), sd.name, "set")
                )
                return
            self.state.vars.update(values)
            self._execution_succeeded(sd, scope, path, step, values, own=True)
        else:
            assert sd.fail is not None
            try:
                message = sd.fail.message.render(self._context(scope, sd.name))
            except EvaluationError as exc:
                error = _expression_error(str(exc), sd.name, "fail.message")
                self._step_failed(sd, scope, path, step, error)
                return
            # A message that is not a string is written as in any template: compact JSON.
            text = message if isinstance(message, str) else as_text(message)
            error = {"type": sd.fail.error_type, "message": text, "step": sd.name}
            self._step_failed(sd, scope, path, step, error)

    def _begin_attempt(self, sd: StepDef, scope: _Scope, path: str, step: StepState) -> None:
        context = self._context(scope, sd.name)
        try:
            if sd.action is not None:
                request: Any = _render(sd.action, context)
            else:
                assert sd.child is not None
                request = _render(sd.child.input, context)
        except EvaluationError as exc:
            field = sd.kind.value if sd.action is not None else "workflow.input"
            self._step_failed(sd, scope, path, step, _expression_error(str(exc), sd.name, field))
            return
        self._open_attempt(step, request)

    def _open_attempt(self, step: StepState, request: Any) -> None:
        step.attempt += 1
        step.phase = StepPhase.RUNNING
        step.attempt_started_at = self.now
        step.heartbeat_at = None
        step.acknowledged = False
        step.request = request
        step.next_attempt_at = None

    # -- finishing ---------------------------------------------------------------------------

    def _finish(
        self,
        step: StepState,
        phase: StepPhase,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        step.phase = phase
        step.finished_at = self.now
        step.request = None
        step.next_attempt_at = None
        step.wake_at = None
        if phase is StepPhase.SUCCEEDED:
            step.output = output
        if error is not None:
            step.error = error

    def _instances_with(self, expanding: str, items: int) -> int:
        """Step instances the run can come to hold once the forEach at `expanding` expands to
        `items` instances: every step of the definition once, plus the items of every forEach
        already expanded, nested ones included. Items start lazily (`concurrency`), so counting
        only the instances that exist would let forEach steps nested in forEach items each pass
        the check while together they hold far more (200 x 200 items gave 40,201)."""
        s = self.state
        bound = sum(_subtree_size(sd) for sd in self.d.steps) + items
        for path, step in s.steps.items():
            if step.items is not None and path != expanding:
                inner = _step_def(self.d, path).for_each
                assert inner is not None
                bound += len(step.items) * _subtree_size(inner.step)
        # Instances left by an earlier, longer expansion (repeat) still count.
        return max(bound, len(s.steps) + items)

    def _cancel(self, step: StepState) -> None:
        self._finish(step, StepPhase.CANCELLED)

    def _execution_succeeded(
        self, sd: StepDef, scope: _Scope, path: str, step: StepState, output: Any, *, own: bool
    ) -> None:
        """One execution of the step ended well: repeat it, or the step succeeded."""
        oversize = _output_too_large(output, sd.name)
        if oversize is not None:
            self._step_failed(sd, scope, path, step, oversize)
            return
        if sd.repeat is not None:
            step.iterations += 1
            context = self._context(scope, sd.name)
            context["steps"][sd.name] = {
                "output": output,
                "phase": StepPhase.SUCCEEDED.value,
                "attempts": step.attempt,
            }
            try:
                done = sd.repeat.until.evaluate(context)
            except EvaluationError as exc:
                error = _expression_error(str(exc), sd.name, "repeat.until")
                self._step_failed(sd, scope, path, step, error, catchable=False)
                return
            if not isinstance(done, bool):
                # Never read as false: a number or null here is a mistake in the condition,
                # and iterating on it would only end in MaxIterations, far from the cause.
                error = _expression_error(
                    f"`repeat.until` must be true or false, got {_describe(done)}",
                    sd.name,
                    "repeat.until",
                )
                self._step_failed(sd, scope, path, step, error, catchable=False)
                return
            if not done:
                if step.iterations >= sd.repeat.max_iterations:
                    error = {
                        "type": "MaxIterations",
                        "message": f"`until` still false after {step.iterations} iterations",
                        "step": sd.name,
                    }
                    self._step_failed(sd, scope, path, step, error)
                    return
                step.output = output
                step.request = None
                # Without an interval the next iteration is due at once; the settle loop starts
                # it. Starting it from here would recurse once per iteration of a step that ends
                # as it starts (a `set`), and overflow the stack after a few hundred.
                step.phase = StepPhase.WAITING
                step.next_attempt_at = self.now + to_millis(sd.repeat.interval or 0)
                return
        self._finish(step, StepPhase.SUCCEEDED, output=output)
        if own and sd.compensate is not None:
            self.state.completed.append(Completion(path=path, output=output))

    def _attempt_failed(
        self,
        sd: StepDef,
        key: str,
        step: StepState,
        error: dict[str, Any],
        retry_after: float | None,
    ) -> None:
        step.request = None
        comp = self._compensation(key)
        policy: RetryPolicy | None
        if comp is not None:
            assert sd.compensate is not None
            policy, timeouts = sd.compensate.retry, sd.compensate.timeouts
        else:
            policy, timeouts = sd.retry, sd.timeouts
        assert policy is not None
        if is_retryable(policy, error) and step.attempts < policy.max_attempts:
            delay = backoff_delay(
                policy,
                step.attempts,
                seed=f"{self.state.uid}/{key}/{step.attempt}",
                retry_after=retry_after,
            )
            due = self.now + to_millis(delay)
            limit = timeouts.schedule_to_close
            if (
                limit is None
                or step.scheduled_at is None
                or due < step.scheduled_at + to_millis(limit)
            ):
                step.phase = StepPhase.BACKOFF
                step.next_attempt_at = due
                step.error = error
                return
        if comp is not None:
            self._finish(step, StepPhase.FAILED, error=error)
        else:
            self._step_failed(sd, self._scope_of(key), key, step, error)

    def _step_failed(
        self,
        sd: StepDef,
        scope: _Scope,
        path: str,
        step: StepState,
        error: dict[str, Any],
        *,
        catchable: bool = True,
    ) -> None:
        """The step failed for good: recover with a matching catch clause, or fail."""
        error = {**error, "step": error.get("step") or sd.name}
        clause_index = next(
            (i for i, c in enumerate(sd.catch) if c.matches(str(error.get("type")))), None
        )
        if not catchable or clause_index is None or step.recovering is not None:
            self._finish(step, StepPhase.FAILED, error=error)
            return
        clause = sd.catch[clause_index]
        step.error = error
        if clause.steps is None:
            context = self._context(scope, sd.name)
            context["error"] = error
            try:
                output = _render(clause.output, context) if clause.output is not None else None
            except EvaluationError as exc:
                failure = _expression_error(str(exc), sd.name, f"catch[{clause_index}].output")
                self._finish(step, StepPhase.FAILED, error=failure)
                return
            # A recovery ends the step: no further repeat iteration follows it.
            self._finish(step, StepPhase.SUCCEEDED, output=output)
            return
        for nested in clause.steps:
            self._reset_tree(nested, scope)
        step.recovering = clause_index
        step.phase = StepPhase.RUNNING
        step.request = None

    # -- deadlines ---------------------------------------------------------------------------

    def _expire(self, deadline: Deadline) -> None:
        s = self.state
        if deadline.purpose == "run":
            seconds = (s.deadline or 0) - (s.started_at or 0)
            self._abort(
                "timedOut",
                {
                    "type": "Timeout",
                    "message": f"the run did not finish within {seconds / 1000:g}s",
                    "details": {"kind": "run"},
                },
            )
            return
        comp = self._compensation(deadline.target)
        if comp is not None:
            sd = _step_def(self.d, comp.path)
            step = comp.run
        else:
            sd = _step_def(self.d, deadline.target)
            step = s.steps[deadline.target]
        purpose = deadline.purpose
        if purpose in ("startToClose", "heartbeat", "scheduleToClose"):
            error = {
                "type": "Timeout",
                "message": f"no {'heartbeat' if purpose == 'heartbeat' else 'result'} "
                f"within the {purpose} timeout",
                "step": sd.name,
                "details": {"kind": purpose},
            }
            self._attempt_failed(sd, deadline.target, step, error, None)
        elif purpose == "retry":
            if comp is not None:
                self._begin_compensation(comp)
            else:
                self._begin_attempt(sd, self._scope_of(deadline.target), deadline.target, step)
        elif purpose == "sleep":
            step.wake_at = None
            scope = self._scope_of(deadline.target)
            self._execution_succeeded(sd, scope, deadline.target, step, None, own=True)
        elif purpose == "signalTimeout":
            step.wake_at = None
            assert sd.wait is not None
            error = {
                "type": "Timeout",
                "message": f"no signal {sd.wait.name!r} arrived in time",
                "step": sd.name,
                "details": {"kind": "signal"},
            }
            self._step_failed(sd, self._scope_of(deadline.target), deadline.target, step, error)
        else:
            assert purpose == "repeat"
            self._execute(sd, self._scope_of(deadline.target), deadline.target, step)

    # -- ending ------------------------------------------------------------------------------

    def _abort(self, kind: str, error: dict[str, Any]) -> None:
        """Cancel or time out the run: stop everything in flight, then unwind."""
        s = self.state
        if s.compensations or s.ending in ("cancelled", "timedOut"):
            return
        if s.ending is None:
            s.ending = kind
            s.error = error
        # Cancelling overrides suspension: the user wants the run to stop, compensations run.
        s.suspended = False
        for step in s.steps.values():
            if step.phase in ACTIVE:
                self._cancel(step)

    @property
    def _aborted(self) -> bool:
        return any(c["type"] == ABORTED and c["status"] == "True" for c in self.state.conditions)

    def _abort_run(self, event: RunAborted) -> None:
        """End the run Failed at once: everything in flight is cancelled (the commands follow
        from the difference of the states), nothing is compensated."""
        s = self.state
        for step in s.steps.values():
            if step.phase in ACTIVE:
                self._cancel(step)
        for comp in s.compensations:
            if comp.run.phase in ACTIVE:
                self._cancel(comp.run)
        s.ending = "failed"
        s.error = {"type": event.reason, "message": event.message}
        self._condition(ABORTED, ConditionStatus.TRUE, event.reason, event.message)
        self._close(RunPhase.FAILED)

    def _unwind(self, kind: str, error: dict[str, Any]) -> None:
        s = self.state
        s.ending = kind
        s.error = error
        on_cancel = s.on_cancel or self.d.on_cancel.value
        compensate = kind != "cancelled" or on_cancel == OnCancel.COMPENSATE.value
        if compensate and s.completed:
            seen: dict[str, int] = {}
            for done in reversed(s.completed):
                n = seen.get(done.path, 0)
                seen[done.path] = n + 1
                key = f"{done.path}/compensate" + (f"-{n}" if n else "")
                s.compensations.append(
                    CompensationState(path=done.path, key=key, output=done.output)
                )
            s.phase = RunPhase.COMPENSATING
            return
        self._close(_FINAL[kind])

    def _drive_compensations(self) -> None:
        s = self.state
        for comp in s.compensations:
            phase = comp.run.phase
            if phase in (StepPhase.SUCCEEDED, StepPhase.FAILED):
                continue
            if phase is StepPhase.PENDING and not s.suspended:
                comp.run.scheduled_at = self.now
                comp.run.started_at = self.now
                self._begin_compensation(comp)
            return
        failed = any(c.run.phase is StepPhase.FAILED for c in s.compensations)
        kind = s.ending or "failed"
        if failed:
            self._close(RunPhase.COMPENSATION_FAILED)
        else:
            self._close(RunPhase.COMPENSATED if kind == "failed" else _FINAL[kind])

    def _begin_compensation(self, comp: CompensationState) -> None:
        sd = _step_def(self.d, comp.path)
        assert sd.compensate is not None
        scope = self._scope_of(comp.path)
        context = self._context(scope, sd.name)
        own = context["steps"][sd.name]
        context["steps"][sd.name] = {**own, "output": comp.output}
        try:
            request = _render(sd.compensate.action, context)
        except EvaluationError as exc:
            field = f"compensate.{sd.compensate.action.kind.value}"
            error = _expression_error(str(exc), sd.name, field)
            self._finish(comp.run, StepPhase.FAILED, error=error)
            return
        self._open_attempt(comp.run, request)

    def _succeed_run(self) -> None:
        s = self.state
        if self.d.output is not None:
            try:
                output = _render(self.d.output, self._context(_ROOT))
            except EvaluationError as exc:
                self._unwind("failed", _expression_error(str(exc), None, "output"))
                return
            oversize = _output_too_large(output, None)
            if oversize is not None:
                self._unwind("failed", oversize)
                return
            s.output = output
        self._close(RunPhase.SUCCEEDED)

    def _close(self, phase: RunPhase) -> None:
        s = self.state
        s.phase = phase
        s.finished_at = self.now
        s.suspended = False

    # -- redrive -----------------------------------------------------------------------------

    def _redrive(self) -> None:
        s = self.state
        s.phase = RunPhase.RUNNING
        s.ending = None
        s.error = None
        s.finished_at = None
        self._redrive_block(self.d.steps, _ROOT)

    def _redrive_block(self, steps: tuple[StepDef, ...], scope: _Scope) -> None:
        redriven: set[str] = set()
        for sd in steps:
            path = scope.prefix + sd.name
            step = self.state.steps.get(path)
            if step is not None and step.phase in BAD:
                self._redrive_step(sd, scope, path, step)
                redriven.add(sd.name)
        # Steps skipped because a redriven step had failed decide again once it ends.
        changed = bool(redriven)
        while changed:
            changed = False
            for sd in steps:
                step = self.state.steps.get(scope.prefix + sd.name)
                if (
                    sd.name not in redriven
                    and step is not None
                    and step.phase is StepPhase.SKIPPED
                    and redriven.intersection(sd.after)
                ):
                    self._reset(step)
                    redriven.add(sd.name)
                    changed = True

    def _redrive_step(self, sd: StepDef, scope: _Scope, path: str, step: StepState) -> None:
        step.error = None
        step.finished_at = None
        if step.recovering is not None:
            step.phase = StepPhase.RUNNING
            clause = sd.catch[step.recovering]
            assert clause.steps is not None
            self._redrive_block(clause.steps, scope)
        elif sd.kind is StepKind.PARALLEL:
            step.phase = StepPhase.RUNNING
            for branch in sd.branches:
                self._redrive_block(branch.steps, scope)
        elif sd.kind is StepKind.FOR_EACH and step.items is not None:
            step.phase = StepPhase.RUNNING
            assert sd.for_each is not None
            inner = sd.for_each.step
            for i, item in enumerate(step.items):
                item_path = f"{path}[{i}].{inner.name}"
                item_step = self.state.steps.get(item_path)
                if item_step is not None and item_step.phase in BAD:
                    self._redrive_step(inner, scope.enter(path, i, item), item_path, item_step)
        else:
            # A fresh retry budget; attempt numbers go on, so no idempotency key repeats.
            step.phase = StepPhase.PENDING
            step.attempt_base = step.attempt
            step.iterations = 0
            step.items = None

    # -- resets ------------------------------------------------------------------------------

    def _reset_nested(self, sd: StepDef, scope: _Scope) -> None:
        """Make every nested instance of `sd` fresh before it runs again (repeat)."""
        for branch in sd.branches:
            for nested in branch.steps:
                self._reset_tree(nested, scope)
        if sd.for_each is not None:
            marker = f"{scope.prefix}{sd.name}["
            for path, step in self.state.steps.items():
                if path.startswith(marker) and step.phase is not StepPhase.PENDING:
                    self._reset(step)

    def _reset_tree(self, sd: StepDef, scope: _Scope) -> None:
        step = self.state.steps.get(scope.prefix + sd.name)
        if step is not None and step.phase is not StepPhase.PENDING:
            self._reset(step)
        self._reset_nested(sd, scope)
        for clause in sd.catch:
            for nested in clause.steps or ():
                self._reset_tree(nested, scope)

    @staticmethod
    def _reset(step: StepState) -> None:
        # Keep the attempt counter: the next attempt gets a new number, and a late event for
        # an attempt of the previous run of this instance is recognised as stale.
        attempt = step.attempt
        step.__dict__.update(StepState().__dict__)
        step.attempt = step.attempt_base = attempt

    # -- context -----------------------------------------------------------------------------

    def _scope_of(self, path: str) -> _Scope:
        scope = _ROOT
        for segment in path.split(".")[:-1]:
            name, _, rest = segment.partition("[")
            index = int(rest.rstrip("]"))
            holder = self.state.steps[scope.prefix + name]
            assert holder.items is not None
            scope = scope.enter(scope.prefix + name, index, holder.items[index])
        return scope

    def _context(self, scope: _Scope, step: str | None = None) -> dict[str, Any]:
        s = self.state
        steps: dict[str, Any] = {}
        for name, depth in self.d.depth.items():
            instance = (
                s.steps.get(scope.prefixes[depth] + name) if depth < len(scope.prefixes) else None
            )
            if instance is None:
                steps[name] = {"output": None, "phase": StepPhase.PENDING.value, "attempts": 0}
            else:
                steps[name] = {
                    "output": instance.output,
                    "phase": instance.phase.value,
                    "attempts": instance.attempt,
                }
        context: dict[str, Any] = {
            "input": s.input,
            "steps": steps,
            "vars": s.vars,
            "signals": s.signals,
            "run": {"name": s.run_name, "namespace": s.namespace, "uid": s.uid},
        }
        if scope.index is not None:
            context["item"] = scope.item
            context["index"] = scope.index
        error = self._catch_error(scope, step)
        if error is not None:
            context["error"] = error
        return context

    def _catch_error(self, scope: _Scope, step: str | None) -> dict[str, Any] | None:
        """The error being recovered from, for a step inside a catch clause's steps."""
        name = step
        while name is not None and name in self.d.parent:
            holder, relation = self.d.parent[name]
            if relation == "forEach":
                return None
            if relation == "catch":
                instance = self.state.steps.get(scope.prefix + holder)
                return instance.error if instance is not None else None
            name = holder
        return None

    # -- publishing --------------------------------------------------------------------------

    def _publish(self) -> None:
        """Recompute what is shown after each transition: run phase and queries."""
        s = self.state
        if not s.phase.finished:
            if s.suspended:
                s.phase = RunPhase.SUSPENDED
            elif s.compensations:
                s.phase = RunPhase.COMPENSATING
            else:
                s.phase = RunPhase.RUNNING
        if self.d.queries:
            context = self._context(_ROOT)
            for name, expression in self.d.queries:
                s.queries[name] = _query(expression, context)

    def _condition(self, kind: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.state.conditions = set_condition(
            self.state.conditions, kind, status, reason, message, now=rfc3339(self.now)
        )


_FINAL = {
    "failed": RunPhase.FAILED,
    "cancelled": RunPhase.CANCELLED,
    "timedOut": RunPhase.TIMED_OUT,
}


def _query(expression: Expression, context: dict[str, Any]) -> Any:
    try:
        return _checked(expression.evaluate(context))
    except EvaluationError as exc:
        return f"error: {exc}"


def _render(template: _Renders, context: dict[str, Any]) -> Any:
    """`template` rendered, refused (EvaluationError) when the result cannot be stored."""
    return _checked(template.render(context))


class _Renders(Protocol):
    """A compiled template or action: renders to JSON in an expression context."""

    def render(self, context: Mapping[str, Any]) -> Any: ...


def _checked(value: Any) -> Any:
    """`value` itself, or EvaluationError when a run cannot store it (`limits.value_problem`):
    an expression's result goes into the status, which the API server must accept."""
    problem = value_problem(value, "the result")
    if problem is not None:
        raise EvaluationError(problem)
    return value


def _output_too_large(output: Any, step: str | None) -> dict[str, Any] | None:
    """OutputTooLarge for an output over MAX_OUTPUT_BYTES, InvalidOutput for one a run cannot
    store (Infinity, nesting past MAX_JSON_DEPTH), else None."""
    problem = value_problem(output, "the output")
    if problem is not None:
        error: dict[str, Any] = {"type": "InvalidOutput", "message": problem}
        if step is not None:
            error["step"] = step
        return error
    if output is None or isinstance(output, bool | int | float):
        return None
    size = len(json.dumps(output, separators=(",", ":"), ensure_ascii=False).encode())
    if size <= MAX_OUTPUT_BYTES:
        return None
    error = {
        "type": "OutputTooLarge",
        "message": f"the output is {size} bytes of JSON, over the {MAX_OUTPUT_BYTES} a run can "
        "store; return references (ids, object keys) and keep bulk data in your own store",
    }
    if step is not None:
        error["step"] = step
    error["details"] = {"bytes": size, "limit": MAX_OUTPUT_BYTES}
    return error


def _expression_error(message: str, step: str | None, field: str) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "ExpressionError", "message": message}
    if step is not None:
        error["step"] = step
    error["details"] = {"field": field}
    return error


def _normalise(error: dict[str, Any], step: str) -> dict[str, Any]:
    """An activity's error as ErrorInfo: a type and a message at least."""
    out: dict[str, Any] = {
        "type": str(error.get("type") or "Error"),
        "message": str(error.get("message") or ""),
        "step": step,
    }
    if error.get("details") is not None:
        out["details"] = error["details"]
    return out


def _describe(value: Any) -> str:
    """A value that has the wrong type, for an error message: its JSON type and JSON text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "a list"
    else:
        kind = "an object"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else as_text(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{kind}: {text}"


__all__ = [
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
