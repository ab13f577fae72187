"""Computed time: sleeps until a time or for a computed duration, computed timeouts and retry
intervals, and `now`, the time of the event being decided."""

from __future__ import annotations

import pytest
from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.engine import DefinitionError, replay
from baton.engine.state import rfc3339, step_from_status, step_to_status

T0 = 1_800_000_000.0
"""2027-01-15T08:00:00Z, when the runs of this module start."""


def iso(seconds: float) -> str:
    return rfc3339(round(seconds * 1000))


UNTIL = """
steps:
  - name: wait
    sleep: {until: "${{ input.expiry }}"}
  - name: after
    http: {url: "http://x"}
"""


def test_sleep_until_a_computed_time_wakes_at_that_time() -> None:
    run = Run(UNTIL, {"expiry": iso(T0 + 3600)}, now=T0)
    assert run.step_phase("wait") is StepPhase.WAITING
    assert run.sim.wakeup() == T0 + 3600
    run.fire()
    assert run.started() == ["after"]


def test_sleep_until_a_time_already_past_ends_at_once() -> None:
    run = Run(UNTIL, {"expiry": iso(T0 - 86400)}, now=T0)
    assert run.step_phase("wait") is StepPhase.SUCCEEDED
    assert run.started() == ["after"]


def test_sleep_until_a_cel_timestamp_counts_from_now() -> None:
    run = Run(
        "steps:\n  - name: wait\n    sleep: {until: \"${{ now + duration('90m') }}\"}", now=T0
    )
    assert run.sim.wakeup() == T0 + 5400


def test_sleep_until_a_value_that_is_no_time_fails_the_step_naming_the_field() -> None:
    run = Run(UNTIL, {"expiry": "tomorrow"}, now=T0)
    assert run.phase is RunPhase.FAILED
    error = run.step("wait").error
    assert error is not None
    assert error.type == "ExpressionError"
    assert error.details == {"field": "sleep.until"}
    assert "`sleep.until`: malformed timestamp 'tomorrow'" in error.message


def test_sleep_until_a_time_without_zone_is_refused() -> None:
    run = Run(UNTIL, {"expiry": "2027-01-15T09:00:00"}, now=T0)
    error = run.step("wait").error
    assert error is not None
    assert "with a time zone" in error.message


def test_a_literal_sleep_until_wakes_at_that_time() -> None:
    run = Run(f"steps:\n  - name: wait\n    sleep: {{until: '{iso(T0 + 60)}'}}", now=T0)
    assert run.sim.wakeup() == T0 + 60


def test_a_literal_sleep_until_that_is_no_time_is_refused_when_applied() -> None:
    with pytest.raises(ValueError, match="malformed timestamp"):
        definition("steps:\n  - name: wait\n    sleep: {until: 'next tuesday'}")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2h", 7200), (90, 90), (1.5, 1.5), ("-5m", 0)],
)
def test_a_computed_sleep_duration_takes_a_duration_string_or_seconds(
    value: object, seconds: float
) -> None:
    text = "steps:\n  - name: wait\n    sleep: {duration: '${{ input.wait }}'}"
    run = Run(text, {"wait": value}, now=T0)
    if seconds:
        assert run.sim.wakeup() == T0 + seconds
    else:  # a negative duration is a time already past
        assert run.phase is RunPhase.SUCCEEDED


def test_a_computed_sleep_duration_may_be_a_cel_duration() -> None:
    text = "steps:\n  - name: wait\n    sleep: {duration: '${{ timestamp(input.at) - now }}'}"
    run = Run(text, {"at": iso(T0 + 600)}, now=T0)
    assert run.sim.wakeup() == T0 + 600


def test_a_computed_sleep_duration_that_is_no_duration_fails_naming_the_field() -> None:
    text = "steps:\n  - name: wait\n    sleep: {duration: '${{ input.wait }}'}"
    run = Run(text, {"wait": True}, now=T0)
    error = run.step("wait").error
    assert error is not None
    assert error.details == {"field": "sleep.duration"}
    assert "got a boolean (true)" in error.message


def test_a_computed_signal_timeout_bounds_the_wait() -> None:
    text = "steps:\n  - name: ok\n    waitForSignal: {name: ok, timeout: '${{ input.t }}'}"
    run = Run(text, {"t": "10m"}, now=T0)
    assert run.sim.wakeup() == T0 + 600


TIMED = """
steps:
  - name: call
    http: {url: "http://x"}
    timeout:
      startToClose: "${{ input.limit }}"
    retry: {maxAttempts: 3, initialInterval: "${{ input.pause }}"}
"""


def test_a_computed_start_to_close_times_out_the_attempt() -> None:
    run = Run(TIMED, {"limit": "45s", "pause": "5s"}, now=T0)
    assert run.start_of("call").start_to_close == 45
    run.acknowledge("call")  # an HTTP call's clock starts when it is sent
    assert run.sim.wakeup() == T0 + 45
    run.fire()
    assert run.step_phase("call") is StepPhase.BACKOFF
    assert run.step("call").error is not None


def test_a_computed_retry_interval_sets_the_backoff() -> None:
    run = Run(TIMED, {"limit": "1h", "pause": "7s"}, now=T0)
    run.fail("call")
    assert run.sim.wakeup() == run.now + 7


def test_computed_times_are_kept_in_the_status_and_survive_a_round_trip() -> None:
    run = Run(TIMED, {"limit": "1h", "pause": "7s"}, now=T0)
    step = run.step("call")
    assert step.times == {"timeout.startToClose": 3600.0, "retry[0].initialInterval": 7.0}
    status = step_to_status(step)
    assert status["times"] == step.times
    assert step_from_status(status) == step


def test_computed_times_are_evaluated_once_when_the_step_starts() -> None:
    text = """
    vars: {pause: 5s}
    steps:
      - name: call
        http: {url: "http://x"}
        retry: {maxAttempts: 3, initialInterval: "${{ vars.pause }}"}
    signalHandlers:
      - signal: slower
        set: {pause: 1h}
    """
    run = Run(text, now=T0)
    run.signal(0, "slower")
    run.fail("call")
    assert run.sim.wakeup() == run.now + 5


def test_a_computed_timeout_that_fails_to_evaluate_fails_the_step_naming_the_field() -> None:
    run = Run(TIMED, {"pause": "1s"}, now=T0)
    error = run.step("call").error
    assert error is not None
    assert error.type == "ExpressionError"
    assert error.details == {"field": "timeout.startToClose"}
    assert run.step("call").attempt == 0


def test_an_inherited_computed_default_names_the_defaults_field() -> None:
    text = """
    defaults: {timeout: {startToClose: "${{ input.limit }}"}}
    steps:
      - name: call
        http: {url: "http://x"}
    """
    run = Run(text, {"limit": []}, now=T0)
    error = run.step("call").error
    assert error is not None
    assert error.details == {"field": "defaults.timeout.startToClose"}


def test_now_is_the_time_of_the_event_being_decided() -> None:
    text = """
    steps:
      - name: first
        http: {url: "http://x"}
      - name: stamp
        set: {at: "${{ now }}", hour: "${{ now.getHours() }}"}
    """
    run = Run(text, now=T0)
    run.complete("first", after=90)
    assert run.sim.state.vars == {"at": iso(T0 + 90), "hour": 8}


def test_a_replay_computes_the_same_times_from_the_recorded_event_times() -> None:
    text = """
    steps:
      - name: first
        http: {url: "http://x"}
      - name: wait
        sleep: {until: "${{ now + duration('1h') }}"}
      - name: stamp
        set: {at: "${{ now }}"}
    """
    run = Run(text, now=T0)
    run.complete("first", after=30)
    run.fire()
    assert run.phase is RunPhase.SUCCEEDED
    replayed = replay(run.definition, run.sim.history)
    assert replayed == run.sim.state
    assert replayed.vars["at"] == iso(T0 + 30 + 3600)


def test_a_broken_computed_time_is_refused_when_applied() -> None:
    with pytest.raises(DefinitionError, match=r"field 'timeout\.startToClose'"):
        definition(
            """
            steps:
              - name: call
                http: {url: "http://x"}
                timeout: {startToClose: "${{ input. }}"}
            """
        )


def test_a_long_cel_duration_reads_back_as_a_duration() -> None:
    # 35 days is 3024000 seconds: written with an exponent, it would not parse.
    text = "steps:\n  - name: wait\n    sleep: {duration: '${{ timestamp(input.at) - now }}'}"
    run = Run(text, {"at": iso(T0 + 35 * 86400)}, now=T0)
    assert run.sim.wakeup() == T0 + 35 * 86400
