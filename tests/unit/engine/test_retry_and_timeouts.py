"""Retries (backoff, jitter, Retry-After, non-retryable errors) and every kind of timeout."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import CancelActivity
from baton.engine.definition import RetryPolicy
from baton.engine.errors import StepError
from baton.engine.retry import backoff_delay, is_retryable
from baton.engine.state import step_from_status, step_to_status

POLICY = RetryPolicy(
    max_attempts=5,
    initial_interval=1.0,
    backoff_coefficient=2.0,
    max_interval=5.0,
    jitter=0.0,
    non_retryable_errors=frozenset({"CardDeclined"}),
)

FLAKY = """
steps:
  - name: pay
    http: {url: "http://pay"}
    retry: {maxAttempts: 4, initialInterval: 1s, backoffCoefficient: 2, maxInterval: 3s,
            nonRetryableErrors: [CardDeclined]}
"""


def test_backoff_grows_by_the_coefficient_and_is_capped_by_max_interval() -> None:
    delays = [backoff_delay(POLICY, attempt, seed="s") for attempt in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_is_deterministic_bounded_and_never_exceeds_max_interval() -> None:
    jittery = RetryPolicy(3, 10.0, 2.0, 15.0, 0.2, frozenset())
    first = backoff_delay(jittery, 1, seed="uid/pay/1")
    assert first == backoff_delay(jittery, 1, seed="uid/pay/1")
    assert 8.0 <= first <= 12.0
    spread = {backoff_delay(jittery, 1, seed=f"uid/pay/{n}") for n in range(20)}
    assert len(spread) > 1
    assert all(backoff_delay(jittery, 5, seed=f"s{n}") <= 15.0 for n in range(20))


def test_retry_after_replaces_the_computed_delay_even_above_max_interval() -> None:
    assert backoff_delay(POLICY, 1, seed="s", retry_after=60.0) == 60.0


def test_http_4xx_errors_are_not_retried_except_408_and_429() -> None:
    def http(status: int) -> StepError:
        return StepError("HttpError", "", details={"status": status})

    assert not is_retryable(POLICY, http(404))
    assert not is_retryable(POLICY, http(400))
    assert is_retryable(POLICY, http(408))
    assert is_retryable(POLICY, http(429))
    assert is_retryable(POLICY, http(503))


def test_a_failed_attempt_backs_off_then_retries_with_a_new_attempt_number() -> None:
    run = Run(FLAKY)
    run.fail("pay")
    assert run.step_phase("pay") is StepPhase.BACKOFF
    assert run.sim.wakeup() == run.now + 1.0
    run.fire()
    assert run.start_of("pay").attempt == 2
    assert run.start_of("pay").idempotency_key == "uid/pay/2"
    run.fail("pay")
    assert run.sim.wakeup() == run.now + 2.0


def test_attempts_stop_at_max_attempts_and_the_run_fails_with_the_last_error() -> None:
    run = Run(FLAKY)
    for _ in range(3):
        run.fail("pay", "Flaky")
        run.fire()
    run.fail("pay", "StillFlaky")
    assert run.step("pay").attempt == 4
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "StillFlaky"


def test_a_non_retryable_error_fails_the_step_at_once() -> None:
    run = Run(FLAKY)
    run.fail("pay", "CardDeclined")
    assert run.phase is RunPhase.FAILED
    assert run.step("pay").attempt == 1


def test_an_http_404_fails_the_step_at_once() -> None:
    run = Run(FLAKY)
    run.fail("pay", "HttpError", details={"status": 404})
    assert run.phase is RunPhase.FAILED


def test_a_retry_after_hint_sets_the_next_attempt_time() -> None:
    run = Run(FLAKY)
    run.fail("pay", "HttpError", details={"status": 429}, retry_after=120.0)
    assert run.sim.wakeup() == run.now + 120.0


def test_start_to_close_times_out_an_attempt_and_retries_it() -> None:
    run = Run(
        """
        steps:
          - name: slow
            http: {url: "http://slow"}
            timeout: {startToClose: 10s}
            retry: {maxAttempts: 2, initialInterval: 1s}
        """
    )
    run.acknowledge("slow")
    run.advance(10)
    assert run.step("slow").error is not None
    assert run.step("slow").error.type == "Timeout"
    assert run.step("slow").error.details == {"kind": "startToClose"}
    assert run.of_type(CancelActivity)[0].attempt == 1
    run.fire()
    assert run.start_of("slow").attempt == 2


def test_a_missing_heartbeat_times_out_the_attempt() -> None:
    run = Run(
        """
        steps:
          - name: long
            worker: {pool: p, activity: crunch}
            timeout: {heartbeat: 30s}
            retry: {maxAttempts: 1}
        """
    )
    run.acknowledge("long")
    run.heartbeat("long", after=20)
    run.advance(29)
    assert run.step_phase("long") is StepPhase.RUNNING
    run.advance(1)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "heartbeat"}


def test_a_queued_worker_task_starts_its_start_to_close_clock_when_it_is_sent() -> None:
    run = Run(
        """
        steps:
          - name: appraise
            worker: {pool: p, activity: appraise}
            timeout: {startToClose: 10s, heartbeat: 5s}
            retry: {maxAttempts: 1}
        """
    )
    run.advance(60)  # queued for a minute: the pool had no free slot
    assert run.step_phase("appraise") is StepPhase.RUNNING
    run.acknowledge("appraise")
    run.heartbeat("appraise", after=4)
    run.heartbeat("appraise", after=4)
    run.advance(1.9)
    assert run.step_phase("appraise") is StepPhase.RUNNING
    run.advance(0.1)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "startToClose"}


def test_a_worker_task_that_is_never_sent_fails_at_schedule_to_close() -> None:
    run = Run(
        """
        steps:
          - name: appraise
            worker: {pool: p, activity: appraise}
            timeout: {startToClose: 10s, scheduleToClose: 2m}
        """
    )
    run.advance(119)
    assert run.step_phase("appraise") is StepPhase.RUNNING
    run.advance(1)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "scheduleToClose"}


def test_an_http_call_waiting_for_a_slot_starts_its_start_to_close_clock_when_it_is_sent() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: "http://pay"}
            timeout: {startToClose: 10s}
            retry: {maxAttempts: 1}
        """
    )
    run.advance(60)  # waiting for a slot of the operator's HTTP limits for a minute
    assert run.step_phase("pay") is StepPhase.RUNNING
    run.acknowledge("pay")
    run.advance(9.9)
    assert run.step_phase("pay") is StepPhase.RUNNING
    run.advance(0.1)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "startToClose"}


def test_an_http_call_that_is_never_sent_fails_at_schedule_to_close() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: "http://pay"}
            timeout: {startToClose: 10s, scheduleToClose: 2m}
        """
    )
    run.advance(119)
    assert run.step_phase("pay") is StepPhase.RUNNING
    run.advance(1)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "scheduleToClose"}


def test_schedule_to_close_bounds_all_attempts_together() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: "http://pay"}
            timeout: {scheduleToClose: 30s}
            retry: {maxAttempts: 100, initialInterval: 5s, backoffCoefficient: 1}
        """
    )
    run.fail("pay", after=5)
    run.fire()
    run.fail("pay", after=5)
    run.fire()
    assert run.step("pay").attempt == 3
    run.advance(10)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "scheduleToClose"}


def test_a_retry_that_would_start_after_schedule_to_close_fails_with_the_last_error() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: "http://pay"}
            timeout: {scheduleToClose: 30s}
            retry: {maxAttempts: 100, initialInterval: 10s}
        """
    )
    run.fail("pay", "Flaky", after=25)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Flaky"


def test_the_run_timeout_cancels_in_flight_work_and_ends_timed_out() -> None:
    run = Run("steps: [{name: a, http: {url: 'http://a'}}]", timeout=60.0)
    run.advance(60)
    assert run.phase is RunPhase.TIMED_OUT
    assert run.step_phase("a") is StepPhase.CANCELLED
    assert [c.key for c in run.of_type(CancelActivity)] == ["a"]
    assert run.sim.state.error is not None
    assert run.sim.state.error.details == {"kind": "run"}


def test_the_run_timeout_compensates_completed_steps_then_ends_timed_out() -> None:
    run = Run(
        """
        timeout: 1h
        steps:
          - name: a
            http: {url: "http://a"}
            compensate: {http: {url: "http://undo-a"}}
          - {name: b, sleep: {duration: 2h}}
        """
    )
    run.complete("a")
    run.fire()
    assert run.phase is RunPhase.COMPENSATING
    assert run.started() == ["a/compensate"]
    run.complete("a/compensate")
    assert run.phase is RunPhase.TIMED_OUT


def test_the_next_attempt_gets_the_last_heartbeat_details_of_the_previous_one() -> None:
    run = Run(
        """
        steps:
          - name: load
            worker: {pool: p, activity: load}
            retry: {maxAttempts: 3, initialInterval: 1s}
        """
    )
    assert run.start_of("load").heartbeat_details is None
    run.acknowledge("load")
    run.heartbeat("load", details={"row": 250})
    run.heartbeat("load", details={"row": 500})
    run.heartbeat("load")  # a bare heartbeat keeps the last details
    run.fail("load")
    run.advance(1)
    assert run.start_of("load").attempt == 2
    assert run.start_of("load").heartbeat_details == {"row": 500}
    # and they survive the status round trip a restarted operator goes through
    restored = step_from_status(step_to_status(run.step("load")))
    assert restored.heartbeat_details == {"row": 500}
