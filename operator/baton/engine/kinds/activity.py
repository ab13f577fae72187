"""Activities (`http`, `job`, `worker`): one attempt at a time performed by the shell, with
timeouts, heartbeats and retries. Starts by rendering the action into a StartActivity; advances
on the attempt's result; its due times are the attempt's timeouts and the retry backoff."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.engine import attempts
from baton.engine.commands import Command, StartActivity, idempotency_key
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.engine.kinds.attempted import Attempted
from baton.engine.kinds.base import Result
from baton.engine.scope import Scope
from baton.engine.state import State, StepState
from baton.engine.timing import timeouts_of
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Activity(Attempted):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.action is not None
        try:
            request = render(sd.action, m.context(scope, sd.name))
        except EvaluationError as exc:
            m.step_failed(sd, scope, path, step, expression_error(str(exc), sd.name, sd.kind.value))
            return
        attempts.open_attempt(m, step, request)

    def command(self, state: State, sd: StepDef, path: str, step: StepState) -> Command | None:
        timeouts = sd.timeouts if step.times is None else timeouts_of(sd.timeouts, step.times)
        return StartActivity(
            key=path,
            step=sd.name,
            kind=sd.kind.value,
            spec=step.request,
            attempt=step.attempt,
            idempotency_key=idempotency_key(state.uid, path, step.attempt),
            start_to_close=timeouts.start_to_close,
            heartbeat=timeouts.heartbeat,
            acknowledged=step.acknowledged,
            heartbeat_details=step.heartbeat_details,
        )

    def result(self, m: Machine, sd: StepDef, path: str, step: StepState, event: Result) -> None:
        if isinstance(event, ActivityCompleted):
            step.request = None
            m.execution_succeeded(sd, m.scope_of(path), path, step, event.output)
        elif isinstance(event, ActivityFailed):
            error = StepError.reported(event.error, sd.name)
            attempts.attempt_failed(m, sd, path, step, error, retry_after=event.retry_after)
