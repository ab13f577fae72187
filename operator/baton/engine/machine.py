"""The core of a decision: apply one event to a private copy of the state, then settle the run.

`Machine` owns what every step kind shares — event application, scopes and the expression
context, the settle loop over due times, driving lists of steps, finishing a step (with its
repeat and catch), the run's ending and the saga's compensation unwinding, and redrive. What one
kind of step does is in its module under `baton.engine.kinds`, reached through `KINDS`: the core
never tests a step's kind.

Semantics decided here (and recorded in docs/architecture.md, "Engine"):
- A composite (the run, a parallel step, a forEach step, a list of catch steps) whose child
  fails fatally (`outcomes.is_fatal`: not handled by `continueOn` or a sibling's `depends`)
  stops starting new children, cancels everything in flight in it at once (`cancel_subtree`)
  and fails with that error in the same decision; without fail-fast it goes on with what does
  not depend on the failure and fails at the end. A run fails the same way, then compensates.
  A race's first branch to end decides; the others are cancelled the same way.
- Cancel and the run timeout stop at once: running activities are cancelled too.
- Retries apply to activities and child runs; sleep, waitForSignal, set, fail and composites fail
  at once (a `catch` can still recover them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from baton.api.conditions import ConditionStatus, set_condition
from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import OnCancel
from baton.engine import attempts, catch, cleanup, index, locks, memo, repeat, updates
from baton.engine.commands import Command
from baton.engine.definition import Definition, StepDef
from baton.engine.errors import StepError
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Event,
    LockAcquired,
    LockRefused,
    LockWaiting,
    MemoResolved,
    RedriveRequested,
    ResumeRequested,
    RunAborted,
    RunStarted,
    SignalReceived,
    SuccessorCreated,
    SuspendRequested,
    TimerFired,
    UpdateAccepted,
)
from baton.engine.kinds import KINDS, signal
from baton.engine.kinds.base import Deadline, TimerPurpose
from baton.engine.outcomes import is_fatal, is_settled, readiness
from baton.engine.scope import (
    ACTIVE,
    BAD,
    ROOT,
    BlockResult,
    Scope,
    first_failure,
    step_def,
    subtree_size,
)
from baton.engine.state import (
    CompensationState,
    Completion,
    Ending,
    KeyRole,
    Millis,
    SignalRecord,
    State,
    StepState,
    compensation_key,
    key_role,
    rfc3339,
    to_millis,
)
from baton.engine.timing import TimeValueError, resolve, timeouts_of
from baton.engine.values import (
    describe,
    expression_error,
    output_too_large,
    query,
    render,
)
from baton.expr import EvaluationError

ABORTED = "Aborted"
"""Condition of a run the shell ended with RunAborted."""
_MAX_PASSES = 10_000
"""Guard against a bug turning settling into an endless loop; never reached by a correct run."""
MAX_DUE_PER_DECISION = 250
"""Due times one decision handles at most (repeat iterations of a `set` without an interval,
say); a decision is a commit of the shell, and one must not hold the event loop for long:
250 iterations of a `set` take about 4 ms, 1,000 took 16 ms, which a loaded machine stretched
past the 100 ms the operator's loop may be blocked."""
RUN_TIMER = "run/timeout"

_FINAL = {
    Ending.FAILED: RunPhase.FAILED,
    Ending.CANCELLED: RunPhase.CANCELLED,
    Ending.TIMED_OUT: RunPhase.TIMED_OUT,
}


def deadlines(definition: Definition, state: State) -> list[Deadline]:
    """Every due time of the run, earliest first. While suspended, the due times that would
    start something (a retry, the next repeat iteration) are left out: resuming starts them."""
    if state.phase is RunPhase.PENDING or state.phase.finished:
        return []
    found: list[Deadline] = []
    if state.deadline is not None and state.ending is None and state.exit_outcome is None:
        # Not while the onExit steps run: the cleanup runs to its end.
        found.append(Deadline(state.deadline, RUN_TIMER, "", TimerPurpose.RUN))
    suspended = state.suspended
    # Each instance's due times are kept in the index, computed when the instance changed:
    # a large forEach's items cost nothing here but those that have due times.
    for due in index.index_of(definition, state).due.values():
        found.extend(d for d in due if not (suspended and d.purpose in index.STARTING))
    for comp in state.compensations:
        sd = step_def(definition, comp.path)
        assert sd.compensate is not None
        run = comp.run
        tag = f"{comp.key}#{run.attempt}"
        if run.phase is StepPhase.RUNNING:
            timeouts = timeouts_of(sd.compensate.timeouts, run.times)
            found.extend(
                attempts.attempt_deadlines(comp.key, tag, run, timeouts, sd.compensate.action.kind)
            )
        elif run.phase is StepPhase.BACKOFF and not suspended:
            assert run.next_attempt_at is not None
            found.append(
                Deadline(run.next_attempt_at, f"{tag}/retry", comp.key, TimerPurpose.RETRY)
            )
    found.sort(key=lambda d: (d.due, d.timer_id))
    return found


class Machine:
    """One decision: a private copy of the state, mutated in place, at one instant."""

    def __init__(self, definition: Definition, state: State, now: Millis) -> None:
        self.d = definition
        self.state = state
        self.now = now
        self.now_time = datetime.fromtimestamp(now / 1000, UTC)
        """`now` in expressions: the time of the event being decided, never the clock."""
        self.slots: int | None = None
        """Slots of the run's parallelism left in this pass; None until first needed."""
        self.counted = False
        """True once `slots` was counted from the busy steps in this pass, not bounded."""
        self.emitted: list[Command] = []
        """Commands issued once, in this decision, that no state keeps in flight (a memo
        store); `decide` adds them to those derived from the state."""
        index.index_of(definition, state)

    def sync(self) -> index.Index:
        """The state's index, up to date with every instance this decision touched."""
        return index.sync(self.d, self.state)

    def fan(self, path: str) -> index.Fan:
        """The items of the forEach instance at `path`, as they are now."""
        return self.sync().fans[path]

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        self._apply(event)
        locks.release_ended(self)

    def _apply(self, event: Event) -> None:
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
            if s.phase is RunPhase.FAILED and not self.aborted:
                self._redrive()
        elif s.phase.finished:
            return
        elif isinstance(event, MemoResolved):
            memo.resolved(self, event)
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
        elif isinstance(event, ActivityCompleted | ActivityFailed | ChildFinished):
            self._result(event)
        elif isinstance(event, SignalReceived):
            self._signal(event)
        elif isinstance(event, UpdateAccepted):
            updates.accept(self, event)
        elif isinstance(event, CancelRequested):
            self._abort(Ending.CANCELLED, StepError("Cancelled", "the run was cancelled"))
        elif isinstance(event, SuspendRequested):
            s.suspended = True
        elif isinstance(event, ResumeRequested):
            s.suspended = False
        elif isinstance(event, SuccessorCreated):
            self._successor_created(event)
        elif isinstance(event, LockAcquired):
            locks.granted(self, event)
        elif isinstance(event, LockWaiting):
            locks.waiting(self, event)
        elif isinstance(event, LockRefused):
            locks.refused(self, event)
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
        s.parallelism = event.parallelism
        s.scheduled_time = event.scheduled_time
        carried = event.continuation or {}
        if carried:
            s.lineage = carried.get("lineage")
            s.continuation = int(carried.get("number") or 0)
            s.continued_from = carried.get("from")
            s.carried_iterations = carried.get("iterations") or None
        timeout = event.timeout if event.timeout is not None else self.d.timeout
        s.deadline = self.now + to_millis(timeout) if timeout is not None else None
        context = self.context(ROOT)
        for name, template in self.d.vars:
            try:
                s.vars[name] = render(template, context)
            except EvaluationError as exc:
                self._unwind(Ending.FAILED, expression_error(str(exc), None, f"vars.{name}"))
                return
        if carried.get("vars"):
            # What the lineage's previous run had: it goes on from there.
            s.vars.update(carried["vars"])

    def _running(self, key: str, attempt: int) -> tuple[StepDef, StepState] | None:
        """The step or compensation running `attempt` under `key`, if that is current."""
        comp = self._compensation(key)
        if comp is not None:
            run = comp.run
            if run.phase is StepPhase.RUNNING and run.attempt == attempt:
                return step_def(self.d, comp.path), run
            return None
        step = self.state.steps.get(key)
        if step is None or not step.awaits_attempt or step.attempt != attempt:
            return None
        sd = step_def(self.d, key)
        if not KINDS[sd.kind].attempts:
            return None
        return sd, step

    def _compensation(self, key: str) -> CompensationState | None:
        if key_role(key) is not KeyRole.COMPENSATION:
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

    def _result(self, event: ActivityCompleted | ActivityFailed | ChildFinished) -> None:
        """An attempt's result: a compensation's is handled here (compensations are always
        activities), a step's by its kind."""
        target = self._running(event.key, event.attempt)
        if target is None:
            return
        sd, step = target
        if self._compensation(event.key) is None:
            KINDS[sd.kind].result(self, sd, event.key, step, event)
        elif isinstance(event, ActivityCompleted):
            step.request = None
            self.finish(step, StepPhase.SUCCEEDED, output=event.output)
        elif isinstance(event, ActivityFailed):
            error = StepError.reported(event.error, sd.name)
            attempts.attempt_failed(self, sd, event.key, step, error, retry_after=event.retry_after)

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
            # What a held signal finds is what it would have found arriving in turn, after
            # the run reacted to the one before (a wait it ends, a step that follows it).
            self._settle()
            if s.phase.finished:
                return  # as signals arriving in turn would find: a finished run takes none
            self._deliver(s.early.pop(0))

    def _deliver(self, record: SignalRecord) -> None:
        s = self.state
        s.signals_received += 1
        s.signals[record.name] = record.payload
        for handler in self.d.signal_handlers:
            if handler.signal != record.name:
                continue
            context = self.context(ROOT)
            context["signal"] = {"name": record.name, "payload": record.payload}
            try:
                values = {var: render(t, context) for var, t in handler.assignments}
            except EvaluationError as exc:
                self.condition(
                    "SignalHandlerFailed",
                    ConditionStatus.TRUE,
                    "EvaluationError",
                    f"signal {record.name!r} #{record.index}: {exc}",
                )
                continue
            s.vars.update(values)
        if record.name in self.d.waited_signals and not signal.offer(self, record):
            s.unclaimed.append(record)

    # -- settling ----------------------------------------------------------------------------

    def _settle(self) -> None:
        """Start what can start and handle what is due, until nothing changes, or until
        MAX_DUE_PER_DECISION due times were handled: the rest stays due, so `next_wakeup` is
        `now` and the driver's next TimerFired goes on from there, after committing this much."""
        for _ in range(MAX_DUE_PER_DECISION):
            self._progress()
            if self.state.phase.finished:
                return
            self.sync()
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
        steps = s.steps
        # Only instances this decision touched can have changed since the last pass; the
        # others are shared with the state it copied (`Steps`).
        paths = steps if steps.touched is None else steps.touched
        return (
            s.phase,
            s.ending,
            tuple(
                (p, st.phase, st.attempt, st.iterations, st.recovering)
                for p in paths
                if (st := steps.peek(p)) is not None
            ),
            # A step's `outcome` changes only with its phase; the run's exit outcome does not.
            s.exit_outcome,
            tuple((c.run.phase, c.run.attempt) for c in s.compensations),
        )

    def _pass(self) -> None:
        s = self.state
        self.slots = None
        if s.phase.finished:
            return
        if s.exit_outcome is not None:
            phase = cleanup.advance_exit(self)
            if phase is not None:
                self._end(phase)
            return
        if s.compensations:
            self._drive_compensations()
            return
        if (s.locks or self.d.lock is not None) and not locks.advance(self):
            return  # the run waits for its own lock
        if s.phase.finished:
            return
        updates.drive(self)
        result, error = self.drive_block(
            self.d.steps, ROOT, halting=s.ending is not None, fail_fast=self.d.fail_fast
        )
        if s.ending is Ending.CONTINUED:
            # A continueAsNew step ended the run: once what was in flight stopped, it is
            # done, whatever the other steps ended in; nothing is compensated.
            if result is not BlockResult.RUNNING:
                self._close(RunPhase.CONTINUED_AS_NEW)
            return
        if result is BlockResult.SUCCEEDED:
            if updates.running(s):
                return  # the run ends once the steps of the updates it accepted did
            self._succeed_run()
        elif result in (BlockResult.FAILED, BlockResult.HALTED):
            ending = s.ending or Ending.FAILED
            if error is None or ending is not Ending.FAILED:
                error = s.error or StepError("Cancelled", "a step was cancelled")
            self._unwind(ending, error)

    @property
    def can_start(self) -> bool:
        """New steps may start: the run is neither suspended nor ending."""
        return not self.state.suspended and self.state.ending is None

    def may_start(self, name: str) -> bool:
        """Step `name` may start: never while suspended; while the run ends (a cancel, the run
        timeout, a failure) only cleanup steps (`onExit`, `finally`) start."""
        return not self.state.suspended and (self.state.ending is None or name in self.d.cleanup)

    @property
    def stopping(self) -> bool:
        """A cancel or the run timeout stops the run: a composite that ends now was stopped,
        whatever its children ended in (no catch applies)."""
        return self.state.ending in (Ending.CANCELLED, Ending.TIMED_OUT)

    def ended(self, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Called on each step a list visits: one that just ended runs its `finally` first."""
        if sd.finally_steps:
            cleanup.begin_finally(self, sd, scope, path, step)

    def drive_block(
        self, steps: tuple[StepDef, ...], scope: Scope, *, halting: bool, fail_fast: bool = True
    ) -> tuple[BlockResult, StepError | None]:
        """Drive one list of steps; returns where it stands and its first error.

        A step whose failure is fatal (`outcomes.is_fatal`) halts a fail-fast list: nothing new
        starts and everything in flight in it is cancelled at once, so the list fails in the
        same decision. Without fail-fast the list goes on with what does not depend on the
        failed step, skips what does, and fails once nothing more can run."""
        s = self.state
        prefix = scope.prefix
        fatal = any(
            (x := s.steps.get(prefix + sd.name)) is not None and is_fatal(sd, x) for sd in steps
        )
        halt = halting or (fail_fast and fatal)
        if halt:
            self.cancel_block(steps, scope)
        for sd in steps:
            path = prefix + sd.name
            step = s.steps.get(path)
            if step is None or step.phase is StepPhase.PENDING:
                if halt or not self.may_start(sd.name):
                    continue
                ready = readiness(sd, prefix, s.steps, self.d.index)
                if ready is None:
                    continue
                if not ready:
                    step = self._skip_step(path)
                elif self.take_slot(sd):
                    step = self.start_step(sd, scope, path)
                else:
                    continue
            elif step.phase in ACTIVE:
                self.drive_step(sd, scope, path, step, halt)
            if step is not None:
                self.ended(sd, scope, path, step)
                if not halt and fail_fast and is_fatal(sd, step):
                    halt = True
                    self.cancel_block(steps, scope)
        if halt:
            # Steps cancelled above run their `finally` before the list decides.
            for sd in steps:
                step = s.steps.get(prefix + sd.name)
                if step is not None:
                    self.ended(sd, scope, prefix + sd.name, step)
        instances = [(sd, s.steps.get(prefix + sd.name)) for sd in steps]
        if any(i is not None and i.phase in ACTIVE for _, i in instances):
            return BlockResult.RUNNING, None
        failed = [i for sd, i in instances if i is not None and is_fatal(sd, i)]
        # Without fail-fast a pending step that can still start (or be skipped) keeps the list
        # going: the next pass starts it.
        if (
            failed
            and not halt
            and self.can_start
            and any(
                (i is None or i.phase is StepPhase.PENDING)
                and readiness(sd, prefix, s.steps, self.d.index) is not None
                for sd, i in instances
            )
        ):
            return BlockResult.RUNNING, None
        if failed:
            return BlockResult.FAILED, first_failure(failed).error
        if all(i is not None and is_settled(sd, i) for sd, i in instances):
            return BlockResult.SUCCEEDED, None
        return (BlockResult.HALTED if halt else BlockResult.RUNNING), None

    def _skip_step(self, path: str) -> StepState:
        """Skip a pending step whose dependencies can never be met."""
        step = self.state.steps.get(path)
        if step is None:
            step = self.state.steps[path] = StepState()
        step.started_at = self.now
        step.error = None
        self.finish(step, StepPhase.SKIPPED)
        return step

    def cancel_block(self, steps: tuple[StepDef, ...], scope: Scope) -> None:
        """Cancel everything in flight in a list of steps, nested steps included."""
        for sd in steps:
            step = self.state.steps.get(scope.prefix + sd.name)
            # A step running its `finally` has ended already: its cleanup runs to the end.
            if step is None:
                continue
            if step.phase in ACTIVE and step.outcome is None:
                self.cancel_subtree(sd, scope, scope.prefix + sd.name, step)
            # Every step that ended (just now, or by the run's cancel) begins its `finally`.
            self.ended(sd, scope, scope.prefix + sd.name, step)

    def cancel_subtree(self, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Cancel the active step instance at `path` and everything in flight under it: its
        catch clause's steps and what its kind nests (branches, forEach items). Only the state
        changes; the commands follow from the difference of the states (CancelActivity for a
        running attempt, TerminateChild per the child's parentClosePolicy, dropped timers)."""
        if step.recovering is not None:
            clause_steps = sd.catch[step.recovering].steps
            assert clause_steps is not None
            self.cancel_block(clause_steps, scope)
        KINDS[sd.kind].cancel_nested(self, sd, scope, path, step)
        if step.recovering is None and KINDS[sd.kind].nested_active(self, sd, scope, path, step):
            # A nested step runs its `finally`: the composite stays Running, driven as halted,
            # and ends once that cleanup ended.
            return
        self.cancel(step)

    def drives(self, sd: StepDef) -> bool:
        """Driving a running instance of `sd` may do something by itself: its kind nests
        steps. An instance of another kind only waits (`Kind.drives`)."""
        return KINDS[sd.kind].drives

    def drive_step(self, sd: StepDef, scope: Scope, path: str, step: StepState, halt: bool) -> None:
        """Drive an active step one pass: cancel it when it only waits and `halt` says stop,
        else let its finally steps, its catch clause or its kind go on."""
        if step.outcome is not None:
            cleanup.advance_finally(self, sd, scope, path, step)
            return
        kind = KINDS[sd.kind]
        waits = step.phase in (StepPhase.BACKOFF, StepPhase.WAITING) or (
            kind.waits_while_running and step.phase is StepPhase.RUNNING
        )
        if halt and waits:
            self.cancel(step)
            return
        if step.phase is not StepPhase.RUNNING:
            return
        if step.recovering is not None:
            catch.advance(self, sd, scope, step, halt)
        else:
            kind.advance(self, sd, scope, path, step, halt=halt)

    def take_slot(self, sd: StepDef) -> bool:
        """True when `sd` may start under the run's parallelism (taking a slot if it needs
        one): activities and child runs count, from their start to their end."""
        if not KINDS[sd.kind].attempts:
            return True
        if self.slots is None:
            # Fewer instances than the bound: every one could be busy and a slot is still free,
            # so their count is a safe bound without looking at them (most runs are small).
            self.slots = self._parallelism - len(self.state.steps)
            self.counted = False
        if self.slots <= 0 and not self.counted:
            self.slots = self._parallelism - self._busy()
            self.counted = True
        if self.slots <= 0:
            return False
        self.slots -= 1
        return True

    @property
    def _parallelism(self) -> int:
        return self.state.parallelism or self.d.parallelism

    def _busy(self) -> int:
        """Activities and child runs in flight: active instances that made an attempt (only
        those kinds have attempts), not recovering through a catch clause. Read from the
        states alone, without looking up definitions: this runs over every instance."""
        steps = self.state.steps
        return sum(
            1
            for path in self.sync().active
            if (step := steps.peek(path)) is not None
            and step.attempt
            and step.phase in ACTIVE
            and step.recovering is None
        )

    def first_error(self, sd: StepDef, errors: list[StepError | None]) -> StepError:
        """The error a composite fails with: its first nested error, or Cancelled."""
        known = [e for e in errors if e is not None]
        if known:
            return known[0]
        return StepError("Cancelled", "a nested step was cancelled", step=sd.name)

    def last_output(self, steps: tuple[StepDef, ...], scope: Scope) -> Any:
        """The output of the last step of a list (a branch's, a catch clause's)."""
        last = self.state.steps.get(scope.prefix + steps[-1].name)
        return last.output if last is not None else None

    # -- starting ----------------------------------------------------------------------------

    def start_step(self, sd: StepDef, scope: Scope, path: str) -> StepState:
        """Start the step instance at `path`: skip it when its `when` is false, else execute."""
        s = self.state
        step = s.steps.get(path)
        if step is None:
            step = s.steps[path] = StepState()
        step.started_at = self.now
        step.finished_at = None
        step.error = None
        step.outcome = None
        if sd.when is not None:
            try:
                go = sd.when.evaluate(self.context(scope, sd.name))
            except EvaluationError as exc:
                self.step_failed(sd, scope, path, step, expression_error(str(exc), sd.name, "when"))
                return step
            if not isinstance(go, bool):
                error = expression_error(
                    f"`when` must be true or false, got {describe(go)}", sd.name, "when"
                )
                self.step_failed(sd, scope, path, step, error)
                return step
            if not go:
                self.finish(step, StepPhase.SKIPPED)
                return step
        self.execute(sd, scope, path, step)
        return step

    def execute(self, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Run one execution (one repeat iteration) of a step from the start."""
        step.attempt_base = step.attempt
        step.failures = None
        step.scheduled_at = self.now
        step.recovering = None
        step.signal = None
        step.items = None
        step.next_attempt_at = None
        step.wake_at = None
        step.times = None
        if sd.lock is not None and not locks.admit(self, sd, scope, path, step):
            return
        if sd.times:
            # Computed time is evaluated once per execution, when it starts.
            try:
                step.times = resolve(sd.times, self.context(scope, sd.name))
            except TimeValueError as exc:
                error = expression_error(str(exc), sd.name, exc.field)
                self.step_failed(sd, scope, path, step, error)
                return
        memo.reset(step)
        if sd.memoize is not None:
            memo.begin(self, sd, scope, path, step)
        else:
            KINDS[sd.kind].start(self, sd, scope, path, step)

    # -- finishing ---------------------------------------------------------------------------

    def finish(
        self,
        step: StepState,
        phase: StepPhase,
        *,
        output: Any = None,
        error: StepError | None = None,
    ) -> None:
        """End `step` in `phase`."""
        step.phase = phase
        step.finished_at = self.now
        step.request = None
        step.next_attempt_at = None
        step.wake_at = None
        if phase is StepPhase.SUCCEEDED:
            step.output = output
        if error is not None:
            step.error = error

    def cancel(self, step: StepState) -> None:
        self.finish(step, StepPhase.CANCELLED)

    def instances_with(self, expanding: str, items: int) -> int:
        """Step instances the run can come to hold once the forEach at `expanding` expands to
        `items` instances: every step of the definition once, plus the items of every forEach
        already expanded, nested ones included. Items start lazily (`concurrency`), so counting
        only the instances that exist would let forEach steps nested in forEach items each pass
        the check while together they hold far more (200 x 200 items gave 40,201)."""
        s = self.state
        bound = sum(subtree_size(sd) for sd in self.d.steps) + items
        for path, step in s.steps.items():
            if step.items is not None and path != expanding:
                inner = step_def(self.d, path).for_each
                assert inner is not None
                bound += len(step.items) * subtree_size(inner.step)
        # Instances left by an earlier, longer expansion (repeat) still count.
        return max(bound, len(s.steps) + items)

    def execution_succeeded(
        self, sd: StepDef, scope: Scope, path: str, step: StepState, output: Any
    ) -> None:
        """One execution of the step ended well: repeat it, or the step succeeded."""
        oversize = output_too_large(output, sd.name)
        if oversize is not None:
            self.step_failed(sd, scope, path, step, oversize)
            return
        store = memo.stored(sd, path, step, output)
        if store is not None:
            self.emitted.append(store)
        if sd.repeat is not None and repeat.again(self, sd, scope, path, step, output=output):
            return
        self.finish(step, StepPhase.SUCCEEDED, output=output)
        if sd.compensate is not None and step.cached is not True:
            # An output from the cache is another run's effect: this run has nothing to undo.
            self.state.completed.append(Completion(path=path, output=output))

    def step_failed(
        self,
        sd: StepDef,
        scope: Scope,
        path: str,
        step: StepState,
        error: StepError,
        *,
        catchable: bool = True,
    ) -> None:
        """The step failed for good: recover with a matching catch clause, or fail."""
        if error.step is None:
            error = replace(error, step=sd.name)
        if not catchable or not catch.recover(self, sd, scope, step, error):
            self.finish(step, StepPhase.FAILED, error=error)

    # -- deadlines ---------------------------------------------------------------------------

    def _expire(self, deadline: Deadline) -> None:
        s = self.state
        purpose = deadline.purpose
        if purpose is TimerPurpose.RUN:
            seconds = (s.deadline or 0) - (s.started_at or 0)
            error = StepError(
                "Timeout",
                f"the run did not finish within {seconds / 1000:g}s",
                details={"kind": "run"},
            )
            self._abort(Ending.TIMED_OUT, error)
            return
        comp = self._compensation(deadline.target)
        if comp is not None:
            sd = step_def(self.d, comp.path)
            if purpose is TimerPurpose.RETRY:
                self._begin_compensation(comp)
            else:
                assert purpose.is_attempt_timeout
                error = attempts.timeout_error(purpose, sd.name)
                attempts.attempt_failed(self, sd, deadline.target, comp.run, error)
            return
        sd = step_def(self.d, deadline.target)
        step = s.steps[deadline.target]
        scope = self.scope_of(deadline.target)
        if purpose is TimerPurpose.REPEAT:
            repeat.iterate(self, sd, scope, deadline.target, step)
        else:
            KINDS[sd.kind].expire(self, sd, scope, deadline.target, step, purpose=purpose)

    # -- ending ------------------------------------------------------------------------------

    def _abort(self, ending: Ending, error: StepError) -> None:
        """Cancel or time out the run: stop everything in flight, then unwind."""
        s = self.state
        successor = s.successor
        if ending is Ending.CANCELLED and successor is not None and not successor.created:
            # The run is continuing as new: the cancel goes on to the run it continues as.
            successor.cancel = True
        if (
            s.compensations
            or s.ending in (Ending.CANCELLED, Ending.TIMED_OUT)
            or s.exit_outcome is not None
        ):
            # An unwinding saga and the run's onExit are not interrupted.
            return
        if s.ending is None:
            s.ending = ending
            s.error = error
        # Cancelling overrides suspension: the user wants the run to stop, compensations run.
        s.suspended = False
        for path in index.in_seq(s, self.sync().active):
            step = s.steps[path]
            if step.phase not in ACTIVE or step.outcome is not None:
                continue  # ended, running its finally: cleanup runs to its end
            sd = step_def(self.d, path)
            if sd.name in self.d.cleanup:
                continue
            if step.phase is StepPhase.RUNNING and (
                sd.kind.is_composite or step.recovering is not None
            ):
                # It ends once what it holds ended, the finally steps inside it included.
                continue
            cleanup.interrupt(self, sd, path, step)
            self.cancel(step)

    @property
    def aborted(self) -> bool:
        """The shell ended the run with RunAborted."""
        return any(c["type"] == ABORTED and c["status"] == "True" for c in self.state.conditions)

    def _abort_run(self, event: RunAborted) -> None:
        """End the run Failed at once: everything in flight is cancelled (the commands follow
        from the difference of the states), nothing is compensated."""
        s = self.state
        for path in index.in_seq(s, self.sync().active):
            step = s.steps[path]
            if step.phase in ACTIVE:
                self.cancel(step)
        for comp in s.compensations:
            if comp.run.phase in ACTIVE:
                self.cancel(comp.run)
        s.ending = Ending.FAILED
        s.error = StepError(event.reason, event.message)
        updates.abandon(self, s.error)
        self.condition(ABORTED, ConditionStatus.TRUE, event.reason, event.message)
        self._close(RunPhase.FAILED)

    def fail_run(self, error: StepError) -> None:
        """The run fails with `error` before any step of it ran (its own lock's name)."""
        self._unwind(Ending.FAILED, error)

    def _unwind(self, ending: Ending, error: StepError) -> None:
        s = self.state
        s.ending = ending
        s.error = error
        updates.abandon(self, error)
        on_cancel = s.on_cancel or self.d.on_cancel.value
        compensate = ending is not Ending.CANCELLED or on_cancel == OnCancel.COMPENSATE.value
        if compensate and s.completed:
            seen: dict[str, int] = {}
            for done in reversed(s.completed):
                n = seen.get(done.path, 0)
                seen[done.path] = n + 1
                s.compensations.append(
                    CompensationState(
                        path=done.path, key=compensation_key(done.path, n), output=done.output
                    )
                )
            s.phase = RunPhase.COMPENSATING
            return
        self._close(_FINAL[ending])

    def _drive_compensations(self) -> None:
        s = self.state
        for comp in s.compensations:
            phase = comp.run.phase
            if phase in (StepPhase.SUCCEEDED, StepPhase.FAILED):
                continue
            if phase is StepPhase.PENDING and not s.suspended:
                comp.run.scheduled_at = self.now
                comp.run.started_at = self.now
                if self._compute_compensation_times(comp):
                    self._begin_compensation(comp)
            return
        failed = any(c.run.phase is StepPhase.FAILED for c in s.compensations)
        ending = s.ending or Ending.FAILED
        if failed:
            self._close(RunPhase.COMPENSATION_FAILED)
        else:
            self._close(RunPhase.COMPENSATED if ending is Ending.FAILED else _FINAL[ending])

    def _compute_compensation_times(self, comp: CompensationState) -> bool:
        """Evaluate the compensation's computed times once, before its first attempt; False
        (the compensation failed) when one fails."""
        sd = step_def(self.d, comp.path)
        assert sd.compensate is not None
        if not sd.compensate.times:
            return True
        try:
            comp.run.times = resolve(sd.compensate.times, self.compensation_context(comp))
        except TimeValueError as exc:
            error = expression_error(str(exc), sd.name, exc.field)
            self.finish(comp.run, StepPhase.FAILED, error=error)
            return False
        return True

    def compensation_context(self, comp: CompensationState) -> dict[str, Any]:
        """The context of a compensation: its step's, the step's output as it completed."""
        sd = step_def(self.d, comp.path)
        context = self.context(self.scope_of(comp.path), sd.name)
        own = context["steps"][sd.name]
        context["steps"][sd.name] = {**own, "output": comp.output}
        return context

    def compensation(self, key: str) -> CompensationState:
        """The compensation running under `key`."""
        found = self._compensation(key)
        assert found is not None
        return found

    def _begin_compensation(self, comp: CompensationState) -> None:
        sd = step_def(self.d, comp.path)
        assert sd.compensate is not None
        context = self.compensation_context(comp)
        try:
            request = render(sd.compensate.action, context)
        except EvaluationError as exc:
            field = f"compensate.{sd.compensate.action.kind.value}"
            error = expression_error(str(exc), sd.name, field)
            self.finish(comp.run, StepPhase.FAILED, error=error)
            return
        attempts.open_attempt(self, comp.run, request)

    def _succeed_run(self) -> None:
        s = self.state
        if self.d.output is not None:
            try:
                output = render(self.d.output, self.context(ROOT))
            except EvaluationError as exc:
                self._unwind(Ending.FAILED, expression_error(str(exc), None, "output"))
                return
            oversize = output_too_large(output, None)
            if oversize is not None:
                self._unwind(Ending.FAILED, oversize)
                return
            s.output = output
        self._close(RunPhase.SUCCEEDED)

    def _close(self, phase: RunPhase) -> None:
        """The run's outcome is `phase`: it ends in it, after its onExit steps if it has any."""
        if not cleanup.begin_exit(self, phase):
            self._end(phase)

    def _end(self, phase: RunPhase) -> None:
        s = self.state
        successor = s.successor
        if phase is RunPhase.CONTINUED_AS_NEW and successor is not None and not successor.created:
            # The shell creates the successor now (`ContinueAsNew` is in flight); the run ends
            # once it reports it created (`SuccessorCreated`).
            successor.ready = True
            return
        s.phase = phase
        s.finished_at = self.now
        s.suspended = False

    def _successor_created(self, event: SuccessorCreated) -> None:
        s = self.state
        successor = s.successor
        if (
            successor is None
            or not successor.ready
            or successor.created
            or successor.name != event.name
        ):
            return
        if event.error is not None:
            # The name is held by a run that is not this one's successor: nothing goes on.
            s.ending = Ending.FAILED
            s.error = StepError(
                str(event.error.get("type") or "ContinueAsNewFailed"),
                str(event.error.get("message") or ""),
            )
            s.successor = None
            self._end(RunPhase.FAILED)
            return
        successor.created = True
        self._end(RunPhase.CONTINUED_AS_NEW)

    # -- redrive -----------------------------------------------------------------------------

    def _redrive(self) -> None:
        s = self.state
        s.phase = RunPhase.RUNNING
        s.ending = None
        s.error = None
        s.finished_at = None
        cleanup.redriven(self)
        self.redrive_block(self.d.steps, ROOT)

    def redrive_block(self, steps: tuple[StepDef, ...], scope: Scope) -> None:
        """Redrive every failed or cancelled step of a list, and the steps skipped because
        one of them had failed (they decide again once it ends)."""
        redriven: set[str] = set()
        for sd in steps:
            path = scope.prefix + sd.name
            step = self.state.steps.get(path)
            if step is not None and step.phase in BAD:
                self.redrive_step(sd, scope, path, step)
                redriven.add(sd.name)
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
                    _reset(step)
                    redriven.add(sd.name)
                    changed = True

    def redrive_step(self, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Make one failed step go again: its catch steps, or what its kind says."""
        step.error = None
        step.finished_at = None
        step.outcome = None
        if step.recovering is not None:
            catch.redrive(self, sd, scope, step)
        else:
            KINDS[sd.kind].redrive(self, sd, scope, path, step)

    # -- resets ------------------------------------------------------------------------------

    def reset_nested(self, sd: StepDef, scope: Scope) -> None:
        """Make every nested instance of `sd` fresh before it runs again (repeat)."""
        for branch in sd.branches:
            for nested in branch.steps:
                self.reset_tree(nested, scope)
        if sd.for_each is not None:
            marker = f"{scope.prefix}{sd.name}["
            steps = self.state.steps
            for path, step in list(steps.items()):
                if path.startswith(marker) and step.phase is not StepPhase.PENDING:
                    _reset(steps[path])

    def reset_tree(self, sd: StepDef, scope: Scope) -> None:
        """Make the instance of `sd` in `scope` and everything nested in it fresh."""
        step = self.state.steps.get(scope.prefix + sd.name)
        if step is not None and step.phase is not StepPhase.PENDING:
            _reset(step)
        self.reset_nested(sd, scope)
        for clause in sd.catch:
            for nested in clause.steps or ():
                self.reset_tree(nested, scope)
        for nested in sd.finally_steps:
            self.reset_tree(nested, scope)

    # -- context -----------------------------------------------------------------------------

    def scope_of(self, path: str) -> Scope:
        """The scope of the step instance at `path`."""
        scope = ROOT
        for segment in path.split(".")[:-1]:
            if segment.startswith(updates.MARK):
                scope = updates.scope(segment[len(updates.MARK) :])
                continue
            name, _, rest = segment.partition("[")
            index = int(rest.rstrip("]"))
            holder = self.state.steps[scope.prefix + name]
            assert holder.items is not None
            scope = scope.enter(scope.prefix + name, index, holder.items[index])
        return scope

    def context(self, scope: Scope, step: str | None = None) -> dict[str, Any]:
        """The expression context of a step (`step`, None for run-level expressions)."""
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
            "run": {
                "name": s.run_name,
                "namespace": s.namespace,
                "uid": s.uid,
                "scheduledTime": s.scheduled_time,
                "lineage": s.lineage or s.run_name,
                "continuation": s.continuation,
                "continuedFrom": s.continued_from,
                **cleanup.run_in_scope(self),
            },
            "now": self.now_time,
        }
        if scope.index is not None:
            context["item"] = scope.item
            context["index"] = scope.index
        if (update := updates.in_scope(self, scope)) is not None:
            context["update"] = update
        error = catch.error_in_scope(self, scope, step)
        if error is not None:
            context["error"] = error
        ended = cleanup.owner_in_scope(self, scope, step)
        if ended is not None:
            context["step"] = ended
        return context

    # -- publishing --------------------------------------------------------------------------

    def _publish(self) -> None:
        """Recompute what is shown after each transition: run phase and queries."""
        s = self.state
        if not s.phase.finished:
            if s.suspended:
                s.phase = RunPhase.SUSPENDED
            elif s.exit_outcome is not None:
                s.phase = RunPhase.RUNNING  # the onExit steps run; exitOutcome tells the end
            elif s.compensations:
                s.phase = RunPhase.COMPENSATING
            else:
                s.phase = RunPhase.RUNNING
        if self.d.queries:
            context = self.context(ROOT)
            for name, expression in self.d.queries:
                s.queries[name] = query(expression, context)

    def condition(self, kind: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Set the run's condition `kind` (one entry per type)."""
        self.state.conditions = set_condition(
            self.state.conditions, kind, status, reason, message, now=rfc3339(self.now)
        )


def _reset(step: StepState) -> None:
    # Keep the attempt counter: the next attempt gets a new number, and a late event for an
    # attempt of the previous run of this instance is recognised as stale.
    attempt, seq = step.attempt, step.seq
    step.__dict__.update(StepState().__dict__)
    step.attempt = step.attempt_base = attempt
    step.seq = seq
