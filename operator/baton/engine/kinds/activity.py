"""Activities (`http`, `job`, `worker`): one attempt at a time performed by the shell, with
timeouts, heartbeats and retries. Starts by rendering the action into a StartActivity; advances
on the attempt's result; its due times are the attempt's timeouts and the retry backoff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from baton.engine import attempts
from baton.engine.commands import Command, StartActivity
from baton.engine.definition import StepDef, StepKind, Timeouts
from baton.engine.errors import StepError
from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.engine.kinds.base import Deadline, Kind, Result, TimerPurpose
from baton.engine.scope import Scope
from baton.engine.state import State, StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Activity(Kind):
    attempts: ClassVar[bool] = True

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.action is not None
        try:
            request = render(sd.action, m.context(scope, sd.name))
        except EvaluationError as exc:
            m.step_failed(sd, scope, path, step, expression_error(str(exc), sd.name, sd.kind.value))
            return
        attempts.open_attempt(m, step, request)

    def running_deadlines(
        self, key: str, tag: str, step: StepState, timeouts: Timeouts, kind: StepKind
    ) -> Iterator[Deadline]:
        return attempts.attempt_deadlines(key, tag, step, timeouts, kind)

    def expire(
        self,
        m: Machine,
        sd: StepDef,
        scope: Scope,
        path: str,
        step: StepState,
        *,
        purpose: TimerPurpose,
    ) -> None:
        if purpose is TimerPurpose.RETRY:
            self.start(m, sd, scope, path, step)
        else:
            assert purpose.is_attempt_timeout
            attempts.attempt_failed(m, sd, path, step, attempts.timeout_error(purpose, sd.name))

    def command(self, state: State, sd: StepDef, path: str, step: StepState) -> Command | None:
        return StartActivity(
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

    def result(self, m: Machine, sd: StepDef, path: str, step: StepState, event: Result) -> None:
        if isinstance(event, ActivityCompleted):
            step.request = None
            m.execution_succeeded(sd, m.scope_of(path), path, step, event.output)
        elif isinstance(event, ActivityFailed):
            error = StepError.reported(event.error, sd.name)
            attempts.attempt_failed(m, sd, path, step, error, retry_after=event.retry_after)
