"""Child workflows (`workflow`): a whole run started by the shell as one attempt, retried like an
activity. Starts by rendering the child's input into a StartChildRun; advances on ChildFinished;
a failing sibling cancels it at once (it only waits); its due times are startToClose,
scheduleToClose and the retry backoff."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from baton.api.attempts import attempt_name, legacy_attempt_name
from baton.api.run import RunPhase
from baton.engine import attempts
from baton.engine.commands import Command, StartChildRun
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.events import ChildFinished
from baton.engine.kinds.attempted import Attempted
from baton.engine.kinds.base import Result
from baton.engine.scope import Scope
from baton.engine.state import State, StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


def child_run_name(run_name: str, run_uid: str, key: str, attempt: int) -> str:
    """The deterministic name of the child run started for `key` at `attempt`: the same rule as
    a Job's (baton.api.attempts), from the parent's uid, so no two parents' children collide."""
    return attempt_name(run_name, run_uid, key, attempt)


class Child(Attempted):
    waits_while_running: ClassVar[bool] = True

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.child is not None
        try:
            request = render(sd.child.input, m.context(scope, sd.name))
        except EvaluationError as exc:
            error = expression_error(str(exc), sd.name, "workflow.input")
            m.step_failed(sd, scope, path, step, error)
            return
        attempts.open_attempt(m, step, request)

    def command(self, state: State, sd: StepDef, path: str, step: StepState) -> Command | None:
        assert sd.child is not None
        return StartChildRun(
            key=path,
            step=sd.name,
            attempt=step.attempt,
            name=child_run_name(state.run_name, state.uid, path, step.attempt),
            workflow_ref=sd.child.workflow_ref,
            input=step.request,
            parent_close_policy=sd.child.parent_close_policy.value,
            acknowledged=step.acknowledged,
        )

    def result(self, m: Machine, sd: StepDef, path: str, step: StepState, event: Result) -> None:
        if not isinstance(event, ChildFinished):
            return
        step.request = None
        if event.phase == RunPhase.SUCCEEDED.value:
            m.execution_succeeded(sd, m.scope_of(path), path, step, event.output)
            return
        # The child's own name as the shell reported it; an end recorded before names were
        # reported was worded with the rule of then, and a replay must word it the same.
        name = event.name or legacy_attempt_name(m.state.run_name, path, event.attempt)
        error = StepError(
            "ChildFailed",
            f"child run {name} ended {event.phase}",
            details={"phase": event.phase, "error": event.error},
            step=sd.name,
        )
        attempts.attempt_failed(m, sd, path, step, error)
