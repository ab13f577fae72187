"""Retry as users know it: several rules per step with their own counts, a CEL condition over
the error, `maxAttempts: 0` for unlimited, and child runs not retried unless they say so."""

from __future__ import annotations

import pytest
from enginekit import Run, definition, spec
from pydantic import ValidationError

from baton.api.resources import first_problem
from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import WorkflowSpec
from baton.engine import ChildFinished, DefinitionError

RULES = """
steps:
  - name: charge
    http: {url: "http://pay"}
    retry:
      initialInterval: 10s
      rules:
        - errors: [HttpError]
          when: "error.details.status in [502, 503]"
          maxAttempts: 0
          initialInterval: 2s
          maxInterval: 2s
        - errors: [Timeout]
          maxAttempts: 3
        - maxAttempts: 2
          initialInterval: 1m
"""


def busy(run: Run) -> None:
    run.fail("charge", "HttpError", details={"status": 503})


def test_the_first_rule_that_matches_an_error_sets_its_backoff() -> None:
    run = Run(RULES)
    busy(run)
    assert run.sim.wakeup() == run.now + 2
    run.fire()
    run.fail("charge", "Timeout", details={"kind": "startToClose"})
    assert run.sim.wakeup() == run.now + 10
    run.fire()
    run.fail("charge", "Boom")
    assert run.sim.wakeup() == run.now + 60


def test_each_rule_counts_its_own_attempts() -> None:
    run = Run(RULES)
    for _ in range(2):
        run.fail("charge", "Timeout", details={"kind": "startToClose"})
        run.fire()
    for _ in range(5):  # unlimited 503s do not use up the Timeout rule's attempts
        busy(run)
        run.fire()
    assert run.step("charge").failures == [5, 2, 0]
    run.fail("charge", "Timeout", details={"kind": "startToClose"})
    assert run.phase is RunPhase.FAILED
    assert run.step("charge").attempt == 8


def test_an_error_no_rule_applies_to_fails_the_step_at_once() -> None:
    text = """
    steps:
      - name: charge
        http: {url: "http://pay"}
        retry: {rules: [{errors: [Timeout], maxAttempts: 5}]}
    """
    run = Run(text)
    run.fail("charge", "CardDeclined")
    assert run.phase is RunPhase.FAILED
    assert run.step("charge").attempt == 1


def test_a_rule_whose_condition_is_false_does_not_apply() -> None:
    run = Run(RULES)
    run.fail("charge", "HttpError", details={"status": 500})
    # Not a 502/503: the catch-all rule applies, with its own one-minute backoff.
    assert run.sim.wakeup() == run.now + 60


def test_a_condition_retries_an_http_status_the_built_in_judgement_would_not() -> None:
    text = """
    steps:
      - name: create
        http: {url: "http://x"}
        retry: {when: "error.details.status == 409", maxAttempts: 3}
    """
    run = Run(text)
    run.fail("create", "HttpError", details={"status": 409})
    assert run.step_phase("create") is StepPhase.BACKOFF
    run.fire()
    run.fail("create", "HttpError", details={"status": 404})
    assert run.phase is RunPhase.FAILED


def test_a_condition_reads_a_job_exit_code() -> None:
    text = """
    steps:
      - name: build
        job: {image: builder}
        retry: {when: "error.details.exitCode == 75", maxAttempts: 3}
    """
    run = Run(text)
    run.fail("build", "JobFailed", details={"exitCode": 75})
    assert run.step_phase("build") is StepPhase.BACKOFF
    run.fire()
    run.fail("build", "JobFailed", details={"exitCode": 1})
    assert run.phase is RunPhase.FAILED


def test_a_condition_that_fails_to_evaluate_fails_the_step_naming_the_rule() -> None:
    text = """
    steps:
      - name: build
        job: {image: builder}
        retry: {rules: [{when: "error.details.exitCode == 75", maxAttempts: 3}]}
    """
    run = Run(text)
    run.fail("build", "JobFailed")  # no details: exitCode is missing
    assert run.phase is RunPhase.FAILED
    error = run.step("build").error
    assert error is not None
    assert error.type == "ExpressionError"
    assert error.details["field"] == "retry.rules[0].when"
    assert error.details["error"]["type"] == "JobFailed"


def test_max_attempts_zero_retries_without_limit() -> None:
    text = """
    steps:
      - name: poll
        http: {url: "http://x"}
        retry: {maxAttempts: 0, initialInterval: 1s, maxInterval: 1s}
    """
    run = Run(text)
    for _ in range(50):
        run.fail("poll")
        run.fire()
    assert run.step("poll").attempt == 51
    assert run.step_phase("poll") is StepPhase.RUNNING


def test_max_attempts_zero_is_bounded_by_schedule_to_close() -> None:
    text = """
    steps:
      - name: poll
        http: {url: "http://x"}
        retry: {maxAttempts: 0, initialInterval: 1m, maxInterval: 1m}
        timeout: {scheduleToClose: 5m}
    """
    run = Run(text)
    for _ in range(4):
        run.fail("poll")
        run.fire()
    run.fail("poll", "Last")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Last"


CHILD = """
defaults: {retry: {maxAttempts: 5}}
steps:
  - name: valuation
    workflow: {workflowRef: valuation}
"""


def child_fails(run: Run) -> None:
    attempt = run.step("valuation").attempt
    run.deliver(ChildFinished(key="valuation", attempt=attempt, phase="Failed"))


def test_a_child_run_is_not_retried_unless_its_step_says_so() -> None:
    run = Run(CHILD)
    child_fails(run)
    assert run.phase is RunPhase.FAILED
    assert run.step("valuation").attempt == 1


def test_a_child_run_with_its_own_retry_is_retried() -> None:
    run = Run(CHILD + "    retry: {maxAttempts: 2}\n")
    child_fails(run)
    assert run.step_phase("valuation") is StepPhase.BACKOFF


def test_activities_keep_the_default_of_three_attempts() -> None:
    run = Run("steps:\n  - name: call\n    http: {url: 'http://x'}")
    for _ in range(2):
        run.fail("call")
        run.fire()
    run.fail("call")
    assert run.phase is RunPhase.FAILED
    assert run.step("call").attempt == 3


def test_a_rule_after_a_catch_all_rule_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"rules\[1\] can never apply: rules\[0\] matches every"):
        definition(
            """
            steps:
              - name: call
                http: {url: "http://x"}
                retry: {rules: [{maxAttempts: 2}, {errors: [Timeout]}]}
            """
        )


def test_errors_and_when_are_unknown_in_defaults() -> None:
    # They select the errors a step's rule applies to; a default policy selects nothing.
    with pytest.raises(ValidationError) as refused:
        spec("defaults: {retry: {errors: [Timeout]}}\nsteps: [{name: c, http: {url: 'http://x'}}]")
    assert first_problem(refused.value, WorkflowSpec).startswith(
        "defaults.retry.errors: unknown field"
    )


def test_errors_beside_rules_are_refused_naming_the_fix() -> None:
    with pytest.raises(ValidationError) as refused:
        spec(
            """
            steps:
              - name: c
                http: {url: "http://x"}
                retry: {errors: [Timeout], rules: [{maxAttempts: 2}]}
            """
        )
    assert first_problem(refused.value, WorkflowSpec) == (
        "steps[0].retry: with rules, errors and when belong on each rule: move them into the rules"
    )


def test_a_broken_retry_condition_is_refused_when_applied() -> None:
    with pytest.raises(DefinitionError, match=r"field 'retry\.rules\[0\]\.when'"):
        definition(
            """
            steps:
              - name: call
                http: {url: "http://x"}
                retry: {rules: [{when: "error.details.", maxAttempts: 2}]}
            """
        )
