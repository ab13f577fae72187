"""parallel, forEach, catch and repeat."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import (
    ActivityCompleted,
    CancelActivity,
    RedriveRequested,
    StartActivity,
    pending_commands,
)
from baton.engine.errors import error_json

PARALLEL = """
steps:
  - name: setup
    parallel:
      branches:
        - name: screening
          steps:
            - {name: credit, http: {url: "http://credit"}}
            - {name: refs, http: {url: "http://refs"}}
        - name: accounts
          steps: [{name: portal, http: {url: "http://portal"}}]
        - name: welcome
          steps: [{name: mail, sleep: {duration: 1h}}]
  - {name: after, http: {url: "http://after"}}
"""


def test_parallel_branches_start_together() -> None:
    run = Run(PARALLEL)
    assert run.started() == ["credit", "portal"]
    assert run.step_phase("mail") is StepPhase.WAITING


def test_parallel_output_maps_each_branch_to_its_last_step_output() -> None:
    run = Run(PARALLEL)
    run.complete("credit", {"score": 700})
    run.complete("portal", {"user": "u1"})
    run.complete("refs", {"ok": True})
    run.fire()
    assert run.step("setup").output == {
        "screening": {"ok": True},
        "accounts": {"user": "u1"},
        "welcome": None,
    }
    assert run.started() == ["after"]


def test_a_failed_branch_cancels_the_other_branches_at_once_and_fails_the_step() -> None:
    run = Run(PARALLEL)
    run.fail("credit", "HttpError", details={"status": 400})
    assert run.step_phase("mail") is StepPhase.CANCELLED
    assert run.step_phase("portal") is StepPhase.CANCELLED
    assert [(c.key, c.attempt) for c in run.of_type(CancelActivity)] == [("portal", 1)]
    assert "refs" not in run.sim.state.steps
    assert run.step_phase("setup") is StepPhase.FAILED
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.step == "credit"


def test_a_result_of_a_cancelled_sibling_arriving_late_is_ignored() -> None:
    run = Run(PARALLEL)
    run.fail("credit", "HttpError", details={"status": 400})
    before = run.sim.state
    run.deliver(ActivityCompleted(key="portal", attempt=1, output={"user": "u1"}))
    assert run.sim.state == before
    assert run.commands == ()


FOR_EACH = """
steps:
  - name: charges
    forEach:
      items: "input.amounts"
      concurrency: 2
      step:
        name: charge
        http: {url: "http://pay/${{ index }}/${{ item }}"}
output: "${{ steps.charges.output }}"
"""


def test_for_each_runs_at_most_concurrency_items_at_once() -> None:
    run = Run(FOR_EACH, {"amounts": [10, 20, 30]})
    assert run.started() == ["charges[0].charge", "charges[1].charge"]
    assert run.start_of("charges[1].charge").spec["url"] == "http://pay/1/20"
    run.complete("charges[1].charge", "b")
    assert run.started() == ["charges[2].charge"]


def test_for_each_output_is_in_item_order_whatever_the_completion_order() -> None:
    run = Run(FOR_EACH, {"amounts": [10, 20, 30]})
    run.complete("charges[1].charge", "b")
    run.complete("charges[2].charge", "c")
    run.complete("charges[0].charge", "a")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == ["a", "b", "c"]


def test_a_failed_item_cancels_the_items_in_flight_and_fails_the_step_at_once() -> None:
    run = Run(FOR_EACH, {"amounts": [10, 20, 30]})
    run.fail("charges[0].charge", "HttpError", details={"status": 400})
    assert run.started() == []
    assert [c.key for c in run.of_type(CancelActivity)] == ["charges[1].charge"]
    assert run.step_phase("charges[1].charge") is StepPhase.CANCELLED
    assert run.step_phase("charges") is StepPhase.FAILED
    assert "charges[2].charge" not in run.sim.state.steps


def test_for_each_over_an_empty_list_succeeds_with_an_empty_list() -> None:
    run = Run(FOR_EACH, {"amounts": []})
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == []


def test_for_each_items_that_are_not_a_list_fail_with_an_expression_error() -> None:
    run = Run(FOR_EACH, {"amounts": {"a": 5}})
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "ExpressionError"
    assert run.sim.state.error.message == ('`forEach.items` must be a list, got an object: {"a":5}')


# The limits below are the documented ones (docs/language.md, "Limits"), written as numbers: a
# changed limit must fail these tests, not follow them.
STEP_INSTANCES = 20_000
OUTPUT_BYTES = 1_000_000


PAIRS = """
steps:
  - name: charges
    forEach:
      items: "input.amounts"
      concurrency: 2
      step:
        name: charge
        http: {url: "http://pay/${{ index }}/${{ item }}"}
        catch: [{errors: ["*"], steps: [{name: refund, http: {url: "http://refund"}}]}]
"""
"""Two instances per item (the call and its catch clause's step): a list the evaluation budget
lets through reaches the instance limit."""


def test_a_for_each_of_more_items_than_a_run_can_hold_fails_naming_the_limit() -> None:
    run = Run(PAIRS, {"amounts": list(range(STEP_INSTANCES // 2))})  # + the forEach: 20,001
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "TooManyItems"
    assert run.sim.state.error.details == {"field": "forEach.items"}
    assert run.sim.state.error.message.startswith(
        "10000 items would give the run 20001 step instances, over the 20000 a run can hold"
    )
    assert "child runs" in run.sim.state.error.message
    assert run.started() == []  # refused before any item started


def test_the_item_limit_counts_every_step_an_item_contains() -> None:
    text = """
        steps:
          - name: pairs
            forEach:
              items: "input.items"
              concurrency: 5
              step:
                name: both
                parallel:
                  branches:
                    - {name: a, steps: [{name: left, http: {url: "http://l"}}]}
                    - {name: b, steps: [{name: right, http: {url: "http://r"}}]}
        """
    # Each item holds 3 instances (the parallel and its two calls), the forEach one more.
    over = Run(text, {"items": list(range(6667))})  # 1 + 6,667 x 3 = 20,002
    assert over.sim.state.error is not None
    assert over.sim.state.error.type == "TooManyItems"
    assert "20002 step instances" in over.sim.state.error.message
    fits = Run(text, {"items": list(range(6666))})  # 1 + 6,666 x 3 = 19,999
    assert fits.phase is RunPhase.RUNNING
    assert len(fits.started()) == 10  # 5 items at once, two calls each


def test_a_for_each_up_to_the_limit_starts_its_items() -> None:
    run = Run(PAIRS, {"amounts": list(range(STEP_INSTANCES // 2 - 1))})  # 1 + 9,999 x 2
    assert run.phase is RunPhase.RUNNING
    assert run.started() == ["charges[0].charge", "charges[1].charge"]


def test_an_output_of_exactly_the_limit_is_kept_and_one_byte_more_fails() -> None:
    text = """
        steps: [{name: fetch, http: {url: "http://f"}}]
        output: "${{ steps.fetch.output }}"
        """
    # A JSON string is its characters and two quotes.
    fits = Run(text)
    fits.complete("fetch", "x" * (OUTPUT_BYTES - 2))
    assert fits.phase is RunPhase.SUCCEEDED
    assert fits.sim.state.output == "x" * (OUTPUT_BYTES - 2)
    over = Run(text)
    over.complete("fetch", "x" * (OUTPUT_BYTES - 1))
    assert over.phase is RunPhase.FAILED
    assert over.sim.state.error is not None
    assert over.sim.state.error.type == "OutputTooLarge"
    assert over.sim.state.error.details == {"bytes": OUTPUT_BYTES + 1, "limit": OUTPUT_BYTES}


def test_a_for_each_whose_collected_output_is_too_large_to_store_fails() -> None:
    run = Run(FOR_EACH, {"amounts": [1, 2, 3]})
    bulk = "x" * (OUTPUT_BYTES // 3 + 1)
    for index in range(3):
        run.complete(f"charges[{index}].charge", bulk)
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "OutputTooLarge"
    assert run.sim.state.error.step == "charges"
    assert run.sim.state.error.details["limit"] == OUTPUT_BYTES
    assert run.step("charges[2].charge").phase is StepPhase.SUCCEEDED  # each item was fine


def test_a_run_output_too_large_to_store_fails_the_run() -> None:
    run = Run(
        """
        steps:
          - {name: fetch, http: {url: "http://f"}}
        output: {twice: ["${{ steps.fetch.output }}", "${{ steps.fetch.output }}"]}
        """
    )
    run.complete("fetch", "y" * (OUTPUT_BYTES // 2 + 1))
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "OutputTooLarge"
    assert run.sim.state.output is None


def test_nested_for_each_items_see_their_own_item_and_index() -> None:
    run = Run(
        """
        steps:
          - name: rows
            forEach:
              items: "input.rows"
              concurrency: 5
              step:
                name: cols
                forEach:
                  items: "item"
                  concurrency: 5
                  step: {name: cell, http: {url: "http://c/${{ index }}/${{ item }}"}}
        """,
        {"rows": [["a", "b"], ["c"]]},
    )
    assert [(k, run.start_of(k).spec["url"]) for k in run.started()] == [
        ("rows[0].cols[0].cell", "http://c/0/a"),
        ("rows[0].cols[1].cell", "http://c/1/b"),
        ("rows[1].cols[0].cell", "http://c/0/c"),
    ]


def test_catch_with_output_recovers_a_failed_step() -> None:
    run = Run(
        """
        steps:
          - name: lookup
            http: {url: "http://x"}
            retry: {maxAttempts: 1}
            catch: [{errors: [NotFound], output: {found: false}}]
          - {name: next, http: {url: "http://y/${{ steps.lookup.output.found }}"}}
        """
    )
    run.fail("lookup", "NotFound")
    assert run.step_phase("lookup") is StepPhase.SUCCEEDED
    assert run.start_of("next").spec["url"] == "http://y/false"


def test_catch_that_does_not_match_leaves_the_step_failed() -> None:
    run = Run(
        """
        steps:
          - name: lookup
            http: {url: "http://x"}
            retry: {maxAttempts: 1}
            catch: [{errors: [NotFound], output: 1}]
        """
    )
    run.fail("lookup", "Other")
    assert run.phase is RunPhase.FAILED


def test_catch_steps_run_instead_and_the_last_output_becomes_the_steps_output() -> None:
    run = Run(
        """
        steps:
          - name: primary
            http: {url: "http://primary"}
            retry: {maxAttempts: 1}
            catch:
              - errors: ["*"]
                steps:
                  - {name: fallback, http: {url: "http://fallback/${{ error.type }}"}}
          - {name: next, http: {url: "http://next/${{ steps.primary.output }}"}}
        """
    )
    run.fail("primary", "Down")
    assert run.start_of("fallback").spec["url"] == "http://fallback/Down"
    run.complete("fallback", "plan-b")
    assert run.step("primary").output == "plan-b"
    assert run.start_of("next").spec["url"] == "http://next/plan-b"


REPEAT = """
steps:
  - name: inspect
    http: {url: "http://inspect"}
    repeat: {until: "steps.inspect.output.passed", interval: 1d, maxIterations: 3}
"""


def test_repeat_runs_the_step_again_after_the_interval_until_the_condition_holds() -> None:
    run = Run(REPEAT)
    run.complete("inspect", {"passed": False})
    assert run.step_phase("inspect") is StepPhase.WAITING
    assert run.sim.wakeup() == run.now + 86400
    run.fire()
    assert run.start_of("inspect").attempt == 2
    run.complete("inspect", {"passed": True})
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("inspect").iterations == 2


def test_repeat_fails_with_max_iterations_when_the_condition_never_holds() -> None:
    run = Run(REPEAT)
    for _ in range(2):
        run.complete("inspect", {"passed": False})
        run.fire()
    run.complete("inspect", {"passed": False})
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "MaxIterations"


def test_repeat_of_a_parallel_step_runs_its_branches_afresh_each_iteration() -> None:
    run = Run(
        """
        steps:
          - name: poll
            repeat: {until: "steps.poll.output.b.done"}
            parallel:
              branches:
                - {name: b, steps: [{name: check, http: {url: "http://check"}}]}
        """
    )
    run.complete("check", {"done": False})
    assert run.start_of("check").attempt == 2
    run.complete("check", {"done": True})
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("poll").iterations == 2


POLL = """
steps:
  - name: poll
    http: {url: "http://poll"}
    repeat: {until: "steps.poll.output.count", maxIterations: 5}
    catch: [{errors: ["*"], output: caught}]
"""


def test_repeat_until_that_is_not_a_boolean_fails_with_an_expression_error() -> None:
    run = Run(POLL)
    run.complete("poll", {"count": 3})
    assert run.phase is RunPhase.FAILED
    assert run.step("poll").attempt == 1
    error = run.step("poll").error
    assert error_json(error) == {
        "type": "ExpressionError",
        "message": "`repeat.until` must be true or false, got a number: 3",
        "step": "poll",
        "details": {"field": "repeat.until"},
    }


def test_repeat_until_that_is_null_fails_instead_of_iterating_again() -> None:
    run = Run(POLL)
    run.complete("poll", {"count": None})
    assert run.phase is RunPhase.FAILED
    error = run.step("poll").error
    assert error is not None
    assert error.message == "`repeat.until` must be true or false, got null"


def test_repeat_until_false_still_iterates_again() -> None:
    run = Run(POLL)
    run.complete("poll", {"count": False})
    assert run.start_of("poll").attempt == 2
    run.complete("poll", {"count": True})
    assert run.phase is RunPhase.SUCCEEDED


RECOVERING = """
defaults: {timeout: {startToClose: 1m}}
steps:
  - name: primary
    http: {url: "http://primary"}
    retry: {maxAttempts: 1}
    catch:
      - errors: ["*"]
        steps: [{name: fallback, http: {url: "http://fallback"}, retry: {maxAttempts: 1}}]
  - {name: next, set: {done: true}}
"""


def test_a_step_recovering_through_catch_steps_outlives_its_failed_attempts_timeout() -> None:
    run = Run(RECOVERING)
    run.acknowledge("primary")
    run.fire()  # primary's startToClose: the catch runs fallback
    assert run.started() == ["fallback"]
    assert run.step_phase("primary") is StepPhase.RUNNING
    assert run.phase is RunPhase.RUNNING
    run.advance(30)
    run.complete("fallback", "plan-b")
    assert run.step("primary").output == "plan-b"
    assert run.phase is RunPhase.SUCCEEDED


def test_a_late_result_of_the_failed_attempt_does_not_end_a_step_recovering() -> None:
    run = Run(RECOVERING)
    run.fail("primary", "Down")
    late = ActivityCompleted(key="primary", attempt=1, output="too late")
    run.deliver(late)
    assert run.step_phase("primary") is StepPhase.RUNNING
    assert run.step_phase("fallback") is StepPhase.RUNNING
    run.complete("fallback", "plan-b")
    assert run.step("primary").output == "plan-b"


def test_after_a_crash_only_the_recovery_of_a_caught_step_is_started_again() -> None:
    run = Run(RECOVERING)
    run.fail("primary", "Down")
    pending = pending_commands(run.definition, run.sim.state)
    assert [(c.key, c.attempt) for c in pending if isinstance(c, StartActivity)] == [
        ("fallback", 1)
    ]


def test_a_step_whose_catch_steps_fail_ends_with_their_error() -> None:
    run = Run(RECOVERING)
    run.fail("primary", "Down")
    run.fail("fallback", "AlsoDown")
    assert run.step_phase("primary") is StepPhase.FAILED
    assert run.step("primary").error.type == "AlsoDown"
    assert run.sim.state.error.type == "AlsoDown"


def test_a_recovery_halted_by_a_failing_branch_starts_no_further_step_and_is_cancelled() -> None:
    run = Run(
        """
        steps:
          - name: both
            parallel:
              branches:
                - name: left
                  steps:
                    - name: primary
                      http: {url: "http://primary"}
                      retry: {maxAttempts: 1}
                      catch:
                        - errors: ["*"]
                          steps:
                            - {name: fallback, http: {url: "http://fallback"}}
                            - {name: second, http: {url: "http://second"}}
                - name: right
                  steps: [{name: bad, http: {url: "http://bad"}, retry: {maxAttempts: 1}}]
        """
    )
    run.fail("primary", "Down")
    run.fail("bad", "Broken")
    run.complete("fallback")
    assert run.step_phase("second") in (None, StepPhase.PENDING)
    assert run.step_phase("primary") is StepPhase.CANCELLED
    assert run.phase is RunPhase.FAILED


def test_a_redriven_for_each_item_runs_again_with_its_own_item() -> None:
    run = Run(
        """
        steps:
          - name: each
            forEach:
              items: "['a', 'b']"
              concurrency: 2
              step: {name: call, http: {url: "http://x/${{ item }}"}, retry: {maxAttempts: 1}}
        """
    )
    run.complete("each[0].call")
    run.fail("each[1].call", "Down")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.started() == ["each[1].call"]
    assert run.start_of("each[1].call").spec["url"] == "http://x/b"
    run.complete("each[1].call")
    assert run.phase is RunPhase.SUCCEEDED


def test_a_redriven_composite_for_each_item_runs_its_failed_steps_with_its_own_item() -> None:
    run = Run(
        """
        steps:
          - name: each
            forEach:
              items: "['a', 'b']"
              concurrency: 2
              step:
                name: pair
                parallel:
                  branches:
                    - name: only
                      steps:
                        - name: call
                          http: {url: "http://x/${{ item }}"}
                          retry: {maxAttempts: 1}
        """
    )
    run.complete("each[0].call")
    run.fail("each[1].call", "Down")
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.start_of("each[1].call").spec["url"] == "http://x/b"
    run.complete("each[1].call")
    assert run.phase is RunPhase.SUCCEEDED


def test_repeat_until_sees_the_iterations_phase_and_attempts() -> None:
    run = Run(
        """
        steps:
          - name: poll
            http: {url: "http://poll"}
            repeat: {until: "steps.poll.phase == 'Succeeded' && steps.poll.attempts >= 2"}
        """
    )
    run.complete("poll")  # the next iteration starts at once (no interval)
    run.complete("poll")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("poll").iterations == 2


def test_a_repeat_until_that_cannot_be_evaluated_fails_the_step_past_its_catch() -> None:
    run = Run(
        """
        steps:
          - name: poll
            http: {url: "http://poll"}
            repeat: {until: "steps.poll.output.missing.deeper"}
            catch: [{errors: ["*"], output: caught}]
        """
    )
    run.complete("poll", {})
    error = run.sim.state.error
    assert run.phase is RunPhase.FAILED
    assert error is not None
    assert (error.type, error.step, error.details) == (
        "ExpressionError",
        "poll",
        {"field": "repeat.until"},
    )


def test_a_redriven_for_each_whose_items_failed_evaluates_them_again() -> None:
    run = Run(
        """
        steps:
          - name: each
            forEach: {items: "input.list", step: {name: call, http: {url: "http://x"}}}
        """,
        {},
    )
    assert run.phase is RunPhase.FAILED
    run.deliver(RedriveRequested(n=1))
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.redrive == 1
    assert run.step("each").error.details == {"field": "forEach.items"}
