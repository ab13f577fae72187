"""`waitForSignal`: waits for the next signal of its name (one that arrived before it waited
counts: signals are buffered), with an optional timeout (TimerPurpose.SIGNAL_TIMEOUT) that fails
it with a Timeout error. The signal's payload is its output."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds.base import Kind, TimerPurpose
from baton.engine.scope import Scope, step_def
from baton.engine.state import SignalRecord, StepState, to_millis
from baton.engine.timing import SIGNAL_TIMEOUT

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class WaitForSignal(Kind):
    wake_purpose: ClassVar[TimerPurpose | None] = TimerPurpose.SIGNAL_TIMEOUT

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.wait is not None
        step.phase = StepPhase.WAITING
        timeout = (step.times or {}).get(SIGNAL_TIMEOUT, sd.wait.timeout)
        if timeout is not None:
            step.wake_at = m.now + to_millis(timeout)
        s = m.state
        # Signals are buffered: one that arrived before this step waited still counts.
        record = next((r for r in s.unclaimed if r.name == sd.wait.name), None)
        if record is not None:
            s.unclaimed.remove(record)
            _claim(m, path, step, record)

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
        assert purpose is TimerPurpose.SIGNAL_TIMEOUT
        assert sd.wait is not None
        step.wake_at = None
        error = StepError(
            "Timeout",
            f"no signal {sd.wait.name!r} arrived in time",
            details={"kind": "signal"},
            step=sd.name,
        )
        m.step_failed(sd, scope, path, step, error)


def offer(m: Machine, record: SignalRecord) -> bool:
    """Give a delivered signal to the step that has waited longest for it; False when no step
    waits for it (the run keeps it unclaimed)."""
    s = m.state
    # Only instances in flight can wait (the index lists them); `seq` orders them as the
    # state does.
    waiting = [
        (step.started_at or 0, step.seq, path)
        for path in m.sync().active
        if (step := s.steps.peek(path)) is not None
        and step.phase is StepPhase.WAITING
        and (wait := step_def(m.d, path).wait) is not None
        and wait.name == record.name
    ]
    if not waiting:
        return False
    path = min(waiting)[2]
    _claim(m, path, s.steps[path], record)
    return True


def _claim(m: Machine, path: str, step: StepState, record: SignalRecord) -> None:
    step.signal = record.index
    step.wake_at = None
    m.execution_succeeded(step_def(m.d, path), m.scope_of(path), path, step, record.payload)
