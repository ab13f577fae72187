"""What the kinds performed in numbered attempts (activities and child runs) share: their due
times are the attempt's timeouts and the retry backoff, and a due time either starts the next
attempt or fails the current one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from baton.engine import attempts
from baton.engine.definition import StepDef, StepKind, Timeouts
from baton.engine.kinds.base import Deadline, Kind, TimerPurpose
from baton.engine.scope import Scope
from baton.engine.state import StepState

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Attempted(Kind):
    """A kind the shell performs in numbered attempts."""

    attempts: ClassVar[bool] = True

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
