"""Cleanup that always runs: a step's `finally` steps once it ended, the run's `onExit` steps
once its outcome is decided, and the compensation of a step a cancel or the run timeout
interrupted in flight (`compensate.onInterrupt`). Any step may have `finally`, so this lives
beside the core, as catch clauses do.

The state holds two markers. `StepState.outcome` is the phase a step with `finally` ended in:
set while its finally steps run (the step shows Running meanwhile) and kept once they ran.
`State.exit_outcome` is the phase the run ends in, set while the onExit steps run and kept
once they ran. Kept markers make each cleanup run once per ending whatever is replayed or
delivered twice; a new start of the step, or a redrive, clears them.

A failing cleanup fails a step or run that had succeeded (as Argo's `onExit`: the cleanup is
part of the contract) and otherwise leaves its outcome and error; either way the run's
`CleanupFailed` condition reports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.api.conditions import ConditionStatus
from baton.api.run import RunPhase, StepPhase
from baton.engine.definition import StepDef, StepKind
from baton.engine.errors import StepError
from baton.engine.scope import ROOT, BlockResult, Scope
from baton.engine.state import Completion, StepState

if TYPE_CHECKING:
    from baton.engine.machine import Machine

CLEANUP_FAILED = "CleanupFailed"
"""Condition of a run one of whose `onExit` or `finally` lists failed."""

ENDED = frozenset({StepPhase.SUCCEEDED, StepPhase.FAILED, StepPhase.CANCELLED})
"""The phases after which a step's `finally` runs (not Skipped: the step never started)."""


# -- finally ---------------------------------------------------------------------------------


def begin_finally(m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
    """If `step` has `finally` and just ended, run its finally steps before it takes its phase:
    it shows Running, `outcome` holding the phase it ended in."""
    if not sd.finally_steps or step.phase not in ENDED or step.outcome is not None:
        return
    step.outcome = step.phase
    step.phase = StepPhase.RUNNING
    for nested in sd.finally_steps:
        m.reset_tree(nested, scope)
    advance_finally(m, sd, scope, path, step)


def advance_finally(m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
    """Drive the finally steps of `step`; once they ended, the step takes its outcome."""
    result, error = m.drive_block(sd.finally_steps, scope, halting=False)
    if result is BlockResult.RUNNING:
        return
    outcome = step.outcome
    assert outcome is not None
    step.phase = outcome
    step.finished_at = m.now
    if result is not BlockResult.SUCCEEDED:
        failure = _failed(m, f"finally of step {path}", error)
        if outcome is StepPhase.SUCCEEDED:
            step.phase = StepPhase.FAILED
            step.error = failure


def owner_in_scope(m: Machine, scope: Scope, step: str | None) -> dict[str, Any] | None:
    """For a step inside a `finally` list: the step that ended (`step` in expressions)."""
    name = step
    while name is not None and name in m.d.parent:
        holder, relation = m.d.parent[name]
        if relation == "forEach":
            return None
        if relation == "finally":
            instance = m.state.steps.get(scope.prefix + holder)
            if instance is None:
                return None
            return {
                "name": holder,
                "outcome": instance.outcome.value if instance.outcome is not None else None,
                "output": instance.output,
                "error": instance.error.to_json() if instance.error is not None else None,
            }
        name = holder
    return None


# -- onExit ----------------------------------------------------------------------------------


def begin_exit(m: Machine, phase: RunPhase) -> bool:
    """The run's outcome is `phase`: True when its onExit steps run first (once per ending,
    and not after RunAborted: the shell cannot record their events)."""
    s = m.state
    if not m.d.on_exit or s.exit_outcome is not None or m.aborted:
        return False
    s.exit_outcome = phase
    for sd in m.d.on_exit:
        m.reset_tree(sd, ROOT)
    return True


def advance_exit(m: Machine) -> RunPhase | None:
    """Drive the onExit steps; once they ended, the phase the run ends in."""
    s = m.state
    outcome = s.exit_outcome
    assert outcome is not None
    result, error = m.drive_block(m.d.on_exit, ROOT, halting=False)
    if result is BlockResult.RUNNING:
        return None
    if result is not BlockResult.SUCCEEDED:
        failure = _failed(m, "onExit", error)
        if outcome in (RunPhase.SUCCEEDED, RunPhase.CONTINUED_AS_NEW):
            # A failed cleanup fails a run that went well: it does not continue either.
            s.error = failure
            s.output = None
            s.successor = None
            return RunPhase.FAILED
    return outcome


def run_in_scope(m: Machine) -> dict[str, Any]:
    """`outcome` and `error` of `run` in expressions: known while the onExit steps run."""
    s = m.state
    if s.exit_outcome is None:
        return {"outcome": None, "error": None}
    return {
        "outcome": s.exit_outcome.value,
        "error": s.error.to_json() if s.error is not None else None,
    }


def redriven(m: Machine) -> None:
    """A redrive: the onExit steps run again when the run ends again."""
    s = m.state
    s.exit_outcome = None
    if any(c["type"] == CLEANUP_FAILED and c["status"] == "True" for c in s.conditions):
        m.condition(
            CLEANUP_FAILED,
            ConditionStatus.FALSE,
            "Redriven",
            "the run was redriven; its cleanup runs again when it ends",
        )


# -- interrupted steps -----------------------------------------------------------------------


def interrupt(m: Machine, sd: StepDef, path: str, step: StepState) -> None:
    """A cancel or the run timeout stops `step`: an attempt or child run in flight may have had
    its effect, so a compensation that opts in (`onInterrupt`) is recorded as for a step that
    completed just now (with no output), and runs first when the saga unwinds."""
    attempts = sd.kind.is_activity or sd.kind is StepKind.WORKFLOW
    in_flight = attempts and step.phase is StepPhase.RUNNING and step.recovering is None
    if in_flight and sd.compensate is not None and sd.compensate.on_interrupt:
        m.state.completed.append(Completion(path=path, output=None))


def _failed(m: Machine, where: str, error: StepError | None) -> StepError:
    failure = error or StepError("Cancelled", "a cleanup step was cancelled")
    where_step = f" in step {failure.step}" if failure.step else ""
    m.condition(
        CLEANUP_FAILED,
        ConditionStatus.TRUE,
        failure.type,
        f"{where}: {failure.type}{where_step}: {failure.message}",
    )
    return failure
