"""Catch clauses: a step that failed for good recovers with the first clause matching its error
type — at once with the clause's `output`, or by running the clause's steps, whose last output
becomes the step's. Any kind of step may have them, so they live beside the core, not in a kind.
`StepState.recovering` is the index of the clause whose steps run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.scope import BlockResult, Scope
from baton.engine.state import StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


def recover(m: Machine, sd: StepDef, scope: Scope, step: StepState, error: StepError) -> bool:
    """Recover `step` from `error` with a matching clause; False when none matches (or the step
    is already recovering: a catch does not catch its own steps' failure)."""
    index = next((i for i, c in enumerate(sd.catch) if c.matches(error.type)), None)
    if index is None or step.recovering is not None:
        return False
    clause = sd.catch[index]
    step.error = error
    if clause.steps is None:
        context = m.context(scope, sd.name)
        context["error"] = error.to_json()
        try:
            output = render(clause.output, context) if clause.output is not None else None
        except EvaluationError as exc:
            failure = expression_error(str(exc), sd.name, f"catch[{index}].output")
            m.finish(step, StepPhase.FAILED, error=failure)
            return True
        # A recovery ends the step: no further repeat iteration follows it.
        m.finish(step, StepPhase.SUCCEEDED, output=output)
        return True
    for nested in clause.steps:
        m.reset_tree(nested, scope)
    step.recovering = index
    step.phase = StepPhase.RUNNING
    step.request = None
    return True


def advance(m: Machine, sd: StepDef, scope: Scope, step: StepState, halt: bool) -> None:
    """Drive the steps of the clause `step` recovers with."""
    assert step.recovering is not None
    clause = sd.catch[step.recovering]
    assert clause.steps is not None
    result, error = m.drive_block(clause.steps, scope, halting=halt)
    if result is BlockResult.SUCCEEDED:
        # A recovery ends the step: no further repeat iteration follows it.
        m.finish(step, StepPhase.SUCCEEDED, output=m.last_output(clause.steps, scope))
    elif result is BlockResult.FAILED:
        m.finish(step, StepPhase.FAILED, error=error)
    elif result is BlockResult.HALTED:
        m.cancel(step)


def redrive(m: Machine, sd: StepDef, scope: Scope, step: StepState) -> None:
    """Redrive a step that failed while recovering: its clause's steps go again."""
    assert step.recovering is not None
    step.phase = StepPhase.RUNNING
    clause = sd.catch[step.recovering]
    assert clause.steps is not None
    m.redrive_block(clause.steps, scope)


def error_in_scope(m: Machine, scope: Scope, step: str | None) -> dict[str, Any] | None:
    """The error being recovered from, for a step inside a catch clause's steps."""
    name = step
    while name is not None and name in m.d.parent:
        holder, relation = m.d.parent[name]
        if relation == "forEach":
            return None
        if relation == "catch":
            instance = m.state.steps.get(scope.prefix + holder)
            if instance is None or instance.error is None:
                return None
            return instance.error.to_json()
        name = holder
    return None
