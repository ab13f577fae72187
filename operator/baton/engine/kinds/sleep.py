"""`sleep`: waits a duration or until a time (TimerPurpose.SLEEP), either computed when it
starts (`baton.engine.timing`), then succeeds with no output. A time already past is due at
once."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind, TimerPurpose
from baton.engine.scope import Scope
from baton.engine.state import StepState, to_millis
from baton.engine.timing import SLEEP_DURATION, SLEEP_UNTIL

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Sleep(Kind):
    wake_purpose: ClassVar[TimerPurpose | None] = TimerPurpose.SLEEP

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        times = step.times or {}
        step.phase = StepPhase.WAITING
        until = times.get(SLEEP_UNTIL, sd.sleep_until)
        if until is not None:
            step.wake_at = max(m.now, int(until))
            return
        seconds = times.get(SLEEP_DURATION, sd.sleep)
        assert seconds is not None
        step.wake_at = m.now + to_millis(seconds)

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
        assert purpose is TimerPurpose.SLEEP
        step.wake_at = None
        m.execution_succeeded(sd, scope, path, step, None)
