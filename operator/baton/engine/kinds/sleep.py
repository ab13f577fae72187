"""`sleep`: waits a fixed duration (TimerPurpose.SLEEP), then succeeds with no output."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind, TimerPurpose
from baton.engine.scope import Scope
from baton.engine.state import StepState, to_millis

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Sleep(Kind):
    wake_purpose: ClassVar[TimerPurpose | None] = TimerPurpose.SLEEP

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.sleep is not None
        step.phase = StepPhase.WAITING
        step.wake_at = m.now + to_millis(sd.sleep)

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
