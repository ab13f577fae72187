"""`parallel` with `mode: race`: the first branch to end decides, the others are cancelled."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import CancelActivity, StartChildRun, TerminateChild, deadlines

RACE = """
defaults: {retry: {maxAttempts: 1}}
steps:
  - name: quote
    parallel:
      mode: race
      branches:
        - name: vendor
          steps: [{name: vendorQuote, worker: {pool: pricing, activity: quote}}]
        - name: patience
          steps:
            - {name: wait, sleep: {duration: 30s}}
            - {name: listPrice, set: {price: 120}}
output: "${{ steps.quote.output }}"
"""


def test_the_first_branch_to_end_wins_and_its_output_names_it() -> None:
    run = Run(RACE)
    run.complete("vendorQuote", {"price": 99}, after=4)
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == {"winner": "vendor", "output": {"price": 99}}


def test_the_losing_branch_timer_is_dropped() -> None:
    run = Run(RACE)
    assert [d.timer_id for d in deadlines(run.definition, run.sim.state)] == ["wait#0/sleep"]
    run.complete("vendorQuote", {"price": 99}, after=4)
    assert deadlines(run.definition, run.sim.state) == []
    assert run.step_phase("wait") is StepPhase.CANCELLED
    assert "listPrice" not in run.sim.state.steps


def test_a_timer_winning_cancels_the_losing_activity() -> None:
    run = Run(RACE)
    run.advance(30)
    assert [c.key for c in run.of_type(CancelActivity)] == ["vendorQuote"]
    assert run.step_phase("vendorQuote") is StepPhase.CANCELLED
    assert run.sim.state.output == {"winner": "patience", "output": {"price": 120}}


def test_a_result_of_the_loser_arriving_late_changes_nothing() -> None:
    run = Run(RACE)
    run.advance(30)
    before = run.sim.state
    run.complete("vendorQuote", {"price": 1})
    assert run.sim.state == before


def test_a_branch_that_ends_failing_fails_the_race() -> None:
    run = Run(RACE)
    run.fail("vendorQuote", "PricingDown")
    assert run.step_phase("quote") is StepPhase.FAILED
    assert run.step_phase("wait") is StepPhase.CANCELLED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "PricingDown"


def test_a_losing_child_run_is_terminated() -> None:
    run = Run(
        """
        steps:
          - name: race
            parallel:
              mode: race
              branches:
                - {name: kid, steps: [{name: child, workflow: {workflowRef: sub}}]}
                - {name: fast, steps: [{name: quick, http: {url: "http://q"}}]}
        """
    )
    run.complete("quick", {"ok": True})
    child = next(c.name for c in run.sim.issued if isinstance(c, StartChildRun))
    assert [c.name for c in run.of_type(TerminateChild)] == [child]
    assert run.step_phase("child") is StepPhase.CANCELLED


def test_an_abandoned_losing_child_run_is_left_alone() -> None:
    run = Run(
        """
        steps:
          - name: race
            parallel:
              mode: race
              branches:
                - name: kid
                  steps: [{name: child, workflow: {workflowRef: sub, parentClosePolicy: abandon}}]
                - {name: fast, steps: [{name: quick, http: {url: "http://q"}}]}
        """
    )
    run.complete("quick", {"ok": True})
    assert run.of_type(TerminateChild) == []
    assert run.step_phase("child") is StepPhase.CANCELLED


def test_branches_ending_in_one_decision_are_won_by_the_first_listed() -> None:
    run = Run(
        """
        steps:
          - name: race
            parallel:
              mode: race
              branches:
                - {name: first, steps: [{name: a, set: {x: 1}}]}
                - {name: second, steps: [{name: b, set: {x: 2}}]}
        """
    )
    assert run.step("race").output == {"winner": "first", "output": {"x": 1}}


def test_a_race_inside_a_repeat_races_again_each_iteration() -> None:
    run = Run(
        """
        steps:
          - name: race
            repeat: {until: "steps.race.output.winner == 'slow'", maxIterations: 3}
            parallel:
              mode: race
              branches:
                - {name: slow, steps: [{name: nap, sleep: {duration: 10s}}]}
                - {name: fast, steps: [{name: call, http: {url: "http://q"}}]}
        """
    )
    run.complete("call", {"n": 1})
    assert run.step("race").iterations == 1
    assert run.started() == ["call"]
    assert run.step_phase("nap") is StepPhase.WAITING
    run.advance(10)
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("race").output == {"winner": "slow", "output": None}
