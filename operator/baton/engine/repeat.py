"""Repeat: a step with `repeat` runs again, after its interval, until its `until` condition is
true or `maxIterations` is reached; with `continueAsNewEvery` the run continues as new every so
many iterations, the count carried on (maxIterations bounds the whole lineage). Any kind of
step may repeat, so this lives beside the core; the due time of the next iteration is the
core's (TimerPurpose.REPEAT)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds import continue_as_new
from baton.engine.scope import Scope
from baton.engine.state import StepState, to_millis
from baton.engine.values import describe, expression_error
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


def again(
    m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, output: Any
) -> bool:
    """One execution of a repeating step ended with `output`: schedule the next iteration, or
    fail the step (a bad condition, too many iterations). False when the step is done."""
    assert sd.repeat is not None
    # A run continue-as-new started goes on counting from its predecessor's iterations.
    carried = (m.state.carried_iterations or {}).get(path, 0)
    step.iterations = max(step.iterations, carried) + 1
    context = m.context(scope, sd.name)
    context["steps"][sd.name] = {
        "output": output,
        "phase": StepPhase.SUCCEEDED.value,
        "attempts": step.attempt,
    }
    try:
        done = sd.repeat.until.evaluate(context)
    except EvaluationError as exc:
        error = expression_error(str(exc), sd.name, "repeat.until")
        m.step_failed(sd, scope, path, step, error, catchable=False)
        return True
    if not isinstance(done, bool):
        # Never read as false: a number or null here is a mistake in the condition, and
        # iterating on it would only end in MaxIterations, far from the cause.
        error = expression_error(
            f"`repeat.until` must be true or false, got {describe(done)}",
            sd.name,
            "repeat.until",
        )
        m.step_failed(sd, scope, path, step, error, catchable=False)
        return True
    if done:
        return False
    if step.iterations >= sd.repeat.max_iterations:
        error = StepError(
            "MaxIterations",
            f"`until` still false after {step.iterations} iterations",
            step=sd.name,
        )
        m.step_failed(sd, scope, path, step, error)
        return True
    step.output = output
    step.request = None
    # Without an interval the next iteration is due at once; the settle loop starts it.
    # Starting it from here would recurse once per iteration of a step that ends as it starts
    # (a `set`), and overflow the stack after a few hundred.
    step.phase = StepPhase.WAITING
    step.next_attempt_at = m.now + to_millis(sd.repeat.interval or 0)
    return True


def iterate(m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
    """The next iteration of a repeating step is due: run it; or, when this run made its
    `continueAsNewEvery` share, continue as new instead — when the iteration would have
    started, so the interval holds across the rollover — with the same input, this run's vars
    and the count, so no history grows with every iteration."""
    assert sd.repeat is not None
    every = sd.repeat.continue_every
    carried = (m.state.carried_iterations or {}).get(path, 0)
    if every is not None and step.iterations - carried >= every:
        s = m.state
        continue_as_new.request(m, s.input, vars=dict(s.vars), iterations={path: step.iterations})
        m.finish(step, StepPhase.SUCCEEDED, output=step.output)
        return
    m.execute(sd, scope, path, step)
