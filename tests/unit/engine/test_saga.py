"""Compensations, cancel, suspend, redrive and child runs."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import (
    ActivityFailed,
    ActivityStarted,
    CancelActivity,
    CancelRequested,
    ChildFinished,
    RedriveRequested,
    ResumeRequested,
    StartChildRun,
    SuspendRequested,
    TerminateChild,
    child_run_name,
)

SAGA = """
steps:
  - name: reserve
    http: {url: "http://reserve"}
    compensate: {http: {method: DELETE, url: "http://reserve/${{ steps.reserve.output.id }}"}}
  - name: pay
    worker: {pool: p, activity: charge}
    compensate:
      worker: {pool: p, activity: refund, input: "${{ steps.pay.output.id }}"}
      retry: {maxAttempts: 2, initialInterval: 1s}
  - name: note
    http: {url: "http://note"}
  - name: transfer
    http: {url: "http://transfer"}
    retry: {maxAttempts: 1}
"""


def failed_saga() -> Run:
    run = Run(SAGA)
    run.complete("reserve", {"id": "r1"})
    run.complete("pay", {"id": "p1"})
    run.complete("note")
    run.fail("transfer", "TitleDisputed")
    return run


def test_a_failed_run_compensates_completed_steps_in_reverse_completion_order() -> None:
    run = failed_saga()
    assert run.phase is RunPhase.COMPENSATING
    assert run.started() == ["pay/compensate"]
    assert run.start_of("pay/compensate").spec["input"] == "p1"
    assert run.start_of("pay/compensate").compensation
    run.complete("pay/compensate")
    assert run.started() == ["reserve/compensate"]
    assert run.start_of("reserve/compensate").spec["url"] == "http://reserve/r1"
    run.complete("reserve/compensate")
    assert run.phase is RunPhase.COMPENSATED
    assert [(c.path, c.run.phase) for c in run.sim.state.compensations] == [
        ("pay", StepPhase.SUCCEEDED),
        ("reserve", StepPhase.SUCCEEDED),
    ]
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "TitleDisputed"


def test_compensations_retry_with_their_own_policy() -> None:
    run = failed_saga()
    run.fail("pay/compensate")
    run.fire()
    assert run.start_of("pay/compensate").attempt == 2


def test_a_compensation_that_fails_for_good_ends_compensation_failed_after_the_rest() -> None:
    run = failed_saga()
    run.fail("pay/compensate")
    run.fire()
    run.fail("pay/compensate")
    assert run.started() == ["reserve/compensate"]
    run.complete("reserve/compensate")
    assert run.phase is RunPhase.COMPENSATION_FAILED


def test_a_failed_run_without_completed_compensable_steps_ends_failed() -> None:
    run = Run(SAGA)
    run.fail("reserve", "HttpError", details={"status": 400})
    assert run.phase is RunPhase.FAILED


def test_cancel_stops_in_flight_activities_and_compensates_by_default() -> None:
    run = Run(SAGA)
    run.complete("reserve", {"id": "r1"})
    run.deliver(CancelRequested())
    assert [c.key for c in run.of_type(CancelActivity)] == ["pay"]
    assert run.started() == ["reserve/compensate"]
    run.complete("reserve/compensate")
    assert run.phase is RunPhase.CANCELLED


def test_cancel_with_on_cancel_abandon_ends_cancelled_without_compensating() -> None:
    run = Run("onCancel: abandon\n" + SAGA)
    run.complete("reserve", {"id": "r1"})
    run.deliver(CancelRequested())
    assert run.phase is RunPhase.CANCELLED
    assert run.sim.state.compensations == []


def test_the_runs_on_cancel_override_wins_over_the_workflows() -> None:
    run = Run(SAGA, on_cancel="abandon")
    run.complete("reserve", {"id": "r1"})
    run.deliver(CancelRequested())
    assert run.phase is RunPhase.CANCELLED
    assert run.started() == []


def test_suspend_holds_new_steps_and_resume_starts_them() -> None:
    run = Run(SAGA)
    run.deliver(SuspendRequested())
    assert run.phase is RunPhase.SUSPENDED
    run.complete("reserve", {"id": "r1"})
    assert run.started() == []
    assert run.step_phase("reserve") is StepPhase.SUCCEEDED
    run.deliver(ResumeRequested())
    assert run.phase is RunPhase.RUNNING
    assert run.started() == ["pay"]


def test_suspend_holds_retries_until_resumed() -> None:
    run = Run(SAGA)
    run.fail("reserve")
    run.deliver(SuspendRequested())
    assert run.sim.wakeup() is None
    run.advance(3600)
    assert run.step_phase("reserve") is StepPhase.BACKOFF
    run.deliver(ResumeRequested())
    assert run.start_of("reserve").attempt == 2


def test_redrive_restarts_failed_steps_and_keeps_completed_outputs() -> None:
    run = Run(
        """
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, http: {url: "http://b/${{ steps.a.output }}"}, retry: {maxAttempts: 1}}
        """
    )
    run.complete("a", "x")
    run.fail("b")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.phase is RunPhase.RUNNING
    assert run.start_of("b").attempt == 2
    assert run.start_of("b").spec["url"] == "http://b/x"
    run.complete("b")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("a").attempt == 1


def test_a_redrive_number_already_seen_is_ignored() -> None:
    run = Run("steps: [{name: b, http: {url: 'http://b'}, retry: {maxAttempts: 1}}]")
    run.fail("b")
    run.deliver(RedriveRequested(n=1))
    run.fail("b")
    run.deliver(RedriveRequested(n=1))
    assert run.phase is RunPhase.FAILED


def test_redrive_of_a_compensated_run_is_ignored() -> None:
    run = failed_saga()
    run.complete("pay/compensate")
    run.complete("reserve/compensate")
    run.deliver(RedriveRequested(n=1))
    assert run.phase is RunPhase.COMPENSATED


CHILD = """
steps:
  - name: valuation
    workflow: {workflowRef: property-valuation, input: {property: "${{ input.p }}"}}
    retry: {maxAttempts: 2, initialInterval: 1s}
output: "${{ steps.valuation.output.value }}"
"""


def test_a_workflow_step_starts_a_child_run_with_a_deterministic_name() -> None:
    run = Run(CHILD, {"p": "villa"})
    (child,) = run.of_type(StartChildRun)
    assert child.name == "run-valuation-1"
    assert child.name == child_run_name("run", "valuation", 1)
    assert (child.workflow_ref, child.input) == ("property-valuation", {"property": "villa"})


def test_child_names_of_unusual_keys_stay_valid_and_distinct() -> None:
    first = child_run_name("run", "each[1].valuationStep", 1)
    second = child_run_name("run", "each[1].valuationstep", 1)
    assert first != second
    assert first.startswith("run-each-1-valuationstep-")
    assert len(child_run_name("r" * 80, "x", 1)) <= 63


def test_a_succeeded_child_gives_the_step_its_output() -> None:
    run = Run(CHILD, {"p": "villa"})
    run.deliver(ChildFinished(key="valuation", attempt=1, phase="Succeeded", output={"value": 9}))
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == 9


def test_a_failed_child_is_retried_as_a_new_child() -> None:
    run = Run(CHILD, {"p": "villa"})
    run.deliver(ChildFinished(key="valuation", attempt=1, phase="Failed", error={"type": "X"}))
    assert run.step("valuation").error is not None
    assert run.step("valuation").error.type == "ChildFailed"
    run.fire()
    assert [c.name for c in run.of_type(StartChildRun)] == ["run-valuation-2"]


def test_cancelling_the_run_terminates_its_child() -> None:
    run = Run(CHILD, {"p": "villa"})
    run.deliver(CancelRequested())
    assert [c.name for c in run.of_type(TerminateChild)] == ["run-valuation-1"]
    assert run.phase is RunPhase.CANCELLED


SIBLINGS = """
steps:
  - name: both
    parallel:
      branches:
        - name: kid
          steps:
            - name: valuation
              workflow: {workflowRef: valuation, parentClosePolicy: abandon}
        - name: other
          steps:
            - name: call
              http: {url: "http://x"}
              retry: {maxAttempts: 1}
        - name: third
          steps:
            - name: slow
              http: {url: "http://slow"}
"""


def fail_the_sibling(run: Run) -> None:
    """`call` fails while `slow` still runs: the run waits for it, the child's step is
    cancelled, and the run is not closing yet."""
    assert [c.name for c in run.sim.issued if isinstance(c, StartChildRun)] == ["run-valuation-1"]
    run.deliver(ActivityStarted(key="valuation", attempt=1))
    run.deliver(ActivityFailed(key="call", attempt=1, error={"type": "Down"}))
    assert not run.phase.finished


def test_an_abandoned_child_is_not_terminated_when_a_sibling_fails() -> None:
    run = Run(SIBLINGS)
    fail_the_sibling(run)
    assert run.of_type(TerminateChild) == []


def test_a_terminated_child_is_terminated_when_a_sibling_fails() -> None:
    run = Run(SIBLINGS.replace("abandon", "terminate"))
    fail_the_sibling(run)
    assert [c.name for c in run.of_type(TerminateChild)] == ["run-valuation-1"]
