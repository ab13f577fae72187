"""Failure control: continueOn, conditional dependencies, failFast, cancellation of in-flight
siblings, and forEach tolerated failures."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import CancelActivity, StartChildRun, TerminateChild, deadlines
from baton.engine.events import RedriveRequested

# -- continueOn -------------------------------------------------------------------------------

CONTINUE = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - name: receipt
    continueOn: {failed: true}
    http: {url: "http://mail"}
  - name: ship
    http: {url: "http://ship"}
  - name: ticket
    needs: [ship]
    when: "steps.receipt.phase == 'Failed'"
    http: {url: "http://support"}
output: {sent: "${{ steps.receipt.phase }}"}
"""


def test_a_step_that_continues_on_failure_stays_failed_and_the_run_goes_on() -> None:
    run = Run(CONTINUE)
    run.fail("receipt", "SmtpRefused")
    assert run.step_phase("receipt") is StepPhase.FAILED
    assert run.step("receipt").error is not None
    assert run.step("receipt").error.type == "SmtpRefused"
    assert run.started() == ["ship"]


def test_dependants_of_a_step_that_continued_read_its_failure() -> None:
    run = Run(CONTINUE)
    run.fail("receipt", "SmtpRefused")
    run.complete("ship")
    assert run.started() == ["ticket"]
    run.complete("ticket")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == {"sent": "Failed"}


def test_a_step_that_continued_on_failure_is_never_compensated() -> None:
    run = Run(
        """
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - name: a
            continueOn: {failed: true}
            http: {url: "http://a"}
            compensate: {http: {url: "http://undo-a"}}
          - {name: b, http: {url: "http://b"}}
        """
    )
    run.fail("a")
    run.fail("b")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.compensations == []


# -- depends ----------------------------------------------------------------------------------

FALLBACK = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - {name: card, http: {url: "http://card"}}
  - {name: wallet, depends: "card.Failed", http: {url: "http://wallet"}}
  - {name: confirm, depends: "card || wallet", http: {url: "http://confirm"}}
"""


def test_a_step_depending_on_a_failure_runs_when_it_fails_and_the_run_succeeds() -> None:
    run = Run(FALLBACK)
    run.fail("card", "CardDeclined")
    assert run.started() == ["wallet"]
    run.complete("wallet", {"id": "w"})
    assert run.started() == ["confirm"]
    run.complete("confirm")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step_phase("card") is StepPhase.FAILED


def test_a_step_depending_on_a_failure_is_skipped_when_it_succeeds() -> None:
    run = Run(FALLBACK)
    run.complete("card")
    assert run.step_phase("wallet") is StepPhase.SKIPPED
    assert run.started() == ["confirm"]


def test_any_one_of_several_starts_the_step_without_waiting_for_the_others() -> None:
    run = Run(
        """
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, needs: [], http: {url: "http://b"}}
          - {name: c, depends: "a || b", http: {url: "http://c"}}
        """
    )
    run.complete("b")
    assert run.started() == ["c"]
    assert run.step_phase("a") is StepPhase.RUNNING


def test_a_compound_condition_waits_until_it_is_decided() -> None:
    run = Run(
        """
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, needs: [], continueOn: {failed: true}, http: {url: "http://b"}}
          - {name: c, needs: [], when: "false", http: {url: "http://c"}}
          - {name: d, depends: "a.Succeeded && (b.Failed || c.Skipped)", http: {url: "http://d"}}
        """
    )
    assert run.step_phase("c") is StepPhase.SKIPPED
    run.fail("b")
    assert "d" not in run.sim.state.steps
    run.complete("a")
    assert run.started() == ["d"]


def test_an_unhandled_failure_still_fails_the_run_under_depends() -> None:
    run = Run(
        """
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, needs: [], http: {url: "http://b"}}
          - {name: c, depends: "a || b", http: {url: "http://c"}}
        """
    )
    run.fail("b")
    assert run.phase is RunPhase.FAILED
    assert [c.key for c in run.of_type(CancelActivity)] == ["a"]


# -- failFast ---------------------------------------------------------------------------------

NO_FAIL_FAST = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - name: checks
    parallel:
      failFast: false
      branches:
        - name: one
          steps:
            - {name: dns, http: {url: "http://dns"}}
            - {name: dnsReport, http: {url: "http://dns-report"}}
        - name: two
          steps: [{name: tls, http: {url: "http://tls"}}]
        - name: three
          steps: [{name: wait, sleep: {duration: 1m}}]
"""


def test_without_fail_fast_the_other_branches_go_on_after_one_fails() -> None:
    run = Run(NO_FAIL_FAST)
    run.fail("tls", "Expired")
    assert run.of_type(CancelActivity) == []
    assert run.step_phase("checks") is StepPhase.RUNNING
    run.complete("dns")
    assert run.started() == ["dnsReport"]
    run.complete("dnsReport")
    assert run.step_phase("checks") is StepPhase.RUNNING
    run.fire()
    assert run.step_phase("wait") is StepPhase.SUCCEEDED
    assert run.step_phase("checks") is StepPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "Expired"


def test_without_fail_fast_steps_needing_the_failed_step_are_skipped() -> None:
    run = Run(
        """
        failFast: false
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, http: {url: "http://b"}}
          - {name: c, needs: [], http: {url: "http://c"}}
        """
    )
    run.fail("a")
    assert run.step_phase("b") is StepPhase.SKIPPED
    assert run.phase is RunPhase.RUNNING
    run.complete("c")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.step == "a"


def test_a_redrive_reruns_steps_skipped_because_a_step_failed() -> None:
    run = Run(
        """
        failFast: false
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, http: {url: "http://b"}}
        """
    )
    run.fail("a")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(1))
    run.complete("a")
    assert run.started() == ["b"]


# -- cancelling in-flight siblings ------------------------------------------------------------

SIBLINGS = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - name: quota
    http: {url: "http://quota"}
    compensate: {http: {url: "http://quota-release"}}
  - name: provision
    parallel:
      branches:
        - name: database
          steps: [{name: db, job: {image: db}}]
        - name: dns
          steps: [{name: record, http: {url: "http://dns"}}]
        - name: kids
          steps: [{name: child, workflow: {workflowRef: sub}}]
        - name: later
          steps: [{name: nap, sleep: {duration: 1h}}]
        - name: items
          steps:
            - name: each
              forEach:
                items: "[1, 2]"
                concurrency: 2
                step: {name: one, worker: {pool: p, activity: a}}
"""


def test_a_failed_branch_cancels_every_activity_child_and_timer_of_the_others_at_once() -> None:
    run = Run(SIBLINGS)
    run.complete("quota", {"id": "q"})
    run.fail("record", "HttpError")
    assert {c.key for c in run.of_type(CancelActivity)} == {"db", "each[0].one", "each[1].one"}
    assert [c.name for c in run.of_type(TerminateChild)] == [
        next(c.name for c in run.sim.issued if isinstance(c, StartChildRun))
    ]
    assert [d.timer_id for d in deadlines(run.definition, run.sim.state)] == []
    for key in ("db", "child", "nap", "each", "each[0].one", "each[1].one"):
        assert run.step_phase(key) is StepPhase.CANCELLED, key


def test_the_compensation_starts_in_the_decision_the_branch_failed() -> None:
    run = Run(SIBLINGS)
    run.complete("quota", {"id": "q"})
    run.fail("record", "HttpError")
    assert run.phase is RunPhase.COMPENSATING
    assert run.started() == ["quota/compensate"]


def test_a_catch_on_the_parallel_starts_in_the_decision_the_branch_failed() -> None:
    run = Run(
        """
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - name: both
            parallel:
              branches:
                - {name: x, steps: [{name: slow, http: {url: "http://slow"}}]}
                - {name: y, steps: [{name: quick, http: {url: "http://quick"}}]}
            catch: [{errors: ["*"], steps: [{name: recover, http: {url: "http://recover"}}]}]
        """
    )
    run.fail("quick")
    assert [c.key for c in run.of_type(CancelActivity)] == ["slow"]
    assert run.started() == ["recover"]


# -- forEach tolerated failures ---------------------------------------------------------------

TOLERANT = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - name: invoices
    forEach:
      items: "input.customers"
      concurrency: 2
      toleratedFailureCount: 1
      step: {name: invoice, http: {url: "http://billing/${{ item }}"}}
output: "${{ steps.invoices.output }}"
"""


def test_failures_within_the_tolerance_let_the_for_each_succeed_saying_which_failed() -> None:
    run = Run(TOLERANT, {"customers": ["a", "b", "c"]})
    run.fail("invoices[0].invoice", "NoAddress")
    assert run.started() == ["invoices[2].invoice"]
    run.complete("invoices[1].invoice", {"id": 1})
    run.complete("invoices[2].invoice", {"id": 2})
    assert run.phase is RunPhase.SUCCEEDED
    output = run.sim.state.output
    assert output["items"] == [None, {"id": 1}, {"id": 2}]
    assert [(f["index"], f["error"]["type"]) for f in output["failed"]] == [(0, "NoAddress")]
    assert run.step_phase("invoices[0].invoice") is StepPhase.FAILED


def test_one_failure_past_the_tolerance_stops_the_for_each_at_once() -> None:
    run = Run(TOLERANT, {"customers": ["a", "b", "c", "d"]})
    run.fail("invoices[0].invoice")
    run.fail("invoices[1].invoice")
    assert [c.key for c in run.of_type(CancelActivity)] == ["invoices[2].invoice"]
    assert "invoices[3].invoice" not in run.sim.state.steps
    assert run.step_phase("invoices") is StepPhase.FAILED
    error = run.sim.state.error
    assert error is not None
    assert error.type == "ToleratedFailureExceeded"
    assert error.details["failed"] == [0, 1]


def test_a_tolerated_percentage_counts_against_all_items() -> None:
    run = Run(
        TOLERANT.replace("toleratedFailureCount: 1", "toleratedFailurePercentage: 50"),
        {"customers": ["a", "b", "c", "d"]},
    )
    run.fail("invoices[0].invoice")
    run.fail("invoices[1].invoice")
    assert run.step_phase("invoices") is StepPhase.RUNNING
    run.fail("invoices[2].invoice")
    assert run.step_phase("invoices") is StepPhase.FAILED


def test_a_sibling_cancelled_by_a_failed_branch_runs_its_finally_before_the_step_fails() -> None:
    run = Run(
        """
        defaults: {retry: {maxAttempts: 1}}
        steps:
          - name: both
            parallel:
              branches:
                - name: a
                  steps:
                    - name: lock
                      http: {url: "http://lock"}
                      finally: [{name: unlock, http: {url: "http://unlock"}}]
                - {name: b, steps: [{name: quick, http: {url: "http://quick"}}]}
        """
    )
    run.fail("quick")
    assert [c.key for c in run.of_type(CancelActivity)] == ["lock"]
    assert run.started() == ["unlock"]
    assert run.step_phase("both") is StepPhase.RUNNING
    run.complete("unlock")
    assert run.step_phase("lock") is StepPhase.CANCELLED
    assert run.step_phase("both") is StepPhase.FAILED
    assert run.phase is RunPhase.FAILED
