"""Activities, the DAG, `when`, outputs, set and fail: the basic life of a run."""

from __future__ import annotations

from enginekit import Run

from baton.api.run import RunPhase, StepPhase
from baton.engine import ActivityStarted, FinishRun, StartActivity
from baton.engine.errors import error_json

SAGA = """
steps:
  - name: reserve
    http: {method: POST, url: "http://inventory/r", body: {property: "${{ input.id }}"}}
  - name: pay
    job: {image: "pay:1", args: ["charge", "${{ steps.reserve.output.id }}"]}
  - name: transfer
    worker: {pool: registry, activity: transfer, input: {id: "${{ input.id }}"}}
output: {transfer: "${{ steps.transfer.output.t }}"}
"""


def test_run_start_issues_the_first_activity_with_its_rendered_spec() -> None:
    run = Run(SAGA, {"id": "villa"})
    command = run.start_of("reserve")
    assert command.kind == "http"
    assert command.spec == {
        "method": "POST",
        "url": "http://inventory/r",
        "body": {"property": "villa"},
    }
    assert command.attempt == 1
    assert command.idempotency_key == "uid/reserve/1"
    assert run.phase is RunPhase.RUNNING


def test_each_step_starts_when_the_previous_one_completes() -> None:
    run = Run(SAGA, {"id": "villa"})
    run.complete("reserve", {"id": "r-1"})
    assert run.started() == ["pay"]
    assert run.start_of("pay").spec == {"image": "pay:1", "args": ["charge", "r-1"]}
    run.complete("pay")
    assert run.start_of("transfer").spec == {
        "pool": "registry",
        "activity": "transfer",
        "input": {"id": "villa"},
    }


def test_the_output_template_is_rendered_when_the_run_succeeds() -> None:
    run = Run(SAGA, {"id": "villa"})
    run.complete("reserve", {"id": "r-1"})
    run.complete("pay")
    run.complete("transfer", {"t": 42})
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == {"transfer": 42}
    assert run.of_type(FinishRun) == [
        FinishRun(phase="Succeeded", output={"transfer": 42}, error=None)
    ]


def test_steps_whose_needs_are_met_run_concurrently() -> None:
    run = Run(
        """
        steps:
          - {name: a, http: {url: "http://a"}}
          - {name: b, needs: [], http: {url: "http://b"}}
          - {name: c, needs: [a, b], http: {url: "http://c"}}
        """
    )
    assert run.started() == ["a", "b"]
    run.complete("a")
    assert run.started() == []
    run.complete("b")
    assert run.started() == ["c"]


def test_a_false_when_skips_the_step_and_its_dependants_still_run() -> None:
    run = Run(
        """
        steps:
          - {name: a, when: "input.big", http: {url: "http://a"}}
          - {name: b, http: {url: "http://b"}}
        """,
        {"big": False},
    )
    assert run.step_phase("a") is StepPhase.SKIPPED
    assert run.started() == ["b"]


def test_a_when_that_is_not_a_boolean_fails_with_an_expression_error() -> None:
    run = Run("steps: [{name: a, when: 'input.n', http: {url: 'http://a'}}]", {"n": 3})
    assert run.phase is RunPhase.FAILED
    assert run.step("a").error is not None
    assert run.step("a").error.type == "ExpressionError"
    assert run.step("a").error.message == "`when` must be true or false, got a number: 3"


def test_an_expression_failing_at_run_time_fails_the_step_without_retrying() -> None:
    run = Run("steps: [{name: a, http: {url: 'http://a/${{ input.missing.deeper }}'}}]", {})
    assert run.phase is RunPhase.FAILED
    error = run.sim.state.error
    assert error is not None
    assert (error.type, error.step) == ("ExpressionError", "a")
    assert run.step("a").attempt == 0


def test_set_assigns_vars_visible_to_later_steps() -> None:
    run = Run(
        """
        vars: {count: 1}
        steps:
          - {name: bump, set: {count: "${{ vars.count + 1 }}", who: "${{ input.who }}"}}
          - {name: use, http: {url: "http://x/${{ vars.count }}/${{ vars.who }}"}}
        """,
        {"who": "ann"},
    )
    assert run.sim.state.vars == {"count": 2, "who": "ann"}
    assert run.start_of("use").spec["url"] == "http://x/2/ann"
    assert run.step("bump").output == {"count": 2, "who": "ann"}


def test_fail_ends_the_run_with_the_chosen_error_type_and_message() -> None:
    run = Run(
        """
        steps:
          - {name: reject, fail: {error: Rejected, message: "bad ${{ input.why }}"}}
          - {name: never, http: {url: "http://x"}}
        """,
        {"why": "credit"},
    )
    assert run.phase is RunPhase.FAILED
    assert error_json(run.sim.state.error) == {
        "type": "Rejected",
        "message": "bad credit",
        "step": "reject",
    }
    assert "never" not in run.sim.state.steps


def test_a_fail_message_that_renders_to_an_object_is_compact_json() -> None:
    run = Run(
        "steps: [{name: reject, fail: {error: Rejected, message: '${{ input.why }}'}}]",
        {"why": {"score": 540, "flags": ["late", "debit"]}},
    )
    assert error_json(run.sim.state.error) == {
        "type": "Rejected",
        "message": '{"flags":["late","debit"],"score":540}',
        "step": "reject",
    }


def test_a_fail_message_that_renders_to_a_number_or_null_is_its_json_text() -> None:
    for value, text in ((540, "540"), (1.5, "1.5"), (None, "null"), (True, "true")):
        run = Run("steps: [{name: reject, fail: {message: '${{ input.why }}'}}]", {"why": value})
        assert run.sim.state.error is not None
        assert run.sim.state.error.message == text


def test_a_sleep_ends_when_its_timer_fires() -> None:
    run = Run("steps: [{name: nap, sleep: {duration: 1h}}, {name: b, http: {url: 'http://b'}}]")
    assert run.sim.wakeup() == run.now + 3600
    run.advance(3599)
    assert run.step_phase("nap") is StepPhase.WAITING
    run.fire()
    assert run.step_phase("nap") is StepPhase.SUCCEEDED
    assert run.started() == ["b"]


def test_an_acknowledged_attempt_is_marked_so_pending_commands_say_so() -> None:
    from baton.engine import pending_commands

    run = Run(SAGA, {"id": "v"})
    run.deliver(ActivityStarted(key="reserve", attempt=1))
    starts = [
        c for c in pending_commands(run.definition, run.sim.state) if isinstance(c, StartActivity)
    ]
    assert [(c.key, c.acknowledged) for c in starts] == [("reserve", True)]


def test_a_result_for_an_old_attempt_is_ignored() -> None:
    run = Run(SAGA, {"id": "v"})
    run.fail("reserve")
    run.fire()
    assert run.step("reserve").attempt == 2
    before = run.sim.state
    from baton.engine import ActivityCompleted

    run.deliver(ActivityCompleted(key="reserve", attempt=1, output={"id": "stale"}))
    assert run.sim.state == before
    assert run.commands == ()


def test_events_for_a_finished_run_change_nothing() -> None:
    run = Run("steps: [{name: a, set: {x: 1}}]")
    assert run.phase is RunPhase.SUCCEEDED
    before = run.sim.state
    run.signal(0, "late", 1)
    assert run.sim.state == before


def test_a_when_over_the_evaluation_budget_fails_the_step_with_a_message() -> None:
    when = "input.l.map(a, input.l.map(b, input.l))"
    run = Run(f"steps: [{{name: a, when: '{when}', http: {{url: 'http://a'}}}}]", {"l": [0] * 300})
    assert run.phase is RunPhase.FAILED
    error = run.step("a").error
    assert error is not None
    assert error.type == "ExpressionError"
    assert "over the evaluation budget" in error.message
    assert run.step("a").attempt == 0


def test_for_each_items_over_the_evaluation_budget_fail_the_step_with_a_message() -> None:
    run = Run(
        """
        steps:
          - name: each
            forEach:
              items: "input.l.map(x, x + 1)"
              step: {name: one, http: {url: "http://a"}}
        """,
        {"l": list(range(20_000))},
    )
    assert run.phase is RunPhase.FAILED
    error = run.step("each").error
    assert error is not None
    assert "over the evaluation budget" in error.message


HYPHENATED = """
steps:
  - name: charge-card
    http: {method: POST, url: "http://payments/charges"}
  - name: wait-a-day
    sleep: {duration: 24h}
  - name: ship-it
    job: {image: "ship:1", args: ["${{ string(steps['charge-card'].output.id) }}"]}
    when: "steps['wait-a-day'].phase == 'Succeeded'"
output: {charge: "${{ steps['charge-card'].output.id }}", shipped: "${{ steps['ship-it'].output }}"}
"""


def test_hyphenated_step_names_are_reached_with_cel_index_syntax() -> None:
    run = Run(HYPHENATED)
    run.complete("charge-card", {"id": 7})
    run.fire()
    assert run.start_of("ship-it").spec == {"image": "ship:1", "args": ["7"]}
    run.complete("ship-it", "done")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.output == {"charge": 7, "shipped": "done"}


def test_a_fail_message_that_cannot_be_rendered_fails_with_an_expression_error_naming_it() -> None:
    run = Run("steps: [{name: stop, fail: {error: Bad, message: '${{ input.missing.x }}'}}]", {})
    error = run.sim.state.error
    assert error is not None
    assert (error.type, error.step, error.details) == (
        "ExpressionError",
        "stop",
        {"field": "fail.message"},
    )
    assert "missing" in error.message


def test_a_set_that_cannot_be_rendered_fails_with_an_expression_error_naming_it() -> None:
    run = Run("steps: [{name: assign, set: {x: '${{ input.missing.x }}'}}]", {})
    error = run.sim.state.error
    assert error is not None
    assert (error.type, error.step, error.details) == (
        "ExpressionError",
        "assign",
        {"field": "set"},
    )


def test_a_sleep_and_a_set_with_compensate_are_compensated_in_reverse_order() -> None:
    run = Run(
        """
        steps:
          - {name: nap, sleep: {duration: 1s}, compensate: {http: {url: "http://undo/nap"}}}
          - {name: mark, set: {x: 1}, compensate: {http: {url: "http://undo/mark"}}}
          - {name: stop, fail: {error: Bad}}
        """
    )
    run.fire()
    assert run.started() == ["mark/compensate"]
    run.complete("mark/compensate")
    assert run.started() == ["nap/compensate"]
    run.complete("nap/compensate")
    assert run.phase is RunPhase.COMPENSATED


def test_a_child_input_that_cannot_be_rendered_fails_with_an_expression_error_naming_it() -> None:
    run = Run(
        "steps: [{name: sub, workflow: {workflowRef: child, input: '${{ input.missing.x }}'}}]", {}
    )
    error = run.sim.state.error
    assert error is not None
    assert (error.type, error.step, error.details) == (
        "ExpressionError",
        "sub",
        {"field": "workflow.input"},
    )
