"""Computed time: the time fields of a step written as `${{ cel }}`, evaluated when it starts.

A step's timeouts, retry intervals, sleep (`duration` or `until`) and signal timeout may be
expressions (`StepDef.times`, compiled by `baton.engine.definition`). They are evaluated once
per execution of the step, when it starts, in the step's context — `now` included, the time of
the event being decided — so a replay computes the same values. The values are kept in the
step's state (`StepState.times`, by field) and laid over the compiled policy wherever it is
read: timeouts and retry intervals for as long as the execution lasts; a sleep or a signal
timeout becomes the step's due time when its kind starts it.

What an expression may give:
- a duration: a duration string (`90s`, `1h30m`, `-5s`), a number of seconds, or a CEL
  duration (`timestamp(input.expiry) - now`, which arrives here as `"86400s"`); a negative one
  counts as zero (a time already past);
- an instant (`sleep.until`): an RFC 3339 timestamp with its zone, or a CEL timestamp.
Anything else is a `TimeValueError` naming the field, which the engine turns into the step's
ExpressionError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from baton.api.duration import (
    MAX_DURATION_SECONDS,
    DurationError,
    TimestampError,
    parse_duration,
    parse_timestamp,
)
from baton.engine.definition import ComputedTime, RetryPolicy, TimeKind, Timeouts
from baton.expr import EvaluationError


class TimeValueError(Exception):
    """A computed time field whose expression failed or gave something that is not a time."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"`{field}`: {message}")


def resolve(times: tuple[ComputedTime, ...], context: Mapping[str, Any]) -> dict[str, float]:
    """Every computed field of `times` evaluated in `context`: durations in seconds, instants
    in milliseconds since the epoch, keyed by field. Raises TimeValueError for the first
    field that fails."""
    values: dict[str, float] = {}
    for computed in times:
        try:
            value = computed.template.render(context)
        except EvaluationError as exc:
            raise TimeValueError(computed.written, str(exc)) from None
        if computed.kind is TimeKind.INSTANT:
            values[computed.field] = instant_of(value, computed.written)
        else:
            values[computed.field] = seconds_of(value, computed.written)
    return values


def seconds_of(value: Any, field: str) -> float:
    """Seconds of a computed duration; a negative one is zero."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TimeValueError(field, f"must be a duration like 90s or a number of seconds, got "
                             f"{_kind(value)}")  # fmt: skip
    if isinstance(value, str):
        text = value.strip()
        negative = text.startswith("-")
        try:
            seconds = parse_duration(text.removeprefix("-"))
        except DurationError as exc:
            raise TimeValueError(field, str(exc)) from None
        return 0.0 if negative else seconds
    if not math.isfinite(value):
        raise TimeValueError(field, f"must be a finite number of seconds, got {value}")
    if value > MAX_DURATION_SECONDS:
        raise TimeValueError(
            field, f"{value:g} seconds is longer than the {MAX_DURATION_SECONDS:g} Baton accepts"
        )
    return max(0.0, float(value))


def instant_of(value: Any, field: str) -> int:
    """Milliseconds since the epoch of a computed timestamp."""
    if not isinstance(value, str):
        raise TimeValueError(
            field, f"must be an RFC 3339 timestamp like 2026-01-02T15:04:05Z, got {_kind(value)}"
        )
    try:
        moment = parse_timestamp(value)
    except TimestampError as exc:
        raise TimeValueError(field, str(exc)) from None
    return round(moment.timestamp() * 1000)


def timeouts_of(static: Timeouts, times: Mapping[str, float] | None) -> Timeouts:
    """`static` with the computed timeouts of `times` laid over it."""
    if not times:
        return static
    found = {
        attr: times[key]
        for attr, key in _TIMEOUT_KEYS
        if key in times  # only the computed ones are there
    }
    return replace(static, **found) if found else static


def rule_of(
    rules: tuple[RetryPolicy, ...], index: int, times: Mapping[str, float] | None
) -> RetryPolicy:
    """Rule `index` of `rules` with its computed intervals from `times`."""
    rule = rules[index]
    if not times:
        return rule
    initial = times.get(f"retry[{index}].initialInterval")
    maximum = times.get(f"retry[{index}].maxInterval")
    if initial is None and maximum is None:
        return rule
    initial = rule.initial_interval if initial is None else initial
    if maximum is None:
        maximum = (
            initial * rule.max_interval_factor
            if rule.max_interval_factor is not None
            else rule.max_interval
        )
    # A cap below the first delay caps every delay: the computed values are taken as given
    # rather than failing a step on a retry it may never need.
    return replace(rule, initial_interval=initial, max_interval=max(maximum, 0.0))


_TIMEOUT_KEYS = (
    ("start_to_close", "timeout.startToClose"),
    ("schedule_to_close", "timeout.scheduleToClose"),
    ("heartbeat", "timeout.heartbeat"),
)

SLEEP_DURATION = "sleep.duration"
SLEEP_UNTIL = "sleep.until"
SIGNAL_TIMEOUT = "waitForSignal.timeout"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text
