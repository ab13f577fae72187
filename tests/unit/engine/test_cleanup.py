"""Cleanup that always runs: the run's `onExit`, a step's `finally`, and compensation of a step
a cancel or the run timeout interrupted (`compensate.onInterrupt`)."""

from __future__ import annotations

from typing import Any

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import (
    ActivityCompleted,
    CancelActivity,
    CancelRequested,
    RedriveRequested,
    ResumeRequested,
    RunAborted,
    StartActivity,
    SuspendRequested,
    TerminateChild,
)
from baton.engine.errors import StepError

ON_EXIT = """
steps:
  - {name: work, http: {url: "http://work"}, retry: {maxAttempts: 1}}
onExit:
  - name: notify
    http:
      url: "http://notify"
      body: {outcome: "${{ run.outcome }}", error: "${{ run.error }}", run: "${{ run.name }}"}
    retry: {maxAttempts: 1}
output: "${{ steps.work.output }}"
"""


def condition(run: Run, kind: str) -> dict[str, Any] | None:
    return next((c for c in run.sim.state.conditions if c["type"] == kind), None)


# -- onExit -----------------------------------------------------------------------------------


def test_on_exit_runs_when_the_run_succeeds_before_it_takes_its_final_phase() -> None:
    run = Run(ON_EXIT)
    run.complete("work", "done")
    assert run.started() == ["notify"]
    assert run.start_of("notify").spec["body"] == {
        "outcome": "Succeeded",
        "error": None,
        "run": "run",
    }
    assert run.phase is RunPhase.RUNNING
    run.complete("notify")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == "done"


def test_on_exit_sees_the_error_of_a_failed_run_which_keeps_it() -> None:
    run = Run(ON_EXIT)
    run.fail("work", "Boom")
    body = run.start_of("notify").spec["body"]
    assert body["outcome"] == "Failed"
    assert body["error"]["type"] == "Boom"
    run.complete("notify")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Boom"


def test_on_exit_runs_after_the_compensations_with_the_compensated_outcome() -> None:
    run = Run(
        """
        steps:
          - {name: reserve, http: {url: "http://r"}, compensate: {http: {url: "http://u"}}}
          - {name: pay, http: {url: "http://p"}, retry: {maxAttempts: 1}}
        onExit:
          - {name: notify, http: {url: "http://n", body: "${{ run.outcome }}"}}
        """
    )
    run.complete("reserve")
    run.fail("pay")
    assert run.started() == ["reserve/compensate"]
    run.complete("reserve/compensate")
    assert run.started() == ["notify"]
    assert run.start_of("notify").spec["body"] == "Compensated"
    run.complete("notify")
    assert run.phase is RunPhase.COMPENSATED


def test_a_cancel_stops_the_steps_in_flight_then_runs_on_exit_and_ends_cancelled() -> None:
    run = Run(ON_EXIT)
    run.deliver(CancelRequested())
    assert [c.key for c in run.of_type(CancelActivity)] == ["work"]
    assert run.started() == ["notify"]
    assert run.start_of("notify").spec["body"]["outcome"] == "Cancelled"
    assert run.step_phase("work") is StepPhase.CANCELLED
    run.complete("notify")
    assert run.phase is RunPhase.CANCELLED
    assert run.sim.state.error == StepError("Cancelled", "the run was cancelled")


def test_the_run_timeout_runs_on_exit_and_the_run_ends_timed_out() -> None:
    run = Run("timeout: 1h\n" + ON_EXIT)
    run.advance(3600)
    assert run.started() == ["notify"]
    assert run.start_of("notify").spec["body"]["outcome"] == "TimedOut"
    run.complete("notify")
    assert run.phase is RunPhase.TIMED_OUT
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Timeout"


def test_a_failing_on_exit_fails_a_run_that_had_succeeded() -> None:
    run = Run(ON_EXIT)
    run.complete("work", "done")
    run.fail("notify", "NotifyDown")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "NotifyDown"
    assert run.sim.state.error.step == "notify"
    reported = condition(run, "CleanupFailed")
    assert reported is not None
    assert reported["status"] == "True"
    assert reported["reason"] == "NotifyDown"


def test_a_failing_on_exit_leaves_the_outcome_and_error_of_a_run_that_did_not_succeed() -> None:
    run = Run(ON_EXIT)
    run.deliver(CancelRequested())
    run.fail("notify", "NotifyDown")
    assert run.phase is RunPhase.CANCELLED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Cancelled"
    reported = condition(run, "CleanupFailed")
    assert reported is not None
    assert "notify" in reported["message"]


def test_a_cancel_while_on_exit_runs_is_ignored() -> None:
    run = Run(ON_EXIT)
    run.complete("work", "done")
    run.deliver(CancelRequested())
    assert run.of_type(CancelActivity) == []
    run.complete("notify")
    assert run.phase is RunPhase.SUCCEEDED


def test_the_run_timeout_does_not_interrupt_on_exit() -> None:
    run = Run("timeout: 1h\n" + ON_EXIT)
    run.complete("work", "done", after=3000)
    run.advance(3600)
    assert run.step_phase("notify") is StepPhase.RUNNING
    run.complete("notify")
    assert run.phase is RunPhase.SUCCEEDED


def test_on_exit_starts_once_when_an_event_is_delivered_again() -> None:
    run = Run(ON_EXIT)
    completed = ActivityCompleted(key="work", attempt=1, output="done")
    run.deliver(completed)
    run.deliver(completed)
    assert run.of_type(StartActivity) == []
    assert run.step("notify").attempt == 1


def test_suspend_holds_on_exit_steps_until_resumed() -> None:
    run = Run(ON_EXIT)
    run.deliver(SuspendRequested())
    run.complete("work", "done")
    assert run.started() == []
    assert run.phase is RunPhase.SUSPENDED
    run.deliver(ResumeRequested())
    assert run.started() == ["notify"]


def test_a_redrive_runs_on_exit_again_when_the_run_ends_again() -> None:
    run = Run(ON_EXIT)
    run.fail("work")
    run.complete("notify")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.started() == ["work"]
    assert run.sim.state.exit_outcome is None
    run.complete("work", "done")
    assert run.start_of("notify").attempt == 2
    assert run.start_of("notify").spec["body"]["outcome"] == "Succeeded"
    run.complete("notify")
    assert run.phase is RunPhase.SUCCEEDED


def test_a_redrive_of_a_run_failed_by_its_on_exit_runs_the_on_exit_again() -> None:
    run = Run(ON_EXIT)
    run.complete("work", "done")
    run.fail("notify")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.started() == ["notify"]
    run.complete("notify")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("work").attempt == 1
    reported = condition(run, "CleanupFailed")
    assert reported is not None
    assert reported["status"] == "False"


def test_an_aborted_run_does_not_run_on_exit() -> None:
    run = Run(ON_EXIT)
    run.deliver(RunAborted(reason="HistoryLost", message="gone"))
    assert run.phase is RunPhase.FAILED
    assert run.started() == []
    assert "notify" not in run.sim.state.steps


# -- finally ----------------------------------------------------------------------------------

FINALLY = """
steps:
  - name: lock
    http: {url: "http://lock"}
    retry: {maxAttempts: 1}
    finally:
      - name: unlock
        http:
          url: "http://unlock"
          body: {outcome: "${{ step.outcome }}", error: "${{ step.error }}"}
        retry: {maxAttempts: 1}
  - {name: after, http: {url: "http://after"}}
"""


def test_finally_runs_when_the_step_succeeds_before_the_steps_that_wait_for_it() -> None:
    run = Run(FINALLY)
    run.complete("lock", "held")
    assert run.started() == ["unlock"]
    assert run.start_of("unlock").spec["body"] == {"outcome": "Succeeded", "error": None}
    assert run.step_phase("lock") is StepPhase.RUNNING
    run.complete("unlock")
    assert run.step_phase("lock") is StepPhase.SUCCEEDED
    assert run.step("lock").output == "held"
    assert run.started() == ["after"]


def test_finally_runs_when_the_step_fails_and_the_step_keeps_its_error() -> None:
    run = Run(FINALLY)
    run.fail("lock", "Boom")
    body = run.start_of("unlock").spec["body"]
    assert body["outcome"] == "Failed"
    assert body["error"]["type"] == "Boom"
    run.complete("unlock")
    assert run.step_phase("lock") is StepPhase.FAILED
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Boom"


def test_finally_runs_when_a_cancel_interrupts_the_step() -> None:
    run = Run(FINALLY)
    run.deliver(CancelRequested())
    assert [c.key for c in run.of_type(CancelActivity)] == ["lock"]
    assert run.started() == ["unlock"]
    assert run.start_of("unlock").spec["body"]["outcome"] == "Cancelled"
    run.complete("unlock")
    assert run.step_phase("lock") is StepPhase.CANCELLED
    assert run.phase is RunPhase.CANCELLED


def test_finally_does_not_run_for_a_skipped_step() -> None:
    run = Run(
        FINALLY.replace(
            "    retry: {maxAttempts: 1}\n    finally", "    when: 'false'\n    finally", 1
        )
    )
    assert run.step_phase("lock") is StepPhase.SKIPPED
    assert run.started() == ["after"]
    assert "unlock" not in run.sim.state.steps


def test_a_failing_finally_fails_the_step_that_had_succeeded() -> None:
    run = Run(FINALLY)
    run.complete("lock", "held")
    run.fail("unlock", "LockLost")
    assert run.step_phase("lock") is StepPhase.FAILED
    assert run.step("lock").error is not None
    assert run.step("lock").error.type == "LockLost"
    assert run.phase is RunPhase.FAILED


def test_a_failing_finally_leaves_the_error_of_the_step_that_had_failed() -> None:
    run = Run(FINALLY)
    run.fail("lock", "Boom")
    run.fail("unlock", "LockLost")
    assert run.step("lock").error is not None
    assert run.step("lock").error.type == "Boom"
    assert run.step_phase("unlock") is StepPhase.FAILED
    reported = condition(run, "CleanupFailed")
    assert reported is not None
    assert "unlock" in reported["message"]


def test_finally_runs_after_a_retry_ends_not_after_each_attempt() -> None:
    run = Run(
        FINALLY.replace(
            "retry: {maxAttempts: 1}\n    finally", "retry: {maxAttempts: 2}\n    finally", 1
        )
    )
    run.fail("lock")
    assert run.started() == []
    run.fire()
    run.complete("lock", "held")
    assert run.started() == ["unlock"]


def test_finally_of_a_step_in_a_parallel_branch_runs_when_the_run_is_cancelled() -> None:
    run = Run(
        """
        steps:
          - name: both
            parallel:
              branches:
                - name: a
                  steps:
                    - name: lock
                      http: {url: "http://lock"}
                      finally: [{name: unlock, http: {url: "http://unlock"}}]
                - name: b
                  steps: [{name: wait, sleep: {duration: 1h}}]
        """
    )
    run.deliver(CancelRequested())
    assert run.started() == ["unlock"]
    assert run.phase is RunPhase.RUNNING
    run.complete("unlock")
    assert run.phase is RunPhase.CANCELLED
    assert run.step_phase("lock") is StepPhase.CANCELLED


def test_finally_of_a_for_each_step_runs_once_per_item() -> None:
    run = Run(
        """
        steps:
          - name: each
            forEach:
              items: "[1, 2]"
              concurrency: 2
              step:
                name: charge
                http: {url: "http://c/${{ item }}"}
                finally: [{name: log, http: {url: "http://log/${{ item }}"}}]
        """
    )
    run.complete("each[0].charge")
    assert run.started() == ["each[0].log"]
    assert run.start_of("each[0].log").spec["url"] == "http://log/1"
    run.complete("each[1].charge")
    run.complete("each[0].log")
    run.complete("each[1].log")
    assert run.phase is RunPhase.SUCCEEDED


def test_a_finally_runs_once_per_ending_across_a_redrive() -> None:
    run = Run(FINALLY)
    run.fail("lock")
    run.complete("unlock")
    run.deliver(RedriveRequested(n=1))
    assert run.started() == ["lock"]
    run.complete("lock", "held")
    assert run.start_of("unlock").attempt == 2
    assert run.start_of("unlock").spec["body"]["outcome"] == "Succeeded"


# -- compensate.onInterrupt -------------------------------------------------------------------

INTERRUPTIBLE = """
steps:
  - name: reserve
    http: {url: "http://reserve"}
    compensate: {http: {url: "http://release"}}
  - name: charge
    http: {url: "http://charge"}
    compensate:
      http: {url: "http://refund", body: "${{ steps.charge.output }}"}
      onInterrupt: true
"""


def test_a_cancel_compensates_a_step_it_interrupted_whose_compensation_opts_in() -> None:
    run = Run(INTERRUPTIBLE)
    run.complete("reserve")
    run.deliver(CancelRequested())
    assert [c.key for c in run.of_type(CancelActivity)] == ["charge"]
    assert run.started() == ["charge/compensate"]
    assert run.start_of("charge/compensate").spec["body"] is None
    run.complete("charge/compensate")
    assert run.started() == ["reserve/compensate"]
    run.complete("reserve/compensate")
    assert run.phase is RunPhase.CANCELLED


def test_an_interrupted_step_without_on_interrupt_is_not_compensated() -> None:
    run = Run(INTERRUPTIBLE.replace("      onInterrupt: true\n", ""))
    run.complete("reserve")
    run.deliver(CancelRequested())
    assert run.started() == ["reserve/compensate"]
    run.complete("reserve/compensate")
    assert [c.path for c in run.sim.state.compensations] == ["reserve"]


def test_the_run_timeout_compensates_a_step_it_interrupted_whose_compensation_opts_in() -> None:
    run = Run("timeout: 1h\n" + INTERRUPTIBLE)
    run.complete("reserve")
    run.advance(3600)
    assert run.started() == ["charge/compensate"]
    run.complete("charge/compensate")
    run.complete("reserve/compensate")
    assert run.phase is RunPhase.TIMED_OUT


def test_a_step_waiting_to_retry_is_not_interrupted_in_flight() -> None:
    run = Run(INTERRUPTIBLE)
    run.complete("reserve")
    run.fail("charge")
    assert run.step_phase("charge") is StepPhase.BACKOFF
    run.deliver(CancelRequested())
    assert run.started() == ["reserve/compensate"]


def test_cancel_with_on_cancel_abandon_does_not_compensate_an_interrupted_step() -> None:
    run = Run("onCancel: abandon\n" + INTERRUPTIBLE)
    run.complete("reserve")
    run.deliver(CancelRequested())
    assert run.started() == []
    assert run.phase is RunPhase.CANCELLED


def test_an_interrupted_child_run_is_terminated_then_compensated() -> None:
    run = Run(
        """
        steps:
          - name: provision
            workflow: {workflowRef: provision}
            compensate: {http: {url: "http://deprovision"}, onInterrupt: true}
        """
    )
    run.deliver(CancelRequested())
    assert [c.key for c in run.of_type(TerminateChild)] == ["provision"]
    assert run.started() == ["provision/compensate"]
    run.complete("provision/compensate")
    assert run.phase is RunPhase.CANCELLED
