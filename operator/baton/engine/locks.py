"""Mutexes and semaphores across runs: the engine's side of `synchronization`.

A step with a lock waits for it before its first execution; a run with one waits before its
first step. The engine only keeps what each holder asked for (`State.locks`, by holder key: the
step's path, or `(run)`) and derives the commands from the difference of two states, as it does
for activities: a hold that appears is an `AcquireLock`, a hold that disappears a `ReleaseLock`.
The shell keeps the lock itself in the Kubernetes API (`baton.store.locks`) and answers with
`LockAcquired` when the holder is granted, or `LockWaiting` (who holds it) meanwhile.

Semantics decided here:
- A step's hold is asked for when the step starts (after its `when`), with its name rendered
  then, and kept across its retries and repeat iterations; it is released the moment the step
  ends — succeeded, failed, cancelled, timed out, or skipped into its `finally` (the `finally`
  steps run without it). A step waiting for its lock is `Waiting`; a cancel or a failing sibling
  cancels it like any wait, which releases its place in the queue.
- The run's hold is asked for before its first step and released when the run finishes (after
  its compensations and onExit steps); a cancel or the run's timeout ends the wait. A redriven
  run asks again.
- A grant for a hold that is gone (the step was cancelled meanwhile) changes nothing here; the
  release the shell performed for that hold is what frees the lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.api.conditions import ConditionStatus
from baton.api.locks import MAX_LOCK_NAME_LENGTH
from baton.api.run import StepPhase
from baton.engine.commands import AcquireLock, Command, ReleaseLock
from baton.engine.definition import LockDef, StepDef
from baton.engine.errors import StepError
from baton.engine.events import LockAcquired, LockRefused, LockWaiting
from baton.engine.scope import ACTIVE, ROOT, Scope, step_def
from baton.engine.state import LockHold, State, StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine

RUN_KEY = "(run)"
"""Holder key of the run's own lock. Step names start with a letter: no step path is this."""
LOCK_WAITING = "LockWaiting"
"""Condition of a run with a step (or itself) waiting for a lock; its message says for which."""


def holder_id(uid: str, key: str) -> str:
    """The holder's identity in the lock object: run uid and holder key. The same for every
    request of one hold, so a request re-issued after a crash finds its own place."""
    return f"{uid}/{key}"


# -- in the machine ---------------------------------------------------------------------------


def admit(m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> bool:
    """True when the step may execute now: it holds its lock. Else it waits (`Waiting`), having
    asked for the lock, or it failed (a name that does not render)."""
    lock = sd.lock
    assert lock is not None
    hold = m.state.locks.get(path)
    if hold is None:
        requested = _request(m, lock, scope, sd.name)
        if isinstance(requested, StepError):
            m.step_failed(sd, scope, path, step, requested)
            return False
        hold = m.state.locks[path] = requested
    if hold.granted_at is None:
        step.phase = StepPhase.WAITING
        return False
    hold.entered = True
    return True


def advance(m: Machine) -> bool:
    """Start the steps whose lock was granted; ask for the run's own lock. False while the run
    waits for its lock: nothing of it may start yet."""
    s = m.state
    for key, hold in list(s.locks.items()):
        if key == RUN_KEY or hold.granted_at is None or hold.entered:
            continue
        step = s.steps.get(key)
        if step is None or step.phase is not StepPhase.WAITING:
            continue
        sd = step_def(m.d, key)
        if m.may_start(sd.name):
            m.execute(sd, m.scope_of(key), key, step)
    lock = m.d.lock
    if lock is None or s.ending is not None or s.compensations or s.exit_outcome is not None:
        return True
    held = s.locks.get(RUN_KEY)
    if held is None:
        requested = _request(m, lock, ROOT, None)
        if isinstance(requested, StepError):
            m.fail_run(requested)
            return True
        held = s.locks[RUN_KEY] = requested
    if held.granted_at is None:
        return False
    held.entered = True
    return True


def granted(m: Machine, event: LockAcquired) -> None:
    """The shell says the holder `event.key` holds its lock."""
    hold = m.state.locks.get(event.key)
    if hold is None or hold.granted_at is not None:
        return
    hold.granted_at = m.now
    hold.holders = []


def waiting(m: Machine, event: LockWaiting) -> None:
    """The shell says who holds the lock `event.key` waits for."""
    hold = m.state.locks.get(event.key)
    if hold is None or hold.granted_at is not None:
        return
    hold.holders = list(event.holders)
    hold.problem = event.problem


def refused(m: Machine, event: LockRefused) -> None:
    """The shell refused the lock (another namespace's, without its consent): the holder fails
    with `LockRefused`; its hold is dropped when it ends, like any."""
    hold = m.state.locks.get(event.key)
    if hold is None or hold.granted_at is not None:
        return
    details = {"field": "synchronization.namespace", "namespace": hold.namespace}
    if event.key == RUN_KEY:
        if m.state.ending is None:
            m.fail_run(StepError("LockRefused", event.message, details=details))
        return
    step = m.state.steps.get(event.key)
    if step is None or step.phase is not StepPhase.WAITING:
        return
    sd = step_def(m.d, event.key)
    error = StepError("LockRefused", event.message, details=details, step=sd.name)
    m.step_failed(sd, m.scope_of(event.key), event.key, step, error)


def release_ended(m: Machine) -> None:
    """Drop the holds of holders that ended (the commands release them), and say in the run's
    conditions what it waits for."""
    s = m.state
    if not s.locks:
        return
    for key in list(s.locks):
        if key == RUN_KEY:
            keep = not s.phase.finished
        else:
            step = s.steps.get(key)
            keep = step is not None and step.phase in ACTIVE and step.outcome is None
        if not keep:
            del s.locks[key]
    waits = [hold for hold in s.locks.values() if hold.granted_at is None]
    if waits:
        m.condition(LOCK_WAITING, ConditionStatus.TRUE, "Waiting", waits[0].message)
    elif any(c["type"] == LOCK_WAITING and c["status"] == "True" for c in s.conditions):
        m.condition(LOCK_WAITING, ConditionStatus.FALSE, "Granted", "no lock is waited for")


def _request(m: Machine, lock: LockDef, scope: Scope, step: str | None) -> LockHold | StepError:
    where = f"synchronization.{lock.kind.value}" + ("" if lock.kind.value == "mutex" else ".name")
    try:
        name = render(lock.name, m.context(scope, step))
    except EvaluationError as exc:
        return expression_error(str(exc), step, where)
    if not isinstance(name, str | int) or isinstance(name, bool):
        return expression_error(f"the lock's name must be a string, got {name!r}", step, where)
    name = str(name)
    if not name or len(name) > MAX_LOCK_NAME_LENGTH:
        return expression_error(
            f"the lock's name must have 1 to {MAX_LOCK_NAME_LENGTH} characters, got {len(name)}",
            step,
            where,
        )
    return LockHold(
        kind=lock.kind,
        name=name,
        requested_at=m.now,
        limit=lock.limit,
        config_map=lock.config_map,
        namespace=lock.namespace,
    )


# -- commands ---------------------------------------------------------------------------------


def lock_commands(before: State, after: State) -> list[Command]:
    """Releases of the holds `after` dropped, then requests of the holds it added."""
    if not before.locks and not after.locks:
        return []
    commands: list[Command] = []
    for key, hold in before.locks.items():
        if key not in after.locks:
            commands.append(_command(ReleaseLock, after.uid or before.uid, key, hold))
    for key, hold in after.locks.items():
        if key not in before.locks and hold.granted_at is None:
            commands.append(_command(AcquireLock, after.uid, key, hold))
    return commands


def pending_locks(state: State) -> list[Command]:
    """Requests of every hold still waiting: the shell re-issues them after a restart (each
    finds its place in the queue, or its grant)."""
    return [
        _command(AcquireLock, state.uid, key, hold)
        for key, hold in state.locks.items()
        if hold.granted_at is None
    ]


def _command(
    cls: type[AcquireLock] | type[ReleaseLock], uid: str, key: str, hold: LockHold
) -> Command:
    return cls(
        key=key,
        kind=hold.kind.value,
        name=hold.name,
        holder=holder_id(uid, key),
        limit=hold.limit,
        config_map=hold.config_map,
        namespace=hold.namespace,
    )
