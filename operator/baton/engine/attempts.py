"""Attempts: what activities, child runs and compensations share — opening an attempt, its
timeouts, and a failed attempt's retry with backoff (or the step's failure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.engine.definition import RetryPolicy, StepDef, StepKind, Timeouts
from baton.engine.errors import StepError
from baton.engine.kinds.base import Deadline, TimerPurpose
from baton.engine.retry import backoff_delay, is_retryable
from baton.engine.state import KeyRole, StepState, key_role, to_millis

if TYPE_CHECKING:
    from baton.engine.machine import Machine


def open_attempt(m: Machine, step: StepState, request: Any) -> None:
    """Start the next attempt of `step` with the rendered `request`."""
    step.attempt += 1
    step.phase = StepPhase.RUNNING
    step.attempt_started_at = m.now
    step.heartbeat_at = None
    step.acknowledged = False
    step.request = request
    step.next_attempt_at = None


def attempt_deadlines(
    key: str, tag: str, step: StepState, timeouts: Timeouts, kind: StepKind
) -> Iterator[Deadline]:
    """The timeouts of a running attempt of an activity (`kind`) or child run."""
    started = step.attempt_started_at
    assert started is not None
    # A worker task or HTTP call waits for a slot (its pool's, the operator's HTTP limits):
    # only scheduleToClose bounds that wait; startToClose and heartbeat count from when it
    # was sent.
    queued = kind.queues_before_start and not step.acknowledged
    if timeouts.start_to_close is not None and not queued:
        due = started + to_millis(timeouts.start_to_close)
        yield Deadline(due, f"{tag}/startToClose", key, TimerPurpose.START_TO_CLOSE)
    if timeouts.heartbeat is not None and kind.is_activity and not queued:
        last = step.heartbeat_at if step.heartbeat_at is not None else started
        yield Deadline(
            last + to_millis(timeouts.heartbeat), f"{tag}/heartbeat", key, TimerPurpose.HEARTBEAT
        )
    if timeouts.schedule_to_close is not None and step.scheduled_at is not None:
        due = step.scheduled_at + to_millis(timeouts.schedule_to_close)
        yield Deadline(due, f"{tag}/scheduleToClose", key, TimerPurpose.SCHEDULE_TO_CLOSE)


def timeout_error(purpose: TimerPurpose, step: str) -> StepError:
    """The error of an attempt that ran past one of its timeouts."""
    what = "heartbeat" if purpose is TimerPurpose.HEARTBEAT else "result"
    return StepError(
        "Timeout",
        f"no {what} within the {purpose.value} timeout",
        details={"kind": purpose.value},
        step=step,
    )


def attempt_failed(
    m: Machine,
    sd: StepDef,
    key: str,
    step: StepState,
    error: StepError,
    *,
    retry_after: float | None = None,
) -> None:
    """An attempt failed: back off and retry when the policy allows, else the step (or the
    compensation) failed."""
    step.request = None
    compensation = key_role(key) is KeyRole.COMPENSATION
    policy: RetryPolicy | None
    if compensation:
        assert sd.compensate is not None
        policy, timeouts = sd.compensate.retry, sd.compensate.timeouts
    else:
        policy, timeouts = sd.retry, sd.timeouts
    assert policy is not None
    if is_retryable(policy, error) and step.attempts < policy.max_attempts:
        delay = backoff_delay(
            policy,
            step.attempts,
            seed=f"{m.state.uid}/{key}/{step.attempt}",
            retry_after=retry_after,
        )
        due = m.now + to_millis(delay)
        limit = timeouts.schedule_to_close
        if limit is None or step.scheduled_at is None or due < step.scheduled_at + to_millis(limit):
            step.phase = StepPhase.BACKOFF
            step.next_attempt_at = due
            step.error = error
            return
    if compensation:
        m.finish(step, StepPhase.FAILED, error=error)
    else:
        m.step_failed(sd, m.scope_of(key), key, step, error)
