"""Attempts: what activities, child runs and compensations share — opening an attempt, its
timeouts, and a failed attempt's retry by the first retry rule that applies, with backoff (or
the step's failure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.engine.definition import RetryPolicy, StepDef, StepKind, Timeouts
from baton.engine.errors import StepError
from baton.engine.kinds.base import Deadline, TimerPurpose
from baton.engine.retry import backoff_delay, may_retry, select_rule
from baton.engine.state import KeyRole, StepState, key_role, to_millis
from baton.engine.timing import rule_of, timeouts_of
from baton.engine.values import describe
from baton.expr import EvaluationError, Expression

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
    """An attempt failed: back off and retry when the first retry rule that applies to the
    error allows, else the step (or the compensation) failed."""
    step.request = None
    compensation = key_role(key) is KeyRole.COMPENSATION
    rules: tuple[RetryPolicy, ...]
    if compensation:
        assert sd.compensate is not None
        rules, timeouts = sd.compensate.retry, sd.compensate.timeouts
    else:
        rules, timeouts = sd.retry, sd.timeouts
    try:
        index = select_rule(rules, error, lambda i, when: _holds(m, sd, key, (i, when), error))
    except _ConditionError as exc:
        # The judged error goes along: a broken condition must not hide what failed.
        field = f"{rules[exc.index].source}.when"
        details = {"field": field, "error": error.to_json()}
        error = StepError("ExpressionError", exc.message, details=details, step=sd.name)
        index = None
    if index is not None and _retry(
        m, key, step, error, policy=(rules, index), timeouts=timeouts, retry_after=retry_after
    ):
        return
    if compensation:
        m.finish(step, StepPhase.FAILED, error=error)
    else:
        m.step_failed(sd, m.scope_of(key), key, step, error)


def _retry(
    m: Machine,
    key: str,
    step: StepState,
    error: StepError,
    *,
    policy: tuple[tuple[RetryPolicy, ...], int],
    timeouts: Timeouts,
    retry_after: float | None,
) -> bool:
    """Back off for another attempt when the rule that applies (`policy`: the rules and its
    index) allows it; False when it does not."""
    rules, index = policy
    if len(rules) == 1:
        failures = step.attempts
    else:
        counts = list(step.failures or [0] * len(rules))
        counts[index] += 1
        step.failures = counts
        failures = counts[index]
    rule = rule_of(rules, index, step.times)
    if not may_retry(rule, error, failures):
        return False
    delay = backoff_delay(
        rule, failures, seed=f"{m.state.uid}/{key}/{step.attempt}", retry_after=retry_after
    )
    due = m.now + to_millis(delay)
    limit = timeouts_of(timeouts, step.times).schedule_to_close
    if (
        limit is not None
        and step.scheduled_at is not None
        and due >= step.scheduled_at + to_millis(limit)
    ):
        return False
    step.phase = StepPhase.BACKOFF
    step.next_attempt_at = due
    step.error = error
    return True


class _ConditionError(Exception):
    """A retry rule's `when` that could not be evaluated to true or false."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        self.message = message
        super().__init__(message)


def _holds(
    m: Machine, sd: StepDef, key: str, condition: tuple[int, Expression], error: StepError
) -> bool:
    """A retry rule's `when` (`condition`: the rule's index and its `when`) over `error`, in
    the context of the step or compensation."""
    index, when = condition
    if key_role(key) is KeyRole.COMPENSATION:
        context = m.compensation_context(m.compensation(key))
    else:
        context = m.context(m.scope_of(key), sd.name)
    context["error"] = error.to_json()
    try:
        holds = when.evaluate(context)
    except EvaluationError as exc:
        raise _ConditionError(index, str(exc)) from None
    if not isinstance(holds, bool):
        raise _ConditionError(index, f"`when` must be true or false, got {describe(holds)}")
    return holds
